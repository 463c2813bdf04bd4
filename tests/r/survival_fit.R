# Kaplan-Meier and Cox fits as pipeline.describe.sessions_to_response computes them.
# Usage: Rscript survival_fit.R input.csv out_prefix group_reference adjust_reference
# input: columns sessions, event (0/1), g (group), a (adjustment factor).
# Writes <out_prefix>_curve.csv (summary(survfit(Surv(sessions, event) ~ g), censored = TRUE)),
# <out_prefix>_median.csv (summary(fit)$table median and 0.95 limits) and <out_prefix>_cox.csv
# (summary(coxph(Surv(sessions, event) ~ a + g, ties = "efron"))$coefficients).
suppressPackageStartupMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE)
d$g <- relevel(factor(d$g), ref = args[3])
d$a <- relevel(factor(d$a), ref = args[4])
fit <- survfit(Surv(sessions, event) ~ g, data = d)  # conf.type = "log" (the default)
s <- summary(fit, censored = TRUE)
curve <- data.frame(level = sub("^g=", "", as.character(s$strata)), sessions = s$time,
                    at_risk = s$n.risk, events = s$n.event, survival = s$surv,
                    std_err = s$std.err, ci_low = s$lower, ci_high = s$upper)
write.csv(curve, paste0(args[2], "_curve.csv"), row.names = FALSE)
tab <- summary(fit)$table
med <- data.frame(level = sub("^g=", "", rownames(tab)), median = tab[, "median"],
                  ci_low = tab[, "0.95LCL"], ci_high = tab[, "0.95UCL"])
write.csv(med, paste0(args[2], "_median.csv"), row.names = FALSE)
cox <- summary(coxph(Surv(sessions, event) ~ a + g, data = d, ties = "efron"))$coefficients
write.csv(data.frame(term = rownames(cox), log_hr = cox[, "coef"], std_err = cox[, "se(coef)"],
                     p_value = cox[, "Pr(>|z|)"]),
          paste0(args[2], "_cox.csv"), row.names = FALSE)
