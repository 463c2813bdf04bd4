# Time the unstructured MMRM in R on the rows benchmarks/mmrm.py wrote.
#
# Usage: Rscript benchmarks/mmrm_fits.R DATA.csv ENGINE OUT.csv
#   ENGINE gls:     nlme::gls(y ~ baseline + visit_f * arm, correlation = corSymm(form = ~ visit |
#                   patient), weights = varIdent(form = ~ 1 | visit_f), method = "REML")
#   ENGINE glmmTMB: glmmTMB(y ~ baseline + visit_f * arm + us(0 + visit_f | patient),
#                   dispformula = ~0, REML = TRUE)
# Only the fitting call and vcov() are timed (neither package computes Satterthwaite df for
# this model). OUT.csv: engine, wall and CPU seconds, n_obs, minus twice the REML log-likelihood.
suppressPackageStartupMessages({
  library(nlme)
})
args <- commandArgs(trailingOnly = TRUE)
data <- read.csv(args[[1]])
engine <- args[[2]]
data$visit_f <- factor(data$visit)
data$arm <- factor(data$arm, levels = c("control", "active"))
data$patient <- factor(data$patient)
if (engine == "gls") {
  timing <- system.time({
    fit <- gls(y ~ baseline + visit_f * arm, data = data,
               correlation = corSymm(form = ~ visit | patient),
               weights = varIdent(form = ~ 1 | visit_f), method = "REML")
    v <- vcov(fit)
  })
} else if (engine == "glmmTMB") {
  suppressPackageStartupMessages(library(glmmTMB))
  timing <- system.time({
    fit <- glmmTMB(y ~ baseline + visit_f * arm + us(0 + visit_f | patient), data = data,
                   dispformula = ~0, REML = TRUE)
    v <- vcov(fit)
  })
} else {
  stop("unknown engine ", engine)
}
write.csv(data.frame(engine = engine, seconds = timing[["elapsed"]],
                     cpu_seconds = timing[["user.self"]] + timing[["sys.self"]], n_obs = nrow(data),
                     criterion = -2 * as.numeric(logLik(fit))), args[[3]], row.names = FALSE)
