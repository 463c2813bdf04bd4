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

Mixed model for repeated measures
---------------------------------
:func:`fit_mmrm` fits ``y ~ fixed`` with no random effects and a residual covariance across
visits (:mod:`.mmrm`; structures in :mod:`.covariance`: ``us``, ``toep``, ``toeph``, ``ar1``,
``ar1h``, ``cs``, ``csh``, ``ad``, ``adh``), by REML or ML over the patients' visit patterns
(:mod:`.patterns`, :mod:`.likelihood`), with Kenward-Roger, Satterthwaite, residual or
between-within df (:mod:`.kenward_roger`) and optional sandwich SEs. A simulated two-arm trial
with dropout (``pipeline.analyses.simulated_trial``), unstructured covariance, Kenward-Roger df:

>>> from pipeline.analyses.simulated_trial import simulate_mmrm_trial
>>> from pipeline.lmm import fit_mmrm
>>> trial = simulate_mmrm_trial(n_per_arm=50, n_visits=4, effect=0.5, seed=1)
>>> fit = fit_mmrm(trial, "y", "baseline + C(visit) * C(arm, Treatment('control'))",
...                visit="visit", subject="patient", structure="us")
>>> fit.structure, fit.n_subjects, fit.df_method
('us', 100, 'kenward-roger')
>>> diff = fit.visit_differences("arm", "active", "control")
>>> diff[["visit", "estimate", "std_err", "df"]].round(3)
   visit  estimate  std_err      df
0      1     0.820    0.192  97.066
1      2     0.667    0.212  94.504
2      3     1.182    0.260  86.791
3      4     1.266    0.293  82.484

``fit.lsmeans("arm")`` gives the least-squares means per visit and arm, ``fit.covariance`` the
estimated covariance matrix, ``fit.structure_trials`` every structure tried (the default
``structure`` is the fallback order ``us, toeph, ar1h, csh, cs``) with AIC, AICc and BIC.
"""

from pipeline.lmm.data import ModelDataError
from pipeline.lmm.fit import DEFAULT_ROUTES, FAST_ROUTES, LmmFit, fit_lmm
from pipeline.lmm.mmrm import MmrmFit, fit_mmrm
from pipeline.lmm.optim import ModelFitError

__all__ = [
    "DEFAULT_ROUTES",
    "FAST_ROUTES",
    "LmmFit",
    "MmrmFit",
    "ModelDataError",
    "ModelFitError",
    "fit_lmm",
    "fit_mmrm",
]
