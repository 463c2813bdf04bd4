# Reference-based conditional mean imputation written out in R on nlme::gls's MMRM, for
# tests/lmm/test_reference_based_r.py.
#
# Usage:
#   Rscript tests/r/cmi_gls.R WIDE.csv OUT.csv
#
# WIDE.csv has one row per patient: pid, arm ("ctl"/"trt"), base, y1, y2, y3 (NA = missing).
# The imputation model is the MMRM y ~ visit * (arm + base), unstructured covariance
# (gls with corSymm + varIdent), REML, fitted to the observed values.
#
# Each patient's first post-ICE visit t is the visit after their last observed one (none: 0).
# The strategy means (Carpenter, Roger and Kenward 2013, J Biopharm Stat 23:1352, section 4;
# Wolbers et al. 2022, Pharm Stat 21:1246, section 2.2), with mu_a the patient's own-arm means
# and mu_r the same patient's means with arm set to "ctl":
#   MAR  m = mu_a
#   J2R  m_j = mu_a,j for j < t, mu_r,j from t on
#   CR   m = mu_r at every visit (for a patient with an ICE)
#   CIR  m_j = mu_a,t-1 + mu_r,j - mu_r,t-1 from t on
#   LMCF m_j = mu_a,t-1 from t on
#   (t = 0: CIR and LMCF take mu_r, as J2R.)
# Every missing value is its conditional mean y_M = m_M + S_MO S_OO^-1 (y_O - m_O) with S the
# gls covariance (getVarCov of a completer), and the completed outcome at each visit is
# analysed by lm(y_j ~ arm + base) (Wolbers et al. 2022, section 2.3). Under MAR the result
# equals the gls difference at each visit (coef armtrt + visitj:armtrt), which is written too.
#
# With monotone dropout and no arm-by-covariate interaction the estimates also have closed
# forms in the gls difference Delta_j and the ANCOVA weights w = row "armtrt" of
# (Z'Z)^-1 Z' (Wolbers et al. 2022, section 2.4; pipeline/lmm/reference_based.py): over the
# "trt" patients i missing at visit k,
#   J2R_k = Delta_k (1 - b_k), b_k = sum_i w_i (the arm coefficient of the OLS of the
#           indicator "trt and missing at k" on the ANCOVA design),
#   CR_k  = Delta_k + sum_i w_i (S_kO S_OO^-1 Delta_O - Delta_k), O the patient's visits seen.
# Both are written as kind "closed" (the script checks nothing itself).
#
# OUT.csv: kind, name, value (17 significant digits); kind "gls" name "j" is the MMRM
# difference at visit j; kinds "cmi" and "closed" name "STRATEGY|j" the estimates.
suppressPackageStartupMessages(library(nlme))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2) stop("usage: cmi_gls.R WIDE.csv OUT.csv")
wide <- read.csv(args[[1]], stringsAsFactors = FALSE)
wide$arm <- factor(wide$arm, levels = c("ctl", "trt"))
n_visits <- 3
y <- as.matrix(wide[, paste0("y", seq_len(n_visits))])

long <- data.frame(
  pid = rep(wide$pid, each = n_visits),
  arm = rep(wide$arm, each = n_visits),
  base = rep(wide$base, each = n_visits),
  position = rep(seq_len(n_visits), nrow(wide)),
  y = as.vector(t(y))
)
long$visit <- factor(long$position, levels = seq_len(n_visits))
observed_long <- long[!is.na(long$y), ]
fit <- gls(y ~ visit * (arm + base), data = observed_long,
           correlation = corSymm(form = ~ position | pid),
           weights = varIdent(form = ~ 1 | visit),
           method = "REML",
           control = glsControl(tolerance = 1e-12, msTol = 1e-12, maxIter = 1000,
                                msMaxIter = 1000))
beta <- coef(fit)
counts <- table(observed_long$pid)
completer <- names(counts)[counts == n_visits][1]
sigma <- as.matrix(getVarCov(fit, individual = completer))

design <- function(arm) {
  grid <- long
  grid$arm <- factor(arm, levels = c("ctl", "trt"))
  mm <- model.matrix(~ visit * (arm + base), grid)
  matrix(mm[, names(beta)] %*% beta, ncol = n_visits, byrow = TRUE)
}
mu_own <- design(as.character(long$arm))
mu_ref <- design(rep("ctl", nrow(long)))

observed <- !is.na(y)
last <- apply(observed, 1, function(o) if (any(o)) max(which(o)) else 0)
ice <- ifelse(last < n_visits, last + 1, n_visits + 1)  # 1-based first post-ICE visit

strategy_mean <- function(i, strategy) {
  own <- mu_own[i, ]
  ref <- mu_ref[i, ]
  t0 <- ice[i]
  if (t0 > n_visits || strategy == "MAR") return(own)
  post <- seq_len(n_visits) >= t0
  m <- own
  if (strategy == "CR") return(ref)
  if (strategy == "J2R" || t0 == 1) {
    m[post] <- ref[post]
  } else if (strategy == "CIR") {
    m[post] <- own[t0 - 1] + ref[post] - ref[t0 - 1]
  } else if (strategy == "LMCF") {
    m[post] <- own[t0 - 1]
  }
  m
}

num <- function(x) sprintf("%.17g", x)
rows <- list()
add <- function(kind, name, value) {
  rows[[length(rows) + 1]] <<- data.frame(kind = kind, name = name, value = num(value))
}
for (j in seq_len(n_visits)) {
  term <- if (j == 1) "armtrt" else c("armtrt", paste0("visit", j, ":armtrt"))
  add("gls", as.character(j), sum(beta[term]))
}
for (strategy in c("MAR", "J2R", "CR", "CIR", "LMCF")) {
  completed <- y
  for (i in seq_len(nrow(y))) {
    mis <- which(!observed[i, ])
    if (length(mis) == 0) next
    obs <- which(observed[i, ])
    m <- strategy_mean(i, strategy)
    fill <- m[mis]
    if (length(obs) > 0) {
      fill <- fill + sigma[mis, obs, drop = FALSE] %*%
        solve(sigma[obs, obs, drop = FALSE], y[i, obs] - m[obs])
    }
    completed[i, mis] <- fill
  }
  for (j in seq_len(n_visits)) {
    ancova <- lm(completed[, j] ~ wide$arm + wide$base)
    add("cmi", paste0(strategy, "|", j), coef(ancova)[["wide$armtrt"]])
  }
}
z <- model.matrix(~ arm + base, wide)
w <- solve(crossprod(z), t(z))["armtrt", ]
delta <- sapply(seq_len(n_visits), function(j) {
  term <- if (j == 1) "armtrt" else c("armtrt", paste0("visit", j, ":armtrt"))
  sum(beta[term])
})
for (k in seq_len(n_visits)) {
  missing_trt <- which(wide$arm == "trt" & !observed[, k])
  add("closed", paste0("J2R|", k), delta[k] * (1 - sum(w[missing_trt])))
  cr <- delta[k]
  for (i in missing_trt) {
    obs <- which(observed[i, ])
    back <- if (length(obs) > 0) {
      sigma[k, obs, drop = FALSE] %*% solve(sigma[obs, obs, drop = FALSE], delta[obs])
    } else 0
    cr <- cr + w[[i]] * (as.numeric(back) - delta[k])
  }
  add("closed", paste0("CR|", k), cr)
}
write.csv(do.call(rbind, rows), args[[2]], row.names = FALSE)
