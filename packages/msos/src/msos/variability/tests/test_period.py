"""The period search recovers sinusoids and eclipsing binaries within their errors, reports an
eclipsing binary's orbital period, and finds nothing in noise or a microlensing event."""

from __future__ import annotations

import numpy as np
import pytest

from msos.variability.period import (
    PeriodSettings,
    classify,
    frequency_grid,
    search_period,
    search_periods,
)
from msos.variability.tests.synthetic import light_curve, times
from roman_schemas.products.msos.catalogs import PERIODIC_CLASSES

T = times(3000)  # 31 days
GRID = frequency_grid(T[-1] - T[0])


def test_the_grid_spans_min_cycles_to_the_highest_frequency_oversampled():
    span = T[-1] - T[0]
    assert GRID[0] == pytest.approx(2 / span)
    assert GRID[-1] <= 24.0 < GRID[-1] + 2 * (GRID[1] - GRID[0])
    assert np.allclose(np.diff(GRID), 1 / (5 * span))


def test_sinusoid_periods_are_recovered_within_their_errors():
    rng = np.random.default_rng(11)
    pulls = []
    for period in np.exp(rng.uniform(np.log(0.08), np.log(6.0), 16)):
        amplitude = rng.uniform(0.01, 0.1)
        flux, err = light_curve(rng, T, "sine", period=period, amplitude=amplitude,
                                t_ref=T[0] + rng.uniform(0, period))  # fmt: skip
        fit = search_period(T, flux, err, GRID)
        assert fit is not None and fit.n_harmonics == 1
        pulls.append((fit.period_d - period) / fit.period_err_d)
        assert fit.amplitude == pytest.approx(2 * amplitude * 200, rel=0.1)
        assert fit.false_alarm_probability < 1e-10 and fit.power > 0.1
    pulls = np.array(pulls)
    assert np.all(np.abs(pulls) < 4)
    assert 0.4 < np.sqrt(np.mean(pulls**2)) < 2.0


def test_the_epoch_is_a_time_of_maximum_light():
    rng = np.random.default_rng(2)
    flux, err = light_curve(rng, T, "sine", period=1.3, amplitude=0.05, t_ref=61400.2)
    fit = search_period(T, flux, err, GRID)
    # sin(2π (t − t_ref) / P) peaks a quarter period after t_ref
    phase = ((fit.epoch_mjd_tdb - 61400.2) / fit.period_d - 0.25 + 0.5) % 1 - 0.5
    assert abs(phase) < 0.01
    assert T[0] <= fit.epoch_mjd_tdb <= T[-1]


@pytest.mark.parametrize("second", [0.0, 0.6, 1.0])
def test_an_eclipsing_binary_is_reported_at_its_orbital_period(second):
    rng = np.random.default_rng(5)
    period = 1.37
    flux, err = light_curve(rng, T, "eclipsing", period=period, amplitude=0.3,
                            amplitude2=0.3 * second, width=0.04)  # fmt: skip
    fit = search_period(T, flux, err, GRID)
    assert fit.variable_class == "eclipsing_binary"
    # without a secondary eclipse, one minimum a cycle reads as two equal ones: the period
    # may be doubled (the convention for equal eclipses); with one, it is the orbital period
    orbital = [period, 2 * period] if second == 0 else [period]
    assert min(abs(fit.period_d - p) for p in orbital) < 4 * fit.period_err_d
    assert fit.amplitude == pytest.approx(0.3 * 200, rel=0.15)


def test_noise_has_a_large_false_alarm_probability_and_no_period():
    rng = np.random.default_rng(8)
    faps = []
    for _ in range(10):
        flux, err = light_curve(rng, T, "constant")
        assert search_period(T, flux, err, GRID) is None
        fit = search_period(T, flux, err, GRID, PeriodSettings(fap_max=2.0))
        faps.append(1.0 if fit is None else fit.false_alarm_probability)
    assert np.median(faps) > 0.05


def test_a_microlensing_event_has_no_period():
    rng = np.random.default_rng(9)
    for t_e in (1.0, 3.0, 10.0):
        flux, err = light_curve(rng, T, "pspl", t_0=T[1500], u_0=0.2, t_e=t_e, source=80.0)
        assert search_period(T, flux, err, GRID) is None


def test_too_few_epochs_or_bad_ones_are_no_period_and_no_crash():
    flux = np.full((3, T.size), np.nan)
    flux[1, :5] = [1, 2, 3, 4, 5]
    flux[2] = 200 + 20 * np.sin(2 * np.pi * T / 0.9)
    err = np.ones_like(flux)
    flags = np.zeros(flux.shape, dtype="uint16")
    flags[2, ::2] = 4
    found = search_periods(T, flux, err, flags, np.arange(3), GRID)
    assert list(found) == [2]
    assert found[2].period_d == pytest.approx(0.9, rel=1e-4)
    assert found[2].n_epochs == T.size // 2


def test_classes_come_from_the_product_list():
    cases = [(0.05, 0.05, 0.5), (0.5, 0.5, 0.5), (5.0, 0.5, 0.5), (3.0, 0.02, 0.5),
             (1.0, 0.2, 0.05), (0.03, 2.0, 0.5), (1.0, np.nan, 0.5)]  # fmt: skip
    got = [classify(*case) for case in cases]
    assert got == ["delta_scuti", "rr_lyrae", "cepheid", "rotation", "eclipsing_binary",
                   "other", "other"]  # fmt: skip
    assert set(got) <= set(PERIODIC_CLASSES)
