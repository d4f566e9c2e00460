"""PSPL fits: MulensModel's magnification, the simulated parameters back within their
errors, errors that are the scatter of repeated fits, and MulensModel + scipy's best fit."""

from __future__ import annotations

import MulensModel
import numpy as np
import pytest
from scipy.optimize import minimize

from msos.events.model.pspl import PARAMETERS, fit_pspl, magnification

TRUTH = {"t_0": 61430.0, "u_0": 0.12, "t_E": 18.0, "f_source": 40.0, "f_blend": 15.0}


def _light_curve(rng, n=3000, err=2.0):
    time = np.sort(rng.uniform(61400, 61460, n))
    model = TRUTH["f_source"] * magnification(time, TRUTH["t_0"], TRUTH["u_0"], TRUTH["t_E"])
    flux = model + TRUTH["f_blend"] + rng.normal(0, err, n)
    return time, flux, np.full(n, err)


def _mulensmodel_fit(data: MulensModel.MulensData, start: list[float]):
    """MulensModel + scipy's best (t_0, u_0, t_E) from ``start`` (Nelder–Mead on χ²)."""
    event = MulensModel.Event(datasets=data, model=MulensModel.Model(
        dict(zip(("t_0", "u_0", "t_E"), start, strict=True))))  # fmt: skip

    def chi2(theta):
        if theta[1] <= 0 or theta[2] <= 0:
            return np.inf
        p = event.model.parameters
        p.t_0, p.u_0, p.t_E = theta
        return event.get_chi2()

    return minimize(chi2, start, method="Nelder-Mead",
                    options={"xatol": 1e-8, "fatol": 1e-8, "maxiter": 20000})  # fmt: skip


def test_the_magnification_is_mulensmodels():
    time = np.linspace(61400, 61460, 500)
    model = MulensModel.Model({"t_0": 61430.0, "u_0": 0.03, "t_E": 9.0})
    np.testing.assert_allclose(magnification(time, 61430.0, 0.03, 9.0),
                               model.get_magnification(time), rtol=1e-12)  # fmt: skip


def test_repeated_fits_scatter_as_their_errors_say():
    rng = np.random.default_rng(1)
    pulls = {name: [] for name in PARAMETERS}
    for _ in range(60):
        fit = fit_pspl(*_light_curve(rng), t_0=61428.0, u_0=0.5, t_E=10.0)
        assert fit.converged
        for name in PARAMETERS:
            pulls[name].append((getattr(fit, name) - TRUTH[name]) / fit.error(name))
    for name, values in pulls.items():
        assert abs(np.mean(values)) < 0.4, name
        assert 0.7 < np.std(values) < 1.3, name


def test_the_fit_is_mulensmodel_and_scipys_best_fit():
    rng = np.random.default_rng(2)
    time, flux, err = _light_curve(rng)
    ours = fit_pspl(time, flux, err, t_0=61428.0, u_0=0.5, t_E=10.0)
    data = MulensModel.MulensData([time, flux, err], phot_fmt="flux")
    theirs = _mulensmodel_fit(data, [61428.0, 0.5, 10.0])
    assert ours.chi2 <= theirs.fun + 1e-6
    np.testing.assert_allclose([ours.t_0, ours.u_0, ours.t_E], theirs.x, rtol=1e-4)
    assert ours.dof == time.size - 5


def test_too_few_points_is_a_clear_error_and_bad_points_are_left_out():
    rng = np.random.default_rng(3)
    time, flux, err = _light_curve(rng, n=5)
    with pytest.raises(ValueError, match="5 usable points"):
        fit_pspl(time, flux, err, 61430.0, 0.1, 18.0)
    time, flux, err = _light_curve(rng)
    flux[::10] = np.nan
    err[1::10] = 0.0
    fit = fit_pspl(time, flux, err, 61428.0, 0.5, 10.0)
    assert fit.converged and fit.dof == time.size - 2 * time.size // 10 - 5
    assert abs(fit.t_E - TRUTH["t_E"]) < 4 * fit.error("t_E")


@pytest.mark.parametrize("name", ["OB08092/phot_ob08092_O4.dat", "OB140939/ob140939_OGLE.dat"])
def test_real_ogle_events_are_found_and_fitted_to_mulensmodels_minimum(name):
    from pathlib import Path

    from msos.events.inputs import clean
    from msos.events.search.kernel import SearchGrid, search

    data = Path(MulensModel.__file__).parent / "data" / "photometry_files" / name
    time, mag, mag_err = np.loadtxt(data, unpack=True, usecols=(0, 1, 2))
    theirs_data = MulensModel.MulensData([time, mag, mag_err], phot_fmt="mag")
    curves = clean(np.zeros(time.size, np.int64), time, theirs_data.flux, theirs_data.err_flux)
    t, flux, err = curves.of(0)
    found = search(t, flux, err, SearchGrid(t_eff_max=300))
    assert found.delta_chi2 > 1e4
    ours = min((fit_pspl(t, flux, err, found.t_0, u_0, found.t_eff / u_0) for u_0 in
                (0.05, 0.2, 0.5, 1.0)), key=lambda fit: fit.chi2)  # fmt: skip
    theirs = _mulensmodel_fit(theirs_data, [ours.t_0 + 0.5, ours.u_0 * 1.2, ours.t_E * 0.9])
    assert ours.chi2 <= theirs.fun + 1e-4
    for k, name in enumerate(("t_0", "u_0", "t_E")):
        assert abs(getattr(ours, name) - theirs.x[k]) < 0.05 * ours.error(name), name


def test_a_partly_covered_long_event_keeps_a_physical_point_lens(monkeypatch):
    """A t_E ≈ 100 d, u_0 ≈ 0.7 event over a 62-day season measures only u_0·t_E and the
    peak flux: u_0 → 0, t_E → 15,000 d fits as well. Among equally good fits the detection
    fit keeps a physical one, so the classifier does not call the event a variable."""
    from msos.events.classify.kernel import classify
    from msos.events.model import pspl
    from msos.events.search.kernel import search

    time = 61400 + np.arange(0, 62, 15 / 1440)
    t_0, u_0, t_e = 61437.1, 0.68, 98.4
    source = 50.0 / (magnification(np.array([t_0]), t_0, u_0, t_e)[0] - 1)
    flux = source * (magnification(time, t_0, u_0, t_e) + 1)
    flux = flux + np.random.default_rng(8).normal(0.0, 1.0, time.size)
    err = np.ones(time.size)
    found = search(time, flux, err)
    fit = pspl.fit_detection(time, flux, err, found.t_0, found.t_eff)
    assert fit.t_E <= pspl.MAX_T_E_D and fit.u_0 >= pspl.MIN_U_0
    assert classify(time, flux, err, fit).classification == "single_lens"
    assert abs(fit.t_0 - t_0) < 0.5  # (the valley is flat: its Fisher matrix is singular)
    monkeypatch.setattr(pspl, "EQUALLY_GOOD_CHI2", -1.0)  # lowest χ² only: it slides away
    slid = pspl.fit_detection(time, flux, err, found.t_0, found.t_eff)
    assert slid.t_E > pspl.MAX_T_E_D or slid.u_0 < pspl.MIN_U_0
