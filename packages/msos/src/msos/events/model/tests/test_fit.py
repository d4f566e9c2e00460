"""The general fitter recovers every model's parameters within their Fisher errors, and the
selection climbs from a point lens only as far as the data ask."""

from __future__ import annotations

import numpy as np
import pytest

from msos.events.model.fit import Dataset, fit_model
from msos.events.model.lens import Sky, magnification
from msos.events.model.select import select_model

SKY = Sky(ra_deg=268.5, dec_deg=-29.5, jd_offset=2400000.5, t_0_par=61436.0)
HOURLY = np.arange(61400.0, 61472.0, 1 / 24)  # one 72-day Roman season, hourly


def _simulate(model: str, params: dict, seed: int, t: np.ndarray = HOURLY) -> Dataset:
    rng = np.random.default_rng(seed)
    flux = 100.0 * magnification(model, t, params, SKY) + 50.0
    err = np.sqrt(0.5**2 + 0.01 * flux)
    return Dataset(t, flux + rng.normal(0.0, err), err)


CASES = [
    ("PSPL", dict(t_0=61436.3, u_0=0.2, t_E=25.0)),
    ("FSPL", dict(t_0=61436.3, u_0=0.003, t_E=20.0, rho=0.006)),
    ("PSPL+par", dict(t_0=61436.3, u_0=0.15, t_E=90.0, pi_E_N=0.8, pi_E_E=0.3)),
    ("2L1S", dict(t_0=61436.3, u_0=0.1, t_E=30.0, rho=0.001, s=1.2, q=1e-3, alpha=60.0)),
]


@pytest.mark.parametrize(("model", "truth"), CASES, ids=[c[0] for c in CASES])
def test_each_model_is_recovered_within_its_errors(model: str, truth: dict) -> None:
    data = _simulate(model, truth, seed=3)
    start = {k: v * 1.02 if k != "t_0" else v + 0.02 for k, v in truth.items()}
    fit = fit_model(data, model, start, SKY)
    assert fit.converged
    assert 0.9 < fit.chi2 / fit.dof < 1.1
    for name, value in truth.items():
        pull = (fit.params[name] - value) / fit.errors[name]
        assert abs(pull) < 4, (name, fit.params[name], value, fit.errors[name])
    assert fit.f_source[0] == pytest.approx(100.0, rel=5 * fit.f_source_err[0] / 100 + 1e-3)


def test_each_dataset_keeps_its_own_flux_scale() -> None:
    truth = dict(t_0=61436.3, u_0=0.2, t_E=25.0)
    one = _simulate("PSPL", truth, seed=4)
    other = Dataset(one.time[::3], 3.0 * one.flux[::3] - 40.0, 3.0 * one.flux_err[::3], "b")
    fit = fit_model([one, other], "PSPL", truth)
    assert fit.f_source[1] == pytest.approx(3.0 * fit.f_source[0], rel=1e-2)
    assert fit.f_blend[1] == pytest.approx(3.0 * fit.f_blend[0] - 40.0, rel=1e-2)


def test_a_fit_with_too_few_points_says_so() -> None:
    data = Dataset(np.arange(5.0), np.ones(5), np.ones(5))
    with pytest.raises(ValueError, match="5 usable points"):
        fit_model(data, "PSPL", dict(t_0=2.0, u_0=0.1, t_E=3.0))


def test_held_parameters_stay_and_the_rest_fit_around_them() -> None:
    truth = dict(CASES[1][1])
    data = _simulate("FSPL", truth, seed=6)
    start = {**truth, "t_E": 24.0, "rho": 0.012}
    held = fit_model(data, "FSPL", start, fixed=("rho",))
    assert held.params["rho"] == 0.012 and held.errors["rho"] == 0.0
    assert list(held.params) == ["t_0", "u_0", "t_E", "rho"]
    assert held.dof == data.time.size - 3 - 2  # the held size is not a fitted parameter
    free = fit_model(data, "FSPL", held.params)
    assert free.chi2 < held.chi2 - 100  # a source twice too large shows
    assert free.params["rho"] == pytest.approx(0.006, rel=0.05)
    with pytest.raises(ValueError, match="cannot hold s"):
        fit_model(data, "FSPL", {**start, "s": 1.0}, fixed=("s",))


@pytest.mark.parametrize(("model", "truth"), CASES, ids=[c[0] for c in CASES])
def test_selection_climbs_as_far_as_the_data_ask(model: str, truth: dict) -> None:
    data = _simulate(model, truth, seed=5)
    start = dict(t_0=truth["t_0"] + 0.5, u_0=0.3, t_E=20.0)
    selection = select_model(data, start, SKY)
    assert selection.best.model == model
    assert selection.best.chi2 / selection.best.dof < 1.1
    if model == "PSPL+par":
        return  # one season of a 90-day event: t_E, u_0 and the blend trade off (Fisher: 15 %)
    for name in ("t_E", "u_0"):
        assert selection.best.params[name] == pytest.approx(truth[name], rel=0.05, abs=0.002)
