"""Injection and recovery in light curves: the flux an event adds is f_source·(A − 1) exactly,
bright events are found (TP) and faint or distant ones missed (FN), blanks stay quiet (TN)
unless their host has an event of its own (FP), and the efficiency bins count only events."""

from __future__ import annotations

import numpy as np
import pytest

from msos.events.efficiency.kernel import (
    InjectionPlan,
    InjectionSettings,
    draw_injections,
    efficiency,
    inject,
    recover,
)
from msos.events.model.lens import magnification

CADENCE_D = 30 / 1440
TIME = 61400 + np.arange(0, 30, CADENCE_D)  # 30 days, 1,440 epochs
NAN = np.nan


def plan_of(rows: list[tuple]) -> InjectionPlan:
    """A plan from ``(host, model, t_0, u_0, t_E, f_source, rho, s, q, alpha)`` rows
    (model "" for a blank)."""
    columns = list(zip(*rows, strict=True))
    host, model = np.array(columns[0]), np.array(columns[1])
    t_0, u_0, t_e, source, rho, s, q, alpha = (np.array(c, dtype=np.float64)
                                               for c in columns[2:])  # fmt: skip
    return InjectionPlan(host=host, injected=model != "", model_type=model, t_0=t_0, u_0=u_0,
                         t_E=t_e, rho=rho, s=s, q=q, alpha=alpha, source_flux=source)  # fmt: skip


def pspl(host: int, t_0: float, u_0: float, t_e: float, source: float) -> tuple:
    return (host, "PSPL", t_0, u_0, t_e, source, NAN, NAN, NAN, NAN)


def blank(host: int) -> tuple:
    return (host, "", NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN)


PLANET = (2, "2L1S", 61412.0, 0.05, 8.0, 40.0, 1e-3, 1.05, 3e-3, 40.0)


@pytest.fixture(scope="module")
def hosts():
    """Six hosts of 100 µJy and 1 µJy errors: four constant stars, a 1.3-day sinusoidal
    variable (20σ) and a star with a microlensing event of its own on day 5."""
    rng = np.random.default_rng(5)
    err = np.ones((6, TIME.size))
    flux = 100.0 + rng.normal(0.0, err)
    flux[4] += 20.0 * np.sin(2 * np.pi * TIME / 1.3)
    flux[5] += 50.0 * (magnification("PSPL", TIME, {"t_0": 61405.0, "u_0": 0.1, "t_E": 2.0})
                       - 1.0)  # fmt: skip
    return flux, err


def test_injected_flux_is_the_host_flux_plus_f_source_times_magnification_minus_one(hosts):
    flux, err = hosts
    plan = plan_of([pspl(0, 61410.0, 0.2, 5.0, 30.0), PLANET, blank(3)])
    curves, errors, added = inject(TIME, flux, err, plan)
    single = 30.0 * (magnification("PSPL", TIME, {"t_0": 61410.0, "u_0": 0.2, "t_E": 5.0}) - 1)
    binary = 40.0 * (magnification("2L1S", TIME, plan.params(1)) - 1)
    np.testing.assert_array_equal(curves[0], flux[0] + single)
    np.testing.assert_array_equal(curves[1], flux[2] + added[1])
    np.testing.assert_array_equal(curves[2], flux[3])  # a blank is its host, untouched
    np.testing.assert_array_equal(added[[0, 2]], [single, np.zeros(TIME.size)])
    # VBMicrolensing starts each binary-lens point from the last one's images: a repeat
    # agrees to rounding, not bit for bit
    np.testing.assert_allclose(added[1], binary, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(errors, err[[0, 2, 3]])  # the host's errors are kept


def test_photon_noise_of_the_added_flux_widens_the_errors_by_its_variance(hosts):
    flux, err = hosts
    plan = plan_of([pspl(0, 61410.0, 0.2, 5.0, 30.0), blank(1)])
    curves, errors, added = inject(TIME, flux, err, plan, electrons_per_ujy=50.0,
                                   rng=np.random.default_rng(1))  # fmt: skip
    np.testing.assert_allclose(errors**2 - err[[0, 1]] ** 2, added / 50.0, atol=1e-12)
    pulls = (curves[0] - flux[0] - added[0]) / np.sqrt(added[0] / 50.0)
    assert abs(np.std(pulls[added[0] > 1]) - 1) < 0.1
    np.testing.assert_array_equal(curves[1], flux[1])
    with pytest.raises(ValueError, match="random generator"):
        inject(TIME, flux, err, plan, electrons_per_ujy=50.0)


def test_draws_follow_the_settings_and_the_seed():
    ref = np.array([100.0, 50.0, -3.0, np.nan, 20.0])
    settings = InjectionSettings(n_injections=2000, blank_fraction=0.25, u_0_max=1.2,
                                 t_E_d=(2.0, 50.0), planet_fraction=0.3)  # fmt: skip
    plan = draw_injections(np.random.default_rng(3), TIME, ref, settings)
    again = draw_injections(np.random.default_rng(3), TIME, ref, settings)
    np.testing.assert_array_equal(plan.t_0, again.t_0)
    events = plan.injected
    assert np.count_nonzero(~events) == 500
    assert set(plan.host) == {0, 1, 4}  # no fraction of a negative or missing flux
    assert len(set(plan.host[~events][:3])) == 3  # blanks take distinct hosts first
    assert np.all(np.isnan(plan.t_0[~events])) and set(plan.model_type[~events]) == {""}
    assert TIME[0] <= plan.t_0[events].min() and plan.t_0[events].max() <= TIME[-1]
    assert plan.u_0[events].min() >= 0 and plan.u_0[events].max() <= 1.2
    assert plan.t_E[events].min() >= 2.0 and plan.t_E[events].max() <= 50.0
    assert abs(np.median(np.log(plan.t_E[events])) - np.log(10.0)) < 0.1  # log-uniform
    fraction = plan.source_flux[events] / ref[plan.host[events]]
    assert fraction.min() >= 0.05 and fraction.max() <= 1.0
    planets = plan.model_type == "2L1S"
    assert abs(planets.sum() / events.sum() - 0.3) < 0.04
    assert np.all(np.isfinite(plan.q[planets])) and np.all(np.isnan(plan.q[~planets]))
    absolute = draw_injections(
        np.random.default_rng(3),
        TIME,
        ref,
        InjectionSettings(n_injections=50, source_flux_ujy=(1.0, 2.0)),
    )
    assert absolute.source_flux[absolute.injected].min() >= 1.0
    assert set(absolute.host) == set(range(5))  # any host takes a flux in µJy


def test_bright_events_are_recovered_faint_ones_missed_and_blanks_counted(hosts):
    flux, err = hosts
    plan = plan_of([
        pspl(0, 61415.0, 0.1, 5.0, 50.0),  # bright, well inside the season: TP
        pspl(1, 61420.0, 0.3, 10.0, 30.0),  # TP
        PLANET,  # a bright planetary event: found as an event, TP
        pspl(3, 61410.0, 1.4, 3.0, 0.5),  # peak S/N 0.03: FN
        pspl(0, 61418.0, 1.5, 2.0, 2.0),  # u_0 1.5, peak S/N 0.3: FN
        blank(0), blank(1),  # constant stars: TN
        blank(4),  # a variable, classified as one: TN
        blank(5),  # the host's own event: FP
        pspl(5, 61422.0, 0.5, 2.0, 5.0),  # a weaker event than the host's: found at the
    ])  # host's t_0, not this one's: FN  # fmt: skip
    recovery = recover(TIME, flux, err, None, plan, threshold=500.0, chunk=4)  # 3 chunks
    assert list(recovery.binary_class(plan.injected)) == [
        "TP", "TP", "TP", "FN", "FN", "TN", "TN", "TN", "FP", "FN",
    ]  # fmt: skip
    found = recovery.detected & plan.injected
    np.testing.assert_allclose(recovery.t_0[found], plan.t_0[found], atol=0.1)
    np.testing.assert_allclose(recovery.t_E[:2], [5.0, 10.0], rtol=0.1)
    assert np.all(np.isnan(recovery.t_0[~recovery.detected]))
    assert recovery.classification[7] == "variable_star" and recovery.delta_chi2[7] > 500
    assert abs(recovery.t_0[8] - 61405.0) < 0.1
    assert recovery.peak_snr[0] > 400 and recovery.peak_snr[3] < 0.1
    assert recovery.peak_snr[5] == 0


def test_efficiency_per_bin_counts_only_injected_events():
    injected = np.array([True, True, True, True, False, False])
    detected = np.array([True, False, True, True, True, False])
    u_0 = np.array([0.1, 0.2, 0.8, 0.9, NAN, NAN])
    t_e = np.array([5.0, 5.0, 5.0, 50.0, NAN, NAN])
    share, total = efficiency(injected, detected, (u_0, t_e), ([0, 0.5, 1], [1, 10, 100]))
    np.testing.assert_array_equal(total, [[2, 0], [1, 1]])
    np.testing.assert_array_equal(share, [[0.5, NAN], [1.0, 1.0]])
    share, total = efficiency(injected, detected, (u_0,), ([0, 1],))
    assert share.tolist() == [0.75] and total.tolist() == [4]
    with pytest.raises(ValueError, match="bin edge"):
        efficiency(injected, detected, (u_0, t_e), ([0, 1],))


def test_a_drawn_run_finds_the_bright_events_and_none_of_the_blanks(hosts):
    flux, err = hosts
    rng = np.random.default_rng(11)
    plan = draw_injections(rng, TIME, np.full(4, 100.0),
                           InjectionSettings(n_injections=24, blank_fraction=0.25,
                                             t_E_d=(1.0, 10.0)))  # fmt: skip
    recovery = recover(TIME, flux[:4], err[:4], None, plan)
    classes = recovery.binary_class(plan.injected)
    assert set(classes[~plan.injected]) == {"TN"}
    share, total = efficiency(plan.injected, recovery.detected, (recovery.peak_snr,),
                              ([0, 3, 50, np.inf],))  # fmt: skip
    assert total.sum() == 18 and total[0] > 0 and total[2] > 0
    assert share[0] == 0 and share[2] == 1
