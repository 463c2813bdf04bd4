# Fit the MMRM's reference models in R and write the numbers tests/lmm/test_mmrm_r.py compares.
#
# Usage:
#   Rscript tests/r/mmrm_fit.R DATA.csv ENGINE STRUCTURE OUT.csv
#
# DATA.csv has columns patient, arm ("control"/"active"), visit (1..T), baseline, y.
# The model is y ~ visit_f * arm + baseline, visit_f = factor(visit), arm with reference
# "control", REML.
# ENGINE:
#   gls       nlme::gls; STRUCTURE us (corSymm + varIdent), ar1 (corAR1), ar1h (corAR1 +
#             varIdent), cs (corCompSymm), csh (corCompSymm + varIdent). For us also
#             emmeans' LS means per visit and arm (mode "df.error": estimates and SEs only).
#   glmmTMB   glmmTMB with dispformula = ~0; STRUCTURE us, toeph (glmmTMB's toep, which has
#             visit-specific variances), ar1, csh (glmmTMB's cs, also heterogeneous).
#   lmer      lme4::lmer(y ~ ... + (1 | patient)) = compound symmetry: pbkrtest::vcovAdj
#             (kind kr_vcov), pbkrtest::Lb_ddf for each coefficient (kr_df), KRmodcomp of
#             "no visit x arm interaction" (kr_test_*), and lmerTest's Satterthwaite df (sat_df).
# OUT.csv has columns kind, name, value (17 significant digits). Sigma is written as kind
# sigma, name "i|j" (visit positions), from getVarCov / VarCorr.
suppressPackageStartupMessages({
  library(nlme)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 4) stop("usage: mmrm_fit.R DATA.csv ENGINE STRUCTURE OUT.csv")
data <- read.csv(args[[1]], stringsAsFactors = FALSE)
engine <- args[[2]]
structure <- args[[3]]
out <- args[[4]]
data$visit_f <- factor(data$visit)
data$arm <- factor(data$arm, levels = c("control", "active"))
data$patient_f <- factor(data$patient)
form <- y ~ visit_f * arm + baseline
n_visits <- nlevels(data$visit_f)

num <- function(x) sprintf("%.17g", x)
rows <- list()
add <- function(kind, name, value) {
  rows[[length(rows) + 1]] <<- data.frame(kind = kind, name = name, value = num(value))
}
add_coef <- function(est, se) {
  for (nm in names(est)) {
    add("estimate", nm, est[[nm]])
    add("std_err", nm, se[[nm]])
  }
}
add_sigma <- function(sig) {
  for (i in seq_len(nrow(sig))) for (j in seq_len(ncol(sig))) add("sigma", paste0(i, "|", j), sig[i, j])
}

if (engine == "gls") {
  idx <- ~ visit | patient_f
  cor <- switch(structure,
    us = corSymm(form = idx),
    ar1 = corAR1(form = idx),
    ar1h = corAR1(form = idx),
    cs = corCompSymm(form = ~ 1 | patient_f),
    csh = corCompSymm(form = ~ 1 | patient_f),
    stop("unknown gls structure ", structure)
  )
  weights <- if (structure %in% c("us", "ar1h", "csh")) varIdent(form = ~ 1 | visit_f) else NULL
  fit <- gls(form, data = data, correlation = cor, weights = weights, method = "REML",
             control = glsControl(tolerance = 1e-10, msTol = 1e-10, maxIter = 500, msMaxIter = 500))
  add_coef(coef(fit), sqrt(diag(vcov(fit))))
  counts <- table(data$patient_f)
  full <- names(counts)[counts == n_visits][1]
  add_sigma(as.matrix(getVarCov(fit, individual = full)))
  add("loglik", "REML", logLik(fit))
  if (structure == "us") {
    suppressPackageStartupMessages(library(emmeans))
    em <- summary(emmeans(fit, ~ arm | visit_f, data = data, mode = "df.error"))
    for (i in seq_len(nrow(em))) {
      key <- paste0(em$arm[i], "|", em$visit_f[i])
      add("lsmean", key, em$emmean[i])
      add("lsmean_se", key, em$SE[i])
    }
  }
} else if (engine == "glmmTMB") {
  suppressPackageStartupMessages(library(glmmTMB))
  re <- switch(structure,
    us = "us(0 + visit_f | patient_f)",
    toeph = "toep(0 + visit_f | patient_f)",
    ar1 = "ar1(0 + visit_f | patient_f)",
    csh = "cs(0 + visit_f | patient_f)",
    stop("unknown glmmTMB structure ", structure)
  )
  tmb_form <- as.formula(paste("y ~ visit_f * arm + baseline +", re))
  fit <- glmmTMB(tmb_form, data = data, dispformula = ~0, REML = TRUE)
  est <- fixef(fit)$cond
  add_coef(est, sqrt(diag(vcov(fit)$cond)))
  add_sigma(as.matrix(VarCorr(fit)$cond$patient_f))
  add("loglik", "REML", logLik(fit))
} else if (engine == "lmer") {
  suppressPackageStartupMessages({
    library(lmerTest)
    library(pbkrtest)
  })
  fit <- lmerTest::lmer(y ~ visit_f * arm + baseline + (1 | patient_f), data = data, REML = TRUE,
                        control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5)))
  est <- fixef(fit)
  add_coef(est, sqrt(diag(as.matrix(vcov(fit)))))
  vc <- as.data.frame(VarCorr(fit))
  between <- vc$vcov[vc$grp == "patient_f"]
  resid <- vc$vcov[vc$grp == "Residual"]
  add_sigma(matrix(between, n_visits, n_visits) + diag(resid, n_visits))
  adj_kr <- vcovAdj(fit)
  adj <- as.matrix(adj_kr)
  for (i in seq_along(est)) for (j in seq_along(est)) add("kr_vcov", paste0(names(est)[i], "|", names(est)[j]), adj[i, j])
  for (i in seq_along(est)) {
    L <- matrix(0, 1, length(est))
    L[1, i] <- 1
    add("kr_df", names(est)[i], Lb_ddf(L, as.matrix(vcov(fit)), adj_kr))
  }
  small <- lmerTest::lmer(y ~ visit_f + arm + baseline + (1 | patient_f), data = data, REML = TRUE,
                          control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5)))
  kr <- KRmodcomp(fit, small)$test
  add("kr_test_f", "interaction", kr["Ftest", "stat"])
  add("kr_test_ddf", "interaction", kr["Ftest", "ddf"])
  add("kr_test_scale", "interaction", kr["Ftest", "F.scaling"])
  sat <- summary(fit)$coefficients
  for (nm in rownames(sat)) add("sat_df", nm, sat[nm, "df"])
} else {
  stop("unknown engine ", engine)
}
write.csv(do.call(rbind, rows), out, row.names = FALSE)
