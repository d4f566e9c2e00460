"""From a noiseless rate image to Level-2 arrays: noise, detector defects, error arrays, dq.

Noise (per pixel, independent): Poisson on the electrons the expected rate gives over the
effective exposure time, a fixed per-pixel flat-field error (relative, σ = 0.2 %), Gaussian
read noise of the fitted slope. The error arrays are the variances of exactly that noise,
computed from the *expected* (noiseless) rate:
``var_poisson = rate / (gain · t_eff)``, ``var_rnoise = σ_read²``,
``var_flat = (rate · σ_flat)²`` and ``err = √(var_poisson + var_rnoise + var_flat)``.

Defects and their romancal dq bits (``roman_datamodels.dqflags.pixel``):

========================  =========================  =======================================
defect                    dq bits                    data
========================  =========================  =======================================
hot pixel (fixed)         HOT | DO_NOT_USE           scene + 2–200 DN/s excess (+ its noise)
dead column, dead pixels  DEAD | DO_NOT_USE          read noise only (no response)
NaN pixel (fixed)         NO_LIN_CORR | DO_NOT_USE   NaN (data, err, variances)
saturated                 SATURATED | DO_NOT_USE     clipped to the saturation rate
cosmic ray (per epoch)    JUMP_DET                   + the ray's charge / exposure time
========================  =========================  =======================================

Nothing else is flagged and nothing else is NaN. Hot, dead and NaN pixels are fixed on the
detector (the same pixels every epoch); cosmic rays differ every epoch; saturation follows
the bright stars. Dead and NaN pixels are never saturated or hit by cosmic rays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from roman_datamodels.dqflags import pixel

from msos.simulate.instrument import (
    EFFECTIVE_EXPOSURE_TIME_S,
    EXPOSURE_TIME_S,
    FLAT_ERROR,
    GAIN_E_PER_DN,
    READ_NOISE_DN_S,
    SATURATION_DN,
    SATURATION_RATE_DN_S,
)

HOT = int(pixel.HOT | pixel.DO_NOT_USE)
DEAD = int(pixel.DEAD | pixel.DO_NOT_USE)
NAN = int(pixel.NO_LIN_CORR | pixel.DO_NOT_USE)
SATURATED = int(pixel.SATURATED | pixel.DO_NOT_USE)
COSMIC_RAY = int(pixel.JUMP_DET)

#: cosmic-ray hits per cm² per second at L2, on 10 µm pixels
COSMIC_RAY_RATE_CM2_S = 4.0
PIXEL_AREA_CM2 = 1e-6
HOT_FRACTION = 2e-4
DEAD_FRACTION = 5e-5
NAN_FRACTION = 2e-6


@dataclass
class Defects:
    """Fixed defects of one detector (flat pixel indices), and its flat-field error map."""

    shape: tuple[int, int]
    hot: np.ndarray
    hot_rate: np.ndarray
    dead_column: int
    dead: np.ndarray  # dead column and isolated dead pixels
    nan: np.ndarray
    flat_error: np.ndarray

    def unresponsive(self) -> np.ndarray:
        """Flat indices of the pixels that record no light (dead or NaN)."""
        return np.union1d(self.dead, self.nan)


def draw_defects(rng: np.random.Generator, shape: tuple[int, int]) -> Defects:
    """Hot pixels, a dead column plus dead pixels, NaN pixels and the flat-field error."""
    ny, nx = shape
    npix = ny * nx
    column = int(rng.integers(nx // 8, max(nx - nx // 8, nx // 8 + 1)))
    n_dead = max(2, int(rng.poisson(DEAD_FRACTION * npix)))
    n_nan = max(3, int(rng.poisson(NAN_FRACTION * npix)))
    n_hot = max(5, int(rng.poisson(HOT_FRACTION * npix)))
    picks = rng.choice(npix, size=n_dead + n_nan + n_hot, replace=False)
    column_pixels = np.arange(ny) * nx + column
    picks = picks[~np.isin(picks, column_pixels)]
    dead = np.union1d(column_pixels, picks[:n_dead])
    nan = np.sort(picks[n_dead : n_dead + n_nan])
    hot = np.sort(picks[n_dead + n_nan :])
    hot_rate = np.exp(rng.uniform(np.log(2.0), np.log(200.0), len(hot)))
    flat_error = rng.normal(0.0, FLAT_ERROR, shape).astype(np.float32)
    return Defects(shape, hot, hot_rate, column, dead, nan, flat_error)


@dataclass
class Level2Arrays:
    """The arrays of an L2 ``wfi_image`` (dtype as written), and what was injected."""

    data: np.ndarray  # float32, DN/s
    dq: np.ndarray  # uint32
    err: np.ndarray  # float16
    var_poisson: np.ndarray  # float16
    var_rnoise: np.ndarray  # float16
    var_flat: np.ndarray  # float16
    cosmic_rays: np.ndarray  # flat indices of the pixels a cosmic ray hit
    saturated: np.ndarray  # flat indices of the saturated pixels


def cosmic_ray_hits(
    rng: np.random.Generator, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Pixels hit by cosmic rays in one exposure and the charge each received (DN).

    Each ray deposits a log-normal charge (median 1500 e⁻) in one pixel and 5–15 % of it in
    each of the 4 neighbours (charge diffusion / inter-pixel capacitance).
    """
    ny, nx = shape
    n = int(rng.poisson(COSMIC_RAY_RATE_CM2_S * PIXEL_AREA_CM2 * ny * nx * EXPOSURE_TIME_S))
    y = rng.integers(0, ny, n)
    x = rng.integers(0, nx, n)
    charge = rng.lognormal(np.log(1500.0), 0.6, n) / GAIN_E_PER_DN
    ys, xs, qs = [y], [x], [charge]
    for sy, sx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        ys.append(y + sy)
        xs.append(x + sx)
        qs.append(charge * rng.uniform(0.05, 0.15, n))
    ys, xs, qs = np.concatenate(ys), np.concatenate(xs), np.concatenate(qs)
    inside = (ys >= 0) & (ys < ny) & (xs >= 0) & (xs < nx)
    flat = ys[inside] * nx + xs[inside]
    total = np.bincount(flat, weights=qs[inside], minlength=ny * nx)
    pixels = np.flatnonzero(total)
    return pixels, total[pixels]


def observe(model: np.ndarray, defects: Defects, rng: np.random.Generator) -> Level2Arrays:
    """Turn a noiseless rate image (DN/s, float32) into noisy L2 arrays with defects."""
    shape = model.shape
    t_eff = EFFECTIVE_EXPOSURE_TIME_S
    signal = model.astype(np.float32, copy=True).ravel()
    signal[defects.hot] += defects.hot_rate.astype(np.float32)
    np.maximum(signal, 0.0, out=signal)

    electrons = rng.poisson(signal.astype(np.float64) * (GAIN_E_PER_DN * t_eff))
    data = electrons.astype(np.float32)
    del electrons
    data *= np.float32(1.0 / (GAIN_E_PER_DN * t_eff))
    data *= 1.0 + defects.flat_error.ravel()
    data += rng.standard_normal(data.shape, dtype=np.float32) * np.float32(READ_NOISE_DN_S)
    var_poisson = signal / np.float32(GAIN_E_PER_DN * t_eff)
    var_flat = (signal * np.float32(FLAT_ERROR)) ** 2
    dq = np.zeros(data.shape, np.uint32)

    unresponsive = defects.unresponsive()
    rays, charge = cosmic_ray_hits(rng, shape)
    keep = ~np.isin(rays, unresponsive)
    rays, charge = rays[keep], charge[keep]
    data[rays] += (charge / EXPOSURE_TIME_S).astype(np.float32)
    dq[rays] |= COSMIC_RAY

    saturated = np.flatnonzero(data * np.float32(EXPOSURE_TIME_S) > SATURATION_DN)
    saturated = saturated[~np.isin(saturated, unresponsive)]
    data[saturated] = SATURATION_RATE_DN_S
    var_poisson[saturated] = SATURATION_RATE_DN_S / (GAIN_E_PER_DN * t_eff)
    var_flat[saturated] = (SATURATION_RATE_DN_S * FLAT_ERROR) ** 2
    dq[saturated] |= SATURATED

    dq[defects.hot] |= HOT
    dead = defects.dead
    data[dead] = rng.standard_normal(len(dead), dtype=np.float32) * np.float32(READ_NOISE_DN_S)
    var_poisson[dead] = 0.0
    var_flat[dead] = 0.0
    dq[dead] |= DEAD

    err = np.sqrt(var_poisson + np.float32(READ_NOISE_DN_S**2) + var_flat)
    var_rnoise = np.full(data.shape, READ_NOISE_DN_S**2, np.float16)
    for array in (data, err, var_poisson, var_rnoise, var_flat):
        array[defects.nan] = np.nan
    dq[defects.nan] |= NAN

    return Level2Arrays(
        data=data.reshape(shape),
        dq=dq.reshape(shape),
        err=err.astype(np.float16).reshape(shape),
        var_poisson=var_poisson.astype(np.float16).reshape(shape),
        var_rnoise=var_rnoise.reshape(shape),
        var_flat=var_flat.astype(np.float16).reshape(shape),
        cosmic_rays=rays,
        saturated=saturated,
    )
