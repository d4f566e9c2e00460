"""Truth light curves: periodic variables, Paczyński events, a planetary binary lens."""

from __future__ import annotations

import numpy as np
import pytest

from msos.simulate.variability import (
    binary_magnification,
    binary_trajectory,
    draw_variability,
    paczynski,
    periodic_factor,
    pspl_magnification,
)


def test_paczynski_magnification():
    assert paczynski(1.0) == pytest.approx(3 / np.sqrt(5))
    assert paczynski(0.1) == pytest.approx(10.0375, rel=1e-4)
    assert paczynski(100.0) == pytest.approx(1.0, abs=1e-7)
    t = np.array([10.0, 12.0, 30.0])
    a = pspl_magnification(t, t0=12.0, u0=0.2, te=4.0)
    assert a[1] == pytest.approx(paczynski(0.2))
    assert a[0] == pytest.approx(paczynski(np.hypot(0.2, 0.5)))
    assert a[2] < a[0] < a[1]


def test_the_binary_lens_matches_vbmicrolensing():
    from VBMicrolensing import VBMicrolensing  # the reference must run: never skipped

    vbm = VBMicrolensing()
    rng = np.random.default_rng(5)
    for s, q in ((1.05, 3e-3), (0.7, 0.3)):
        y1, y2 = rng.uniform(-0.4, 0.4, (2, 300))
        mag, count = binary_magnification(y1, y2, s, q)
        reference = [vbm.BinaryMag0(s, q, a, b) for a, b in zip(y1, y2, strict=True)]
        np.testing.assert_allclose(mag, reference, rtol=1e-6)
        assert set(np.unique(count)) <= {3, 5} and (count == 5).any()


def test_a_far_planet_leaves_the_paczynski_curve_alone():
    t = np.linspace(-1.0, 1.0, 41)
    y1, y2 = binary_trajectory(t, 0.0, 0.1, 2.0, np.radians(30.0))
    mag, _ = binary_magnification(y1, y2, s=8.0, q=1e-5)
    np.testing.assert_allclose(mag, pspl_magnification(t, 0.0, 0.1, 2.0), rtol=1e-3)


def test_periodic_light_curves():
    t = np.linspace(0.0, 2.0, 401)
    sine = periodic_factor(t, "sine", period=0.5, t_ref=0.1, amplitude=0.1)
    assert sine.max() == pytest.approx(1.1, abs=1e-3) and sine.min() == pytest.approx(0.9, abs=1e-3)
    eclipse = periodic_factor(t, "eclipsing", 0.5, 0.1, amplitude=0.3, amplitude2=0.1, width=0.03)
    assert eclipse[np.argmin(np.abs(t - 0.6))] == pytest.approx(0.7, abs=1e-3)  # primary
    assert eclipse[np.argmin(np.abs(t - 0.85))] == pytest.approx(0.9, abs=1e-3)  # secondary
    assert eclipse[np.argmin(np.abs(t - 0.72))] == pytest.approx(1.0, abs=1e-3)  # out of eclipse


def test_events_peak_within_the_simulated_window():
    rng = np.random.default_rng(11)
    mag = rng.uniform(16, 26, 5000)
    variables = draw_variability(
        rng, mag, np.ones(5000, bool), 100.0, 101.0, periodic_fraction=0.02, n_pspl=5, n_binary=1
    )
    ml = variables.kind == "microlensing"
    assert ml.sum() == 6 and (variables.kind == "periodic").sum() == 100
    t0 = variables.params["t0_mjd_tdb"][ml]
    inside = (t0 > 100.0) & (t0 < 101.0)
    assert inside.sum() == 5  # one rising after the window
    assert np.all((mag[variables.index[ml]] > 18.5) & (mag[variables.index[ml]] < 23.0))
    # the planetary anomaly is visible and the point-source curve stays finite
    k = int(np.flatnonzero(variables.model == "binary")[0])
    t = np.linspace(99.5, 101.5, 400)
    curves = variables.light_curves(t)
    p = {name: values[k] for name, values in variables.params.items()}
    pspl = p["fs"] * pspl_magnification(t, p["t0_mjd_tdb"], p["u0"], p["te_d"]) + 1 - p["fs"]
    assert np.max(np.abs(curves[k] / pspl - 1)) > 0.02
    assert np.all(np.isfinite(curves)) and curves[k].max() < 1e3
