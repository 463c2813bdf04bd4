# Random-effects meta-analysis as the federation's two-stage pooling does it:
# metafor::rma(yi, sei = sei, method = "REML", test = "knha") per data set, plus predict().
# Usage: Rscript metafor_rma.R input.csv output.csv
# input: columns set, yi, sei; output: one row per set with the numbers compared in
# tests/federate/test_meta_metafor.py. The REML iterations run to a change below 1e-12.
suppressPackageStartupMessages(library(metafor))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE)
out <- do.call(rbind, lapply(split(d, d$set), function(s) {
  r <- rma(s$yi, sei = s$sei, method = "REML", test = "knha",
           control = list(threshold = 1e-12, maxiter = 10000))
  p <- predict(r)
  data.frame(set = s$set[1], estimate = as.numeric(r$b), std_err = r$se, ci_low = r$ci.lb,
             ci_high = r$ci.ub, p_value = r$pval, tau2 = r$tau2, i2 = r$I2, q = r$QE,
             q_p_value = r$QEp, pi_low = p$pi.lb, pi_high = p$pi.ub)
}))
write.csv(out, args[2], row.names = FALSE)
