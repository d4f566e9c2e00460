"""Interim ePSF evaluation (numba) for ``psf.build`` and ``catalog.kernel``.

Private and temporary: ``msos.psf.model`` (fast ePSF evaluation and rendering) is being
written at the same time; once it lands, the few calls into this module are swapped for it
and this file goes. It follows the README's ``GriddedPSF`` convention exactly:

- ``stamps[n, sy, sx]`` sampled ``oversampling`` times per pixel, centre at index
  ``c = ((sy - 1) / 2, (sx - 1) / 2)``; a star of flux ``F`` at ``(x0, y0)`` puts
  ``F * ePSF(i - x0, j - y0)`` into pixel ``(i, j)``, ``ePSF(u, v)`` = the stamp interpolated
  at index ``(c_y + v * oversampling, c_x + u * oversampling)``;
- between grid nodes (regular grid, row-major: y outer, x inner) the stamps are interpolated
  bilinearly; outside the grid the nearest edge node is used (clamped).

Within a stamp the interpolation is Catmull-Rom cubic convolution (Keys, a = -0.5): C¹, exact
for quadratics, with analytic derivatives for the position fits. Taps outside the stamp are 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np


@dataclass(frozen=True)
class PsfGrid:
    """A ``GriddedPSF`` unpacked for the numba kernels: stamps as ``[gy, gx, sy, sx]``."""

    stamps: np.ndarray  # float64 [n_gy, n_gx, sy, sx]
    grid_x: np.ndarray  # float64, increasing
    grid_y: np.ndarray  # float64, increasing
    oversampling: int

    @property
    def half_width_pix(self) -> float:
        """Detector pixels from the centre to the stamp edge (the render radius)."""
        return (min(self.stamps.shape[2:]) - 1) / 2 / self.oversampling

    @classmethod
    def from_arrays(
        cls, stamps: np.ndarray, x_pix: np.ndarray, y_pix: np.ndarray, oversampling: int
    ) -> PsfGrid:
        stamps = np.asarray(stamps, dtype=np.float64)
        x_pix = np.asarray(x_pix, dtype=np.float64)
        y_pix = np.asarray(y_pix, dtype=np.float64)
        grid_x = np.unique(x_pix)
        grid_y = np.unique(y_pix)
        if grid_x.size * grid_y.size != stamps.shape[0]:
            raise ValueError("grid positions do not form a regular rectangular grid")
        cube = np.empty((grid_y.size, grid_x.size, *stamps.shape[1:]), dtype=np.float64)
        for n in range(stamps.shape[0]):
            cube[np.searchsorted(grid_y, y_pix[n]), np.searchsorted(grid_x, x_pix[n])] = stamps[n]
        return cls(cube, grid_x, grid_y, int(oversampling))

    @classmethod
    def from_model(cls, psf: object) -> PsfGrid:
        """From a ``roman_schemas`` ``GriddedPSF`` (or anything with the same four fields)."""
        if isinstance(psf, PsfGrid):
            return psf
        return cls.from_arrays(psf.stamps, psf.x_pix, psf.y_pix, psf.oversampling)


@numba.njit(cache=True)
def node_weights(x: float, y: float, grid_x: np.ndarray, grid_y: np.ndarray) -> tuple:
    """Bilinear node weights at ``(x, y)``: ``(iy0, ix0, wy, wx)`` with clamping."""
    nx = grid_x.size
    ny = grid_y.size
    if nx == 1 or x <= grid_x[0]:
        ix0, wx = 0, 0.0
    elif x >= grid_x[nx - 1]:
        ix0, wx = nx - 2, 1.0
    else:
        ix0 = np.searchsorted(grid_x, x) - 1
        wx = (x - grid_x[ix0]) / (grid_x[ix0 + 1] - grid_x[ix0])
    if ny == 1 or y <= grid_y[0]:
        iy0, wy = 0, 0.0
    elif y >= grid_y[ny - 1]:
        iy0, wy = ny - 2, 1.0
    else:
        iy0 = np.searchsorted(grid_y, y) - 1
        wy = (y - grid_y[iy0]) / (grid_y[iy0 + 1] - grid_y[iy0])
    return iy0, ix0, wy, wx


@numba.njit(cache=True)
def local_stamp(
    stamps: np.ndarray, grid_x: np.ndarray, grid_y: np.ndarray, x: float, y: float
) -> np.ndarray:
    """The stamp at detector position ``(x, y)`` (bilinear between nodes)."""
    iy0, ix0, wy, wx = node_weights(x, y, grid_x, grid_y)
    sy, sx = stamps.shape[2], stamps.shape[3]
    out = np.zeros((sy, sx))
    ny, nx = stamps.shape[0], stamps.shape[1]
    for a in range(2):
        iy = min(iy0 + a, ny - 1)
        fy = wy if a == 1 else 1.0 - wy
        if fy == 0.0:
            continue
        for b in range(2):
            ix = min(ix0 + b, nx - 1)
            fx = wx if b == 1 else 1.0 - wx
            if fx == 0.0:
                continue
            f = fy * fx
            for r in range(sy):
                for c in range(sx):
                    out[r, c] += f * stamps[iy, ix, r, c]
    return out


@numba.njit(cache=True)
def eval_stamp(
    stamp: np.ndarray, os: int, u: float, v: float, deriv: bool, out: np.ndarray
) -> None:
    """ePSF of a single stamp at offset ``(u, v)`` (pixels): ``out = [value, d/du, d/dv]``."""
    sy, sx = stamp.shape
    row = 0.5 * (sy - 1) + v * os
    col = 0.5 * (sx - 1) + u * os
    r0 = math.floor(row)
    c0 = math.floor(col)
    out[0] = 0.0
    out[1] = 0.0
    out[2] = 0.0
    if r0 < -2 or c0 < -2 or r0 > sy or c0 > sx:
        return
    t = row - r0
    t2 = t * t
    t3 = t2 * t
    wy0 = 0.5 * (-t3 + 2.0 * t2 - t)
    wy1 = 0.5 * (3.0 * t3 - 5.0 * t2 + 2.0)
    wy2 = 0.5 * (-3.0 * t3 + 4.0 * t2 + t)
    wy3 = 0.5 * (t3 - t2)
    t = col - c0
    t2 = t * t
    t3 = t2 * t
    wx0 = 0.5 * (-t3 + 2.0 * t2 - t)
    wx1 = 0.5 * (3.0 * t3 - 5.0 * t2 + 2.0)
    wx2 = 0.5 * (-3.0 * t3 + 4.0 * t2 + t)
    wx3 = 0.5 * (t3 - t2)
    interior = r0 >= 1 and c0 >= 1 and r0 + 2 < sy and c0 + 2 < sx
    if not deriv:
        val = 0.0
        for a in range(4):
            r = r0 - 1 + a
            if r < 0 or r >= sy:
                continue
            wa = wy0 if a == 0 else (wy1 if a == 1 else (wy2 if a == 2 else wy3))
            if interior:
                rx = (
                    wx0 * stamp[r, c0 - 1]
                    + wx1 * stamp[r, c0]
                    + wx2 * stamp[r, c0 + 1]
                    + wx3 * stamp[r, c0 + 2]
                )
            else:
                rx = 0.0
                for b in range(4):
                    c = c0 - 1 + b
                    if c < 0 or c >= sx:
                        continue
                    wb = wx0 if b == 0 else (wx1 if b == 1 else (wx2 if b == 2 else wx3))
                    rx += wb * stamp[r, c]
            val += wa * rx
        out[0] = val
        return
    t = row - r0
    t2 = t * t
    dy0 = 0.5 * (-3.0 * t2 + 4.0 * t - 1.0)
    dy1 = 0.5 * (9.0 * t2 - 10.0 * t)
    dy2 = 0.5 * (-9.0 * t2 + 8.0 * t + 1.0)
    dy3 = 0.5 * (3.0 * t2 - 2.0 * t)
    t = col - c0
    t2 = t * t
    dx0 = 0.5 * (-3.0 * t2 + 4.0 * t - 1.0)
    dx1 = 0.5 * (9.0 * t2 - 10.0 * t)
    dx2 = 0.5 * (-9.0 * t2 + 8.0 * t + 1.0)
    dx3 = 0.5 * (3.0 * t2 - 2.0 * t)
    val = 0.0
    du = 0.0
    dv = 0.0
    for a in range(4):
        r = r0 - 1 + a
        if r < 0 or r >= sy:
            continue
        wa = wy0 if a == 0 else (wy1 if a == 1 else (wy2 if a == 2 else wy3))
        da = dy0 if a == 0 else (dy1 if a == 1 else (dy2 if a == 2 else dy3))
        rx = 0.0
        rdx = 0.0
        for b in range(4):
            c = c0 - 1 + b
            if c < 0 or c >= sx:
                continue
            s = stamp[r, c]
            wb = wx0 if b == 0 else (wx1 if b == 1 else (wx2 if b == 2 else wx3))
            db = dx0 if b == 0 else (dx1 if b == 1 else (dx2 if b == 2 else dx3))
            rx += wb * s
            rdx += db * s
        val += wa * rx
        du += wa * rdx
        dv += da * rx
    out[0] = val
    out[1] = du * os
    out[2] = dv * os


@numba.njit(cache=True)
def render_into(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    stamps: np.ndarray,
    grid_x: np.ndarray,
    grid_y: np.ndarray,
    os: int,
    sign: float,
) -> None:
    """``image += sign * Σ flux · ePSF`` over each star's stamp footprint (in place)."""
    ny, nx = image.shape
    sy, sx = stamps.shape[2], stamps.shape[3]
    hw = 0.5 * (min(sy, sx) - 1) / os
    out = np.empty(3)
    for k in range(x.size):
        if not (math.isfinite(x[k]) and math.isfinite(y[k]) and math.isfinite(flux[k])):
            continue
        stamp = local_stamp(stamps, grid_x, grid_y, x[k], y[k])
        i0 = max(math.ceil(x[k] - hw), 0)
        i1 = min(math.floor(x[k] + hw), nx - 1)
        j0 = max(math.ceil(y[k] - hw), 0)
        j1 = min(math.floor(y[k] + hw), ny - 1)
        for j in range(j0, j1 + 1):
            for i in range(i0, i1 + 1):
                eval_stamp(stamp, os, i - x[k], j - y[k], False, out)
                image[j, i] += sign * flux[k] * out[0]


def render(
    shape: tuple[int, int],
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    psf: object,
) -> np.ndarray:
    """A float64 image of stars rendered with a ``GriddedPSF`` (or :class:`PsfGrid`)."""
    grid = PsfGrid.from_model(psf)
    image = np.zeros(shape, dtype=np.float64)
    render_into(
        image,
        np.asarray(x, dtype=np.float64),
        np.asarray(y, dtype=np.float64),
        np.asarray(flux, dtype=np.float64),
        grid.stamps,
        grid.grid_x,
        grid.grid_y,
        grid.oversampling,
        1.0,
    )
    return image


def pixel_kernel(
    psf: object, radius: int = 2, phase: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """The grid-averaged ePSF sampled at integer offsets of a star at ``phase = (px, py)``.

    ``kernel[j + radius, i + radius] = ePSF(i - px, j - py)``: correlating an image with it
    gives the matched filter of stars centred at ``pixel + phase``.
    """
    grid = PsfGrid.from_model(psf)
    mean = grid.stamps.mean(axis=(0, 1))
    out = np.empty(3)
    kernel = np.zeros((2 * radius + 1, 2 * radius + 1))
    for j in range(-radius, radius + 1):
        for i in range(-radius, radius + 1):
            eval_stamp(mean, grid.oversampling, i - phase[0], j - phase[1], False, out)
            kernel[j + radius, i + radius] = out[0]
    return kernel
