# Fit a linear mixed model with lme4 + lmerTest and write the numbers the Python tests compare.
#
# Usage:
#   Rscript tests/r/lmer_fit.R DATA.csv "FORMULA" REML OUT.csv [--tight] [--contrasts=L.csv]
#           [COLUMN=REFERENCE ...]
#
# REML is TRUE or FALSE. Each COLUMN=REFERENCE turns a text column into a factor whose reference
# (first) level is REFERENCE, the other levels alphabetical (as patsy's Treatment() does).
# --tight fits with lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12,
# maxfun = 1e5)), so that R stops at the optimum rather than at lme4's default tolerance
# (on Orthodont the default stops 5.6e-6 REML-criterion units short, variances off by 0.2 %).
# --contrasts=L.csv: one contrast per row, a "label" column and one column per fixed effect
# named as R names it; each is tested with lmerTest::contest(fit, L, joint = FALSE).
# Also written: the conditional modes (kind ranef, name "group|term") and the residuals in
# data order (kind residual, name = row number).
# OUT.csv has columns kind, name, value; numbers are written with 17 significant digits.
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 4) stop("usage: lmer_fit.R DATA.csv FORMULA REML OUT.csv [--tight] [--contrasts=L.csv] [COL=REF ...]")
data <- read.csv(args[[1]], stringsAsFactors = FALSE)
form <- as.formula(args[[2]])
reml <- as.logical(args[[3]])
out <- args[[4]]
extra <- args[-(1:4)]
control <- lmerControl()
if ("--tight" %in% extra) {
  control <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
}
contrast_file <- NULL
for (spec in extra[startsWith(extra, "--contrasts=")]) {
  contrast_file <- sub("^--contrasts=", "", spec)
}
for (spec in extra[!startsWith(extra, "--")]) {
  parts <- strsplit(spec, "=", fixed = TRUE)[[1]]
  col <- parts[[1]]
  ref <- parts[[2]]
  lv <- sort(unique(as.character(data[[col]])))
  data[[col]] <- factor(as.character(data[[col]]), levels = c(ref, setdiff(lv, ref)))
}

msgs <- character(0)
fit <- withCallingHandlers(
  lmerTest::lmer(form, data = data, REML = reml, control = control),
  warning = function(w) {
    msgs <<- c(msgs, conditionMessage(w))
    invokeRestart("muffleWarning")
  },
  message = function(m) {
    msgs <<- c(msgs, conditionMessage(m))
    invokeRestart("muffleMessage")
  }
)
msgs <- unique(trimws(c(msgs, fit@optinfo$conv$lme4$messages)))

num <- function(x) sprintf("%.17g", x)
rows <- list()
add <- function(kind, name, value) {
  rows[[length(rows) + 1]] <<- data.frame(kind = kind, name = name, value = value)
}

co <- summary(fit)$coefficients
for (i in seq_len(nrow(co))) {
  term <- rownames(co)[i]
  add("estimate", term, num(co[i, "Estimate"]))
  add("std_err", term, num(co[i, "Std. Error"]))
  add("df", term, num(co[i, "df"]))
  add("statistic", term, num(co[i, "t value"]))
  add("p_value", term, num(co[i, "Pr(>|t|)"]))
}
vc <- as.data.frame(VarCorr(fit))
for (i in seq_len(nrow(vc))) {
  nm <- paste(vc$grp[i], vc$var1[i], ifelse(is.na(vc$var2[i]), "", vc$var2[i]), sep = "|")
  add(ifelse(is.na(vc$var2[i]), "variance", "correlation"), nm,
      num(ifelse(is.na(vc$var2[i]), vc$vcov[i], vc$sdcor[i])))
}
theta <- getME(fit, "theta")
for (i in seq_along(theta)) add("theta", names(theta)[i], num(theta[[i]]))
add("sigma", "sigma", num(sigma(fit)))
if (reml) {
  add("criterion", "REML", num(getME(fit, "devcomp")$cmp[["REML"]]))
} else {
  add("criterion", "deviance", num(deviance(fit)))
}
add("loglik", "loglik", num(as.numeric(logLik(fit))))
add("singular", "singular", as.character(isSingular(fit)))
add("n_obs", "n_obs", as.character(nobs(fit)))
add("n_groups", "n_groups", as.character(ngrps(fit)[[1]]))
if (!is.null(contrast_file)) {
  cdef <- read.csv(contrast_file, check.names = FALSE, stringsAsFactors = FALSE)
  lmat <- as.matrix(cdef[, names(fixef(fit)), drop = FALSE])
  res <- lmerTest::contest(fit, lmat, joint = FALSE)
  for (i in seq_len(nrow(cdef))) {
    add("contrast_estimate", cdef$label[i], num(res[i, "Estimate"]))
    add("contrast_std_err", cdef$label[i], num(res[i, "Std. Error"]))
    add("contrast_df", cdef$label[i], num(res[i, "df"]))
  }
}
re <- ranef(fit)[[1]]
for (i in seq_len(nrow(re))) {
  for (j in seq_len(ncol(re))) add("ranef", paste(rownames(re)[i], colnames(re)[j], sep = "|"), num(re[i, j]))
}
res <- residuals(fit)
for (i in seq_along(res)) add("residual", as.character(i), num(res[[i]]))
for (m in msgs) add("message", "message", m)
write.csv(do.call(rbind, rows), out, row.names = FALSE)
