"""The mixed-model engine as a library: lme4's profiled criterion in numpy, lmerTest inference.

The engine follows lme4's own stages: the data and design (:mod:`.data`, like ``lFormula``),
the profiled (RE)ML criterion and its exact derivatives (:mod:`.deviance` and :mod:`.blocks`,
like ``mkLmerDevfun``), the optimisation routes (:mod:`.optim`, like ``optimizeLmer``) and the
fit object with lme4-style standard errors and lmerTest's Satterthwaite degrees of freedom
(:mod:`.fit`, like ``mkMerMod`` + ``lmerTest``); estimated marginal means and contrasts as R's
``emmeans`` computes them are in :mod:`.marginal`. It imports nothing from the rest of the
pipeline, so it can be used on any long data set.

Example
-------
lme4's ``sleepstudy`` (``Reaction ~ Days + (Days | Subject)``; lme4 reports fixed effects
251.4051 and 10.4673, standard errors 6.825 and 1.546, REML criterion 1743.628):

>>> import pandas as pd
>>> from pipeline.lmm import fit_lmm
>>> sleep = pd.read_csv("tests/fixtures/sleepstudy.csv")  # doctest: +SKIP
>>> fit = fit_lmm(sleep, "Reaction", "Days", group="Subject", random_slope="Days")  # doctest: +SKIP
>>> fit.fixed_effects[["term", "estimate", "std_err", "df"]].round(3)  # doctest: +SKIP
        term  estimate  std_err      df
0  Intercept   251.405    6.825  17.0
1       Days    10.467    1.546  17.0
>>> round(fit.criterion, 3)  # doctest: +SKIP
1743.628

``fit.variance_components`` holds the variances, standard deviations and correlation,
``fit.contrast(L)`` tests any linear combination of the fixed effects with Satterthwaite df,
and ``pipeline.lmm.marginal.emmeans(fit, ...)`` gives marginal means.
"""

from pipeline.lmm.data import ModelDataError
from pipeline.lmm.fit import DEFAULT_ROUTES, FAST_ROUTES, LmmFit, fit_lmm
from pipeline.lmm.optim import ModelFitError

__all__ = ["DEFAULT_ROUTES", "FAST_ROUTES", "LmmFit", "ModelDataError", "ModelFitError", "fit_lmm"]
