"""Crowded-field catalog of the reference frame: detection, PSF fitting of blends, stable ids.

Pure functions on arrays (no I/O, no settings). Conventions are the package README's:
0-based pixel centres, ``x`` = column, ``bad`` boolean masks, variances, and the ePSF as a
:class:`msos.psf.model.EPSFGrid` (stamps summing to ``oversampling²``; a ``GriddedPSF`` product
converts with ``EPSFGrid.from_gridded_psf(psf, normalize=True)``).

Algorithm of :func:`measure_objects` (DAOPHOT/ALLSTAR-like, numba where it matters):

1. **Background** – a mesh of ``background_box``-pixel boxes, each the 3σ-clipped median of its
   valid pixels, 3×3 median-filtered across boxes and interpolated (bicubic spline) back to
   pixels. It is measured on the image first, then once more on ``image − star model`` after
   the first fit as the 5σ-clipped *mean*, so in a crowded field it is the mean level of the
   *unresolved* light (what a PSF flux absorbs), which keeps the fluxes unbiased.
2. **Detection** – a matched filter: with the pixel-sampled ePSF ``P`` (phase 0, grid mean),
   the image ``S/N = Σ P·d·w / sqrt(Σ P²·w)`` (``w = 1/variance``, 0 on bad pixels) is the
   signal-to-noise of the maximum-likelihood flux of a star centred on each pixel. Peaks are
   local maxima (within 2½ pix, on a half-pixel grid of star positions) above
   ``threshold_sigma``, refined by a parabola. On residual passes
   the variance gains ``(psf_mismatch · model)²`` so PSF-model errors under bright stars are not
   taken for stars, and the discs of ``min_separation`` around known stars are blanked; at most
   one new star is added within ``group_radius`` of each known star per pass.
   Saturated blobs (connected saturated pixels) give one seed each at their centroid, and the
   matched filter is blanked around them (their ring of wings is not a ring of stars).
3. **Fitting** – flux and position of every star by Gauss–Newton with Levenberg damping on the
   pixels within ``fit_radius`` of the star; stars closer than ``group_radius`` are linked into
   groups (transitively; a group above ``max_group`` stars is re-linked with a smaller radius)
   and a group is fitted *simultaneously* (3 parameters per star, dense normal matrix,
   Cholesky). Everything outside the group is held fixed in a residual image (block
   Gauss–Seidel, the ALLSTAR scheme): a group's models are added back, the group is refitted
   and its new models subtracted. Sweeps repeat over only the groups near a star that changed
   by more than ``max(tol_pix, 0.1σ)`` (or 0.1σ in flux) until nothing changes or
   ``max_sweeps``. Fluxes are kept ≥ 0 (a negative star beside a bright one forms a drifting
   degenerate dipole).
4. **Passes** – after each pass's fit, stars with ``flux / flux_err < min_snr`` are removed
   and pairs closer than ``merge_radius`` merged; then new stars are detected in the residual
   image and fitted (``n_passes`` detection passes in all).
5. **Measurement** – errors from the inverse of each group's (undamped) normal matrix at the
   solution (so blends carry their covariance), ``qfit = Σ|residual| / flux`` over the fit
   pixels, ``crowding`` = fraction of the model flux within ``core_radius`` that belongs to
   other stars, flags from :class:`~roman_schemas.products.msos.flags.PhotometryFlag`.

Object ids: see :func:`object_ids`.

The ePSF is evaluated with the primitives of ``msos.psf.model`` (cubic B-spline in the stamps,
bilinear between grid points): a star's model is its own blend of the grid's spline
coefficients at ``(xm, ym)`` (its position when the blend was last made, renewed once it moved
by more than ½ pix), evaluated over the footprint that ``render_stars`` uses, so what is added
to and subtracted from the residual image is always the same model.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numba
import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from msos.psf.model import (
    EPSFGrid,
    _add_star,
    _add_star_local,
    _blend,
    _footprint_at,
    _pixel_gradient,
    _star_phase,
    _star_pixel,
)
from roman_schemas.products.msos.flags import PhotometryFlag

__all__ = [
    "CatalogResult",
    "decode_object_id",
    "detect_peaks",
    "detection_kernels",
    "estimate_background",
    "measure_objects",
    "object_ids",
]


_F_SATURATED = np.uint32(PhotometryFlag.SATURATED)
_F_BAD_PIXEL = np.uint32(PhotometryFlag.BAD_PIXEL)
_F_EDGE = np.uint32(PhotometryFlag.EDGE)
_F_BLENDED = np.uint32(PhotometryFlag.BLENDED)
_F_NO_DATA = np.uint32(PhotometryFlag.NO_DATA)

# --------------------------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _render_stars(
    image: np.ndarray,
    idx: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    f: np.ndarray,
    xm: np.ndarray,
    ym: np.ndarray,
    ep: tuple,
    sign: float,
) -> None:
    """Add ``sign`` × the model of stars ``idx`` (grid blended at ``xm, ym``)."""
    coef, grid_x, grid_y, o, cy, cx, radius = ep
    values = np.empty((2 * radius + 1, 2 * radius + 1))
    for k in idx:
        _add_star(image, coef, grid_x, grid_y, xm[k], ym[k], o, cy, cx, x[k], y[k], sign * f[k],
                  radius, values)  # fmt: skip


@numba.njit(cache=True)
def _cholesky_solve(a: np.ndarray, b: np.ndarray, inv_diag: np.ndarray) -> bool:
    """Solve ``a z = b`` for SPD ``a`` (overwritten); ``inv_diag`` = diag(a⁻¹). False if not SPD."""
    m = b.size
    for j in range(m):
        s = a[j, j]
        for k in range(j):
            s -= a[j, k] * a[j, k]
        if not (s > 0.0):
            return False
        d = math.sqrt(s)
        a[j, j] = d
        for i in range(j + 1, m):
            s = a[i, j]
            for k in range(j):
                s -= a[i, k] * a[j, k]
            a[i, j] = s / d
    z = b.copy()
    for i in range(m):
        s = z[i]
        for k in range(i):
            s -= a[i, k] * z[k]
        z[i] = s / a[i, i]
    for i in range(m - 1, -1, -1):
        s = z[i]
        for k in range(i + 1, m):
            s -= a[k, i] * z[k]
        z[i] = s / a[i, i]
    b[:] = z
    # diag of a^-1 = column norms of L^-1
    linv = np.zeros((m, m))
    for c in range(m):
        linv[c, c] = 1.0 / a[c, c]
        for i in range(c + 1, m):
            s = 0.0
            for k in range(c, i):
                s -= a[i, k] * linv[k, c]
            linv[i, c] = s / a[i, i]
    for c in range(m):
        s = 0.0
        for i in range(c, m):
            s += linv[i, c] * linv[i, c]
        inv_diag[c] = s
    return True


#: a fitted flux may not exceed this many times the flux the data around the star can hold
#: (:func:`_flux_cap`); the catalog flags a flux beyond ``_FLUX_LIMIT_FINAL`` × that as
#: unmeasured (a genuine star is at ≤ 1×, whatever its neighbours)
_FLUX_CAP = 10.0
_FLUX_LIMIT_FINAL = 3.0
#: a star whose ePSF puts less than this of its flux into its fit disc cannot be fitted
_MIN_PSF_FIT = 0.05


@numba.njit(cache=True)
def _data_bound(
    d: np.ndarray,
    dj: int,
    di: int,
    weight: np.ndarray,
    values: np.ndarray,
    i0: int,
    j0: int,
) -> tuple[float, float]:
    """``(Σ|d| + 5 σ, Σ P)`` over the usable pixels of a footprint ``values`` (ePSF of one star,
    pixel ``(j0 + jj, i0 + ii)``): ``d`` (the data less every *other* model) is read at
    ``d[j − dj, i − di]`` (the residual image: 0, 0; the footprint alone: j0, i0), ``σ²`` =
    Σ variance. A star of flux ``F`` puts ``F Σ P`` there: at most ``Σ d`` + noise, whatever
    its neighbours."""
    ny, nx = weight.shape
    sabs = 0.0
    svar = 0.0
    sp = 0.0
    for jj in range(values.shape[0]):
        j = j0 + jj
        if j < 0 or j >= ny:
            continue
        for ii in range(values.shape[1]):
            i = i0 + ii
            if i < 0 or i >= nx:
                continue
            w = weight[j, i]
            if w > 0.0:
                sabs += abs(d[j - dj, i - di])
                svar += 1.0 / w
                sp += values[jj, ii]
    return sabs + 5.0 * math.sqrt(svar), sp


@numba.njit(cache=True)
def _flux_cap(
    resid: np.ndarray, weight: np.ndarray, values: np.ndarray, x0: float, y0: float, radius: int
) -> float:
    """Largest flux allowed to a star at ``(x0, y0)`` whose model (footprint ``values``, as
    :func:`_add_star_local` left it) has just been added back to ``resid``:
    ``_FLUX_CAP`` × (Σ|d| + 5 σ) / Σ P over its footprint (no limit off the image)."""
    touches, ix, iy = _star_pixel(x0, y0, 0.0, radius, resid.shape[0], resid.shape[1])
    if not touches:
        return np.inf
    bound, sp = _data_bound(resid, 0, 0, weight, values, ix - radius, iy - radius)
    return _FLUX_CAP * bound / max(sp, 1e-3)


@numba.njit(cache=True)
def _fit_groups(
    resid: np.ndarray,
    weight: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    f: np.ndarray,
    xm: np.ndarray,
    ym: np.ndarray,
    var_f: np.ndarray,
    var_x: np.ndarray,
    var_y: np.ndarray,
    gptr: np.ndarray,
    gidx: np.ndarray,
    gactive: np.ndarray,
    ep: tuple,
    fit_r: float,
    max_step: float,
    tol_pix: float,
    lam: float,
    update: bool,
    changed: np.ndarray,
) -> None:
    """One block Gauss–Seidel sweep over the active groups (see the module docstring).

    With ``update=False`` nothing moves: only the variances at the current solution are set
    (undamped matrix). ``changed[k]`` is set for stars whose parameters moved noticeably.
    """
    coef, grid_x, grid_y, o, cy, cx, radius = ep
    ny, nx = resid.shape
    size = 2 * radius + 1
    ng = gptr.size - 1
    maxn = 1
    for g in range(ng):
        maxn = max(maxn, gptr[g + 1] - gptr[g])
    local = np.empty((maxn, coef.shape[2], coef.shape[3]))  # each member's blended coefficients
    origin = np.empty((maxn, 4), dtype=np.int64)
    phase = np.empty((maxn, 4, 4))
    values = np.empty((size, size))
    fr2 = fit_r * fit_r
    jac = np.zeros(3 * maxn)
    nz = np.empty(maxn, dtype=np.int64)
    cap = np.empty(maxn)
    for g in range(ng):
        if not gactive[g]:
            continue
        n = gptr[g + 1] - gptr[g]
        members = gidx[gptr[g] : gptr[g + 1]]
        bx0 = nx
        bx1 = -1
        by0 = ny
        by1 = -1
        for a in range(n):
            k = members[a]
            _blend(coef, grid_x, grid_y, xm[k], ym[k], local[a])
            _add_star_local(resid, local[a], o, cy, cx, x[k], y[k], f[k], radius, values)
            cap[a] = _flux_cap(resid, weight, values, x[k], y[k], radius)
            _star_phase(o, cy, cx, x[k], y[k], radius, origin[a], phase[a])
            bx0 = min(bx0, math.ceil(x[k] - fit_r))
            bx1 = max(bx1, math.floor(x[k] + fit_r))
            by0 = min(by0, math.ceil(y[k] - fit_r))
            by1 = max(by1, math.floor(y[k] + fit_r))
        bx0 = max(bx0, 0)
        by0 = max(by0, 0)
        bx1 = min(bx1, nx - 1)
        by1 = min(by1, ny - 1)
        m = 3 * n
        amat = np.zeros((m, m))
        bvec = np.zeros(m)
        npix = 0
        for j in range(by0, by1 + 1):
            for i in range(bx0, bx1 + 1):
                w = weight[j, i]
                if w <= 0.0:
                    continue
                inside = False
                for a in range(n):
                    k = members[a]
                    if (i - x[k]) ** 2 + (j - y[k]) ** 2 <= fr2:
                        inside = True
                        break
                if not inside:
                    continue
                npix += 1
                model = 0.0
                nnz = 0
                for a in range(n):
                    inside, p, dp_dx, dp_dy = _pixel_gradient(
                        local[a], o, radius, origin[a], phase[a], i, j
                    )
                    if not inside:
                        continue
                    k = members[a]
                    model += f[k] * p
                    jac[3 * a] = p
                    jac[3 * a + 1] = f[k] * dp_dx
                    jac[3 * a + 2] = f[k] * dp_dy
                    nz[nnz] = a
                    nnz += 1
                r = resid[j, i] - model
                for p in range(nnz):
                    for c in range(3):
                        q1 = 3 * nz[p] + c
                        jw = w * jac[q1]
                        bvec[q1] += jw * r
                        for p2 in range(nnz):
                            for c2 in range(3):
                                q2 = 3 * nz[p2] + c2
                                amat[q1, q2] += jw * jac[q2]
        ok = npix > 0
        if ok:
            for q in range(m):
                if not (amat[q, q] > 0.0):
                    for q2 in range(m):
                        amat[q, q2] = 0.0
                        amat[q2, q] = 0.0
                    amat[q, q] = 1.0
                    bvec[q] = 0.0
            scale = np.empty(m)
            for q in range(m):
                scale[q] = math.sqrt(amat[q, q])
            for q in range(m):
                for q2 in range(m):
                    amat[q, q2] /= scale[q] * scale[q2]
                bvec[q] /= scale[q]
            if update:
                for q in range(m):
                    amat[q, q] += lam
            inv_diag = np.empty(m)
            ok = _cholesky_solve(amat, bvec, inv_diag)
            if not ok:
                # degenerate group: fall back to heavy damping
                for q in range(m):
                    inv_diag[q] = 1.0
            for q in range(m):
                bvec[q] /= scale[q]
                inv_diag[q] /= scale[q] * scale[q]
        for a in range(n):
            k = members[a]
            if ok:
                var_f[k] = inv_diag[3 * a]
                var_x[k] = inv_diag[3 * a + 1]
                var_y[k] = inv_diag[3 * a + 2]
            else:
                var_f[k] = np.inf
                var_x[k] = np.inf
                var_y[k] = np.inf
            if update and ok:
                df = bvec[3 * a]
                dx = min(max(bvec[3 * a + 1], -max_step), max_step)
                dy = min(max(bvec[3 * a + 2], -max_step), max_step)
                if not (math.isfinite(df) and math.isfinite(dx) and math.isfinite(dy)):
                    df = 0.0
                    dx = 0.0
                    dy = 0.0
                tx = max(tol_pix, 0.1 * math.sqrt(var_x[k]))
                ty = max(tol_pix, 0.1 * math.sqrt(var_y[k]))
                if abs(dx) > tx or abs(dy) > ty or abs(df) > 0.1 * math.sqrt(var_f[k]):
                    changed[k] = True
                # no negative fluxes: a negative star beside a bright one makes a degenerate
                # dipole that drifts; a star at 0 keeps its position until its flux returns
                # and no flux beyond what the data around the star can hold: a fit the ePSF
                # cannot constrain would otherwise run away, and its model spoil its neighbours
                f[k] = min(max(f[k] + df, 0.0), cap[a])
                x[k] += dx
                y[k] += dy
                if (x[k] - xm[k]) ** 2 + (y[k] - ym[k]) ** 2 > 0.25:
                    xm[k] = x[k]
                    ym[k] = y[k]
                    _blend(coef, grid_x, grid_y, xm[k], ym[k], local[a])
            _add_star_local(resid, local[a], o, cy, cx, x[k], y[k], -f[k], radius, values)


@numba.njit(cache=True)
def _activate(
    changed: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    alive: np.ndarray,
    gid: np.ndarray,
    radius: float,
    gactive: np.ndarray,
) -> int:
    """Mark the groups with a star within ``radius`` of a changed star; return their count."""
    n = x.size
    gactive[:] = False
    xmin = np.inf
    ymin = np.inf
    xmax = -np.inf
    ymax = -np.inf
    for k in range(n):
        if alive[k]:
            xmin = min(xmin, x[k])
            xmax = max(xmax, x[k])
            ymin = min(ymin, y[k])
            ymax = max(ymax, y[k])
    if not math.isfinite(xmin):
        return 0
    ncx = int((xmax - xmin) / radius) + 1
    ncy = int((ymax - ymin) / radius) + 1
    head = np.full(ncx * ncy, -1, dtype=np.int64)
    nxt = np.full(n, -1, dtype=np.int64)
    for k in range(n):
        if alive[k]:
            c = int((y[k] - ymin) / radius) * ncx + int((x[k] - xmin) / radius)
            nxt[k] = head[c]
            head[c] = k
    r2 = radius * radius
    for k in range(n):
        if not changed[k]:  # a removed star (not alive) still disturbs its neighbours
            continue
        cx = int((x[k] - xmin) / radius)
        cy = int((y[k] - ymin) / radius)
        for yy in range(max(cy - 1, 0), min(cy + 2, ncy)):
            for xx in range(max(cx - 1, 0), min(cx + 2, ncx)):
                s = head[yy * ncx + xx]
                while s >= 0:
                    if (x[s] - x[k]) ** 2 + (y[s] - y[k]) ** 2 <= r2:
                        gactive[gid[s]] = True
                    s = nxt[s]
    count = 0
    for g in range(gactive.size):
        if gactive[g]:
            count += 1
    return count


@numba.njit(cache=True)
def _final_measures(
    resid: np.ndarray,
    model: np.ndarray,
    weight: np.ndarray,
    valid: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    f: np.ndarray,
    xm: np.ndarray,
    ym: np.ndarray,
    ep: tuple,
    fit_r: float,
    core_r: float,
    qfit: np.ndarray,
    crowding: np.ndarray,
    npix_fit: np.ndarray,
    npix_core_bad: np.ndarray,
    psf_fit: np.ndarray,
    flux_limit: np.ndarray,
) -> None:
    """qfit, crowding and pixel counts of every star from the final residual and model;
    ``psf_fit`` = Σ ePSF over the fit pixels (all of them, usable or not) and ``flux_limit``
    = ``_FLUX_LIMIT_FINAL`` × (Σ|d| + 5 σ) / Σ P over the usable pixels of the footprint
    (:func:`_data_bound`, ``d`` = the data less the other stars' models)."""
    coef, grid_x, grid_y, o, cy, cx, radius = ep
    ny, nx = resid.shape
    size = 2 * radius + 1
    own_values = np.empty((size, size))
    rest = np.empty((size, size))
    for k in range(x.size):
        if not (math.isfinite(x[k]) and math.isfinite(y[k]) and math.isfinite(f[k])):
            qfit[k] = np.nan
            crowding[k] = np.nan
            psf_fit[k] = np.nan
            flux_limit[k] = np.nan
            continue
        ix = math.floor(x[k] + 0.5)
        iy = math.floor(y[k] + 0.5)
        _footprint_at(coef, grid_x, grid_y, xm[k], ym[k], o, cy, cx, x[k], y[k], ix, iy, radius,
                      own_values)  # fmt: skip
        i0 = max(math.ceil(x[k] - fit_r), 0)
        i1 = min(math.floor(x[k] + fit_r), nx - 1)
        j0 = max(math.ceil(y[k] - fit_r), 0)
        j1 = min(math.floor(y[k] + fit_r), ny - 1)
        sabs = 0.0
        own = 0.0
        tot = 0.0
        pfit = 0.0
        nfit = 0
        nbad = 0
        for j in range(j0, j1 + 1):
            for i in range(i0, i1 + 1):
                d2 = (i - x[k]) ** 2 + (j - y[k]) ** 2
                if d2 > fit_r * fit_r:
                    continue
                p = own_values[j - iy + radius, i - ix + radius]
                pfit += p
                if d2 <= core_r * core_r:
                    own += f[k] * p
                    tot += model[j, i]
                    if not valid[j, i]:
                        nbad += 1
                if weight[j, i] > 0.0:
                    sabs += abs(resid[j, i])
                    nfit += 1
        # the data less the other stars' models over the footprint: residual + own model
        for jj in range(size):
            j = iy - radius + jj
            for ii in range(size):
                i = ix - radius + ii
                if 0 <= j < ny and 0 <= i < nx:
                    rest[jj, ii] = resid[j, i] + f[k] * own_values[jj, ii]
                else:
                    rest[jj, ii] = 0.0
        i0, j0 = ix - radius, iy - radius
        bound, sp = _data_bound(rest, j0, i0, weight, own_values, i0, j0)
        flux_limit[k] = _FLUX_LIMIT_FINAL * bound / max(sp, 1e-3)
        psf_fit[k] = pfit
        npix_fit[k] = nfit
        npix_core_bad[k] = nbad
        qfit[k] = sabs / f[k] if (nfit > 0 and f[k] > 0.0) else np.nan
        if tot > 0.0 and own > 0.0:
            crowding[k] = min(max(1.0 - own / tot, 0.0), 1.0)
        else:
            crowding[k] = np.nan


# --------------------------------------------------------------------------------------------
# background and detection
# --------------------------------------------------------------------------------------------


def _nanmedian_rows(a: np.ndarray) -> np.ndarray:
    """``np.nanmedian(a, axis=1)`` (same values) without its slow per-row path for rows that
    hold NaN: one sort (NaN last), then the middle finite element(s) of each row."""
    s = np.sort(a, axis=1)
    n = np.isfinite(a).sum(axis=1)
    rows = np.arange(a.shape[0])
    lo = np.maximum((n - 1) // 2, 0)
    hi = np.minimum(n // 2, a.shape[1] - 1)
    out = 0.5 * (s[rows, lo] + s[rows, hi])
    out[n == 0] = np.nan
    return out


def estimate_background(
    image: np.ndarray,
    bad: np.ndarray | None = None,
    *,
    box: int = 32,
    clip_sigma: float = 3.0,
    statistic: str = "median",
) -> np.ndarray:
    """Smooth background map (float32): clipped box statistics, median-filtered, interpolated.

    ``statistic="median"`` (robust, for an image still full of stars) or ``"mean"`` (for the
    residual of a star fit: the PSF flux of a star absorbs the *mean* of the unresolved light
    under it, not its median, so the mean keeps the fluxes of a crowded field unbiased).
    Boxes with fewer than a quarter of their pixels valid take the median of their neighbours.
    """
    data = np.asarray(image, dtype=np.float64)
    invalid = ~np.isfinite(data)
    if bad is not None:
        invalid |= bad
    ny, nx = data.shape
    nby, nbx = -(-ny // box), -(-nx // box)
    padded = np.full((nby * box, nbx * box), np.nan)
    padded[:ny, :nx] = np.where(invalid, np.nan, data)
    blocks = padded.reshape(nby, box, nbx, box).transpose(0, 2, 1, 3).reshape(nby, nbx, -1)
    count = np.isfinite(blocks).sum(axis=2)
    mesh = np.full((nby, nbx), np.nan)
    usable = count >= max(box * box // 4, 1)
    if usable.any():
        vals = blocks[usable]
        for _ in range(3):
            med = _nanmedian_rows(vals)
            mad = 1.4826 * _nanmedian_rows(np.abs(vals - med[:, None]))
            vals = np.where(np.abs(vals - med[:, None]) > clip_sigma * mad[:, None], np.nan, vals)
        if statistic == "mean":
            mesh[usable] = np.nanmean(vals, axis=1)
        elif statistic == "median":
            mesh[usable] = _nanmedian_rows(vals)
        else:
            raise ValueError(f"unknown statistic {statistic!r}")
    if not np.isfinite(mesh).any():
        return np.zeros((ny, nx), dtype=np.float32)
    # fill holes with the median of finite neighbours, growing outwards
    while not np.isfinite(mesh).all():
        padm = np.pad(mesh, 1, constant_values=np.nan)
        stack = np.stack([padm[dy : dy + nby, dx : dx + nbx] for dy in range(3) for dx in range(3)])
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                fill = np.nanmedian(stack, axis=0)
        mesh = np.where(np.isfinite(mesh), mesh, fill)
    if min(nby, nbx) >= 3:
        mesh = ndimage.median_filter(mesh, size=3, mode="nearest")
    yy = (np.arange(ny) + 0.5) / box - 0.5
    xx = (np.arange(nx) + 0.5) / box - 0.5
    order = 3 if min(nby, nbx) >= 4 else 1
    out = ndimage.map_coordinates(
        mesh,
        np.meshgrid(yy, xx, indexing="ij"),
        order=order,
        mode="nearest",
        prefilter=True,
    )
    return out.astype(np.float32)


def _snr_map(data: np.ndarray, weight: np.ndarray, kernel: np.ndarray) -> tuple:
    num = ndimage.correlate(data * weight, kernel, mode="constant", cval=0.0)
    den = ndimage.correlate(weight, kernel * kernel, mode="constant", cval=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(den > 0, num / np.sqrt(den), 0.0)
        flux = np.where(den > 0, num / den, 0.0)
    return snr, flux


def detection_kernels(psf: EPSFGrid, radius: int = 2) -> np.ndarray:
    """Matched-filter kernels ``[py, px, 2r+1, 2r+1]`` for star phases 0 and ½ pix per axis.

    ``kernels[py, px, j + r, i + r] = ePSF(i - px/2, j - py/2)`` of the grid-mean stamp:
    correlating an image with one gives the matched filter of stars at ``pixel + phase``.
    """
    _check_epsf(psf)
    mean = EPSFGrid(psf.stamps.mean(axis=(0, 1)), oversampling=psf.oversampling)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    return np.array(
        [
            [mean.evaluate(t[None, :] - px, t[:, None] - py) for px in (0.0, 0.5)]
            for py in (0.0, 0.5)
        ]
    )


def _check_epsf(psf: object) -> None:
    if not isinstance(psf, EPSFGrid):
        raise TypeError(
            f"psf must be an msos.psf.model.EPSFGrid, not {type(psf).__name__} (a GriddedPSF "
            "product converts with EPSFGrid.from_gridded_psf(psf, normalize=True))"
        )


def _snr_map2(data: np.ndarray, weight: np.ndarray, kernels: np.ndarray) -> tuple:
    """S/N and flux on a 2× finer grid: ``[2j + py, 2i + px]`` is the star at ``(i + px/2, …)``.

    An undersampled star half-way between pixel centres loses up to a third of its matched-filter
    S/N on the pixel grid alone; the half-pixel phases recover it.
    """
    ny, nx = data.shape
    snr = np.zeros((2 * ny, 2 * nx))
    flux = np.zeros((2 * ny, 2 * nx))
    dw = data * weight
    for py in range(2):
        for px in range(2):
            k = kernels[py, px]
            num = ndimage.correlate(dw, k, mode="constant", cval=0.0)
            den = ndimage.correlate(weight, k * k, mode="constant", cval=0.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                snr[py::2, px::2] = np.where(den > 0, num / np.sqrt(den), 0.0)
                flux[py::2, px::2] = np.where(den > 0, num / den, 0.0)
    return snr, flux


def detect_peaks(
    data: np.ndarray,
    weight: np.ndarray,
    kernels: np.ndarray,
    *,
    threshold_sigma: float,
    footprint: int = 3,
    blank: np.ndarray | None = None,
    exclude: tuple[np.ndarray, np.ndarray] | None = None,
    exclude_radius: float = 0.7,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Matched-filter peaks: ``(x, y, flux, snr)`` of local S/N maxima above the threshold.

    ``data`` is background-subtracted, ``weight = 1/variance`` (0 where unusable), ``kernels``
    from :func:`detection_kernels`. The S/N is evaluated for stars at whole and half-pixel
    positions; peaks are maxima within ``footprint`` pixels; sub-pixel positions from a
    parabola through the neighbouring half-pixel samples (clamped to ±¼ pix); fluxes are the
    matched-filter maximum-likelihood flux at the peak. ``blank`` (pixels) and the discs of
    ``exclude_radius`` around ``exclude = (x, y)`` (known stars) cannot hold a peak, nor hide
    one beside them.
    """
    snr, flux = _snr_map2(data, weight, kernels)
    if blank is not None:
        snr[np.repeat(np.repeat(blank, 2, axis=0), 2, axis=1)] = 0.0
    if exclude is not None and np.size(exclude[0]):
        ex, ey = (np.asarray(a, dtype=np.float64) for a in exclude)
        r2 = math.ceil(2 * exclude_radius)
        for dj in range(-r2, r2 + 1):
            for di in range(-r2, r2 + 1):
                jj = np.round(2 * ey).astype(np.int64) + dj
                ii = np.round(2 * ex).astype(np.int64) + di
                near = (jj / 2 - ey) ** 2 + (ii / 2 - ex) ** 2 <= exclude_radius**2
                near &= (jj >= 0) & (jj < snr.shape[0]) & (ii >= 0) & (ii < snr.shape[1])
                snr[jj[near], ii[near]] = 0.0
    size = 2 * footprint - 1
    peak = (snr >= threshold_sigma) & (
        snr == ndimage.maximum_filter(snr, size=size, mode="constant", cval=0.0)
    )
    peak[0, :] = peak[-1, :] = False
    peak[:, 0] = peak[:, -1] = False
    jj, ii = np.nonzero(peak)
    c = snr[jj, ii]
    left, right = snr[jj, ii - 1], snr[jj, ii + 1]
    down, up = snr[jj - 1, ii], snr[jj + 1, ii]
    with np.errstate(divide="ignore", invalid="ignore"):
        dx = 0.5 * (left - right) / (left - 2 * c + right)
        dy = 0.5 * (down - up) / (down - 2 * c + up)
    dx = np.clip(np.nan_to_num(dx), -0.5, 0.5)
    dy = np.clip(np.nan_to_num(dy), -0.5, 0.5)
    return (ii + dx) / 2.0, (jj + dy) / 2.0, flux[jj, ii], c


# --------------------------------------------------------------------------------------------
# grouping
# --------------------------------------------------------------------------------------------


def _groups(x: np.ndarray, y: np.ndarray, radius: float, max_group: int) -> np.ndarray:
    """Group label per star: connected components of the ``radius`` graph, big ones re-split."""
    n = x.size
    labels = np.zeros(n, dtype=np.int64)
    if n == 0:
        return labels
    todo = [(np.arange(n), radius)]
    next_label = 0
    while todo:
        idx, r = todo.pop()
        if idx.size == 1:
            labels[idx] = next_label
            next_label += 1
            continue
        pts = np.column_stack([x[idx], y[idx]])
        pairs = cKDTree(pts).query_pairs(r, output_type="ndarray")
        graph = coo_matrix(
            (np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(idx.size,) * 2
        )
        ncomp, comp = connected_components(graph, directed=False)
        sizes = np.bincount(comp, minlength=ncomp)
        big = sizes > max_group
        small = ~big[comp]
        # relabel small components consecutively
        uniq, inv = np.unique(comp[small], return_inverse=True)
        labels[idx[small]] = next_label + inv
        next_label += uniq.size
        for c in np.nonzero(big)[0]:
            todo.append((idx[comp == c], r * 0.8))
    return labels


def _csr(labels: np.ndarray, order_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group pointer/index arrays, groups in a deterministic (spatial) order."""
    ng = labels.max() + 1 if labels.size else 0
    # order groups by the minimum key of their members (deterministic raster order)
    gkey = np.full(ng, np.inf)
    np.minimum.at(gkey, labels, order_key)
    rank = np.empty(ng, dtype=np.int64)
    rank[np.argsort(gkey, kind="stable")] = np.arange(ng)
    new = rank[labels]
    order = np.lexsort((order_key, new))
    counts = np.bincount(new, minlength=ng)
    ptr = np.zeros(ng + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr, order.astype(np.int64), new


# --------------------------------------------------------------------------------------------
# the catalog
# --------------------------------------------------------------------------------------------


@dataclass
class CatalogResult:
    """Objects measured on one image (arrays of equal length, in raster order of ``y, x``)."""

    x: np.ndarray  # float64, column
    y: np.ndarray  # float64, row
    flux: np.ndarray  # float64, image unit summed over pixels
    flux_err: np.ndarray  # float64
    x_err: np.ndarray  # float64, pix
    y_err: np.ndarray  # float64, pix
    snr: np.ndarray  # float64, flux / flux_err
    qfit: np.ndarray  # float32, Σ|residual| / flux over the fit pixels
    crowding: np.ndarray  # float32, neighbours' share of the model flux within core_radius
    sky: np.ndarray  # float32, background at the position
    flags: np.ndarray  # uint32, PhotometryFlag bits
    group_size: np.ndarray  # int32, stars fitted simultaneously with this one
    detection_pass: np.ndarray  # int8, 0 = first detection, k = k-th residual pass
    background: np.ndarray  # float32 image
    residual: np.ndarray  # float32 image: image − background − model (NaN where bad)
    stats: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.x.size)


def _to_bool(mask: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    if mask is None:
        return np.zeros(shape, dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != shape:
        raise ValueError(f"mask shape {mask.shape} != image {shape}")
    return mask


def measure_objects(
    image: np.ndarray,
    psf: EPSFGrid,
    *,
    bad: np.ndarray | None = None,
    variance: np.ndarray | None = None,
    saturated: np.ndarray | None = None,
    saturation_level: float | None = None,
    threshold_sigma: float = 5.0,
    n_passes: int = 3,
    fit_radius: float = 2.5,
    core_radius: float = 1.5,
    group_radius: float = 2.0,
    max_group: int = 25,
    min_separation: float = 0.7,
    merge_radius: float = 0.5,
    min_snr: float = 3.0,
    psf_mismatch: float = 0.03,
    background_box: int = 32,
    background_statistic: str = "mean",
    background_clip: float = 3.0,
    blend_radius: float = 2.0,
    max_sweeps: int = 10,
    tol_pix: float = 2e-3,
    max_step: float = 0.4,
) -> CatalogResult:
    """Detect and PSF-fit every object of a crowded image (see the module docstring).

    Parameters
    ----------
    image : float array ``[y, x]`` (NaN allowed: treated as bad).
    psf : the ePSF grid (kernel convention: each stamp sums to ``oversampling²``).
    bad : pixels never used (romancal dq, no coverage).
    variance : per-pixel variance; estimated from the background noise if omitted (then a
        constant, the robust scatter of ``image − background``).
    saturated, saturation_level : saturated pixels (mask, and/or ``image ≥ level``): not fitted,
        flagged SATURATED, their blobs seeded with one star each.
    threshold_sigma : matched-filter S/N threshold of detection.
    n_passes : detection passes (1 = no residual detection).
    fit_radius, core_radius, group_radius, blend_radius, min_separation, merge_radius : pix.
    min_snr : stars below this flux S/N after a fit are removed.
    psf_mismatch : fractional model error added to the variance for residual detection.
    """
    data = np.asarray(image, dtype=np.float64)
    shape = data.shape
    if data.ndim != 2:
        raise ValueError("image must be 2-D")
    _check_epsf(psf)
    # the ePSF for the numba kernels: (coefficients, grid, oversampling, centre, footprint
    # radius); every star's model covers the whole ePSF support, as in render_stars
    radius = psf.render_radius()
    coef, centre_y, centre_x = psf.coefficients(radius)
    ep = (coef, psf.grid_x, psf.grid_y, psf.oversampling, float(centre_y), float(centre_x), radius)
    bad = _to_bool(bad, shape)
    sat = _to_bool(saturated, shape).copy()
    finite = np.isfinite(data)
    if saturation_level is not None:
        with np.errstate(invalid="ignore"):
            sat |= finite & (data >= saturation_level)
    var = None if variance is None else np.asarray(variance, dtype=np.float64)
    unusable = bad | sat | ~finite
    if var is not None:
        unusable |= ~(np.isfinite(var) & (var > 0))
    valid = ~unusable  # pixels whose value may be used
    data = np.where(valid, data, 0.0)

    background = estimate_background(data, unusable, box=background_box).astype(np.float64)
    if var is None:
        d = (data - background)[valid]
        med = np.median(d) if d.size else 0.0
        sigma = 1.4826 * np.median(np.abs(d - med)) if d.size else 1.0
        var = np.full(shape, max(sigma, 1e-30) ** 2)
    weight = np.where(valid, 1.0 / np.where(valid, var, 1.0), 0.0)

    resid = np.where(valid, data - background, 0.0)
    kernels = detection_kernels(psf, radius=2)
    kernel = kernels[0, 0]

    # saturated blobs: one seed each, matched filter blanked around them
    blank = None
    seeds_x: list[float] = []
    seeds_y: list[float] = []
    seeds_f: list[float] = []
    if sat.any():
        lab, nlab = ndimage.label(sat)
        centres = ndimage.center_of_mass(sat, lab, np.arange(1, nlab + 1))
        for cy, cx in centres:
            seeds_x.append(float(cx))
            seeds_y.append(float(cy))
        blank = ndimage.binary_dilation(sat, iterations=max(round(fit_radius), 2))
        # a first flux guess from the matched filter of the wings
        _, fl = _snr_map(resid, weight, kernel)
        for cx, cy in zip(seeds_x, seeds_y, strict=True):
            j, i = round(cy), round(cx)
            seeds_f.append(
                float(max(np.max(fl[max(j - 3, 0) : j + 4, max(i - 3, 0) : i + 4]), 1.0))
            )

    x = np.zeros(0)
    y = np.zeros(0)
    f = np.zeros(0)
    npass = np.zeros(0, dtype=np.int8)
    alive = np.zeros(0, dtype=bool)
    stats: dict = {"sweeps": [], "new_per_pass": [], "groups": []}

    def add_stars(nx_: np.ndarray, ny_: np.ndarray, nf_: np.ndarray, p: int) -> np.ndarray:
        nonlocal x, y, f, npass, alive, xm, ym
        start = x.size
        x = np.concatenate([x, nx_])
        y = np.concatenate([y, ny_])
        f = np.concatenate([f, nf_])
        xm = np.concatenate([xm, nx_])
        ym = np.concatenate([ym, ny_])
        npass = np.concatenate([npass, np.full(nx_.size, p, dtype=np.int8)])
        alive = np.concatenate([alive, np.ones(nx_.size, dtype=bool)])
        new = np.arange(start, x.size)
        _render_stars(resid, new, x, y, f, xm, ym, ep, -1.0)
        return new

    xm = np.zeros(0)
    ym = np.zeros(0)
    var_f = np.zeros(0)
    var_x = np.zeros(0)
    var_y = np.zeros(0)

    activation_radius = fit_radius + min(psf.support, 2.5)

    def fit(dirty: np.ndarray | None) -> None:
        """Sweeps until converged; ``dirty``: stars whose neighbourhood needs a refit."""
        nonlocal var_f, var_x, var_y
        live = np.nonzero(alive)[0]
        if var_f.size < x.size:
            pad = x.size - var_f.size
            var_f = np.concatenate([var_f, np.full(pad, np.inf)])
            var_x = np.concatenate([var_x, np.full(pad, np.inf)])
            var_y = np.concatenate([var_y, np.full(pad, np.inf)])
        if live.size == 0:
            return
        labels = _groups(x[live], y[live], group_radius, max_group)
        ptr, order, new_labels = _csr(labels, np.round(y[live]) * shape[1] + x[live])
        gidx = live[order]
        gid = np.full(x.size, 0, dtype=np.int64)
        gid[live] = new_labels
        ng = ptr.size - 1
        gactive = np.ones(ng, dtype=bool)
        if dirty is not None:
            changed = np.zeros(x.size, dtype=bool)
            changed[dirty] = True
            _activate(changed, x, y, alive, gid, activation_radius, gactive)
        sweeps = 0
        while gactive.any() and sweeps < max_sweeps:
            changed = np.zeros(x.size, dtype=bool)
            _fit_groups(
                resid, weight, x, y, f, xm, ym, var_f, var_x, var_y, ptr, gidx, gactive,
                ep, fit_radius, max_step, tol_pix, 1e-3, True, changed,
            )  # fmt: skip
            sweeps += 1
            _activate(changed, x, y, alive, gid, activation_radius, gactive)
        stats["sweeps"].append(sweeps)
        stats["groups"].append(int(ng))

    def prune() -> np.ndarray:
        """Remove insignificant stars, merge close pairs; return the stars touched."""
        touched: list[int] = []
        live = np.nonzero(alive)[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = f[live] / np.sqrt(var_f[live])
        weak = live[~(snr >= min_snr)]
        if weak.size:
            _render_stars(resid, weak, x, y, f, xm, ym, ep, 1.0)
            alive[weak] = False
            touched.extend(weak.tolist())
        live = np.nonzero(alive)[0]
        if live.size > 1:
            pairs = cKDTree(np.column_stack([x[live], y[live]])).query_pairs(
                merge_radius, output_type="ndarray"
            )
            if len(pairs):
                a, b = live[pairs[:, 0]], live[pairs[:, 1]]
                order = np.argsort(-np.maximum(f[a], f[b]), kind="stable")
                for k1, k2 in zip(a[order], b[order], strict=True):
                    if not (alive[k1] and alive[k2]):
                        continue
                    keep, drop = (k1, k2) if f[k1] >= f[k2] else (k2, k1)
                    both = np.array([keep, drop])
                    _render_stars(resid, both, x, y, f, xm, ym, ep, 1.0)
                    ftot = f[keep] + f[drop]
                    if f[keep] > 0 and f[drop] > 0:
                        x[keep] = (f[keep] * x[keep] + f[drop] * x[drop]) / ftot
                        y[keep] = (f[keep] * y[keep] + f[drop] * y[drop]) / ftot
                    f[keep] = ftot
                    alive[drop] = False
                    _render_stars(resid, both[:1], x, y, f, xm, ym, ep, -1.0)
                    touched.extend([keep, drop])
        return np.array(touched, dtype=np.int64)

    # ---- pass 0: detection on the image, fit, background re-measured on image − model -----
    dx_, dy_, df_, _ = detect_peaks(
        resid, weight, kernels, threshold_sigma=threshold_sigma, footprint=3, blank=blank
    )
    if seeds_x:
        dx_ = np.concatenate([np.array(seeds_x), dx_])
        dy_ = np.concatenate([np.array(seeds_y), dy_])
        df_ = np.concatenate([np.array(seeds_f), df_])
    add_stars(dx_, dy_, np.maximum(df_, 0.0), 0)
    stats["new_per_pass"].append(int(dx_.size))
    fit(None)
    model = np.where(valid, data - background - resid, 0.0)
    new_bg = estimate_background(
        np.where(valid, data - model, np.nan),
        unusable,
        box=background_box,
        clip_sigma=background_clip,
        statistic=background_statistic,
    ).astype(np.float64)
    resid += np.where(valid, background - new_bg, 0.0)
    background = new_bg
    fit(None)
    touched = prune()
    if touched.size:
        fit(touched)

    # ---- residual passes -------------------------------------------------------------------
    for p in range(1, n_passes):
        model = np.where(valid, data - background - resid, 0.0)
        wdet = np.where(valid, 1.0 / (np.where(valid, var, 1.0) + (psf_mismatch * model) ** 2), 0)
        live = np.nonzero(alive)[0]
        cx, cy, cf, csnr = detect_peaks(
            resid, wdet, kernels, threshold_sigma=threshold_sigma, footprint=3, blank=blank,
            exclude=(x[live], y[live]), exclude_radius=min_separation,
        )  # fmt: skip
        if cx.size and live.size:
            dist, near = cKDTree(np.column_stack([x[live], y[live]])).query(
                np.column_stack([cx, cy])
            )
            keep = dist >= min_separation
            # one new star per known star and pass: a badly fitted blend leaves two lobes, and
            # two new stars beside the old one would make three for two
            close = keep & (dist < group_radius)
            if close.any():
                idx = np.nonzero(close)[0]
                order = idx[np.lexsort((-csnr[idx], near[idx]))]
                first = np.ones(order.size, dtype=bool)
                first[1:] = near[order][1:] != near[order][:-1]
                keep[order[~first]] = False
            cx, cy, cf = cx[keep], cy[keep], cf[keep]
        stats["new_per_pass"].append(int(cx.size))
        if cx.size == 0:
            break
        new = add_stars(cx, cy, np.maximum(cf, 0.0), p)
        fit(new)
        touched = prune()
        if touched.size:
            fit(touched)

    # ---- measurement ------------------------------------------------------------------------
    live = np.nonzero(alive)[0]
    if live.size:
        labels = _groups(x[live], y[live], group_radius, max_group)
        ptr, order, new_labels = _csr(labels, np.round(y[live]) * shape[1] + x[live])
        gidx = live[order]
        gsize = np.zeros(x.size, dtype=np.int32)
        gsize[live] = np.bincount(new_labels)[new_labels]
        _fit_groups(
            resid, weight, x, y, f, xm, ym, var_f, var_x, var_y, ptr, gidx,
            np.ones(ptr.size - 1, dtype=bool), ep, fit_radius, max_step,
            tol_pix, 0.0, False, np.zeros(x.size, dtype=bool),
        )  # fmt: skip
    else:
        gsize = np.zeros(x.size, dtype=np.int32)
    # sort the survivors in raster order
    live = live[np.lexsort((x[live], y[live]))] if live.size else live
    model = data - background - resid  # includes 0 at unusable pixels (data zeroed there)
    model_clean = np.zeros(shape)
    _render_stars(model_clean, live, x, y, f, xm, ym, ep, 1.0)
    n = live.size
    qfit = np.empty(n)
    crowd = np.empty(n)
    nfit = np.zeros(n, dtype=np.int64)
    ncore_bad = np.zeros(n, dtype=np.int64)
    psf_fit = np.empty(n)
    flux_limit = np.empty(n)
    lx, ly, lf = x[live], y[live], f[live]
    _final_measures(
        resid, model_clean, weight, valid, lx, ly, lf, xm[live], ym[live], ep,
        fit_radius, core_radius, qfit, crowd, nfit, ncore_bad, psf_fit, flux_limit,
    )  # fmt: skip
    del model

    flags = np.zeros(n, dtype=np.uint32)
    ny, nx = shape
    # flags from the pixels of the core
    core = math.ceil(core_radius)
    offs = [
        (dj, di)
        for dj in range(-core, core + 1)
        for di in range(-core, core + 1)
        if di * di + dj * dj <= (core_radius + 0.5) ** 2
    ]
    ri, rj = np.round(lx).astype(np.int64), np.round(ly).astype(np.int64)
    for dj, di in offs:
        jj, ii = rj + dj, ri + di
        inside = (jj >= 0) & (jj < ny) & (ii >= 0) & (ii < nx)
        jc, ic = np.clip(jj, 0, ny - 1), np.clip(ii, 0, nx - 1)
        flags[inside & sat[jc, ic]] |= _F_SATURATED
        flags[inside & (bad[jc, ic] | ~finite[jc, ic]) & ~sat[jc, ic]] |= _F_BAD_PIXEL
    edge = (
        (lx - fit_radius < -0.5)
        | (ly - fit_radius < -0.5)
        | (lx + fit_radius > nx - 0.5)
        | (ly + fit_radius > ny - 0.5)
    )
    flags[edge] |= _F_EDGE
    if n > 1:
        tree = cKDTree(np.column_stack([lx, ly]))
        pairs = tree.query_pairs(blend_radius, output_type="ndarray")
        if len(pairs):
            a, b = pairs[:, 0], pairs[:, 1]
            flags[a[lf[b] > lf[a]]] |= _F_BLENDED
            flags[b[lf[a] > lf[b]]] |= _F_BLENDED
    ferr = np.sqrt(var_f[live])
    # not measured: no usable fit pixel, no finite error, an ePSF with (almost) nothing of
    # itself in the fit disc (a broken ePSF fits nothing there), or a flux beyond what the
    # data around the star can hold (a fit that ran away)
    with np.errstate(invalid="ignore"):
        nodata = (nfit == 0) | ~np.isfinite(ferr) | ~(ferr > 0) | ~np.isfinite(lf)
        nodata |= ~(psf_fit >= _MIN_PSF_FIT) | ~(lf <= flux_limit)
        nodata |= ~(np.abs(lf) < np.finfo(np.float32).max / 1e6)
    flags[nodata] |= _F_NO_DATA
    flux = np.where(nodata, np.nan, lf)
    ferr = np.where(nodata, np.nan, ferr)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = flux / ferr
    bgi = background[np.clip(rj, 0, ny - 1), np.clip(ri, 0, nx - 1)] if n else np.zeros(0)
    residual = np.where(valid, resid, np.nan).astype(np.float32)
    stats["n_objects"] = int(n)
    return CatalogResult(
        x=lx.copy(),
        y=ly.copy(),
        flux=flux,
        flux_err=ferr,
        x_err=np.where(nodata, np.nan, np.sqrt(var_x[live])),
        y_err=np.where(nodata, np.nan, np.sqrt(var_y[live])),
        snr=snr,
        qfit=qfit.astype(np.float32),
        crowding=crowd.astype(np.float32),
        sky=bgi.astype(np.float32),
        flags=flags,
        group_size=gsize[live],
        detection_pass=npass[live],
        background=background.astype(np.float32),
        residual=residual,
        stats=stats,
    )


# --------------------------------------------------------------------------------------------
# stable object ids
# --------------------------------------------------------------------------------------------

_ID_GRID = 10  # id cells per pixel (0.1 pix)
_ID_AXIS = 100_000  # cells per axis: positions 0 … 9999.9 pix
_ID_SLOTS = 10


def _parse_number(value: int | str, prefix: str) -> int:
    if isinstance(value, (int, np.integer)):
        return int(value)
    match = re.fullmatch(rf"(?i){prefix}?(\d+)", str(value).strip())
    if not match:
        raise ValueError(f"cannot read a number from {value!r} (expected e.g. {prefix}03)")
    return int(match.group(1))


def object_ids(
    x: np.ndarray,
    y: np.ndarray,
    *,
    field: int | str,
    detector: int | str,
    flux: np.ndarray | None = None,
) -> np.ndarray:
    """Stable int64 ids from the reference-frame position, field and detector.

    Layout (decimal, so an id reads as ``FF DD YYYYY XXXXX S``)::

        id = (((field · 100 + detector) · 10⁵ + Y) · 10⁵ + X) · 10 + S
        X = floor(10 · x + 0.5), Y = floor(10 · y + 0.5)   (a 0.1-pix cell, clipped to 0 … 99999)

    ``S`` is the collision slot: objects of one cell are ranked by flux (descending; ties and
    ``flux=None`` by ``y``, then ``x``, then input order) and take slots 0, 1, …; an 11th object
    of a cell (never seen: the fit cannot separate stars 0.1 pix apart) continues in the slots of
    the next ``X`` cells that are still free. So ids depend only on each object's own position
    (and, in a collision, its neighbours' in the same 0.1-pix cell): deterministic, unchanged by
    objects added or removed elsewhere, and readable (``decode_object_id``).

    Limits: a re-measured position that crosses a cell boundary (the position moved by up to
    0.1 pix, or by less near a boundary) gives a new id; a reprocessing that must keep the ids of
    an earlier catalog has to carry them over by position matching (a step decision), and
    creates ids only for new objects. ``field`` ≤ 99, ``detector`` ≤ 99, ``x, y`` < 10 000 pix.
    """
    fno = _parse_number(field, "f")
    dno = _parse_number(detector, "WFI")
    if not (0 <= fno < 100 and 0 <= dno < 100):
        raise ValueError("field and detector must be in 0 … 99")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = x.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    cx = np.clip(np.floor(np.nan_to_num(x) * _ID_GRID + 0.5), 0, _ID_AXIS - 1).astype(np.int64)
    cy = np.clip(np.floor(np.nan_to_num(y) * _ID_GRID + 0.5), 0, _ID_AXIS - 1).astype(np.int64)
    prefix = np.int64(fno * 100 + dno)
    cell = cy * _ID_AXIS + cx
    key_flux = (
        -np.nan_to_num(np.asarray(flux, dtype=np.float64), nan=-np.inf)
        if flux is not None
        else np.zeros(n)
    )
    order = np.lexsort((np.arange(n), x, y, key_flux, cell))
    sorted_cell = cell[order]
    first = np.ones(n, dtype=bool)
    first[1:] = sorted_cell[1:] != sorted_cell[:-1]
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    rank = np.arange(n) - start
    ids = np.empty(n, dtype=np.int64)
    base = (prefix * _ID_AXIS * _ID_AXIS + cell) * _ID_SLOTS
    ids[order] = base[order] + np.minimum(rank, _ID_SLOTS - 1)
    overflow = order[rank >= _ID_SLOTS]
    if overflow.size:
        used = set(ids[order[rank < _ID_SLOTS]].tolist())
        for k in overflow:  # in the deterministic order above
            candidate = (prefix * _ID_AXIS * _ID_AXIS + cell[k] + 1) * _ID_SLOTS
            while candidate in used:
                candidate += 1
            ids[k] = candidate
            used.add(candidate)
    return ids


def decode_object_id(ids: np.ndarray | int) -> dict[str, np.ndarray]:
    """``field, detector`` numbers and the cell centre ``x, y`` (pix) and ``slot`` of ids."""
    ids = np.asarray(ids, dtype=np.int64)
    slot = ids % _ID_SLOTS
    rest = ids // _ID_SLOTS
    cx = rest % _ID_AXIS
    rest //= _ID_AXIS
    cy = rest % _ID_AXIS
    rest //= _ID_AXIS
    return {
        "field": rest // 100,
        "detector": rest % 100,
        "x": cx / _ID_GRID,
        "y": cy / _ID_GRID,
        "slot": slot,
    }
