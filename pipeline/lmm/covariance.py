"""Residual covariance structures over visits for the MMRM (:mod:`pipeline.lmm.mmrm`).

Each structure maps two parameter vectors to the ``T x T`` covariance ``Sigma`` of one
patient's responses at the ``T`` visits:

* ``theta``, unconstrained, used by the optimiser (every value gives a positive-definite
  ``Sigma``): log variances or a log-Cholesky factor, and correlations through
  ``rho = t / sqrt(1 + t^2)`` (as R's ``mmrm`` package does);
* the **natural** parameters ``phi`` that are reported and in which Kenward-Roger is computed,
  as SAS PROC MIXED names them: covariances for the linear structures (unstructured ``UN``,
  ``TOEP``, ``CS``: ``Sigma`` is linear in ``phi``, so Kenward-Roger's second-derivative term
  vanishes, as in SAS and pbkrtest), variances and correlations for the others.

================  ==================  ===========================================  =======
name              SAS                 natural parameters                           linear
================  ==================  ===========================================  =======
``us``            ``UN``              ``sigma_ij`` (i <= j), T(T+1)/2              yes
``toep``          ``TOEP``            ``gamma_0 .. gamma_{T-1}`` (lag covariances) yes
``toeph``         ``TOEPH``           T variances, T-1 lag correlations            no
``ar1``           ``AR(1)``           variance, correlation                        no
``ar1h``          ``ARH(1)``          T variances, correlation                     no
``cs``            ``CS``              covariance, residual variance                yes
``csh``           ``CSH``             T variances, correlation                     no
``ad``            (mmrm ``ad``)       variance, T-1 neighbour correlations         no
``adh``           ``ANTE(1)``         T variances, T-1 neighbour correlations      no
================  ==================  ===========================================  =======

Toeplitz correlations are parametrised by partial autocorrelations (Durbin-Levinson), so any
``theta`` gives a valid Toeplitz matrix. Derivatives of ``Sigma`` are taken by complex step
(exact to rounding): every map here is analytic in its parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFAULT_FALLBACK",
    "STRUCTURES",
    "Structure",
    "get_structure",
]

DEFAULT_FALLBACK: tuple[str, ...] = ("us", "toeph", "ar1h", "csh", "cs")
"""The plan's pre-specified order when a structure fails (SAP section 4, item 6)."""

_STEP = 1e-20


def _rho(t: np.ndarray) -> np.ndarray:
    """Map the real line onto (-1, 1) as ``mmrm`` does: ``t / sqrt(1 + t^2)``."""
    return t / np.sqrt(1.0 + t * t)


def _rho_inverse(r: np.ndarray) -> np.ndarray:
    r = np.clip(np.asarray(r, dtype=float), -0.95, 0.95)
    return r / np.sqrt(1.0 - r * r)


def _lag_matrix(n: int) -> np.ndarray:
    idx = np.arange(n)
    return np.abs(idx[:, None] - idx[None, :])


def _scale(corr: np.ndarray, variances: np.ndarray) -> np.ndarray:
    sd = np.sqrt(variances)
    return corr * sd[:, None] * sd[None, :]


def _toeplitz(values: np.ndarray, n: int) -> np.ndarray:
    """Symmetric Toeplitz matrix whose lag-k entries are ``values[k]`` (complex-safe)."""
    return values[_lag_matrix(n)]


def _acf_from_pacf(pacf: np.ndarray) -> np.ndarray:
    """Autocorrelations ``1, rho_1 .. rho_m`` from partial autocorrelations (Durbin-Levinson)."""
    rho = [np.ones((), dtype=pacf.dtype)]
    coef: list = []
    for k in range(1, len(pacf) + 1):
        pk = pacf[k - 1]
        v = 1.0 - sum(coef[j] * rho[j + 1] for j in range(k - 1))
        rho_k = sum(coef[j] * rho[k - 1 - j] for j in range(k - 1)) + pk * v
        coef = [coef[j] - pk * coef[k - 2 - j] for j in range(k - 1)] + [pk]
        rho.append(rho_k)
    return np.array(rho)


def _pacf_from_acf(rho: np.ndarray) -> np.ndarray:
    """Partial autocorrelations of a (valid) autocorrelation sequence ``1, rho_1, ...``."""
    out = []
    coef: list[float] = []
    for k in range(1, len(rho)):
        num = rho[k] - sum(coef[j] * rho[k - 1 - j] for j in range(k - 1))
        den = 1.0 - sum(coef[j] * rho[j + 1] for j in range(k - 1))
        pk = float(np.clip(num / den, -0.95, 0.95)) if den > 1e-12 else 0.0
        coef = [coef[j] - pk * coef[k - 2 - j] for j in range(k - 1)] + [pk]
        out.append(pk)
    return np.array(out)


def _ante_corr(rhos: np.ndarray, n: int) -> np.ndarray:
    """First-order ante-dependence correlations: products of the neighbour correlations."""
    out = np.ones((n, n), dtype=rhos.dtype)
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = np.prod(rhos[i:j])
    return out


@dataclass(frozen=True)
class Structure:
    """One covariance structure for ``n`` visits.

    Attributes
    ----------
    name : str
        Short name (``us``, ``toeph``, ...).
    n : int
        Number of visits.
    n_theta : int
        Number of parameters.
    linear : bool
        Whether ``Sigma`` is linear in the natural parameters.
    natural_names : tuple of str
        Names of the natural parameters (``var(2)``, ``cov(1,2)``, ``rho``, ...).
    """

    name: str
    n: int
    n_theta: int
    linear: bool
    natural_names: tuple[str, ...]
    _to_natural: Callable[[np.ndarray], np.ndarray]
    _sigma: Callable[[np.ndarray], np.ndarray]
    _start: Callable[[np.ndarray], np.ndarray]
    _chain: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None

    def natural(self, theta: np.ndarray) -> np.ndarray:
        """Natural (reported) parameters from the optimiser's parameters."""
        return self._to_natural(np.asarray(theta))

    def sigma_natural(self, phi: np.ndarray) -> np.ndarray:
        """``Sigma`` from the natural parameters."""
        return self._sigma(np.asarray(phi))

    def sigma(self, theta: np.ndarray) -> np.ndarray:
        """``Sigma`` from the optimiser's parameters."""
        return self._sigma(self._to_natural(np.asarray(theta)))

    def start(self, sigma0: np.ndarray) -> np.ndarray:
        """Return a starting ``theta`` from a rough covariance estimate (e.g. of OLS residuals)."""
        return self._start(np.asarray(sigma0, dtype=float))

    def dsigma(self, theta: np.ndarray) -> np.ndarray:
        """``d Sigma / d theta_k`` by complex step, shape ``(n_theta, n, n)``."""
        return _complex_jacobian(self.sigma, np.asarray(theta, dtype=float))

    def chain(self, theta: np.ndarray, dsig: np.ndarray) -> np.ndarray:
        """Gradient in ``theta`` of a function whose gradient in the entries of Sigma is ``dsig``.

        ``sum_ab dsig_ab dSigma_ab / dtheta_k`` (analytic for ``us``, else complex step).
        """
        if self._chain is not None:
            return self._chain(np.asarray(theta, dtype=float), dsig)
        return np.einsum("ab,kab->k", dsig, self.dsigma(theta))

    def dsigma_natural(self, phi: np.ndarray) -> np.ndarray:
        """``d Sigma / d phi_k`` by complex step, shape ``(n_phi, n, n)``."""
        return _complex_jacobian(self.sigma_natural, np.asarray(phi, dtype=float))

    def d2sigma_natural(self, phi: np.ndarray) -> np.ndarray:
        """Second derivatives ``d2 Sigma / d phi_k d phi_l``, shape ``(k, k, n, n)``.

        Zero for the linear structures; otherwise central differences of the complex-step
        first derivatives (error ~1e-10 relative).
        """
        phi = np.asarray(phi, dtype=float)
        k = phi.size
        out = np.zeros((k, k, self.n, self.n))
        if self.linear:
            return out
        for j in range(k):
            h = 1e-5 * max(1.0, abs(phi[j]))
            up, down = phi.copy(), phi.copy()
            up[j] += h
            down[j] -= h
            out[:, j] = (self.dsigma_natural(up) - self.dsigma_natural(down)) / (2.0 * h)
        return 0.5 * (out + out.transpose(1, 0, 2, 3))


def _complex_jacobian(func: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    out = []
    for k in range(x.size):
        z = x.astype(complex)
        z[k] += 1j * _STEP
        out.append(np.imag(func(z)) / _STEP)
    return np.array(out)


def _variance_start(sigma0: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.diag(sigma0), 1e-8 * max(1.0, float(np.max(np.diag(sigma0))))))


def _corr0(sigma0: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.maximum(np.diag(sigma0), 1e-300))
    return sigma0 / sd[:, None] / sd[None, :]


def _lag_means(corr: np.ndarray) -> np.ndarray:
    n = corr.shape[0]
    return np.array([np.mean(np.diagonal(corr, k)) for k in range(n)])


def _us(n: int) -> Structure:
    rows, cols = np.tril_indices(n)
    diag = rows == cols

    def to_natural(theta: np.ndarray) -> np.ndarray:
        chol = np.zeros((n, n), dtype=theta.dtype)
        chol[rows, cols] = np.where(diag, np.exp(theta), theta)
        full = chol @ chol.T
        return full[rows, cols]

    def sigma(phi: np.ndarray) -> np.ndarray:
        out = np.zeros((n, n), dtype=phi.dtype)
        out[rows, cols] = phi
        out[cols, rows] = phi
        return out

    def start(sigma0: np.ndarray) -> np.ndarray:
        try:
            chol = np.linalg.cholesky(sigma0)
        except np.linalg.LinAlgError:
            chol = np.diag(np.sqrt(np.maximum(np.diag(sigma0), 1e-8)))
        vals = chol[rows, cols]
        return np.where(diag, np.log(np.abs(vals)), vals)

    def chain(theta: np.ndarray, dsig: np.ndarray) -> np.ndarray:
        chol = np.zeros((n, n))
        chol[rows, cols] = np.where(diag, np.exp(theta), theta)
        grad = ((dsig + dsig.T) @ chol)[rows, cols]
        return np.where(diag, grad * chol[rows, cols], grad)

    names = tuple(
        f"var({r + 1})" if r == c else f"cov({c + 1},{r + 1})"
        for r, c in zip(rows, cols, strict=True)
    )
    return Structure("us", n, len(rows), True, names, to_natural, sigma, start, chain)


def _toep(n: int) -> Structure:
    def to_natural(theta: np.ndarray) -> np.ndarray:
        return np.exp(theta[0]) * _acf_from_pacf(_rho(theta[1:]))

    def sigma(phi: np.ndarray) -> np.ndarray:
        return _toeplitz(phi, n)

    def start(sigma0: np.ndarray) -> np.ndarray:
        lag = _lag_means(_corr0(sigma0))
        var = float(np.mean(np.diag(sigma0)))
        return np.concatenate([[np.log(max(var, 1e-8))], _rho_inverse(_pacf_from_acf(lag))])

    names = ("var", *(f"cov(lag {k})" for k in range(1, n)))
    return Structure("toep", n, n, True, names, to_natural, sigma, start)


def _toeph(n: int) -> Structure:
    def to_natural(theta: np.ndarray) -> np.ndarray:
        return np.concatenate([np.exp(theta[:n]), _acf_from_pacf(_rho(theta[n:]))[1:]])

    def sigma(phi: np.ndarray) -> np.ndarray:
        return _scale(_toeplitz(np.concatenate([np.ones(1, dtype=phi.dtype), phi[n:]]), n), phi[:n])

    def start(sigma0: np.ndarray) -> np.ndarray:
        pacf = _pacf_from_acf(_lag_means(_corr0(sigma0)))
        return np.concatenate([_variance_start(sigma0), _rho_inverse(pacf)])

    names = tuple(f"var({k + 1})" for k in range(n)) + tuple(f"rho(lag {k})" for k in range(1, n))
    return Structure("toeph", n, 2 * n - 1, False, names, to_natural, sigma, start)


def _ar1(n: int, hetero: bool) -> Structure:
    nv = n if hetero else 1

    def to_natural(theta: np.ndarray) -> np.ndarray:
        return np.concatenate([np.exp(theta[:nv]), _rho(theta[nv:])])

    def sigma(phi: np.ndarray) -> np.ndarray:
        corr = phi[nv] ** _lag_matrix(n)
        return _scale(corr, phi[:nv] * np.ones(n))

    def start(sigma0: np.ndarray) -> np.ndarray:
        lag1 = _lag_means(_corr0(sigma0))[1] if n > 1 else 0.0
        var = _variance_start(sigma0) if hetero else np.log([max(np.mean(np.diag(sigma0)), 1e-8)])
        return np.concatenate([var, _rho_inverse([lag1])])

    names = (tuple(f"var({k + 1})" for k in range(n)) if hetero else ("var",)) + ("rho",)
    return Structure("ar1h" if hetero else "ar1", n, nv + 1, False, names, to_natural, sigma, start)


def _cs(n: int) -> Structure:
    low = -1.0 / (n - 1) if n > 1 else -1.0

    def to_natural(theta: np.ndarray) -> np.ndarray:
        total = np.exp(theta[0])
        rho = low + (1.0 - low) / (1.0 + np.exp(-theta[1]))
        return np.array([total * rho, total * (1.0 - rho)])

    def sigma(phi: np.ndarray) -> np.ndarray:
        return phi[0] * np.ones((n, n)) + phi[1] * np.eye(n)

    def start(sigma0: np.ndarray) -> np.ndarray:
        corr = _corr0(sigma0)
        off = corr[~np.eye(n, dtype=bool)]
        rho = float(np.clip(np.mean(off), low + 0.05 * (1 - low), 0.95)) if n > 1 else 0.0
        frac = (rho - low) / (1.0 - low)
        return np.array([np.log(max(np.mean(np.diag(sigma0)), 1e-8)), np.log(frac / (1 - frac))])

    return Structure("cs", n, 2, True, ("cov", "residual"), to_natural, sigma, start)


def _csh(n: int) -> Structure:
    low = -1.0 / (n - 1) if n > 1 else -1.0

    def to_natural(theta: np.ndarray) -> np.ndarray:
        rho = low + (1.0 - low) / (1.0 + np.exp(-theta[n:]))
        return np.concatenate([np.exp(theta[:n]), rho])

    def sigma(phi: np.ndarray) -> np.ndarray:
        corr = phi[n] * np.ones((n, n)) + (1.0 - phi[n]) * np.eye(n)
        return _scale(corr, phi[:n])

    def start(sigma0: np.ndarray) -> np.ndarray:
        corr = _corr0(sigma0)
        off = corr[~np.eye(n, dtype=bool)]
        rho = float(np.clip(np.mean(off), low + 0.05 * (1 - low), 0.95)) if n > 1 else 0.0
        frac = (rho - low) / (1.0 - low)
        return np.concatenate([_variance_start(sigma0), [np.log(frac / (1 - frac))]])

    names = (*(f"var({k + 1})" for k in range(n)), "rho")
    return Structure("csh", n, n + 1, False, names, to_natural, sigma, start)


def _ante(n: int, hetero: bool) -> Structure:
    nv = n if hetero else 1

    def to_natural(theta: np.ndarray) -> np.ndarray:
        return np.concatenate([np.exp(theta[:nv]), _rho(theta[nv:])])

    def sigma(phi: np.ndarray) -> np.ndarray:
        return _scale(_ante_corr(phi[nv:], n), phi[:nv] * np.ones(n))

    def start(sigma0: np.ndarray) -> np.ndarray:
        corr = _corr0(sigma0)
        neighbours = np.array([corr[k, k + 1] for k in range(n - 1)])
        var = _variance_start(sigma0) if hetero else np.log([max(np.mean(np.diag(sigma0)), 1e-8)])
        return np.concatenate([var, _rho_inverse(neighbours)])

    names = (tuple(f"var({k + 1})" for k in range(n)) if hetero else ("var",)) + tuple(
        f"rho({k + 1},{k + 2})" for k in range(n - 1)
    )
    return Structure(
        "adh" if hetero else "ad", n, nv + n - 1, False, names, to_natural, sigma, start
    )


STRUCTURES: dict[str, Callable[[int], Structure]] = {
    "us": _us,
    "toep": _toep,
    "toeph": _toeph,
    "ar1": lambda n: _ar1(n, False),
    "ar1h": lambda n: _ar1(n, True),
    "cs": _cs,
    "csh": _csh,
    "ad": lambda n: _ante(n, False),
    "adh": lambda n: _ante(n, True),
}
"""Structure name -> constructor taking the number of visits."""


def get_structure(name: str, n_visits: int) -> Structure:
    """Return the structure ``name`` for ``n_visits`` visits.

    Parameters
    ----------
    name : str
        One of :data:`STRUCTURES`.
    n_visits : int
        Number of visits (at least 1).

    Returns
    -------
    Structure

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if name not in STRUCTURES:
        raise ValueError(
            f"Unknown covariance structure {name!r}: choose one of {', '.join(STRUCTURES)}."
        )
    return STRUCTURES[name](n_visits)
