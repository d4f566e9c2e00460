"""Building a spatially varying effective PSF grid from the stars of an image.

Pure functions on arrays. The ePSF convention is the package README's: stamps sampled
``oversampling`` times per pixel, centre at the stamp centre, bilinear interpolation between
grid nodes; the result is a :class:`msos.psf.model.EPSFGrid` (each stamp summing to
``oversampling²``, evaluated with the model's cubic B-spline everywhere here), and
:meth:`EPSFBuildResult.gridded_psf` gives the ``GriddedPSF`` product (stamps summing to 1).

Algorithm (Anderson & King 2000, extended to a grid of nodes):

* **Stars.** :func:`select_psf_stars` keeps bright, unsaturated stars with no bad pixel within
  ``core_radius``, away from the edges, with no neighbour within ``min_separation`` at all
  and none brighter than ``max_neighbour_ratio`` × the star within the stamp. In a crowded field
  the other stars are not ignored but *subtracted*: every iteration renders all known objects
  (``neighbours``: positions and fluxes from the catalog) with the current ePSF and removes
  them from each PSF star's stamp.
* **Iteration.** Starting from a pixel-integrated Gaussian of ``initial_fwhm`` (or ``initial``):
  (1) each star's flux and position are fitted with the current ePSF (Gauss–Newton, pixels
  within ``fit_radius``, one star at a time against the residual of all the others); (2) every
  pixel within ``stamp_radius`` of a star gives a sample of the *residual* ePSF,
  ``(data − model) / flux``, at the offset ``(i − x, j − y)``; (3) each sample is assigned to
  the nearest stamp grid point and to the grid nodes with the bilinear weights of the star's
  position (the weights with which the node enters the model there), so the update is the
  weighted least-squares correction of the gridded model; samples are weighted by their
  inverse variance and sigma-clipped per grid point and node; (4) the corrections are smoothed
  with a 3×3 binomial kernel on the oversampled grid (the Anderson & King smoothing: noise
  between neighbouring oversampled points is not PSF structure), added, and each stamp is
  renormalised (sum ``oversampling²``) and re-centred (its centroid within ``centre_radius``
  moved to the stamp centre by shifting it with the model's spline). Iterates until the
  largest change within ``centre_radius`` is below ``tol`` × the peak, or ``max_iter`` (the
  remaining changes are then the noise of the samples, not a drift).
* **Nodes.** Each node of a grid is pulled towards the plane (linear in x and y) fitted
  through all nodes, as if ``min_stars`` stars of that plane were added to its own ``N``
  (Σ of the bilinear weights): ``(N·S + min_stars·S_plane) / (N + min_stars)``. Node-to-node
  differences the bilinear blend hides from stars between nodes are otherwise held by
  almost nothing and drift, and a node with few stars is noisy.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from msos.catalog.kernel import estimate_background, measure_objects
from msos.psf.model import (
    EPSFGrid,
    _add_star,
    _bspline_weights,
    _corner,
    _footprint_epsf,
    _footprint_epsf_gradient,
    _grid_weights,
    _row_order,
    gaussian_epsf,
    render_stars,
    to_gridded_psf,
)
from roman_schemas.products.msos import GriddedPSF

log = logging.getLogger(__name__)

__all__ = ["EPSFBuildResult", "build_epsf_from_epochs", "build_epsf_grid", "select_psf_stars"]


def select_psf_stars(
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    shape: tuple[int, int],
    *,
    flux_err: np.ndarray | None = None,
    bad: np.ndarray | None = None,
    saturated: np.ndarray | None = None,
    min_snr: float = 50.0,
    min_separation: float = 2.0,
    close_ratio: float = 0.1,
    max_neighbour_ratio: float = 0.5,
    stamp_radius: float = 5.0,
    core_radius: float = 2.0,
    max_stars: int | None = None,
) -> np.ndarray:
    """Boolean mask of the stars suited to building the ePSF (see the module docstring).

    ``min_snr`` applies to ``flux / flux_err`` when errors are given. A neighbour within
    ``min_separation`` disqualifies a star only if it holds more than ``close_ratio`` × the
    star's flux: a catalog measured with a first-guess PSF that lacks the diffraction ring
    (a Gaussian for an obscured Airy pattern) finds faint "stars" on the ring of every bright
    star (a few % of its flux each), and rejecting every star with any object that close would
    reject exactly the bright stars the ePSF needs, leaving faint ones sitting in the wings of
    brighter stars. (The build refits such objects' fluxes with the current ePSF: once the
    ePSF holds the ring they drop to ~0.)
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    flux = np.asarray(flux, dtype=float)
    ny, nx = shape
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(flux) & (flux > 0)
    ok &= (x >= stamp_radius) & (y >= stamp_radius)
    ok &= (x <= nx - 1 - stamp_radius) & (y <= ny - 1 - stamp_radius)
    if flux_err is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            ok &= flux / np.asarray(flux_err, dtype=float) >= min_snr
    unusable = None
    for mask in (bad, saturated):
        if mask is not None:
            unusable = mask if unusable is None else (unusable | mask)
    if unusable is not None and unusable.any():
        near = ndimage.binary_dilation(unusable, iterations=math.ceil(core_radius))
        ix = np.clip(np.round(x).astype(int), 0, nx - 1)
        iy = np.clip(np.round(y).astype(int), 0, ny - 1)
        ok &= ~near[iy, ix]
    if x.size > 1:
        pts = np.column_stack([np.nan_to_num(x), np.nan_to_num(y)])
        tree = cKDTree(pts)
        close = tree.query_pairs(min_separation, output_type="ndarray")
        if len(close):
            a, b = close[:, 0], close[:, 1]
            ok[a[~(flux[b] <= close_ratio * flux[a])]] = False
            ok[b[~(flux[a] <= close_ratio * flux[b])]] = False
        pairs = tree.query_pairs(stamp_radius, output_type="ndarray")
        if len(pairs):
            a, b = pairs[:, 0], pairs[:, 1]
            ok[a[flux[b] > max_neighbour_ratio * flux[a]]] = False
            ok[b[flux[a] > max_neighbour_ratio * flux[b]]] = False
    if max_stars is not None and ok.sum() > max_stars:
        idx = np.nonzero(ok)[0]
        keep = idx[np.argsort(-flux[idx], kind="stable")[:max_stars]]
        ok[:] = False
        ok[keep] = True
    return ok


@numba.njit(cache=True)
def _fit_stars(
    resid: np.ndarray,
    weight: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    f: np.ndarray,
    use: np.ndarray,
    ep: tuple,
    fit_r: float,
    n_iter: int,
) -> None:
    """Flux and position of each used star with the current ePSF, one star at a time.

    ``resid`` is the image minus every model: the star's model is added back, the star
    fitted (Gauss–Newton, ``n_iter`` steps at most, pixels within ``fit_r``) and its new
    model subtracted. ``ep = (coef, grid_x, grid_y, o, cy, cx, radius)``: the ePSF's
    coefficients padded for the footprint ``radius`` (≥ ``fit_r`` + ½) of its models.
    """
    coef, grid_x, grid_y, o, cy, cx, radius = ep
    ny, nx = resid.shape
    values = np.empty((2 * radius + 1, 2 * radius + 1))
    rf = math.ceil(fit_r + 0.5)  # the footprint holding the fit pixels
    psf = np.empty((3, 2 * rf + 1, 2 * rf + 1))
    for k in range(x.size):
        if not use[k]:
            continue
        _add_star(resid, coef, grid_x, grid_y, x[k], y[k], o, cy, cx, x[k], y[k], f[k], radius,
                  values)  # fmt: skip
        for _ in range(n_iter):
            a = np.zeros((3, 3))
            b = np.zeros(3)
            jac = np.zeros(3)
            ix = math.floor(x[k] + 0.5)
            iy = math.floor(y[k] + 0.5)
            _footprint_epsf_gradient(coef, grid_x, grid_y, o, cy, cx, x[k], y[k], ix, iy, rf, psf)
            for j in range(max(iy - rf, 0), min(iy + rf, ny - 1) + 1):
                for i in range(max(ix - rf, 0), min(ix + rf, nx - 1) + 1):
                    w = weight[j, i]
                    if w <= 0.0 or (i - x[k]) ** 2 + (j - y[k]) ** 2 > fit_r * fit_r:
                        continue
                    jj = j - iy + rf
                    ii = i - ix + rf
                    r = resid[j, i] - f[k] * psf[0, jj, ii]
                    jac[0] = psf[0, jj, ii]
                    jac[1] = f[k] * psf[1, jj, ii]
                    jac[2] = f[k] * psf[2, jj, ii]
                    for p in range(3):
                        b[p] += w * jac[p] * r
                        for q in range(3):
                            a[p, q] += w * jac[p] * jac[q]
            for p in range(3):
                if a[p, p] <= 0.0:
                    a[p, p] = 1.0
                a[p, p] *= 1.0 + 1e-4
            det = (
                a[0, 0] * (a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1])
                - a[0, 1] * (a[1, 0] * a[2, 2] - a[1, 2] * a[2, 0])
                + a[0, 2] * (a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0])
            )
            if det == 0.0:
                break
            d = np.linalg.solve(a, b)
            f[k] += d[0]
            x[k] += min(max(d[1], -0.3), 0.3)
            y[k] += min(max(d[2], -0.3), 0.3)
            if abs(d[1]) < 1e-5 and abs(d[2]) < 1e-5:
                break
        _add_star(resid, coef, grid_x, grid_y, x[k], y[k], o, cy, cx, x[k], y[k], -f[k], radius,
                  values)  # fmt: skip


@numba.njit(cache=True)
def _refit_fluxes(
    resid: np.ndarray,
    weight: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    f: np.ndarray,
    ep: tuple,
    fit_r: float,
) -> None:
    """Flux (≥ 0, position held) of every star with the current ePSF, one star at a time.

    ``resid`` is the image minus every model: the star's model is added back, its flux is the
    weighted linear least-squares fit over the pixels within ``fit_r`` (unchanged if it has
    none) and its new model is subtracted (one Gauss–Seidel sweep).
    """
    coef, grid_x, grid_y, o, cy, cx, radius = ep
    ny, nx = resid.shape
    values = np.empty((2 * radius + 1, 2 * radius + 1))
    rf = min(math.ceil(fit_r + 0.5), radius)  # the pixels holding the fit disc
    for k in _row_order(y, ny):  # row by row: the footprints stay in cache
        if not (math.isfinite(x[k]) and math.isfinite(y[k]) and math.isfinite(f[k])):
            continue
        ix = math.floor(x[k] + 0.5)
        iy = math.floor(y[k] + 0.5)
        if ix < -radius or ix > nx - 1 + radius or iy < -radius or iy > ny - 1 + radius:
            continue
        _footprint_epsf(coef, grid_x, grid_y, o, cy, cx, x[k], y[k], ix, iy, radius, values)
        a = 0.0
        b = 0.0
        for j in range(max(iy - rf, 0), min(iy + rf, ny - 1) + 1):
            for i in range(max(ix - rf, 0), min(ix + rf, nx - 1) + 1):
                w = weight[j, i]
                if w <= 0.0 or (i - x[k]) ** 2 + (j - y[k]) ** 2 > fit_r * fit_r:
                    continue
                p = values[j - iy + radius, i - ix + radius]
                a += w * p * p
                b += w * p * (resid[j, i] + f[k] * p)
        if not (a > 0.0):
            continue
        new = max(b / a, 0.0)
        change = new - f[k]
        f[k] = new
        for j in range(max(iy - radius, 0), min(iy + radius, ny - 1) + 1):
            for i in range(max(ix - radius, 0), min(ix + radius, nx - 1) + 1):
                resid[j, i] -= change * values[j - iy + radius, i - ix + radius]


@numba.njit(cache=True, inline="always")
def _sample_star(
    ep: tuple,
    grid_x: np.ndarray,
    grid_y: np.ndarray,
    x0: float,
    y0: float,
    radius: float,
    ny: int,
    nx: int,
    own: np.ndarray,
) -> tuple:
    """What every sample loop needs of one star: its nearest pixel, its ePSF footprint (into
    ``own``, the footprint radius of ``ep``), its bilinear node weights and the box of pixels
    within ``radius`` (clipped to the image)."""
    coef, gx_, gy_, o, cy, cx, rfoot = ep
    ixk = math.floor(x0 + 0.5)
    iyk = math.floor(y0 + 0.5)
    _footprint_epsf(coef, gx_, gy_, o, cy, cx, x0, y0, ixk, iyk, rfoot, own)
    weights = _grid_weights(grid_x, grid_y, x0, y0)
    i0 = max(math.ceil(x0 - radius), 0)
    i1 = min(math.floor(x0 + radius), nx - 1)
    j0 = max(math.ceil(y0 - radius), 0)
    j1 = min(math.floor(y0 + radius), ny - 1)
    return ixk, iyk, weights, i0, i1, j0, j1


@numba.njit(cache=True)
def _accumulate(
    resid: np.ndarray,
    var: np.ndarray,
    bad: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    f: np.ndarray,
    use: np.ndarray,
    size: int,
    grid_x: np.ndarray,
    grid_y: np.ndarray,
    os: int,
    radius: float,
    clip: float,
    mean_in: np.ndarray,
    rms_in: np.ndarray,
    acc: np.ndarray,
    model: np.ndarray,
    model_error: float,
    ep: tuple,
) -> None:
    """Residual samples → per node and stamp grid point sums (one clipping round).

    ``resid`` is the image minus every model, ``model`` every model. ``acc[n, 0/1/2/3, r, c]``
    = Σω·r, Σω, Σω·r², Σb (r = residual / flux, b = bilinear node weight, ω = b × inverse
    variance of r; that variance is the pixel's plus ``(model_error × the other stars'
    model)²``, so a pixel where a neighbour's imperfect model dominates says little about this
    star's ePSF). With ``clip > 0`` samples whose normalised deviation from the previous
    round's mean exceeds ``clip`` × max(1, that round's rms) are skipped.
    """
    rfoot = ep[6]
    own = np.empty((2 * rfoot + 1, 2 * rfoot + 1))
    ny, nx = resid.shape
    c = 0.5 * (size - 1)
    ngx = grid_x.size
    for k in range(x.size):
        if not use[k] or not (f[k] > 0.0):
            continue
        ixk, iyk, weights, i0, i1, j0, j1 = _sample_star(
            ep, grid_x, grid_y, x[k], y[k], radius, ny, nx, own
        )
        for j in range(j0, j1 + 1):
            for i in range(i0, i1 + 1):
                if bad[j, i] or not (var[j, i] > 0.0):
                    continue
                u = i - x[k]
                v = j - y[k]
                r_ = round(c + v * os)
                c_ = round(c + u * os)
                if r_ < 0 or r_ >= size or c_ < 0 or c_ >= size:
                    continue
                res = resid[j, i] / f[k]
                jj = j - iyk + rfoot
                ii = i - ixk + rfoot
                others = model[j, i]
                if 0 <= jj < own.shape[0] and 0 <= ii < own.shape[1]:
                    others -= f[k] * own[jj, ii]
                w = f[k] * f[k] / (var[j, i] + (model_error * others) ** 2)
                for q in range(4):
                    gy, gx, bq = _corner(weights, q)
                    if bq == 0.0:
                        continue
                    n = gy * ngx + gx
                    if clip > 0.0:
                        dev = (res - mean_in[n, r_, c_]) * math.sqrt(w)
                        if abs(dev) > clip * max(rms_in[n, r_, c_], 1.0):
                            continue
                    om = bq * w
                    acc[n, 0, r_, c_] += om * res
                    acc[n, 1, r_, c_] += om
                    acc[n, 2, r_, c_] += om * res * res
                    acc[n, 3, r_, c_] += bq


@numba.njit(cache=True)
def _node_stars(
    x: np.ndarray, y: np.ndarray, use: np.ndarray, grid_x: np.ndarray, grid_y: np.ndarray
) -> np.ndarray:
    """Σ of each node's bilinear weight over the used stars (row-major, y outer)."""
    out = np.zeros(grid_y.size * grid_x.size)
    for k in range(x.size):
        if use[k]:
            weights = _grid_weights(grid_x, grid_y, x[k], y[k])
            for q in range(4):
                gy, gx, bq = _corner(weights, q)
                out[gy * grid_x.size + gx] += bq
    return out


@dataclass
class EPSFBuildResult:
    """The built ePSF grid and what it was built from."""

    epsf: EPSFGrid  # kernel convention: each stamp sums to oversampling²
    n_stars: np.ndarray  # per node (row-major, y outer): Σ bilinear weights of its stars
    x: np.ndarray  # fitted positions and fluxes of the PSF stars
    y: np.ndarray
    flux: np.ndarray
    n_iter: int
    converged: bool
    max_change: float  # last iteration's largest change / peak

    def gridded_psf(self) -> GriddedPSF:
        """The grid as a product: ``GriddedPSF`` stamps summing to 1 (``to_gridded_psf``)."""
        return to_gridded_psf(self.epsf)


def _centroid(stamp: np.ndarray, os: int, radius: float) -> tuple[float, float]:
    sy, sx = stamp.shape
    yy, xx = np.mgrid[0:sy, 0:sx]
    cy, cx = (sy - 1) / 2, (sx - 1) / 2
    gx, gy = 0.0, 0.0
    for _ in range(5):
        w = np.where((xx - cx - gx) ** 2 + (yy - cy - gy) ** 2 <= (radius * os) ** 2, stamp, 0.0)
        s = w.sum()
        if s <= 0:
            break
        nx_, ny_ = (w * (xx - cx)).sum() / s, (w * (yy - cy)).sum() / s
        if abs(nx_ - gx) < 1e-6 and abs(ny_ - gy) < 1e-6:
            gx, gy = nx_, ny_
            break
        gx, gy = nx_, ny_
    return gx, gy  # in stamp samples


def _recentre(stamp: np.ndarray, os: int, radius: float) -> np.ndarray:
    """The stamp shifted (with the ePSF's own spline) so its central centroid is at the centre."""
    t = (np.arange(stamp.shape[0]) - (stamp.shape[0] - 1) / 2) / os
    for _ in range(3):
        gx, gy = _centroid(stamp, os, radius)
        if abs(gx) < 1e-4 and abs(gy) < 1e-4:
            break
        shifted = EPSFGrid(stamp, oversampling=os)
        stamp = shifted.evaluate(t[None, :] + gx / os, t[:, None] + gy / os)
    return stamp


def build_epsf_grid(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    *,
    bad: np.ndarray | None = None,
    variance: np.ndarray | None = None,
    background: np.ndarray | float = 0.0,
    neighbours: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    grid_shape: tuple[int, int] = (3, 3),
    oversampling: int = 4,
    stamp_radius: int = 5,
    fit_radius: float = 2.5,
    initial_fwhm: float = 1.3,
    initial: EPSFGrid | None = None,
    max_iter: int = 12,
    tol: float = 3e-3,
    clip_sigma: float = 3.0,
    min_stars: float = 15.0,
    centre_radius: float = 1.5,
    smooth: bool = True,
    refit_neighbours: bool = True,
    background_box: int | None = 32,
    model_error: float = 0.05,
    ghost_radius: float = 3.0,
    ghost_ratio: float = 0.05,
) -> EPSFBuildResult:
    """Build a ``grid_shape`` (ny, nx) ePSF grid from the PSF stars ``x, y, flux``.

    ``x, y, flux``: the stars to build from (e.g. :func:`select_psf_stars` of the catalog),
    first guesses of position and flux. ``neighbours``: every *other* known object (x, y,
    flux), subtracted with the current ePSF. ``background``: subtracted from the image.
    Grid nodes sit at the centres of ``grid_shape`` equal cells of the image. ``initial``:
    the first guess (an ePSF grid of the same ``oversampling``, resampled to the nodes and
    cropped or padded to ``stamp_radius``) instead of a Gaussian of ``initial_fwhm``.
    ``refit_neighbours``: refit the neighbours' fluxes with the current ePSF every iteration
    (their catalog fluxes come from the first-guess PSF). ``background_box``: re-measure the
    background every iteration as the clipped mean of ``image − every model`` in boxes of
    this size (``None``: keep ``background``). ``model_error``: fractional error of the
    neighbours' models, added to the variance of the samples they dominate.
    """
    data = np.asarray(image, dtype=np.float64) - background
    ny, nx = data.shape
    badm = ~np.isfinite(data)
    if bad is not None:
        badm |= np.asarray(bad, dtype=bool)
    if variance is None:
        d = data[~badm]
        sig = 1.4826 * np.median(np.abs(d - np.median(d))) if d.size else 1.0
        var = np.full(data.shape, max(sig, 1e-30) ** 2)
    else:
        var = np.asarray(variance, dtype=np.float64)
    badm |= ~(np.isfinite(var) & (var > 0))
    data = np.where(badm, 0.0, data)
    weight = np.where(badm, 0.0, 1.0 / np.where(badm, 1.0, var))
    gny, gnx = grid_shape
    grid_x = (np.arange(gnx) + 0.5) * nx / gnx
    grid_y = (np.arange(gny) + 0.5) * ny / gny
    os = int(oversampling)
    size = 2 * stamp_radius * os + 1
    stamps = _initial_stamps(initial, grid_x, grid_y, os, stamp_radius, initial_fwhm)
    sx_ = np.array(x, dtype=np.float64)
    sy_ = np.array(y, dtype=np.float64)
    sf = np.array(flux, dtype=np.float64)
    use = np.isfinite(sx_) & np.isfinite(sy_) & np.isfinite(sf) & (sf > 0)
    if neighbours is not None:
        nbx, nby, nbf = (np.array(a, dtype=np.float64) for a in neighbours)  # copies
    else:
        nbx = nby = nbf = np.zeros(0)
    if ghost_ratio > 0 and nbx.size:
        keep = ~_ghosts(nbx, nby, nbf, sx_[use], sy_[use], sf[use], ghost_radius, ghost_ratio)
        nbx, nby, nbf = nbx[keep], nby[keep], nbf[keep]
    n_nodes = gny * gnx
    node_x, node_y = (a.ravel() for a in np.meshgrid(grid_x, grid_y))
    fit_footprint = math.ceil(fit_radius + 0.5)
    t = (np.arange(size) - (size - 1) / 2) / os
    core = (t[:, None] ** 2 + t[None, :] ** 2) <= centre_radius**2  # convergence measured here
    converged = False
    change = np.inf
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        epsf = EPSFGrid(stamps.reshape(n_nodes, size, size), node_x, node_y, os)
        radius = max(epsf.render_radius(), fit_footprint)
        coef, cy, cx = epsf.coefficients(radius)
        ep = (coef, epsf.grid_x, epsf.grid_y, os, float(cy), float(cx), radius)
        # residual image: the data minus every known object and every PSF star
        resid = data.copy()
        render_stars(resid.shape, nbx, nby, -nbf, epsf, out=resid)
        render_stars(resid.shape, sx_[use], sy_[use], -sf[use], epsf, out=resid)
        if refit_neighbours and nbx.size:
            _refit_fluxes(resid, weight, nbx, nby, nbf, ep, fit_radius)
        if background_box:
            # the mean level of what no model holds (sky, unresolved stars, the wings beyond
            # the stamps): with a first-guess PSF it held the wings the guess lacks
            level = estimate_background(
                np.where(badm, np.nan, resid), badm, box=background_box, statistic="mean"
            ).astype(np.float64)
            level[badm] = 0.0
            data -= level
            resid -= level
        _fit_stars(resid, weight, sx_, sy_, sf, use, ep, fit_radius, 4)  # refitted in resid
        kept = use.copy()
        use &= np.isfinite(sf) & (sf > 0)
        use &= (sx_ >= stamp_radius) & (sx_ <= nx - 1 - stamp_radius)
        use &= (sy_ >= stamp_radius) & (sy_ <= ny - 1 - stamp_radius)
        dropped = kept & ~use  # no longer used: left in the residual, unsubtracted
        render_stars(resid.shape, sx_[dropped], sy_[dropped], sf[dropped], epsf, out=resid)
        model = data - resid  # every model (data is 0 on bad pixels, resid −model there)
        acc = np.zeros((n_nodes, 4, size, size))
        mean = np.zeros((n_nodes, size, size))
        rms = np.ones((n_nodes, size, size))
        _accumulate(
            resid, var, badm, sx_, sy_, sf, use, size, grid_x, grid_y, os,
            float(stamp_radius), 0.0, mean, rms, acc, model, model_error, ep,
        )  # fmt: skip
        if clip_sigma > 0:
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(acc[:, 1] > 0, acc[:, 0] / acc[:, 1], 0.0)
                chi2 = np.maximum(acc[:, 2] - acc[:, 0] * mean, 0.0)
                rms = np.where(acc[:, 3] > 0, np.sqrt(chi2 / acc[:, 3]), 1.0)
            acc = np.zeros((n_nodes, 4, size, size))
            _accumulate(
                resid, var, badm, sx_, sy_, sf, use, size, grid_x, grid_y, os,
                float(stamp_radius), clip_sigma, mean, rms, acc, model, model_error, ep,
            )  # fmt: skip
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = np.where(acc[:, 1] > 0, acc[:, 0] / acc[:, 1], 0.0)
        if smooth:
            k1 = np.array([0.25, 0.5, 0.25])
            delta = ndimage.correlate1d(delta, k1, axis=1, mode="constant")
            delta = ndimage.correlate1d(delta, k1, axis=2, mode="constant")
        nstars = _node_stars(sx_, sy_, use, grid_x, grid_y)
        new = _updated_stamps(stamps, delta, nstars, min_stars, os, centre_radius)
        if not _peaks_central(new, core):
            # a stamp whose peak left the centre has diverged: keep the last sane grid
            converged = False
            break
        change = float(np.max(np.abs(new - stamps)[:, :, core]) / np.max(new))
        stamps = new
        if change < tol:
            converged = True
            break
    return EPSFBuildResult(
        epsf=EPSFGrid(stamps.reshape(n_nodes, size, size), node_x, node_y, os),
        n_stars=nstars,
        x=sx_[use],
        y=sy_[use],
        flux=sf[use],
        n_iter=it,
        converged=converged,
        max_change=change,
    )


def _initial_stamps(
    initial: EPSFGrid | None,
    grid_x: np.ndarray,
    grid_y: np.ndarray,
    os: int,
    stamp_radius: int,
    initial_fwhm: float,
    *,
    normalise: bool = False,
) -> np.ndarray:
    """``(ny, nx, size, size)`` first-guess stamps at the nodes: ``initial`` resampled there
    (cropped or padded to ``stamp_radius``; each renormalised to ``os²`` if ``normalise``), or
    a pixel-integrated Gaussian of ``initial_fwhm``."""
    size = 2 * stamp_radius * os + 1
    gny, gnx = grid_y.size, grid_x.size
    if initial is None:
        return np.broadcast_to(
            gaussian_epsf(initial_fwhm, os, stamp_radius), (gny, gnx, size, size)
        ).astype(np.float64)
    if not isinstance(initial, EPSFGrid):
        raise TypeError(
            f"initial must be an msos.psf.model.EPSFGrid, not {type(initial).__name__} (a "
            "GriddedPSF converts with EPSFGrid.from_gridded_psf(psf, normalize=True))"
        )
    if initial.oversampling != os:
        raise ValueError(f"initial has oversampling {initial.oversampling}, not {os}")
    stamps = np.empty((gny, gnx, size, size))
    for a in range(gny):
        for b in range(gnx):
            stamps[a, b] = _resize(initial.stamp_at(grid_x[b], grid_y[a]), size)
            if normalise:
                stamps[a, b] *= os**2 / stamps[a, b].sum()
    return stamps


def _updated_stamps(
    stamps: np.ndarray,
    delta: np.ndarray,
    nstars: np.ndarray,
    min_stars: float,
    os: int,
    centre_radius: float,
) -> np.ndarray:
    """``stamps + delta`` (per node), each node of a grid pulled towards the plane fitted
    through all nodes (:func:`_planar_stamps`) as if ``min_stars`` stars of that plane were
    added to its own ``nstars`` (Σ bilinear weights), each re-centred and renormalised to
    ``os²``.

    Node-to-node differences the bilinear blend hides from the stars between nodes (on a
    2×2 grid the pattern ``+ − / − +``) are held only by the few stars near the nodes: solved
    node by node they drift with the noise, worst at the corners. A variation across the
    detector that is linear in x and y is kept whole, and a node rich in stars keeps its own
    shape whatever it is.
    """
    gny, gnx, size, _ = stamps.shape
    flat = stamps.reshape(gny * gnx, size, size) + delta
    if gny * gnx > 1:
        plane = _planar_stamps(flat, gnx, gny, nstars)
        a = (nstars / (nstars + min_stars))[:, None, None]
        flat = a * flat + (1 - a) * plane
    for n in range(gny * gnx):
        flat[n] = _recentre(flat[n], os, centre_radius)
        flat[n] *= os**2 / flat[n].sum()
    return flat.reshape(gny, gnx, size, size)


def _planar_stamps(flat: np.ndarray, gnx: int, gny: int, nstars: np.ndarray) -> np.ndarray:
    """Each stamp sample fitted, over the nodes (row-major, y outer), by ``a + b·x + c·y``
    in the node indices, weighted by the nodes' stars; the fit at every node."""
    gy, gx = np.divmod(np.arange(gny * gnx), gnx)
    columns = [np.ones(gny * gnx)] + [g - g.mean() for g, n in ((gx, gnx), (gy, gny)) if n > 1]
    design = np.column_stack(columns)
    weight = np.sqrt(np.maximum(nstars, 0.0) + 1e-12)[:, None]
    values = flat.reshape(flat.shape[0], -1)
    coefficients, *_ = np.linalg.lstsq(design * weight, values * weight, rcond=None)
    return (design @ coefficients).reshape(flat.shape)


def _ghosts(
    x: np.ndarray,
    y: np.ndarray,
    f: np.ndarray,
    sx: np.ndarray,
    sy: np.ndarray,
    sf: np.ndarray,
    radius: float,
    ratio: float,
) -> np.ndarray:
    """Neighbours ``(x, y, f)`` within ``radius`` of an object (neighbour or PSF star
    ``(sx, sy, sf)``) more than ``1 / ratio`` times brighter: mostly pieces of that object's
    diffraction ring that a catalog made with a ring-less first-guess PSF took for stars."""
    ax = np.concatenate([x, sx])
    ay = np.concatenate([y, sy])
    af = np.concatenate([f, sf])
    out = np.zeros(x.size, dtype=bool)
    pairs = cKDTree(np.column_stack([ax, ay])).query_pairs(radius, output_type="ndarray")
    if len(pairs):
        a, b = pairs[:, 0], pairs[:, 1]
        faint_a = af[a] < ratio * af[b]
        faint_b = af[b] < ratio * af[a]
        out[a[faint_a & (a < x.size)]] = True
        out[b[faint_b & (b < x.size)]] = True
    return out


def _peaks_central(stamps: np.ndarray, core: np.ndarray) -> bool:
    """Whether every stamp is finite and has its maximum (a positive one) in ``core``."""
    flat = stamps.reshape(-1, stamps.shape[-2] * stamps.shape[-1])
    if not np.all(np.isfinite(flat)):
        return False
    peak = flat.argmax(axis=1)
    return bool(np.all(core.ravel()[peak]) and np.all(flat.max(axis=1) > 0))


def _resize(stamp: np.ndarray, size: int) -> np.ndarray:
    """Crop or zero-pad a square stamp about its centre to ``size``."""
    n = stamp.shape[0]
    if n == size:
        return stamp.copy()
    out = np.zeros((size, size))
    if n > size:
        o = (n - size) // 2
        return stamp[o : o + size, o : o + size].copy()
    o = (size - n) // 2
    out[o : o + n, o : o + n] = stamp
    return out


# --------------------------------------------------------------------------------------------
# Building from several dithered epochs (Anderson & King 2000, §4): shared positions and fluxes


#: the cubic B-spline at its knots: a stamp's values are its coefficients convolved with this
_KNOT_VALUES = np.array([1.0, 4.0, 1.0]) / 6.0


@numba.njit(cache=True)
def _coefficient_normals(
    resid: np.ndarray,
    var: np.ndarray,
    bad: np.ndarray,
    model: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    f: np.ndarray,
    use: np.ndarray,
    size: int,
    grid_x: np.ndarray,
    grid_y: np.ndarray,
    os: int,
    radius: float,
    clip: float,
    rms_in: np.ndarray,
    model_error: float,
    robust: float,
    ep: tuple,
    ata: np.ndarray,
    atb: np.ndarray,
    stats: np.ndarray,
) -> None:
    """Add one epoch's samples to the normal equations of the spline-coefficient corrections.

    A sample (pixel ``(i, j)`` within ``radius`` of a star of flux ``F`` at ``(x, y)``) reads the
    4×4 coefficients around the stamp index ``(c + (j − y)·os, c + (i − x)·os)`` with the cubic
    B-spline weights; its value is ``resid / F``. Where stars overlap each claims the share of
    the pixel's residual its own model holds (the share also weighs the sample), so a
    residual is not corrected twice. Weights: the node's bilinear weight × the inverse
    variance of the sample (the pixel's, plus ``(model_error × the other stars' model)²``).
    ``ata[n, r, c, 3 + dr, 3 + dc]`` couples coefficient ``(r, c)`` with ``(r + dr, c + dc)``.
    With ``clip > 0`` a sample whose normalised value exceeds ``clip × max(1, rms_in)`` of its
    node and nearest stamp index is skipped; ``stats[n, 0/1, r, c]`` get Σ b·(normalised
    value)² and Σ b of the kept samples (the next iteration's ``rms_in``).
    """
    rfoot = ep[6]
    own = np.empty((2 * rfoot + 1, 2 * rfoot + 1))
    ny, nx = resid.shape
    c = 0.5 * (size - 1)
    ngx = grid_x.size
    p = np.empty((4, 4))
    for k in range(x.size):
        if not use[k] or not (f[k] > 0.0):
            continue
        ixk, iyk, weights, i0, i1, j0, j1 = _sample_star(
            ep, grid_x, grid_y, x[k], y[k], radius, ny, nx, own
        )
        for j in range(j0, j1 + 1):
            tr = c + (j - y[k]) * os
            fr = math.floor(tr)
            if fr - 1 < 1 or fr + 2 > size - 2:
                continue
            wr = _bspline_weights(tr - fr)
            for i in range(i0, i1 + 1):
                if bad[j, i] or not (var[j, i] > 0.0):
                    continue
                tc = c + (i - x[k]) * os
                fc = math.floor(tc)
                if fc - 1 < 1 or fc + 2 > size - 2:
                    continue
                wc = _bspline_weights(tc - fc)
                jj = j - iyk + rfoot
                ii = i - ixk + rfoot
                mine = 0.0
                if 0 <= jj < own.shape[0] and 0 <= ii < own.shape[1]:
                    mine = f[k] * own[jj, ii]
                others = model[j, i] - mine
                share = 1.0
                if model[j, i] > 0.0 and mine < model[j, i]:
                    share = max(mine, 0.0) / model[j, i]
                if share <= 0.0:
                    continue
                res = resid[j, i] / f[k]
                w = share * share * f[k] * f[k] / (var[j, i] + (model_error * others) ** 2)
                # robust (Cauchy) weight: flux no model explains (an undetected star, a
                # ghost) is not this star's wing; an ePSF error within model_error is
                z2 = resid[j, i] ** 2 / (var[j, i] + (model_error * model[j, i]) ** 2)
                w /= 1.0 + z2 / (robust * robust)
                dev2 = res * res * w
                r_ = min(max(round(tr), 0), size - 1)
                c_ = min(max(round(tc), 0), size - 1)
                for a in range(4):
                    for b in range(4):
                        p[a, b] = wr[a] * wc[b]
                for q in range(4):
                    gy, gx, bq = _corner(weights, q)
                    if bq == 0.0:
                        continue
                    n = gy * ngx + gx
                    if clip > 0.0 and dev2 > (clip * max(rms_in[n, r_, c_], 1.0)) ** 2:
                        continue
                    stats[n, 0, r_, c_] += bq * dev2
                    stats[n, 1, r_, c_] += bq
                    om = bq * w
                    for a in range(4):
                        for b in range(4):
                            pab = p[a, b] * om
                            atb[n, fr - 1 + a, fc - 1 + b] += pab * res
                            row = ata[n, fr - 1 + a, fc - 1 + b]
                            for a2 in range(4):
                                for b2 in range(4):
                                    row[a2 - a + 3, b2 - b + 3] += pab * p[a2, b2]


@numba.njit(cache=True)
def _star_normals(
    resid: np.ndarray,
    weight: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    f: np.ndarray,
    use: np.ndarray,
    ep: tuple,
    fit_r: float,
    e: int,
    a_star: np.ndarray,
    b_star: np.ndarray,
    a_flux: np.ndarray,
    b_flux: np.ndarray,
    a_off: np.ndarray,
    b_off: np.ndarray,
) -> None:
    """Add one epoch's pixels (within ``fit_r`` of each used star; ``resid`` = the epoch less
    every model) to the Gauss–Newton normal equations of each star's common (flux, x, y)
    (``a_star[k]``, ``b_star[k]``), of its flux in this epoch alone (``a_flux[k, e]``,
    ``b_flux[k, e]``: the correction is ``b / a``) and of the epoch's offset (``a_off``,
    ``b_off``: the stars at ``x − dx``, so its derivatives are minus theirs)."""
    coef, grid_x, grid_y, o, cy, cx, _ = ep
    ny, nx = resid.shape
    rf = math.ceil(fit_r + 0.5)
    psf = np.empty((3, 2 * rf + 1, 2 * rf + 1))
    for k in range(x.size):
        if not use[k] or not (f[k] > 0.0):
            continue
        ix = math.floor(x[k] + 0.5)
        iy = math.floor(y[k] + 0.5)
        if ix < -rf or ix > nx - 1 + rf or iy < -rf or iy > ny - 1 + rf:
            continue
        _footprint_epsf_gradient(coef, grid_x, grid_y, o, cy, cx, x[k], y[k], ix, iy, rf, psf)
        for j in range(max(iy - rf, 0), min(iy + rf, ny - 1) + 1):
            for i in range(max(ix - rf, 0), min(ix + rf, nx - 1) + 1):
                w = weight[j, i]
                if w <= 0.0 or (i - x[k]) ** 2 + (j - y[k]) ** 2 > fit_r * fit_r:
                    continue
                jj = j - iy + rf
                ii = i - ix + rf
                r = resid[j, i]
                j0 = psf[0, jj, ii]
                j1 = f[k] * psf[1, jj, ii]
                j2 = f[k] * psf[2, jj, ii]
                b_star[k, 0] += w * j0 * r
                b_star[k, 1] += w * j1 * r
                b_star[k, 2] += w * j2 * r
                a_star[k, 0, 0] += w * j0 * j0
                a_star[k, 0, 1] += w * j0 * j1
                a_star[k, 0, 2] += w * j0 * j2
                a_star[k, 1, 1] += w * j1 * j1
                a_star[k, 1, 2] += w * j1 * j2
                a_star[k, 2, 2] += w * j2 * j2
                a_flux[k, e] += w * j0 * j0
                b_flux[k, e] += w * j0 * r
                a_off[0, 0] += w * j1 * j1
                a_off[0, 1] += w * j1 * j2
                a_off[1, 1] += w * j2 * j2
                b_off[0] -= w * j1 * r
                b_off[1] -= w * j2 * r


def _solve_band(
    ata: np.ndarray, atb: np.ndarray, smoothing: float, ridge: float = 1e-3
) -> np.ndarray:
    """Solve one node's banded normal equations (:func:`_coefficient_normals`).

    A ridge of ``ridge`` × the median diagonal keeps the corrections of coefficients few
    samples read near 0 (a curvature penalty alone would extrapolate into them), and
    ``smoothing`` × the median diagonal weighs a second-difference penalty on the correction
    along rows and columns (noise between neighbouring knots is not PSF structure).
    """
    from scipy.sparse import coo_matrix, diags, identity, kron
    from scipy.sparse.linalg import spsolve

    size = atb.shape[0]
    n = size * size
    r, c, dr, dc = np.nonzero(ata)
    matrix = coo_matrix(
        (ata[r, c, dr, dc], (r * size + c, (r + dr - 3) * size + (c + dc - 3))), shape=(n, n)
    ).tocsr()
    diagonal = matrix.diagonal()
    if not (diagonal.max(initial=0.0) > 0.0):
        return np.zeros((size, size))
    typical = float(np.median(diagonal[diagonal > 0]))
    matrix = matrix + identity(n, format="csr") * (ridge * typical)
    if smoothing > 0.0:
        scale = smoothing * typical
        second = diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(size - 2, size))
        eye = identity(size, format="csr")
        along_rows = kron(second, eye)
        along_cols = kron(eye, second)
        matrix = matrix + scale * (along_rows.T @ along_rows + along_cols.T @ along_cols)
    return spsolve(matrix.tocsc(), atb.ravel()).reshape(size, size)


def build_epsf_from_epochs(
    epochs: Callable[[], Iterable[tuple[np.ndarray, np.ndarray, np.ndarray, float, float]]],
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    shape: tuple[int, int],
    *,
    neighbours: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    grid_shape: tuple[int, int] = (3, 3),
    oversampling: int = 4,
    stamp_radius: int = 12,
    fit_radius: float = 2.5,
    initial_fwhm: float = 1.3,
    initial: EPSFGrid | None = None,
    max_iter: int = 10,
    tol: float = 1e-3,
    clip_sigma: float = 5.0,
    min_stars: float = 15.0,
    centre_radius: float = 1.5,
    smoothing: float = 1e-3,
    background_box: int | None = 32,
    model_error: float = 0.05,
    refine_offsets: bool = True,
    refit_stars: bool = True,
    variable_chi2: float = 5.0,
    robust: float = 3.0,
    outlier_sigma: float = 10.0,
    outlier_fraction: float = 0.5,
    ghost_radius: float = 3.0,
    ghost_ratio: float = 0.05,
    on_iteration: Callable[[int, EPSFGrid], None] | None = None,
) -> EPSFBuildResult:
    """Build an ePSF grid from the PSF stars seen in several dithered epochs.

    Fitting the fluxes and positions of undersampled stars together with the ePSF on one image
    is degenerate: a position shifted by δ(phase) and a flux scaled by 1 + ε(phase) fit as
    well once the ePSF warps to match. Anderson & King break the tie with dithers: a star's
    position (``x − dx_e`` in epoch ``e``) and flux are the same in every epoch, its phase is
    not. ``epochs()`` yields, anew at every call (one epoch in memory at a time), each epoch's
    ``(data, variance, bad, dx, dy)``: background-subtracted or not (the background is
    re-measured as the clipped mean of what no model holds, in ``background_box`` boxes),
    ``bad`` pixels ignored, and the epoch's offset onto the frame of ``x, y``
    (``frame = epoch + (dx, dy)``, as :class:`msos.reference.kernel.Offset`). ``shape``: that
    frame's, where the grid nodes sit (centres of ``grid_shape`` equal cells).

    Each iteration reads every epoch once: all objects (``neighbours``, their fluxes refitted
    in each epoch so variables are followed, and the PSF stars) are subtracted with the
    current ePSF, and every epoch adds to (a) the weighted least-squares normal equations of
    the ePSF's spline-coefficient corrections (samples within ``stamp_radius`` of each star,
    :func:`_coefficient_normals`, solved per node with a ``smoothing`` second-difference
    penalty), (b) each star's Gauss–Newton normal equations of its common flux and position
    (pixels within ``fit_radius``), (c) with ``refine_offsets`` its own offset's. The stamps
    are then corrected, nodes pulled towards the grid's plane (as :func:`build_epsf_grid`),
    re-centred and normalised; the stars and offsets updated (the offsets' mean change is
    removed: a common shift belongs to the positions). A star whose per-epoch fluxes scatter
    more than ``variable_chi2`` × the median star's (reduced χ²) is a variable: it becomes a
    neighbour. Stops when the largest change of a stamp within ``centre_radius`` is below
    ``tol`` × the peak, or after ``max_iter`` iterations. ``on_iteration(it, epsf)`` is called
    after each (to follow the convergence).
    """
    ny, nx = shape
    gny, gnx = grid_shape
    grid_x = (np.arange(gnx) + 0.5) * nx / gnx
    grid_y = (np.arange(gny) + 0.5) * ny / gny
    os = int(oversampling)
    size = 2 * stamp_radius * os + 1
    n_nodes = gny * gnx
    stamps = _initial_stamps(
        initial, grid_x, grid_y, os, stamp_radius, initial_fwhm, normalise=True
    )
    sx_ = np.array(x, dtype=np.float64)
    sy_ = np.array(y, dtype=np.float64)
    sf = np.array(flux, dtype=np.float64)
    use = np.isfinite(sx_) & np.isfinite(sy_) & np.isfinite(sf) & (sf > 0)
    if neighbours is not None:
        nbx, nby, nbf = (np.array(a, dtype=np.float64) for a in neighbours)
    else:
        nbx = nby = nbf = np.zeros(0)
    if ghost_ratio > 0 and nbx.size:
        keep = ~_ghosts(nbx, nby, nbf, sx_[use], sy_[use], sf[use], ghost_radius, ghost_ratio)
        nbx, nby, nbf = nbx[keep], nby[keep], nbf[keep]
    node_x, node_y = (a.ravel() for a in np.meshgrid(grid_x, grid_y))
    t = (np.arange(size) - (size - 1) / 2) / os
    core = (t[:, None] ** 2 + t[None, :] ** 2) <= centre_radius**2
    fit_footprint = math.ceil(fit_radius + 0.5)
    shifts: list[np.ndarray] = []  # refinements of the epochs' offsets
    rms = np.ones((n_nodes, size, size))
    converged = False
    change = np.inf
    nstars = _node_stars(sx_, sy_, use, grid_x, grid_y)
    it = 0
    for it in range(1, max_iter + 1):
        epsf = EPSFGrid(stamps.reshape(n_nodes, size, size), node_x, node_y, os)
        radius = max(epsf.render_radius(), fit_footprint)
        coef, cy, cx = epsf.coefficients(radius)
        ep = (coef, epsf.grid_x, epsf.grid_y, os, float(cy), float(cx), radius)
        ata = np.zeros((n_nodes, size, size, 7, 7))
        atb = np.zeros((n_nodes, size, size))
        stats = np.zeros((n_nodes, 2, size, size))
        n_ep = max(len(shifts), 1)
        a_star = np.zeros((sx_.size, 3, 3))
        b_star = np.zeros((sx_.size, 3))
        a_flux = np.zeros((sx_.size, n_ep))
        b_flux = np.zeros((sx_.size, n_ep))
        a_offs, b_offs = [], []
        for e, (image, variance, bad, dx, dy) in enumerate(epochs()):
            if e >= len(shifts):
                shifts.append(np.zeros(2))
            if e >= a_flux.shape[1]:
                a_flux = np.pad(a_flux, ((0, 0), (0, e + 1 - a_flux.shape[1])))
                b_flux = np.pad(b_flux, ((0, 0), (0, e + 1 - b_flux.shape[1])))
            ex = float(dx) + shifts[e][0]
            ey = float(dy) + shifts[e][1]
            data = np.asarray(image, dtype=np.float64)
            var = np.asarray(variance, dtype=np.float64)
            badm = ~np.isfinite(data) | ~(np.isfinite(var) & (var > 0))
            if bad is not None:
                badm |= np.asarray(bad, dtype=bool)
            data = np.where(badm, 0.0, data)
            var = np.where(badm, 1.0, var)
            weight = np.where(badm, 0.0, 1.0 / var)
            xe, ye = sx_ - ex, sy_ - ey
            resid = data.copy()
            nfe = nbf.copy()
            render_stars(resid.shape, nbx - ex, nby - ey, -nfe, epsf, out=resid)
            render_stars(resid.shape, xe[use], ye[use], -sf[use], epsf, out=resid)
            if nbx.size:
                _refit_fluxes(resid, weight, nbx - ex, nby - ey, nfe, ep, fit_radius)
            if background_box:
                level = estimate_background(
                    np.where(badm, np.nan, resid), badm, box=background_box, statistic="mean"
                ).astype(np.float64)
                level[badm] = 0.0
                data -= level
                resid -= level
            model = data - resid
            if outlier_sigma > 0:
                # what no model explains at all (an unmeasured saturated star's halo, a cosmic
                # ray the flags missed) would enter the ePSF's wings: masked, with a margin
                sigma = np.sqrt(var)
                wild = (np.abs(resid) > outlier_sigma * sigma) & (
                    np.abs(resid) > outlier_fraction * np.abs(model) + outlier_sigma * sigma
                )
                wild = ndimage.binary_dilation(wild, iterations=1) & ~badm
                if wild.any():
                    badm |= wild
                    weight[wild] = 0.0
            a_off = np.zeros((2, 2))
            b_off = np.zeros(2)
            _star_normals(
                resid, weight, xe, ye, sf, use, ep, fit_radius, e,
                a_star, b_star, a_flux, b_flux, a_off, b_off,
            )  # fmt: skip
            a_offs.append(a_off)
            b_offs.append(b_off)
            _coefficient_normals(
                resid, var, badm, model, xe, ye, sf, use, size, grid_x, grid_y, os,
                float(stamp_radius), clip_sigma if it > 1 else 0.0, rms, model_error, robust, ep,
                ata, atb, stats,
            )  # fmt: skip
            del data, var, resid, model, weight, badm
        with np.errstate(invalid="ignore", divide="ignore"):
            rms = np.where(stats[:, 1] > 0, np.sqrt(stats[:, 0] / stats[:, 1]), 1.0)
        # (a) the ePSF: least-squares corrections of the coefficients, the stamp is the spline
        # at its knots (the coefficients ⊛ [1, 4, 1] / 6)
        delta = np.stack([_solve_band(ata[n], atb[n], smoothing) for n in range(n_nodes)])
        delta = ndimage.correlate1d(delta, _KNOT_VALUES, axis=1, mode="constant")
        delta = ndimage.correlate1d(delta, _KNOT_VALUES, axis=2, mode="constant")
        nstars = _node_stars(sx_, sy_, use, grid_x, grid_y)
        new = _updated_stamps(stamps, delta, nstars, min_stars, os, centre_radius)
        # (b) the stars' common flux and position
        for k in np.flatnonzero(use if refit_stars else np.zeros(0, dtype=bool)):
            a = a_star[k]
            a = np.triu(a) + np.triu(a, 1).T
            if not (a[0, 0] > 0 and a[1, 1] > 0 and a[2, 2] > 0):
                continue
            a = a + np.diag(np.diag(a)) * 1e-4
            try:
                d = np.linalg.solve(a, b_star[k])
            except np.linalg.LinAlgError:
                continue
            sf[k] += d[0]
            sx_[k] += float(np.clip(d[1], -0.3, 0.3))
            sy_[k] += float(np.clip(d[2], -0.3, 0.3))
        # (c) the epochs' offsets (their mean change is the positions')
        if refine_offsets and len(a_offs) > 1:
            steps = []
            for a_off, b_off in zip(a_offs, b_offs, strict=True):
                a = np.triu(a_off) + np.triu(a_off, 1).T
                ok = a[0, 0] > 0 and a[1, 1] > 0 and np.linalg.det(a) > 0
                steps.append(np.linalg.solve(a, b_off) if ok else np.zeros(2))
            steps = np.clip(np.array(steps), -0.2, 0.2)
            steps -= steps.mean(axis=0)
            for e, s in enumerate(steps):
                shifts[e] += s
        # variables: their per-epoch fluxes scatter; they become neighbours
        if it > 1 and variable_chi2 > 0 and a_flux.shape[1] > 2:
            with np.errstate(invalid="ignore", divide="ignore"):
                per_epoch = np.where(a_flux > 0, b_flux / a_flux, np.nan)
                wgt = np.where(a_flux > 0, a_flux, 0.0)
                mean_b = np.nansum(wgt * per_epoch, axis=1) / wgt.sum(axis=1)
                chi2 = np.nansum(wgt * (per_epoch - mean_b[:, None]) ** 2, axis=1)
                chi2 /= np.maximum((a_flux > 0).sum(axis=1) - 1, 1)
            typical = np.nanmedian(chi2[use]) if use.any() else np.nan
            variable = use & (chi2 > variable_chi2 * max(typical, 1.0))
            if variable.any():
                nbx = np.concatenate([nbx, sx_[variable]])
                nby = np.concatenate([nby, sy_[variable]])
                nbf = np.concatenate([nbf, sf[variable]])
                use &= ~variable
        use &= np.isfinite(sf) & (sf > 0)
        if not _peaks_central(new, core):
            converged = False
            break
        change = float(np.max(np.abs(new - stamps)[:, :, core]) / np.max(new))
        stamps = new
        if on_iteration is not None:
            on_iteration(it, EPSFGrid(stamps.reshape(n_nodes, size, size), node_x, node_y, os))
        if change < tol:
            converged = True
            break
    return EPSFBuildResult(
        epsf=EPSFGrid(stamps.reshape(n_nodes, size, size), node_x, node_y, os),
        n_stars=nstars,
        x=sx_[use],
        y=sy_[use],
        flux=sf[use],
        n_iter=it,
        converged=converged,
        max_change=change,
    )


#: PSF stars per node below which a grid has too few to place its nodes' differences above
#: their noise (a node's fitted shape is then mostly its few stars' own neighbours)
STARS_PER_NODE = 100


def grid_for_stars(n_stars: int, shape: tuple[int, int]) -> tuple[int, int]:
    """The ePSF grid for ``n_stars`` PSF stars on an image of ``shape``: as many nodes per
    side as give each node ``STARS_PER_NODE`` stars, nodes at least 400 pixels apart, at
    most 5×5 (a Roman detector's PSF varies smoothly; more nodes only add noise)."""
    by_stars = math.isqrt(max(int(n_stars), 0) // STARS_PER_NODE)
    by_size = min(shape) // 400 + 1
    nodes = max(1, min(5, by_stars, by_size))
    return nodes, nodes


def build_reference_psf(
    image: np.ndarray,
    variance: np.ndarray,
    bad: np.ndarray,
    saturated: np.ndarray,
    fwhm_pix: float,
    grid_shape: tuple[int, int] | None = None,
    *,
    epochs: Callable[[], Iterable[tuple]] | None = None,
    epoch_stamp_radius: int = 5,
    epoch_star_density: float = 1 / 325,
    epoch_options: Mapping[str, Any] | None = None,
) -> tuple[EPSFGrid, dict[str, np.ndarray]]:
    """The frame's ePSF grid, built from its own stars in two rounds (a Gaussian start, then
    the first grid), and the catalog of the last round.

    With ``epochs`` (see :func:`msos.psf.build.build_epsf_from_epochs`: each call yields every
    epoch's ``(data, variance, bad, dx, dy)``, ``frame = epoch + (dx, dy)``) the grid is then
    rebuilt from the dithered epochs, the PSF stars' positions and fluxes shared among them
    (one frame alone cannot tell an ePSF error from phase-dependent position and flux errors),
    starting from the frame's grid, with the frame's catalog as first guesses and neighbours.
    ``grid_shape`` None: :func:`grid_for_stars` of the PSF stars the first round finds (with
    ``epochs``: no more than the epoch build will use).
    """
    ny, nx = image.shape
    epoch_stars = max(50, round(ny * nx * epoch_star_density))
    epsf = EPSFGrid(gaussian_epsf(fwhm_pix, oversampling=4, half_width_pix=6), oversampling=4)
    clean = np.where(bad, 0.0, image).astype("float32")
    catalog = None
    for _ in range(2):
        catalog = measure_objects(clean, epsf, bad=bad, variance=variance, saturated=saturated)
        measured = np.isfinite(catalog.flux) & np.isfinite(catalog.flux_err)
        chosen = measured & select_psf_stars(
            catalog.x, catalog.y, catalog.flux, image.shape, flux_err=catalog.flux_err,
            bad=bad, saturated=saturated,
        )  # fmt: skip
        if grid_shape is None:
            n_stars = int(chosen.sum()) if epochs is None else min(int(chosen.sum()), epoch_stars)
            grid_shape = grid_for_stars(n_stars, image.shape)
        others = measured & ~chosen
        built = build_epsf_grid(
            clean, catalog.x[chosen], catalog.y[chosen], catalog.flux[chosen], bad=bad,
            variance=variance, background=catalog.background,
            neighbours=(catalog.x[others], catalog.y[others], catalog.flux[others]),
            grid_shape=grid_shape, initial=epsf,
        )  # fmt: skip
        epsf = built.epsf
    if epochs is not None:
        catalog = measure_objects(clean, epsf, bad=bad, variance=variance, saturated=saturated)
        measured = np.isfinite(catalog.flux) & np.isfinite(catalog.flux_err)
        # only the brightest: a faint star's samples of its own core hold (a brighter
        # neighbour's flux / its own) × the error of that neighbour's wing
        chosen = measured & select_psf_stars(
            catalog.x, catalog.y, catalog.flux, image.shape, flux_err=catalog.flux_err,
            bad=bad, saturated=saturated,
            max_stars=epoch_stars,
        )  # fmt: skip
        others = measured & ~chosen
        built = build_epsf_from_epochs(
            epochs, catalog.x[chosen], catalog.y[chosen], catalog.flux[chosen], image.shape,
            neighbours=(catalog.x[others], catalog.y[others], catalog.flux[others]),
            grid_shape=grid_shape, initial=epsf, stamp_radius=epoch_stamp_radius,
            **dict(epoch_options or {}),
        )  # fmt: skip
        log.info(
            "ePSF from %d stars in the epochs: %d iterations, converged %s (last change %.2g)",
            built.x.size, built.n_iter, built.converged, built.max_change,
        )  # fmt: skip
        epsf = built.epsf
    final = measure_objects(clean, epsf, bad=bad, variance=variance, saturated=saturated)
    columns = {name: np.asarray(getattr(final, name))
               for name in ("x", "y", "flux", "flux_err", "qfit", "flags")}  # fmt: skip
    del catalog
    return epsf, columns
