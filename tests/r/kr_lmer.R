# Kenward-Roger of a random-effects model by pbkrtest, for tests/lmm/test_kenward_roger_lmm.py.
#
# Usage: Rscript tests/r/kr_lmer.R DATA.csv "FORMULA" OUT.csv [COLUMN=REFERENCE ...]
# Fits lme4::lmer(FORMULA, REML = TRUE) with bobyqa (rhoend 1e-12) and writes kind, name, value:
# estimate (fixef), kr_vcov ("a|b", as.matrix(pbkrtest::vcovAdj(fit))) and kr_df
# (pbkrtest::Lb_ddf for each unit vector L). COLUMN=REFERENCE makes a text column a factor with
# that reference level.
suppressPackageStartupMessages({
  library(lme4)
  library(pbkrtest)
})
args <- commandArgs(trailingOnly = TRUE)
data <- read.csv(args[[1]], stringsAsFactors = FALSE)
for (spec in args[-(1:3)]) {
  parts <- strsplit(spec, "=", fixed = TRUE)[[1]]
  lv <- sort(unique(as.character(data[[parts[[1]]]])))
  data[[parts[[1]]]] <- factor(data[[parts[[1]]]], levels = c(parts[[2]], setdiff(lv, parts[[2]])))
}
fit <- lmer(as.formula(args[[2]]), data = data, REML = TRUE,
            control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5)))
est <- fixef(fit)
adj <- vcovAdj(fit)
adj_m <- as.matrix(adj)
num <- function(x) sprintf("%.17g", x)
rows <- list()
for (i in seq_along(est)) {
  rows[[length(rows) + 1]] <- data.frame(kind = "estimate", name = names(est)[i], value = num(est[[i]]))
  L <- matrix(0, 1, length(est))
  L[1, i] <- 1
  rows[[length(rows) + 1]] <- data.frame(kind = "kr_df", name = names(est)[i],
                                         value = num(Lb_ddf(L, as.matrix(vcov(fit)), adj)))
  for (j in seq_along(est)) {
    rows[[length(rows) + 1]] <- data.frame(kind = "kr_vcov", name = paste0(names(est)[i], "|", names(est)[j]),
                                           value = num(adj_m[i, j]))
  }
}
write.csv(do.call(rbind, rows), args[[3]], row.names = FALSE)
