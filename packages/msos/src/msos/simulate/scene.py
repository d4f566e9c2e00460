"""The crowded bulge star field: a luminosity function, positions, and the star renderer.

Magnitudes follow a bulge-like F146 luminosity function between 16 and 26 AB: a red-clump
bump at 16.8, giant-branch counts rising by 0.30 dex/mag to the main-sequence turn-off at 20,
then the main sequence rising by 0.18 dex/mag to 26. Positions are uniform over the image
plus a margin, so stars at the edges are partly off the image. Stars are sorted by (y, x):
``truth_id`` is that order, and rendering walks the image row by row.

:func:`render_stars` adds each star's ePSF footprint (±``half_size`` pixels) to an image with
a numba kernel, exactly in the ``GriddedPSF`` convention (bilinear in the oversampled stamp,
bilinear between grid nodes): a star of flux F at (x0, y0) adds ``F · ePSF(i − x0, j − y0)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from msos.simulate.instrument import PIXEL_SCALE_ARCSEC, mag_to_dn_s
from msos.simulate.psf import phase_table
from roman_schemas.products.msos import GriddedPSF

MAG_BRIGHT = 16.0
MAG_FAINT = 26.0
#: default density of 16–26 AB stars: ≈ 1.0e6 on a full 4088² detector (56 arcmin²)
STARS_PER_ARCMIN2 = 18000.0


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


def render_stars(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    psf: GriddedPSF,
    half_size: int | None = None,
    table: np.ndarray | None = None,
) -> np.ndarray:
    """Add stars of ``flux`` at ``(x, y)`` to ``image`` (float32, in place) with the ePSF grid.

    ``half_size`` (default: the whole stamp) is the footprint half-width in pixels;
    ``table`` may pass a precomputed :func:`msos.simulate.psf.phase_table`.
    """
    o = psf.oversampling
    if half_size is None:
        half_size = (psf.stamps.shape[1] - 1) // (2 * o)
    if table is None:
        table = phase_table(psf, half_size)
    xs = np.unique(psf.x_pix)
    ys = np.unique(psf.y_pix)
    if len(xs) * len(ys) != psf.stamps.shape[0]:
        raise ValueError("ePSF grid positions are not a regular rectangular grid")
    if 2 * half_size + 1 > _ROW:
        raise ValueError(f"footprint half-size {half_size} > {(_ROW - 1) // 2} pixels")
    n = table.shape[-1]
    rows = np.zeros((table[..., 0, 0].size, n, _ROW), np.float32)
    rows[..., :n] = table.reshape(-1, n, n)
    gdx = float(xs[1] - xs[0]) if len(xs) > 1 else 1.0
    gdy = float(ys[1] - ys[0]) if len(ys) > 1 else 1.0
    _render(
        image,
        np.ascontiguousarray(x, np.float64),
        np.ascontiguousarray(y, np.float64),
        np.ascontiguousarray(flux, np.float64),
        rows.reshape(rows.shape[0], -1),
        float(xs[0]),
        gdx,
        len(xs),
        float(ys[0]),
        gdy,
        len(ys),
        o,
        half_size,
    )
    return image


@numba.njit(cache=True)
def _axis_weights(p: float, g0: float, gd: float, ng: int) -> tuple[int, float]:
    """Lower grid node and the bilinear weight of the upper one; clamped to the grid."""
    if ng == 1:
        return 0, 0.0
    f = (p - g0) / gd
    if f <= 0.0:
        return 0, 0.0
    if f >= ng - 1:
        return ng - 2, 1.0
    j = int(f)
    return j, f - j


#: table rows are padded to this many values (a footprint up to 31 pixels wide), so the inner
#: loops have a constant trip count that LLVM vectorises
_ROW = 32


@numba.njit(cache=True, fastmath=True)
def _render(image, xs, ys, fluxes, table, gx0, gdx, ngx, gy0, gdy, ngy, o, half):  # noqa: ANN001, ANN202
    # table: [(g * (o + 1) + py) * (o + 1) + px, ky * _ROW + kx]
    ny, nx = image.shape
    n = 2 * half + 1
    size = n * _ROW
    foot = np.empty(size, np.float32)
    foot2 = foot.reshape((n, _ROW))
    rows = np.empty(16, np.int64)
    wts = np.empty(16, np.float32)
    for s in range(xs.shape[0]):
        x = xs[s]
        y = ys[s]
        f = fluxes[s]
        ix = int(np.floor(x))
        iy = int(np.floor(y))
        if f == 0.0 or ix + half < 0 or ix - half >= nx or iy + half < 0 or iy - half >= ny:
            continue
        qx = (x - ix) * o
        qy = (y - iy) * o
        px = min(int(qx), o - 1)
        py = min(int(qy), o - 1)
        ax = qx - px
        ay = qy - py
        jx, wx = _axis_weights(x, gx0, gdx, ngx)
        jy, wy = _axis_weights(y, gy0, gdy, ngy)
        m = 0
        for dgy in range(2):
            wgy = wy if dgy else 1.0 - wy
            if wgy == 0.0:
                continue
            for dgx in range(2):
                wgx = wx if dgx else 1.0 - wx
                if wgx == 0.0:
                    continue
                g = (jy + dgy) * ngx + jx + dgx
                for dpy in range(2):
                    wpy = ay if dpy else 1.0 - ay
                    if wpy == 0.0:
                        continue
                    for dpx in range(2):
                        wpx = ax if dpx else 1.0 - ax
                        if wpx == 0.0:
                            continue
                        rows[m] = (g * (o + 1) + py + dpy) * (o + 1) + px + dpx
                        wts[m] = f * wgy * wgx * wpy * wpx
                        m += 1
        # the footprint: n rows of _ROW values, one long contiguous loop per combination
        # (2-D indexing with a range index lets LLVM drop the negative-index checks)
        for k in range(size):
            foot[k] = 0.0
        for t in range(m):
            r = rows[t]
            w = wts[t]
            for k in range(size):
                foot[k] += w * table[r, k]
        k0 = max(0, half - ix)
        k1 = min(n, nx - ix + half)
        base = ix - half
        inside = k0 == 0 and base + _ROW <= nx
        for ky in range(n):
            j = iy - half + ky
            if j < 0 or j >= ny:
                continue
            if inside:
                seg = image[j, base : base + _ROW]
                for kx in range(_ROW):  # the padding adds zeros
                    seg[kx] += foot2[ky, kx]
            else:
                for kx in range(k0, k1):
                    image[j, base + kx] += foot2[ky, kx]
    return image
