# Estimated marginal means and group contrasts with lme4 + lmerTest + emmeans, for comparison
# with pipeline.lmm.marginal.
#
# Usage:
#   Rscript tests/r/emmeans_fit.R DATA.csv "FORMULA" FACTOR TIME OUT.csv [AT=t1,t2,...]
#           [--trend] [COLUMN=REFERENCE ...]
#
# The model is fitted by REML with lmerTest::lmer (bobyqa, rhoend 1e-12). Means are
# emmeans(fit, FACTOR, by = TIME, lmer.df = "satterthwaite"), with TIME fixed at the values
# AT (a numeric time) or at every level of TIME (a categorical visit: give no AT). Contrasts
# are contrast(emm, "trt.vs.ctrl") (each level minus the reference level). With --trend the
# slope of TIME per level of FACTOR is also compared: emtrends(fit, FACTOR, var = TIME) and
# its "trt.vs.ctrl" contrast. Numbers are written with 17 significant digits as
# kind, factor_level, time, estimate, std_err, df.
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(emmeans)
})
args <- commandArgs(trailingOnly = TRUE)
data <- read.csv(args[[1]], stringsAsFactors = FALSE)
form <- as.formula(args[[2]])
factor_name <- args[[3]]
time_name <- args[[4]]
out <- args[[5]]
extra <- args[-(1:5)]
at_values <- NULL
trend <- "--trend" %in% extra
for (spec in extra[extra != "--trend"]) {
  parts <- strsplit(spec, "=", fixed = TRUE)[[1]]
  if (parts[[1]] == "AT") {
    at_values <- as.numeric(strsplit(parts[[2]], ",", fixed = TRUE)[[1]])
  } else {
    col <- parts[[1]]
    lv <- sort(unique(as.character(data[[col]])))
    data[[col]] <- factor(as.character(data[[col]]), levels = c(parts[[2]], setdiff(lv, parts[[2]])))
  }
}
if (is.null(at_values)) data[[time_name]] <- factor(data[[time_name]])
control <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
fit <- lmerTest::lmer(form, data = data, REML = TRUE, control = control)
emm_options(lmerTest.limit = 1e6, pbkrtest.limit = 0)
at <- list()
if (!is.null(at_values)) at[[time_name]] <- at_values
emm <- emmeans(fit, factor_name, by = time_name, at = at, lmer.df = "satterthwaite")
num <- function(x) sprintf("%.17g", x)
rows <- list()
add <- function(kind, level, time, s) {
  rows[[length(rows) + 1]] <<- data.frame(
    kind = kind, level = level, time = time, estimate = num(s$estimate), std_err = num(s$SE),
    df = num(s$df)
  )
}
s <- as.data.frame(summary(emm))
for (i in seq_len(nrow(s))) {
  add("emmean", as.character(s[[factor_name]][i]), as.character(s[[time_name]][i]),
      list(estimate = s$emmean[i], SE = s$SE[i], df = s$df[i]))
}
con <- as.data.frame(summary(contrast(emm, "trt.vs.ctrl")))
for (i in seq_len(nrow(con))) {
  add("contrast", as.character(con$contrast[i]), as.character(con[[time_name]][i]),
      list(estimate = con$estimate[i], SE = con$SE[i], df = con$df[i]))
}
if (trend) {
  tr <- emtrends(fit, factor_name, var = time_name, lmer.df = "satterthwaite")
  tcon <- as.data.frame(summary(contrast(tr, "trt.vs.ctrl")))
  for (i in seq_len(nrow(tcon))) {
    add("slope_contrast", as.character(tcon$contrast[i]), "",
        list(estimate = tcon$estimate[i], SE = tcon$SE[i], df = tcon$df[i]))
  }
}
write.csv(do.call(rbind, rows), out, row.names = FALSE)
