# Time lme4::lmer (and lmerTest's Satterthwaite set-up) on the fits listed in a manifest.
#
# Usage:
#   Rscript benchmarks/lme4_fits.R MANIFEST.csv OUT.csv
#
# MANIFEST.csv has one row per fit, columns
#   id            name of the fit (copied to OUT.csv)
#   data          CSV file with the rows of the model (read once per file, not timed)
#   formula       lme4 formula, e.g. "nrs ~ weeks * depth + chronicity + (1 + weeks | patient_id)"
#   reml          TRUE or FALSE
#   satterthwaite TRUE: also time lmerTest::as_lmerModLmerTest() on the fitted model (the
#                 deviance Hessian and Jacobian that lmerTest::lmer computes for Satterthwaite's
#                 degrees of freedom)
#   relevel       "COLUMN=REFERENCE;..." : text columns made factors with that reference level
#                 (the other levels alphabetical, as the Python pipeline orders them)
#
# OUT.csv: id, seconds_lme4, seconds_satterthwaite, criterion, n_obs, singular, messages.
# Only the lmer() call (and the Satterthwaite set-up) is timed: reading and relevelling the data
# happen before, in the same R process, so R's start-up is not in the timings either. The fits
# use lme4's default control, as an analyst would.
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2) stop("usage: lme4_fits.R MANIFEST.csv OUT.csv")
manifest <- read.csv(args[[1]], stringsAsFactors = FALSE, colClasses = "character")
out <- args[[2]]

frames <- list()
load_rows <- function(path, relevel) {
  key <- paste(path, relevel)
  if (is.null(frames[[key]])) {
    data <- read.csv(path, stringsAsFactors = FALSE)
    for (spec in strsplit(relevel, ";", fixed = TRUE)[[1]]) {
      if (!nzchar(spec)) next
      parts <- strsplit(spec, "=", fixed = TRUE)[[1]]
      col <- parts[[1]]
      ref <- parts[[2]]
      lv <- sort(unique(as.character(data[[col]])))
      data[[col]] <- factor(as.character(data[[col]]), levels = c(ref, setdiff(lv, ref)))
    }
    frames[[key]] <<- data
  }
  frames[[key]]
}

elapsed <- function(expr) {
  started <- proc.time()[["elapsed"]]
  value <- force(expr)
  list(value = value, seconds = proc.time()[["elapsed"]] - started)
}

rows <- vector("list", nrow(manifest))
for (i in seq_len(nrow(manifest))) {
  spec <- manifest[i, ]
  data <- load_rows(spec$data, spec$relevel)
  reml <- as.logical(spec$reml)
  msgs <- character(0)
  keep <- function(text) msgs <<- c(msgs, trimws(text))
  invisible(gc())
  fit <- withCallingHandlers(
    elapsed(lme4::lmer(as.formula(spec$formula), data = data, REML = reml)),
    warning = function(w) {
      keep(conditionMessage(w))
      invokeRestart("muffleWarning")
    },
    message = function(m) {
      keep(conditionMessage(m))
      invokeRestart("muffleMessage")
    }
  )
  model <- fit$value
  satt <- NA_real_
  if (as.logical(spec$satterthwaite)) {
    satt <- withCallingHandlers(
      elapsed(lmerTest::as_lmerModLmerTest(model))$seconds,
      warning = function(w) {
        keep(conditionMessage(w))
        invokeRestart("muffleWarning")
      }
    )
  }
  criterion <- if (reml) getME(model, "devcomp")$cmp[["REML"]] else deviance(model)
  msgs <- unique(c(msgs, model@optinfo$conv$lme4$messages))
  rows[[i]] <- data.frame(
    id = spec$id,
    seconds_lme4 = fit$seconds,
    seconds_satterthwaite = satt,
    criterion = sprintf("%.17g", criterion),
    n_obs = nobs(model),
    singular = isSingular(model),
    messages = paste(msgs, collapse = " | ")
  )
  cat(sprintf("  lme4 %d/%d %s: %.2f s\n", i, nrow(manifest), spec$id, fit$seconds), file = stderr())
}
write.csv(do.call(rbind, rows), out, row.names = FALSE)
