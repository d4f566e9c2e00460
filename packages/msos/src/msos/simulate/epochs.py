"""The epochs of a partition: exposure times, true pointing offsets, PSF jitter, sky level.

Offsets are the shift of the *scene on the detector*: a star at ``(x, y)`` on the reference
grid (epoch 0, offset exactly 0) lands at ``(x + dx, y + dy)`` in epoch ``e``; the telescope
pointed ``(−dx, −dy)`` pixels away. Most offsets are a few hundredths to a few tenths of a
pixel (Gaussian, σ = 0.12 pix per axis); ~5 % of epochs add an integer offset of 1–3 pixels
in x and/or y (a re-acquired guide star).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.time import Time, TimeDelta

from msos.simulate.instrument import EXPOSURE_TIME_S, SKY_DN_S

OFFSET_SIGMA_PIX = 0.12
INTEGER_JUMP_PROBABILITY = 0.05


@dataclass
class EpochPlan:
    """Per-epoch truth, arrays over epochs."""

    start: Time  # exposure start (UTC)
    dx: np.ndarray
    dy: np.ndarray
    jitter_sigma_pix: np.ndarray
    sky_dn_s: np.ndarray

    def __len__(self) -> int:
        return len(self.dx)

    @property
    def end(self) -> Time:
        return self.start + TimeDelta(EXPOSURE_TIME_S, format="sec")

    @property
    def mid(self) -> Time:
        return self.start + TimeDelta(EXPOSURE_TIME_S / 2, format="sec")

    @property
    def mid_mjd_tdb(self) -> np.ndarray:
        """Mid-exposure MJD in TDB: the time the light curves are evaluated at (a time-scale
        conversion at the observatory, no barycentric light-time correction)."""
        return np.asarray(self.mid.tdb.mjd, dtype=float)


def plan_epochs(
    seed: int,
    n_epochs: int,
    start: Time,
    cadence_s: float = 900.0,
    jitter_sigma_pix: float = 0.10,
    jitter_scatter: float = 0.08,
    sky_dn_s: float = SKY_DN_S,
) -> EpochPlan:
    """``n_epochs`` exposures every ``cadence_s`` from ``start``.

    Epoch 0 defines the reference grid (zero offset). The jitter scatters by
    ``jitter_scatter`` (fractional, Gaussian) around ``jitter_sigma_pix``; the sky drifts
    linearly by up to ±5 % per day with a 0.5 % random scatter per epoch. Each epoch draws
    from its own generator, so epoch ``e`` is the same whatever ``n_epochs``.
    """
    drift = np.random.default_rng([seed, 2]).uniform(-0.05, 0.05)
    dx, dy, jitter, sky = (np.zeros(n_epochs) for _ in range(4))
    for e in range(n_epochs):
        rng = np.random.default_rng([seed, 2, e])
        dx[e], dy[e] = rng.normal(0.0, OFFSET_SIGMA_PIX, 2)
        if rng.uniform() < INTEGER_JUMP_PROBABILITY:
            steps = rng.integers(-3, 4, size=2)
            dx[e] += steps[0]
            dy[e] += steps[1]
        jitter[e] = jitter_sigma_pix * np.clip(1.0 + rng.normal(0.0, jitter_scatter), 0.5, 1.5)
        sky[e] = sky_dn_s * (1.0 + drift * e * cadence_s / 86400.0 + rng.normal(0.0, 0.005))
    dx[0] = dy[0] = 0.0
    starts = start + TimeDelta(np.arange(n_epochs) * cadence_s, format="sec")
    return EpochPlan(start=starts, dx=dx, dy=dy, jitter_sigma_pix=jitter, sky_dn_s=sky)
