"""Variability statistics equal their direct numpy/scipy computation on good epochs (NaN,
zero-error and flagged epochs left out), and the cuts pick smooth variables, not noise."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from msos.variability.kernel import (
    VariabilityCuts,
    eta_white_noise_sigma,
    select_variables,
    variability_statistics,
)
from msos.variability.tests.synthetic import light_curve, times


def _direct(f: np.ndarray, e: np.ndarray) -> dict[str, float]:
    """The statistics of one object's good epochs, written out with numpy and scipy."""
    n = f.size
    w = 1 / e**2
    mean_w = np.sum(w * f) / np.sum(w)
    delta = np.sqrt(n / (n - 1)) * (f - mean_w) / e
    p = delta[:-1] * delta[1:]
    median = np.median(f)
    return {
        "mean": f.mean(), "std": f.std(ddof=1), "mad": np.median(np.abs(f - median)),
        "chi2_dof": np.sum(w * (f - mean_w) ** 2) / (n - 1),
        "eta": np.sum(np.diff(f) ** 2) / np.sum((f - f.mean()) ** 2),
        "stetson_j": np.sum(np.sign(p) * np.sqrt(np.abs(p))) / (n - 1),
        "stetson_k": np.mean(np.abs(delta)) / np.sqrt(np.mean(delta**2)),
        "skewness": scipy_stats.skew(f),
        "amplitude": np.percentile(f, 95) - np.percentile(f, 5),
    }  # fmt: skip


def test_statistics_equal_numpy_and_scipy_on_the_good_epochs():
    rng = np.random.default_rng(7)
    n_obj, n_ep = 40, 257
    flux = rng.lognormal(3, 0.5, (n_obj, n_ep)).astype("float32")
    err = rng.uniform(0.5, 3, (n_obj, n_ep)).astype("float32")
    flags = (rng.random((n_obj, n_ep)) < 0.05).astype("uint16")
    flux[rng.random((n_obj, n_ep)) < 0.05] = np.nan
    err[rng.random((n_obj, n_ep)) < 0.02] = 0.0
    err[3, 10] = np.inf
    flux[5, :] = 1.0 + (np.arange(n_ep) % 2)  # even count of ties: MAD and median of halves
    offset = rng.uniform(10, 100, n_obj)
    stats = variability_statistics(flux, err, flags, offset=offset)
    for i in range(n_obj):
        good = np.isfinite(flux[i]) & (err[i] > 0) & np.isfinite(err[i]) & (flags[i] == 0)
        assert stats.n_epochs[i] == good.sum()
        expected = _direct(flux[i, good].astype(float), err[i, good].astype(float))
        expected["mean"] += offset[i]
        for name, value in expected.items():
            assert getattr(stats, name)[i] == pytest.approx(value, rel=1e-9, abs=1e-9), name


def test_fewer_than_three_good_epochs_give_nan_and_never_variable():
    flux = np.array([[1.0, 2.0, np.nan, np.nan], [np.nan] * 4, [1.0, 5.0, 1.0, 5.0]])
    err = np.ones_like(flux)
    flags = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0]])
    stats = variability_statistics(flux, err, flags)
    assert list(stats.n_epochs) == [2, 0, 2]
    for name in ("mean", "std", "mad", "chi2_dof", "eta", "stetson_j", "skewness"):
        assert np.all(np.isnan(getattr(stats, name))), name
    assert not select_variables(stats, VariabilityCuts(chi2_min=0, eta_sigma=0, j_min=-9)).any()


def test_white_noise_has_eta_two_j_zero_k_of_a_gaussian():
    rng = np.random.default_rng(1)
    flux = rng.normal(100, 2, (400, 1000))
    stats = variability_statistics(flux, np.full_like(flux, 2.0))
    assert np.mean(stats.eta) == pytest.approx(2, abs=0.01)
    assert np.std(stats.eta) == pytest.approx(eta_white_noise_sigma(1000), rel=0.15)
    assert np.mean(stats.stetson_j) == pytest.approx(0, abs=0.01)
    assert np.mean(stats.stetson_k) == pytest.approx(np.sqrt(2 / np.pi), abs=0.01)
    assert np.mean(stats.chi2_dof) == pytest.approx(1, abs=0.01)


def test_smooth_variables_are_selected_and_constant_stars_are_not():
    rng = np.random.default_rng(3)
    t = times(2000)
    curves = {
        "constant": [light_curve(rng, t, "constant") for _ in range(200)],
        # errors quoted too small by 2: χ² of 4, but η stays 2 and J 0
        "underestimated": [(f, e / 2) for f, e in
                           (light_curve(rng, t, "constant") for _ in range(50))],
        "sine": [light_curve(rng, t, "sine", period=p, amplitude=0.03)
                 for p in rng.uniform(0.1, 5, 20)],
        "eclipsing": [light_curve(rng, t, "eclipsing", period=p, amplitude=0.3)
                      for p in rng.uniform(0.5, 4, 20)],
        "pspl": [light_curve(rng, t, "pspl", t_0=t[1000], u_0=0.3, t_e=2.0, source=50.0)
                 for _ in range(10)],
    }  # fmt: skip
    for kind, rows in curves.items():
        flux = np.array([f for f, _ in rows])
        err = np.array([e for _, e in rows])
        variable = select_variables(variability_statistics(flux, err))
        if kind in ("constant", "underestimated"):
            assert not variable.any(), kind
        else:
            assert variable.all(), kind
