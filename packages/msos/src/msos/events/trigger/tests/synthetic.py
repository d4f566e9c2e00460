"""Simulated light curves for the trigger's tests: noise, variables and microlensing rises."""

from __future__ import annotations

import numpy as np

from msos.simulate.variability import pspl_magnification

CADENCE_D = 15 / 1440
DAYS = 12


def season(n_constant=2000, seed=1):
    """Light curves (objects × epochs, difference flux in µJy) of constant stars, a few
    variables and PSPL events peaking on day 8, with their ids and times."""
    rng = np.random.default_rng(seed)
    time = 61400 + np.arange(int(DAYS / CADENCE_D)) * CADENCE_D
    err = rng.uniform(1.0, 3.0, (n_constant + 60, 1)) * np.ones(time.size)
    flux = rng.normal(0, 1, err.shape) * err
    kind = np.array(["constant"] * n_constant + ["variable"] * 30 + ["event"] * 30)
    # variables: sinusoids of 5-20 σ semi-amplitude, periods 0.3-3 d
    for k in range(n_constant, n_constant + 30):
        amplitude = rng.uniform(5, 20) * err[k, 0]
        flux[k] += amplitude * np.sin(2 * np.pi * time / rng.uniform(0.3, 3) + rng.uniform(0, 6))
    # events: source 20-100 µJy, u0 0.05-0.5, tE 2-20 d, peak on day 8
    t0 = time[0] + 8.0
    for k in range(n_constant + 30, n_constant + 60):
        source = rng.uniform(20, 100)
        magnification = pspl_magnification(time, t0, rng.uniform(0.05, 0.5), rng.uniform(2, 20))
        flux[k] += source * (magnification - magnification[0])
    ids = np.arange(1, kind.size + 1, dtype=np.int64) * 7
    return ids, time, flux.astype("float32"), err.astype("float32"), kind, t0
