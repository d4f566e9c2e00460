"""The grid search finds point-lens events with their peak time and time scale, and noise
alone stays far below the detection statistic of a real event."""

from __future__ import annotations

import numpy as np

from msos.events.search.kernel import SearchGrid, search
from msos.simulate.variability import pspl_magnification

CADENCE_D = 15 / 1440


def _light_curve(rng, days=30.0, event=None):
    time = 61400 + np.arange(0, days, CADENCE_D)
    err = np.full(time.size, rng.uniform(1, 3))
    flux = rng.normal(0, err)
    if event is not None:
        t_0, u_0, t_e, source = event
        flux += source * (pspl_magnification(time, t_0, u_0, t_e) - 1)
    return time, flux, err


def test_events_are_found_at_their_peak_and_noise_is_not():
    rng = np.random.default_rng(8)
    noise = [search(*_light_curve(rng)).delta_chi2 for _ in range(60)]
    found = []
    for _ in range(30):
        t_0 = 61400 + rng.uniform(5, 25)
        u_0, t_e = rng.uniform(0.01, 0.5), rng.uniform(1, 40)
        # a source whose peak is 20-200 σ above the noise
        peak = pspl_magnification(np.array([t_0]), t_0, u_0, t_e)[0] - 1
        source = rng.uniform(20, 200) * 3 / peak
        time, flux, err = _light_curve(rng, event=(t_0, u_0, t_e, source))
        found.append((search(time, flux, err), t_0, u_0, t_e))
    threshold = 3 * max(noise)
    assert max(noise) < 100  # noise-only Δχ² of a 2,880-epoch light curve over the grid
    for detection, t_0, u_0, t_e in found:
        assert detection.delta_chi2 > threshold
        assert abs(detection.t_0 - t_0) < max(detection.t_eff, 0.1)
        # t_eff = u_0 t_E for the high-magnification form; within the grid's factor of 4/3
        # and the width of the window a wing-dominated event fits
        assert 0.1 * u_0 * t_e < detection.t_eff < 10 * max(u_0, 0.3) * t_e


def test_short_or_bad_light_curves_give_no_detection_not_an_error():
    rng = np.random.default_rng(9)
    time, flux, err = _light_curve(rng, days=0.05)  # 5 epochs
    assert search(time, flux, err).delta_chi2 == 0.0
    time, flux, err = _light_curve(rng, event=(61410.0, 0.1, 5.0, 50.0))
    flux[::7] = np.nan
    err[::11] = 0.0
    shuffled = rng.permutation(time.size)
    detection = search(time[shuffled], flux[shuffled], err[shuffled], SearchGrid(t_eff_max=20))
    assert detection.delta_chi2 > 1000 and abs(detection.t_0 - 61410.0) < 0.5
