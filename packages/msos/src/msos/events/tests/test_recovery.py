"""Science acceptance on simulated seasons: events with u_0 < 0.5 and peak S/N ≥ 20 are
found (recall ≥ 95 %) and their t_E (median within 5 %) and u_0 (within 0.02) recovered."""

from __future__ import annotations

import numpy as np

from msos.events.model.pspl import fit_detection, magnification
from msos.events.search.kernel import search

CADENCE_D = 15 / 1440
SEASON_D = 62.0


def _season_of_events(rng, n):
    """``n`` PSPL events over a Roman season (15-min cadence), blended, peak S/N 20-200."""
    time = 61400 + np.arange(0, SEASON_D, CADENCE_D)
    events = []
    for _ in range(n):
        t_0 = rng.uniform(61405, 61457)
        u_0, t_e = rng.uniform(0.01, 0.5), 10 ** rng.uniform(0, 1.7)  # 1-50 d
        err = rng.uniform(0.5, 3.0)
        peak_snr = rng.uniform(20, 200)
        source = peak_snr * err / (magnification(np.array([t_0]), t_0, u_0, t_e)[0] - 1)
        blend = source * rng.uniform(0, 3)
        flux = source * magnification(time, t_0, u_0, t_e) + blend + rng.normal(0, err, time.size)
        events.append((flux, np.full(time.size, err), (t_0, u_0, t_e)))
    noise = [rng.normal(100, 2.0, time.size) for _ in range(40)]
    return time, events, noise


def test_events_are_recovered_with_their_time_scale_and_impact_parameter():
    rng = np.random.default_rng(12)
    time, events, noise = _season_of_events(rng, 60)
    # the detection threshold: far above any noise-only light curve's best grid point
    threshold = 5 * max(search(time, f, np.full(time.size, 2.0)).delta_chi2 for f in noise)
    found, t_e_error, u_0_error = 0, [], []
    for flux, err, (_t_0, u_0, t_e) in events:
        detection = search(time, flux, err)
        if detection.delta_chi2 < threshold:
            continue
        found += 1
        fit = fit_detection(time, flux, err, detection.t_0, detection.t_eff)
        t_e_error.append(abs(fit.t_E - t_e) / t_e)
        u_0_error.append(abs(fit.u_0 - u_0))
    assert found / len(events) >= 0.95
    assert np.median(t_e_error) < 0.05
    assert np.median(u_0_error) < 0.02
    assert np.percentile(u_0_error, 90) < 0.02  # and for nearly every event, not just half
