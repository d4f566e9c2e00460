"""The crowded bulge star field: a luminosity function, positions, and how stars are rendered.

Magnitudes follow a bulge-like F146 luminosity function between 16 and 26 AB: a red-clump
bump at 16.8, giant-branch counts rising by 0.30 dex/mag to the main-sequence turn-off at 20,
then the main sequence rising by 0.18 dex/mag to 26. Positions are uniform over the image
plus a margin, so stars at the edges are partly off the image. Stars are sorted by (y, x):
``truth_id`` is that order, and rendering walks the image row by row.

Stars are rendered with the pipeline's own ePSF model, :func:`msos.psf.model.render_stars` on
the truth ePSF grid as an :class:`~msos.psf.model.EPSFGrid` (cubic B-spline in the oversampled
stamps, bilinear between grid nodes): a star of flux F at (x0, y0) adds
``F · ePSF(i − x0, j − y0)``, exactly what a pipeline model with the truth ePSF predicts.
Its footprint is cut where at most :data:`WING_TOLERANCE_DN_S` of its flux is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from msos.simulate.instrument import PIXEL_SCALE_ARCSEC, mag_to_dn_s

MAG_BRIGHT = 16.0
MAG_FAINT = 26.0
#: default density of 16–26 AB stars: ≈ 1.0e6 on a full 4088² detector (56 arcmin²)
STARS_PER_ARCMIN2 = 18000.0

#: ``wing_tolerance`` of the truth rendering (DN/s): a star's footprint stops where at most
#: this much of its flux lies beyond it (``msos.psf.model.EPSFGrid.footprint_radii``: worst
#: sub-pixel phase and grid stamp). One sky pixel's noise is 0.13 DN/s (sky 0.8 DN/s over
#: 42.56 s at gain 2, read noise 0.09 DN/s): even all in one pixel, 0.01 DN/s would be < 0.08σ,
#: and it is spread over the 100–500 pixels beyond the footprint (≤ 1.4e-4 DN/s in any one).
#: Summed over a full-density field (0.06 stars per pixel) the light left out is 8e-5 DN/s
#: per pixel on average (< 1e-3 anywhere): 0.06 % of the pixel noise, 0.01 % of the sky, 50×
#: below the sky's scatter between epochs. The truth ePSF's Airy wings are broad (1.7 % of the
#: flux beyond 7.5 pixels), so the footprints keep radii of 11–13 pixels (13: all of it); a full
#: detector (1e6 stars) renders in ~10 s on one core (12 s with whole wings).
WING_TOLERANCE_DN_S = 0.01


def luminosity_function(mag: np.ndarray) -> np.ndarray:
    """Relative number of stars per magnitude (dN/dm) at F146 AB ``mag``."""
    mag = np.asarray(mag, dtype=float)
    turnoff = 20.0
    giants = 10.0 ** (0.30 * (mag - turnoff))
    dwarfs = 10.0 ** (0.18 * (mag - turnoff))
    counts = np.where(mag < turnoff, giants, dwarfs)
    clump = 1.2 * 10.0 ** (0.30 * (16.8 - turnoff)) * np.exp(-0.5 * ((mag - 16.8) / 0.25) ** 2)
    return counts + clump


def draw_magnitudes(
    rng: np.random.Generator, n: int, bright: float = MAG_BRIGHT, faint: float = MAG_FAINT
) -> np.ndarray:
    """``n`` magnitudes drawn from :func:`luminosity_function` between ``bright`` and ``faint``."""
    grid = np.linspace(bright, faint, 4001)
    density = luminosity_function(grid)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(grid))])
    return np.interp(rng.uniform(0.0, cdf[-1], n), cdf, grid)


@dataclass
class StarField:
    """Stars on the reference grid, sorted by (y, x); ``flux`` is the baseline (DN/s)."""

    x: np.ndarray
    y: np.ndarray
    mag: np.ndarray
    flux: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


def area_arcmin2(nx: float, ny: float) -> float:
    """Sky area (arcmin²) of ``nx × ny`` pixels."""
    return nx * ny * (PIXEL_SCALE_ARCSEC / 60.0) ** 2


def draw_star_field(
    rng: np.random.Generator,
    shape: tuple[int, int],
    stars_per_arcmin2: float = STARS_PER_ARCMIN2,
    margin: float = 16.0,
) -> StarField:
    """A star field over ``shape`` plus ``margin`` pixels on each side (same density)."""
    ny, nx = shape
    lo_x, hi_x = -0.5 - margin, nx - 0.5 + margin
    lo_y, hi_y = -0.5 - margin, ny - 0.5 + margin
    n = int(rng.poisson(stars_per_arcmin2 * area_arcmin2(hi_x - lo_x, hi_y - lo_y)))
    x = rng.uniform(lo_x, hi_x, n)
    y = rng.uniform(lo_y, hi_y, n)
    mag = draw_magnitudes(rng, n)
    order = np.lexsort((x, y))
    x, y, mag = x[order], y[order], mag[order]
    return StarField(x=x, y=y, mag=mag, flux=mag_to_dn_s(mag))
