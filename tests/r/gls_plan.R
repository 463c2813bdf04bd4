# The plan's visit-level MMRM refitted with nlme::gls and emmeans, for tests/analyses.
#
# Usage:
#   Rscript tests/r/gls_plan.R DATA.csv "FORMULA" FACTOR VISIT SUBJECT OUT.csv [COLUMN=REFERENCE ...]
#
# FORMULA is the plan's fixed part (e.g. "vas ~ baseline + visit_c * twitch + chronicity + site");
# VISIT holds the visits 1..T (made a factor, and its integer position for corSymm). The model is
# gls(FORMULA, correlation = corSymm(form = ~ position | SUBJECT), weights = varIdent(form = ~ 1 |
# VISIT), method = "REML") — the unstructured covariance. Written (17 significant digits) as
# kind, name, value: estimate and std_err per coefficient, sigma "i|j" (getVarCov of a patient
# seen at every visit), loglik; lsmean / lsmean_se "level|visit" from
# summary(emmeans(fit, FACTOR, by = VISIT, mode = "df.error")) and contrast / contrast_se
# "contrast|visit" from contrast(that, "trt.vs.ctrl"). COLUMN=REFERENCE makes a text column a
# factor with that reference level.
suppressPackageStartupMessages({
  library(nlme)
  library(emmeans)
})
args <- commandArgs(trailingOnly = TRUE)
data <- read.csv(args[[1]], stringsAsFactors = FALSE)
form <- as.formula(args[[2]])
factor_name <- args[[3]]
visit <- args[[4]]
subject <- args[[5]]
out <- args[[6]]
for (spec in args[-(1:6)]) {
  parts <- strsplit(spec, "=", fixed = TRUE)[[1]]
  lv <- sort(unique(as.character(data[[parts[[1]]]])))
  data[[parts[[1]]]] <- factor(as.character(data[[parts[[1]]]]), levels = c(parts[[2]], setdiff(lv, parts[[2]])))
}
data$.position <- as.integer(as.character(data[[visit]]))
if (!is.factor(data[[visit]])) data[[visit]] <- factor(data[[visit]])
data$.subject <- factor(data[[subject]])
fit <- gls(form, data = data,
           correlation = corSymm(form = ~ .position | .subject),
           weights = varIdent(form = as.formula(paste("~ 1 |", visit))),
           method = "REML",
           control = glsControl(tolerance = 1e-10, msTol = 1e-10, maxIter = 500, msMaxIter = 500))
num <- function(x) sprintf("%.17g", x)
rows <- list()
add <- function(kind, name, value) {
  rows[[length(rows) + 1]] <<- data.frame(kind = kind, name = name, value = num(value))
}
est <- coef(fit)
se <- sqrt(diag(vcov(fit)))
for (nm in names(est)) {
  add("estimate", nm, est[[nm]])
  add("std_err", nm, se[[nm]])
}
counts <- table(data$.subject)
full <- names(counts)[counts == nlevels(data[[visit]])][1]
sig <- as.matrix(getVarCov(fit, individual = full))
for (i in seq_len(nrow(sig))) for (j in seq_len(ncol(sig))) add("sigma", paste0(i, "|", j), sig[i, j])
add("loglik", "REML", logLik(fit))
emm <- emmeans(fit, factor_name, by = visit, data = data, mode = "df.error")
s <- summary(emm)
for (i in seq_len(nrow(s))) {
  key <- paste0(s[[factor_name]][i], "|", s[[visit]][i])
  add("lsmean", key, s$emmean[i])
  add("lsmean_se", key, s$SE[i])
}
cs <- summary(contrast(emm, "trt.vs.ctrl"))
for (i in seq_len(nrow(cs))) {
  key <- paste0(cs$contrast[i], "|", cs[[visit]][i])
  add("contrast", key, cs$estimate[i])
  add("contrast_se", key, cs$SE[i])
}
write.csv(do.call(rbind, rows), out, row.names = FALSE)
