"""Difference imaging: a Bramich delta-basis kernel whose pixels vary with detector position.

An epoch ``I`` is modelled from the reference ``R`` (same pixel grid, integer offset already
removed) as

    model[j, i] = Σ_{b, a} K[b, a](x=i, y=j) · R[j - (b - h), i - (a - h)] + B(i, j)

with ``h = kernel_size // 2``: ``K`` is a *convolution* kernel (``scipy.signal.convolve``'s
orientation), ``K[h, h]`` is zero offset and ``K[h, h + 1]`` moves light by +1 pixel in ``x``.
Every kernel pixel and the differential background ``B`` are polynomials in the normalised
position ``u = (x - x_offset) / x_scale``, ``v = (y - y_offset) / y_scale`` (both in [-1, 1]
over the image). The difference image is ``D = I - model``: a star brighter in the epoch
than in the reference is positive in ``D``.

Following Bramich et al. (2013) the off-centre delta functions enter the fit as
``δ[b, a] - δ[h, h]``, so the centre basis function's polynomial *is* the kernel sum: the
photometric scale ``P(x, y) = Σ K(x, y)`` (epoch flux / reference flux) is a fitted quantity
of its own (``scale_order``), not a by-product.

The fit is linear least squares on stamps (small windows spread over the detector), weighted by
the inverse epoch variance, without the bad pixels of either image (a bad reference pixel
removes every stamp pixel whose kernel footprint touches it), with iterative clipping of outlier
pixels (cosmic rays) and outlier stamps (variable stars). The kernel is then applied to the
whole image with its value computed at every pixel (no tiles), in one pass that also gives the
variance of ``D``: ``var_I + Σ K² · var_R`` (exact per pixel).

Photometry on ``D``: its PSF at ``(x, y)`` is the reference ePSF convolved with
``kernel_at(solution, x, y)``, which sums to ``P(x, y)``. Fitting ``D`` with that PSF gives
the flux change in the reference's unit (``ΔF``); the flux in ``D`` itself is ``P · ΔF``.

Limit — undersampling: a pixel kernel reproduces a sub-pixel shift only for a band-limited
(well-sampled) image. With Roman's FWHM ≈ 1.3 pix the pixel pattern of a star depends on its
sub-pixel phase (aliasing), which no kernel can follow: on a Roman-like (Airy, FWHM 1.3 pix)
pair, residual χ² at bright stars is ≈ 1 for no shift, ≈ 20 for 0.15 pix and ≈ 100 for
0.45 pix, and least squares shrinks the kernel sum (≈ -2 % and -9 %), leaving ≈ +1.5 % and
+8 % of each star's flux in ``D``; with FWHM 2.6 pix the same 0.45 pix shift subtracts to
noise. Sub-pixel offsets should be removed before this kernel (a reference resampled to the
epoch's phase), leaving it the PSF, scale and background changes. ``flux_weight`` mitigates.

Pure functions on arrays: no I/O, no settings.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numba
import numpy as np
import scipy.linalg

__all__ = [
    "DIAError",
    "DifferenceImage",
    "KernelSolution",
    "StampStatus",
    "Stamps",
    "apply_kernel",
    "background_at",
    "choose_stamps",
    "kernel_at",
    "photometric_scale",
    "photometric_scale_error",
    "polynomial_terms",
    "solve_kernel",
    "stamps_at",
]

MAX_KERNEL_ORDER = 2  # the per-pixel evaluation is specialised to quadratics in x
_ROWS_PER_CHUNK = 4096  # design-matrix rows built at once (≈ 10 MB for 300 parameters)


class DIAError(RuntimeError):
    """The epoch cannot be subtracted: no kernel could be determined from its pixels.

    Raised instead of returning garbage: an all-NaN or all-bad epoch, too few usable stamps
    (before or after clipping), too few pixels for the number of parameters, a singular
    system, or a χ²/ν over the caller's limit. The step should flag the epoch
    (``EpochFlag.POOR_KERNEL``) and go on."""


class StampStatus(enum.IntEnum):
    """What became of a stamp in the fit (``KernelSolution.stamp_status``)."""

    USED = 0  # its unclipped pixels are in the final fit
    CLIPPED = 1  # rejected as an outlier stamp (variable star, bad subtraction)
    UNUSABLE = 2  # off the usable area, or too few valid pixels (bad / NaN / saturated)


@dataclass(frozen=True)
class Stamps:
    """Square stamps of ``size`` (odd) pixels centred on the integer pixels ``(x, y)``."""

    x: np.ndarray  # int64 column of each centre
    y: np.ndarray  # int64 row of each centre
    size: int

    def __post_init__(self) -> None:
        if self.size < 3 or self.size % 2 == 0:
            raise ValueError(f"stamp size must be odd and ≥ 3, not {self.size}")
        object.__setattr__(self, "x", np.asarray(self.x, dtype=np.int64).reshape(-1))
        object.__setattr__(self, "y", np.asarray(self.y, dtype=np.int64).reshape(-1))
        if self.x.shape != self.y.shape:
            raise ValueError("stamp x and y differ in length")

    def __len__(self) -> int:
        return int(self.x.size)


@dataclass(frozen=True)
class KernelSolution:
    """A solved kernel: plain numbers and arrays, so a step can store it and QA can report it.

    ``kernel_coefficients[b, a, t]`` is the coefficient of the polynomial term ``t`` (see
    :func:`polynomial_terms`, order ``max(kernel_order, scale_order)``) of kernel pixel
    ``[b, a]``; ``background_coefficients[t]`` those of ``B`` (order ``background_order``).
    """

    shape: tuple[int, int]  # (ny, nx) of the images the kernel was solved for
    kernel_size: int
    kernel_order: int  # spatial order of the kernel's shape (off-centre pixels)
    scale_order: int  # spatial order of the photometric scale (kernel sum)
    background_order: int
    x_offset: float  # u = (x - x_offset) / x_scale
    x_scale: float
    y_offset: float  # v = (y - y_offset) / y_scale
    y_scale: float
    kernel_coefficients: np.ndarray  # float64 [kernel_size, kernel_size, n_terms]
    background_coefficients: np.ndarray  # float64 [n_background_terms]
    scale_covariance: np.ndarray  # [n_scale_terms]²: formal covariance of the scale polynomial
    chi2_per_dof: float  # Σ (D² / var_D) over the fitted pixels / (pixels - parameters)
    n_pixels: int  # stamp pixels in the final fit
    n_pixels_clipped: int  # valid pixels of used stamps rejected as outliers
    n_parameters: int
    n_iterations: int  # fits made (1 = no clipping was needed)
    stamp_x: np.ndarray = field(repr=False)  # int64 centres, as given
    stamp_y: np.ndarray = field(repr=False)
    stamp_size: int = 0
    stamp_status: np.ndarray = field(default=None, repr=False)  # int8 StampStatus per stamp
    stamp_chi2_per_dof: np.ndarray = field(default=None, repr=False)  # NaN where unusable

    @property
    def half_width(self) -> int:
        return self.kernel_size // 2

    @property
    def scale_coefficients(self) -> np.ndarray:
        """Polynomial coefficients of the photometric scale (the kernel sum)."""
        return self.kernel_coefficients.sum(axis=(0, 1))

    @property
    def n_stamps_used(self) -> int:
        return int(np.count_nonzero(self.stamp_status == StampStatus.USED))


@dataclass(frozen=True)
class DifferenceImage:
    """``data = I - (R ⊗ K + B)`` (float32), its variance (float32) and what could not be
    measured (``bad``: bad or NaN in the epoch, a bad reference pixel within the kernel
    footprint, or within ``kernel_size // 2`` of the edge). ``data`` and ``variance`` are NaN
    where ``bad``."""

    data: np.ndarray
    variance: np.ndarray
    bad: np.ndarray


# --------------------------------------------------------------------------------------------
# polynomials


def polynomial_terms(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Powers ``(pu, pv)`` of the monomials ``u**pu * v**pv`` of total degree ≤ ``order``.

    Ordered by degree, then by increasing power of ``v``: ``1, u, v, u², uv, v², …``, so the
    terms of a lower order are a prefix of those of a higher one."""
    if order < 0:
        raise ValueError(f"polynomial order must be ≥ 0, not {order}")
    pu, pv = [], []
    for degree in range(order + 1):
        for b in range(degree + 1):
            pu.append(degree - b)
            pv.append(b)
    return np.asarray(pu, dtype=np.int64), np.asarray(pv, dtype=np.int64)


def _n_terms(order: int) -> int:
    return (order + 1) * (order + 2) // 2


def _normalisation(shape: tuple[int, int]) -> tuple[float, float, float, float]:
    ny, nx = shape
    x_offset, y_offset = (nx - 1) / 2.0, (ny - 1) / 2.0
    return x_offset, max(x_offset, 1.0), y_offset, max(y_offset, 1.0)


def _evaluate(coefficients: np.ndarray, order: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Σ_t c[..., t] u^pu v^pv for arrays u, v of one shape: result shape u.shape + c.shape[:-1]."""
    pu, pv = polynomial_terms(order)
    terms = np.stack([u**a * v**b for a, b in zip(pu, pv, strict=True)], axis=-1)
    return np.tensordot(terms, coefficients, axes=([-1], [-1]))


def _positions(solution: KernelSolution, x: np.ndarray, y: np.ndarray) -> tuple:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x, y = np.broadcast_arrays(x, y)
    return (x - solution.x_offset) / solution.x_scale, (y - solution.y_offset) / solution.y_scale


def kernel_at(solution: KernelSolution, x: float | np.ndarray, y: float | np.ndarray) -> np.ndarray:
    """The pixel kernel at detector position ``(x, y)``: ``[kernel_size, kernel_size]`` (or
    ``[..., kernel_size, kernel_size]`` for arrays of positions), in the convolution
    orientation of the module docstring. It sums to :func:`photometric_scale`.

    The PSF of the difference image at a star is the reference ePSF convolved with this kernel
    (``msos.psf.model.convolve_epsf_with_kernel``): fitting ``D`` with that PSF gives the flux
    change in the *reference's* flux unit."""
    u, v = _positions(solution, x, y)
    order = max(solution.kernel_order, solution.scale_order)
    return _evaluate(solution.kernel_coefficients, order, u, v)


def photometric_scale(
    solution: KernelSolution, x: float | np.ndarray, y: float | np.ndarray
) -> np.ndarray:
    """The kernel sum ``P(x, y)``: epoch flux / reference flux of a constant star there."""
    u, v = _positions(solution, x, y)
    order = max(solution.kernel_order, solution.scale_order)
    return _evaluate(solution.scale_coefficients, order, u, v)


def photometric_scale_error(
    solution: KernelSolution, x: float | np.ndarray, y: float | np.ndarray
) -> np.ndarray:
    """The formal 1σ error of :func:`photometric_scale` (from the epoch variances; scale it
    by ``sqrt(chi2_per_dof)`` if that is well above 1)."""
    u, v = _positions(solution, x, y)
    pu, pv = polynomial_terms(solution.scale_order)
    terms = np.stack([u**a * v**b for a, b in zip(pu, pv, strict=True)], axis=-1)
    variance = np.einsum("...i,ij,...j->...", terms, solution.scale_covariance, terms)
    return np.sqrt(np.maximum(variance, 0.0))


def background_at(
    solution: KernelSolution, x: float | np.ndarray, y: float | np.ndarray
) -> np.ndarray:
    """The differential background ``B(x, y)`` (epoch unit)."""
    u, v = _positions(solution, x, y)
    return _evaluate(solution.background_coefficients, solution.background_order, u, v)


# --------------------------------------------------------------------------------------------
# numba kernels (compiled once, cached on disk; none of them threads: one call, one core)


@numba.njit(cache=True, nogil=True)
def _dilate(mask: np.ndarray, h: int) -> np.ndarray:
    """``mask`` dilated by a (2h+1)×(2h+1) box: two passes of running counts."""
    ny, nx = mask.shape
    rows = np.zeros((ny, nx), np.bool_)
    for j in range(ny):
        count = 0
        for i in range(min(h, nx)):
            count += mask[j, i]
        for i in range(nx):
            if i + h < nx:
                count += mask[j, i + h]
            if i - h - 1 >= 0:
                count -= mask[j, i - h - 1]
            rows[j, i] = count > 0
    out = np.zeros((ny, nx), np.bool_)
    counts = np.zeros(nx, np.int64)
    for j in range(min(h, ny)):
        for i in range(nx):
            counts[i] += rows[j, i]
    for j in range(ny):
        if j + h < ny:
            for i in range(nx):
                counts[i] += rows[j + h, i]
        if j - h - 1 >= 0:
            for i in range(nx):
                counts[i] -= rows[j - h - 1, i]
        for i in range(nx):
            out[j, i] = counts[i] > 0
    return out


@numba.njit(cache=True, nogil=True)
def _clean_reference(
    reference: np.ndarray, bad: np.ndarray, use_bad: bool, variance: np.ndarray, use_var: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bad / NaN reference pixels (or NaN variance) set to 0 in copies; their mask."""
    ny, nx = reference.shape
    values = np.empty((ny, nx), np.float32)
    var = np.zeros((ny, nx) if use_var else (1, 1), np.float32)
    mask = np.zeros((ny, nx), np.bool_)
    for j in range(ny):
        for i in range(nx):
            r = reference[j, i]
            is_bad = not (abs(r) <= np.inf)  # NaN compares false
            if use_bad:
                is_bad = is_bad or bad[j, i]
            if use_var:
                sv = variance[j, i]
                is_bad = is_bad or not (0 <= sv < np.inf)
                var[j, i] = 0.0 if is_bad else sv
            values[j, i] = 0.0 if is_bad else r
            mask[j, i] = is_bad
    return values, var, mask


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def _difference_region(
    ref: np.ndarray,  # float32 [ny, nx], bad pixels zeroed
    ref_var: np.ndarray,  # float32 [ny, nx], or [1, 1] unless use_var
    use_var: bool,
    epoch: np.ndarray,
    epoch_var: np.ndarray,
    coef: np.ndarray,  # float64 [k*k, n_terms]: pixel polynomials, powers of u ≤ 2
    dy: np.ndarray,  # int64 [k*k]: offset of each kernel pixel
    dx: np.ndarray,
    pu: np.ndarray,
    pv: np.ndarray,
    bcoef: np.ndarray,
    bpu: np.ndarray,
    bpv: np.ndarray,
    norm: np.ndarray,  # (x_offset, x_scale, y_offset, y_scale)
    j0: int,  # rows [j0, j1), columns [i0, i1): kernel footprint inside the image
    j1: int,
    i0: int,
    i1: int,
    out: np.ndarray,  # D written to out[j - oj, i - oi]
    out_var: np.ndarray,
    oj: int,
    oi: int,
) -> None:
    """D = I - (R ⊗ K(x, y) + B) and var_I + var_R ⊗ K² over a region, K evaluated at every
    pixel. Per row, each kernel pixel's polynomial collapses to a quadratic in u; columns run
    in blocks that stay in L1 cache, through slices (no negative-index checks) so that LLVM
    vectorises them. Accumulates in float32 (relative rounding ≲ 1e-6 of the pixel values,
    far below any noise); row coefficients are formed in float64."""
    block = 512
    nq, nt = coef.shape
    nb = bcoef.size
    bdeg = 0
    for t in range(nb):
        bdeg = max(bdeg, bpu[t])
    x_offset, x_scale, y_offset, y_scale = norm[0], norm[1], norm[2], norm[3]
    n = i1 - i0
    u = np.empty(n, np.float32)
    u2 = np.empty(n, np.float32)
    for ii in range(n):
        uu = (i0 + ii - x_offset) / x_scale
        u[ii] = uu
        u2[ii] = uu * uu
    rc = np.zeros((nq, 3))
    brc = np.zeros(bdeg + 1)
    acc = np.empty(block, np.float32)
    vacc = np.empty(block, np.float32)
    for j in range(j0, j1):
        v = (j - y_offset) / y_scale
        rc[:, :] = 0.0
        for q in range(nq):
            for t in range(nt):
                rc[q, pu[t]] += coef[q, t] * v ** pv[t]
        brc[:] = 0.0
        for t in range(nb):
            brc[bpu[t]] += bcoef[t] * v ** bpv[t]
        for start in range(0, n, block):
            m = min(block, n - start)
            ub = u[start : start + m]
            u2b = u2[start : start + m]
            for ii in range(m):
                s = 0.0
                for a in range(bdeg, -1, -1):
                    s = s * ub[ii] + brc[a]
                acc[ii] = s
                vacc[ii] = 0.0
            for q in range(nq):
                c0 = np.float32(rc[q, 0])
                c1 = np.float32(rc[q, 1])
                c2 = np.float32(rc[q, 2])
                lo = i0 + start - dx[q]
                row = ref[j - dy[q], lo : lo + m]
                if use_var:
                    vrow = ref_var[j - dy[q], lo : lo + m]
                    for ii in range(m):
                        w = c0 + c1 * ub[ii] + c2 * u2b[ii]
                        acc[ii] += w * row[ii]
                        vacc[ii] += w * w * vrow[ii]
                else:
                    for ii in range(m):
                        w = c0 + c1 * ub[ii] + c2 * u2b[ii]
                        acc[ii] += w * row[ii]
            lo = i0 + start
            erow = epoch[j, lo : lo + m]
            evrow = epoch_var[j, lo : lo + m]
            orow = out[j - oj, lo - oi : lo - oi + m]
            ovrow = out_var[j - oj, lo - oi : lo - oi + m]
            for ii in range(m):
                orow[ii] = erow[ii] - acc[ii]
                ovrow[ii] = evrow[ii] + vacc[ii]


@numba.njit(cache=True, nogil=True)
def _stamp_valid(
    ref_bad: np.ndarray,
    epoch: np.ndarray,
    epoch_var: np.ndarray,
    epoch_bad: np.ndarray,
    use_epoch_bad: bool,
    xs: np.ndarray,
    ys: np.ndarray,
    half: int,
    h: int,
    inside: np.ndarray,
) -> np.ndarray:
    """valid[s, yy, xx]: the epoch pixel is finite, not bad, has a positive finite variance,
    no bad reference pixel lies in its kernel footprint, and no earlier stamp holds it
    (overlapping stamps would count a pixel, and its noise, twice)."""
    ns = xs.size
    size = 2 * half + 1
    valid = np.zeros((ns, size, size), np.bool_)
    claimed = np.zeros(epoch.shape, np.bool_)
    for s in range(ns):
        if not inside[s]:
            continue
        for yy in range(size):
            j = ys[s] - half + yy
            for xx in range(size):
                i = xs[s] - half + xx
                if claimed[j, i]:
                    continue
                claimed[j, i] = True
                e = epoch[j, i]
                ev = epoch_var[j, i]
                if not (np.isfinite(e) and np.isfinite(ev) and ev > 0):
                    continue
                if use_epoch_bad and epoch_bad[j, i]:
                    continue
                ok = True
                for jj in range(j - h, j + h + 1):
                    for ii in range(i - h, i + h + 1):
                        if ref_bad[jj, ii]:
                            ok = False
                valid[s, yy, xx] = ok
    return valid


@numba.njit(cache=True, nogil=True)
def _stamp_differences(
    ref: np.ndarray,
    ref_var: np.ndarray,
    use_var: bool,
    epoch: np.ndarray,
    epoch_var: np.ndarray,
    coef: np.ndarray,
    dy: np.ndarray,
    dx: np.ndarray,
    pu: np.ndarray,
    pv: np.ndarray,
    bcoef: np.ndarray,
    bpu: np.ndarray,
    bpv: np.ndarray,
    norm: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    half: int,
    usable: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """D and var_D on every usable stamp: exactly the computation of the whole-image pass."""
    ns = xs.size
    size = 2 * half + 1
    out = np.zeros((ns, size, size), np.float32)
    out_var = np.ones((ns, size, size), np.float32)
    for s in range(ns):
        if usable[s]:
            j0 = ys[s] - half
            i0 = xs[s] - half
            _difference_region(
                ref, ref_var, use_var, epoch, epoch_var, coef, dy, dx, pu, pv, bcoef, bpu,
                bpv, norm, j0, j0 + size, i0, i0 + size, out[s], out_var[s], j0, i0,
            )  # fmt: skip
    return out, out_var


@numba.njit(cache=True, nogil=True)
def _design_rows(
    ref: np.ndarray,
    epoch: np.ndarray,
    epoch_var: np.ndarray,
    js: np.ndarray,
    is_: np.ndarray,
    dy: np.ndarray,
    dx: np.ndarray,
    pu: np.ndarray,
    pv: np.ndarray,
    n_scale: int,
    n_shape: int,
    bpu: np.ndarray,
    bpv: np.ndarray,
    norm: np.ndarray,
    weighted: bool,
    a: np.ndarray,
    b: np.ndarray,
) -> None:
    """Rows of the design matrix for pixels (js, is_): columns are the scale polynomial
    times R, then for each off-centre kernel pixel (dy, dx) its shape polynomial times
    (R shifted - R), then the background polynomial; all times 1/σ_I if ``weighted``."""
    x_offset, x_scale, y_offset, y_scale = norm[0], norm[1], norm[2], norm[3]
    nt = pu.size
    nb = bpu.size
    t = np.empty(nt)
    for r in range(js.size):
        j = js[r]
        i = is_[r]
        sw = 1.0 / math.sqrt(epoch_var[j, i]) if weighted else 1.0
        u = (i - x_offset) / x_scale
        v = (j - y_offset) / y_scale
        for m in range(nt):
            t[m] = u ** pu[m] * v ** pv[m]
        r0 = np.float64(ref[j, i])
        col = 0
        for m in range(n_scale):
            a[r, col] = r0 * t[m] * sw
            col += 1
        for q in range(dy.size):
            d = (ref[j - dy[q], i - dx[q]] - r0) * sw
            for m in range(n_shape):
                a[r, col] = d * t[m]
                col += 1
        for m in range(nb):
            a[r, col] = u ** bpu[m] * v ** bpv[m] * sw
            col += 1
        b[r] = epoch[j, i] * sw


@numba.njit(cache=True, nogil=True)
def _finish(
    data: np.ndarray,
    var: np.ndarray,
    bad: np.ndarray,
    epoch_bad: np.ndarray,
    use_epoch_bad: bool,
    h: int,
) -> None:
    """Flag the edge band, bad epoch pixels and anything non-finite; NaN where flagged."""
    ny, nx = data.shape
    for j in range(ny):
        for i in range(nx):
            b = bad[j, i] or j < h or j >= ny - h or i < h or i >= nx - h
            if use_epoch_bad and epoch_bad[j, i]:
                b = True
            if not b and not (np.isfinite(data[j, i]) and var[j, i] > 0 and np.isfinite(var[j, i])):
                b = True
            if b:
                bad[j, i] = True
                data[j, i] = np.nan
                var[j, i] = np.nan


# --------------------------------------------------------------------------------------------
# inputs


def _image(array: np.ndarray, name: str, shape: tuple[int, int] | None = None) -> np.ndarray:
    out = np.ascontiguousarray(array, dtype=np.float32)
    if out.ndim != 2:
        raise ValueError(f"{name} must be 2-D, not {out.ndim}-D")
    if shape is not None and out.shape != shape:
        raise ValueError(f"{name} has shape {out.shape}, expected {shape}")
    return out


def _mask(array: np.ndarray | None, name: str, shape: tuple[int, int]) -> np.ndarray | None:
    if array is None:
        return None
    out = np.ascontiguousarray(array, dtype=np.bool_)
    if out.shape != shape:
        raise ValueError(f"{name} has shape {out.shape}, expected {shape}")
    return out


_NO_MASK = np.zeros((1, 1), np.bool_)
_NO_VALUES = np.zeros((1, 1), np.float32)


def _prepare_reference(
    reference: np.ndarray,
    reference_bad: np.ndarray | None,
    reference_variance: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values with bad pixels zeroed, variance likewise or a [1, 1] placeholder, bad mask)."""
    ref = _image(reference, "reference")
    bad = _mask(reference_bad, "reference_bad", ref.shape)
    var = (
        None
        if reference_variance is None
        else _image(reference_variance, "reference_variance", ref.shape)
    )
    return _clean_reference(
        ref,
        _NO_MASK if bad is None else bad,
        bad is not None,
        _NO_VALUES if var is None else var,
        var is not None,
    )


def _check_orders(
    kernel_size: int, kernel_order: int, scale_order: int, background_order: int
) -> None:
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd and ≥ 1, not {kernel_size}")
    for name, order in (("kernel_order", kernel_order), ("scale_order", scale_order)):
        if not 0 <= order <= MAX_KERNEL_ORDER:
            raise ValueError(f"{name} must be in 0..{MAX_KERNEL_ORDER}, not {order}")
    if background_order < 0:
        raise ValueError(f"background_order must be ≥ 0, not {background_order}")


def _kernel_offsets(kernel_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(dy, dx) of every kernel pixel [b, a], row-major: dy = b - h, dx = a - h."""
    h = kernel_size // 2
    b, a = np.divmod(np.arange(kernel_size * kernel_size), kernel_size)
    return (b - h).astype(np.int64), (a - h).astype(np.int64)


def _apply_arguments(solution: KernelSolution) -> tuple:
    """The numba arguments describing a solution: pixel polynomials and their terms."""
    k = solution.kernel_size
    dy, dx = _kernel_offsets(k)
    pu, pv = polynomial_terms(max(solution.kernel_order, solution.scale_order))
    bpu, bpv = polynomial_terms(solution.background_order)
    coef = np.ascontiguousarray(solution.kernel_coefficients.reshape(k * k, -1), dtype=np.float64)
    bcoef = np.ascontiguousarray(solution.background_coefficients, dtype=np.float64)
    norm = np.array(
        [solution.x_offset, solution.x_scale, solution.y_offset, solution.y_scale], np.float64
    )
    return coef, dy, dx, pu, pv, bcoef, bpu, bpv, norm


# --------------------------------------------------------------------------------------------
# solving


class _System:
    """Normal equations of the fit: the stamp pixels (updated as pixels enter or leave) plus,
    weighted by ``flux_weight``, one equation per stamp for its total flux."""

    def __init__(
        self,
        ref: np.ndarray,
        epoch: np.ndarray,
        epoch_var: np.ndarray,
        layout: dict,
        flux_weight: float,
    ):
        self.ref, self.epoch, self.epoch_var, self.layout = ref, epoch, epoch_var, layout
        self.flux_weight = flux_weight
        n = layout["n_parameters"]
        self.normal = np.zeros((n, n))
        self.rhs = np.zeros(n)
        self.normal_sums = np.zeros((n, n))
        self.rhs_sums = np.zeros(n)

    def _rows(self, js: np.ndarray, is_: np.ndarray, weighted: bool) -> tuple:
        lay = self.layout
        a = np.empty((js.size, lay["n_parameters"]))
        b = np.empty(js.size)
        _design_rows(
            self.ref, self.epoch, self.epoch_var, js, is_, lay["dy"], lay["dx"], lay["pu"],
            lay["pv"], lay["n_scale"], lay["n_shape"], lay["bpu"], lay["bpv"], lay["norm"],
            weighted, a, b,
        )  # fmt: skip
        return a, b

    def add(self, js: np.ndarray, is_: np.ndarray, sign: float) -> None:
        for start in range(0, js.size, _ROWS_PER_CHUNK):
            a, b = self._rows(
                np.ascontiguousarray(js[start : start + _ROWS_PER_CHUNK]),
                np.ascontiguousarray(is_[start : start + _ROWS_PER_CHUNK]),
                True,
            )
            self.normal += sign * (a.T @ a)
            self.rhs += sign * (a.T @ b)

    def set_stamp_sums(self, js: np.ndarray, is_: np.ndarray, stamp: np.ndarray) -> None:
        """The stamp-total equations of the pixels (js, is_), ``stamp`` non-decreasing:
        Σ_p model_p = Σ_p I_p, each weighted by 1 / Σ_p var_I."""
        n = self.layout["n_parameters"]
        self.normal_sums = np.zeros((n, n))
        self.rhs_sums = np.zeros(n)
        if self.flux_weight <= 0 or js.size == 0:
            return
        sums, totals, variances = [], [], []
        for start in range(0, js.size, _ROWS_PER_CHUNK):
            sl = slice(start, start + _ROWS_PER_CHUNK)
            a, b = self._rows(np.ascontiguousarray(js[sl]), np.ascontiguousarray(is_[sl]), False)
            ids = stamp[sl]
            first = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
            sums.append((ids[first], np.add.reduceat(a, first), np.add.reduceat(b, first)))
            var = self.epoch_var[js[sl], is_[sl]].astype(np.float64)
            variances.append((ids[first], np.add.reduceat(var, first)))
        ns = int(stamp[-1]) + 1
        total_rows = np.zeros((ns, n))
        totals = np.zeros(ns)
        total_var = np.zeros(ns)
        for (ids, rows, data), (_, var) in zip(sums, variances, strict=True):
            np.add.at(total_rows, ids, rows)
            np.add.at(totals, ids, data)
            np.add.at(total_var, ids, var)
        keep = total_var > 0
        w = 1.0 / np.sqrt(total_var[keep])
        rows = total_rows[keep] * w[:, None]
        self.normal_sums = rows.T @ rows
        self.rhs_sums = rows.T @ (totals[keep] * w)

    def solve(self, regularisation: float) -> np.ndarray:
        normal = self.normal + self.flux_weight * self.normal_sums
        rhs = self.rhs + self.flux_weight * self.rhs_sums
        diag = np.diag(normal).copy()
        if not np.all(np.isfinite(normal)) or np.any(diag <= 0):
            raise DIAError(
                "the stamps leave some kernel or background parameter unconstrained "
                "(blank or constant reference over the stamps?)"
            )
        d = np.sqrt(diag)
        scaled = normal / np.outer(d, d)  # unit diagonal: Jacobi-equilibrated
        if regularisation > 0:
            shape = self.layout["shape_slice"]
            idx = np.arange(shape.start, shape.stop)
            scaled[idx, idx] += regularisation
        try:
            factor = scipy.linalg.cho_factor(scaled, check_finite=False)
            x = scipy.linalg.cho_solve(factor, rhs / d, check_finite=False)
        except np.linalg.LinAlgError as error:
            raise DIAError(f"singular kernel system ({error}): degenerate stamps") from None
        self._factor, self._d = factor, d
        params = x / d
        if not np.all(np.isfinite(params)):
            raise DIAError("the kernel system gave a non-finite solution")
        return params

    def covariance(self, n: int) -> np.ndarray:
        """Covariance of the first ``n`` parameters (the scale coefficients) of the last
        solve, from the epoch variances. The estimate is linear in the data,
        θ = N⁻¹ Xᵀ (W + μ H) y with W the pixel weights and H the stamp-sum weights, so
        Cov θ = N⁻¹ (N_pixels + (2μ + μ²) N_sums) N⁻¹ (H Σ H = H)."""
        mu = self.flux_weight
        unit = np.zeros((self.normal.shape[0], n))
        unit[np.arange(n), np.arange(n)] = 1.0 / self._d[:n]
        z = scipy.linalg.cho_solve(self._factor, unit, check_finite=False) / self._d[:, None]
        middle = self.normal + (2 * mu + mu * mu) * self.normal_sums
        return z.T @ middle @ z


def _layout(
    kernel_size: int, kernel_order: int, scale_order: int, background_order: int, norm: np.ndarray
) -> dict:
    dy, dx = _kernel_offsets(kernel_size)
    centre = (kernel_size * kernel_size) // 2
    off = np.flatnonzero(np.arange(kernel_size * kernel_size) != centre)
    pu, pv = polynomial_terms(max(kernel_order, scale_order))
    bpu, bpv = polynomial_terms(background_order)
    n_scale, n_shape, n_bg = (
        _n_terms(scale_order),
        _n_terms(kernel_order),
        _n_terms(background_order),
    )
    n_off = off.size * n_shape
    return {
        "dy": np.ascontiguousarray(dy[off]),
        "dx": np.ascontiguousarray(dx[off]),
        "off": off,
        "centre": centre,
        "pu": pu,
        "pv": pv,
        "bpu": bpu,
        "bpv": bpv,
        "n_scale": n_scale,
        "n_shape": n_shape,
        "n_background": n_bg,
        "shape_slice": slice(n_scale, n_scale + n_off),
        "n_parameters": n_scale + n_off + n_bg,
        "norm": norm,
    }


def _unpack(params: np.ndarray, layout: dict, kernel_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Fit parameters → (pixel polynomials [k, k, n_terms], background polynomial)."""
    n_scale, n_shape = layout["n_scale"], layout["n_shape"]
    coef = np.zeros((kernel_size * kernel_size, layout["pu"].size))
    shape_params = params[layout["shape_slice"]].reshape(layout["off"].size, n_shape)
    coef[layout["off"], :n_shape] = shape_params
    coef[layout["centre"], :n_scale] = params[:n_scale]
    coef[layout["centre"], :n_shape] -= shape_params.sum(axis=0)
    background = params[layout["shape_slice"].stop :].copy()
    return coef.reshape(kernel_size, kernel_size, -1), background


def _robust_sigma(values: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def solve_kernel(
    reference: np.ndarray,
    epoch: np.ndarray,
    epoch_variance: np.ndarray,
    stamps: Stamps,
    *,
    reference_bad: np.ndarray | None = None,
    epoch_bad: np.ndarray | None = None,
    reference_variance: np.ndarray | None = None,
    kernel_size: int = 7,
    kernel_order: int = 2,
    scale_order: int | None = None,
    background_order: int = 1,
    clip_sigma: float = 4.0,
    stamp_clip_sigma: float = 4.0,
    max_iterations: int = 10,
    min_stamps: int | None = None,
    min_good_fraction: float = 0.5,
    regularisation: float = 0.0,
    max_chi2_per_dof: float | None = None,
    flux_weight: float = 0.0,
) -> KernelSolution:
    """Fit the spatially varying kernel and background that turn ``reference`` into ``epoch``.

    Least squares over the valid pixels of ``stamps`` with weights ``1 / epoch_variance``
    (best a variance from a model, not from the noisy counts themselves: weights that follow
    the noise bias the scale low by ≈ 1 / counts per pixel).
    A pixel is valid when it is finite and not bad in the epoch, has a positive variance, and
    no bad or NaN reference pixel (nor NaN ``reference_variance``) lies in its kernel
    footprint; a stamp with fewer than ``min_good_fraction`` valid pixels, or whose footprint
    leaves the image, is unusable. Each iteration refits, then recomputes from scratch which
    pixels have ``|D| / σ_D > clip_sigma`` (σ_D² = var_I + var_R ⊗ K²) and which stamps have a
    χ²/ν above ``median + stamp_clip_sigma × robust σ`` of all stamps, until that set stops
    changing or ``max_iterations`` fits were made.

    ``scale_order`` (default ``kernel_order``) is the spatial order of the kernel sum,
    ``kernel_order`` that of the other kernel pixels (the shape). ``regularisation`` adds
    that multiple of the (equilibrated, unit) diagonal to the shape parameters: a ridge toward
    ``P(x, y) δ`` for stamps too faint to fix every kernel pixel; 0 (none) by default because
    crowded bulge stamps constrain the kernel well.

    ``flux_weight`` μ adds, for each stamp, the equation "model flux summed over the stamp =
    epoch flux summed over it" with μ times its natural weight (1 / Σ var_I). With a model
    that can match the images it changes nothing but the noise; where it cannot — a sub-pixel
    shift of an undersampled PSF, which no pixel kernel reproduces (aliasing) — plain least
    squares shrinks the kernel sum (≈ -9 % for 0.45 pix at FWHM 1.3 pix) and μ ≈ 10 pulls it
    back toward flux conservation, at the price of a noisier scale. Off (0) by default.

    Raises :class:`DIAError` when fewer than ``min_stamps`` stamps are usable (default
    ``max(8, 3 × terms of the highest spatial order)``), before or after clipping, when the
    pixels are fewer than twice the parameters, when the system is singular, or when the final
    χ²/ν exceeds ``max_chi2_per_dof`` (no limit by default: QA reads ``chi2_per_dof``)."""
    scale_order = kernel_order if scale_order is None else scale_order
    _check_orders(kernel_size, kernel_order, scale_order, background_order)
    if not isinstance(stamps, Stamps):
        raise TypeError("stamps must be a Stamps (see choose_stamps / stamps_at)")
    ref, ref_var, ref_bad = _prepare_reference(reference, reference_bad, reference_variance)
    shape = ref.shape
    image = _image(epoch, "epoch", shape)
    image_var = _image(epoch_variance, "epoch_variance", shape)
    image_bad = _mask(epoch_bad, "epoch_bad", shape)
    use_var = reference_variance is not None
    ny, nx = shape
    h = kernel_size // 2
    half = stamps.size // 2
    size2 = stamps.size * stamps.size
    max_order = max(kernel_order, scale_order, background_order)
    n_min = max(8, 3 * _n_terms(max_order)) if min_stamps is None else int(min_stamps)

    xs, ys = stamps.x, stamps.y
    inside = (xs - half >= h) & (xs + half < nx - h) & (ys - half >= h) & (ys + half < ny - h)
    valid = _stamp_valid(
        ref_bad,
        image,
        image_var,
        _NO_MASK if image_bad is None else image_bad,
        image_bad is not None,
        xs,
        ys,
        half,
        h,
        inside,
    )
    n_valid = valid.sum(axis=(1, 2))
    usable = inside & (n_valid >= min_good_fraction * size2)
    if np.count_nonzero(usable) < n_min:
        raise DIAError(
            f"{np.count_nonzero(usable)} of {len(stamps)} stamps are usable (≥ "
            f"{min_good_fraction:.0%} valid pixels, footprint inside the image), {n_min} needed: "
            "the epoch or the reference is bad / NaN over most of the stamps"
        )

    x_offset, x_scale, y_offset, y_scale = _normalisation(shape)
    norm = np.array([x_offset, x_scale, y_offset, y_scale])
    layout = _layout(kernel_size, kernel_order, scale_order, background_order, norm)
    n_par = layout["n_parameters"]
    kdy, kdx = _kernel_offsets(kernel_size)
    bpu, bpv = layout["bpu"], layout["bpv"]
    stamp_y0 = (ys - half)[:, None, None]
    stamp_x0 = (xs - half)[:, None, None]

    def pixels(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Image rows, columns and stamp index of the pixels set in ``mask``, stamp-major."""
        s, py, px = np.nonzero(mask)
        js = (stamp_y0[s, 0, 0] + py).astype(np.int64)
        return js, (stamp_x0[s, 0, 0] + px).astype(np.int64), s

    system = _System(ref, image, image_var, layout, flux_weight)
    active = valid & usable[:, None, None]
    if np.count_nonzero(active) < 2 * n_par:
        raise DIAError(f"{np.count_nonzero(active)} valid stamp pixels for {n_par} parameters")
    js, is_, sid = pixels(active)
    system.add(js, is_, +1.0)
    system.set_stamp_sums(js, is_, sid)

    iteration = 0
    while True:
        iteration += 1
        params = system.solve(regularisation)
        coef, background = _unpack(params, layout, kernel_size)
        diff, diff_var = _stamp_differences(
            ref, ref_var, use_var, image, image_var,
            np.ascontiguousarray(coef.reshape(kernel_size * kernel_size, -1)), kdy, kdx,
            layout["pu"], layout["pv"], background, bpu, bpv, norm, xs, ys, half, usable,
        )  # fmt: skip
        with np.errstate(invalid="ignore", divide="ignore"):
            z2 = np.where(valid, diff.astype(np.float64) ** 2 / diff_var, 0.0)
        kept = valid & usable[:, None, None] & (z2 <= clip_sigma**2)
        n_kept = kept.sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            stamp_chi2 = np.where(kept, z2, 0.0).sum(axis=(1, 2)) / n_kept
        good = usable & (n_kept >= min_good_fraction * size2)
        if np.count_nonzero(good) == 0:
            raise DIAError("clipping rejected every stamp")
        chi2_good = stamp_chi2[good]
        floor = math.sqrt(2.0 / float(np.median(n_kept[good])))
        threshold = np.median(chi2_good) + stamp_clip_sigma * max(_robust_sigma(chi2_good), floor)
        accepted = good & (stamp_chi2 <= threshold)
        new_active = kept & accepted[:, None, None]
        if iteration >= max_iterations or np.array_equal(new_active, active):
            break
        if np.count_nonzero(accepted) < n_min:
            raise DIAError(
                f"clipping left {np.count_nonzero(accepted)} stamps, {n_min} needed: "
                "the epoch does not match the reference (bad kernel, or most stamps vary)"
            )
        added, removed = new_active & ~active, active & ~new_active
        if np.count_nonzero(added) + np.count_nonzero(removed) > np.count_nonzero(new_active) // 2:
            system = _System(ref, image, image_var, layout, flux_weight)
            system.add(*pixels(new_active)[:2], +1.0)
        else:
            system.add(*pixels(added)[:2], +1.0)
            system.add(*pixels(removed)[:2], -1.0)
        system.set_stamp_sums(*pixels(new_active))
        active = new_active

    used = active.any(axis=(1, 2))
    status = np.full(len(stamps), StampStatus.UNUSABLE, np.int8)
    status[usable] = StampStatus.CLIPPED
    status[used] = StampStatus.USED
    n_active = int(np.count_nonzero(active))
    chi2 = float(z2[active].sum()) / max(n_active - n_par, 1)
    n_clipped = int(np.count_nonzero(valid & used[:, None, None] & ~active))
    if max_chi2_per_dof is not None and not chi2 <= max_chi2_per_dof:
        raise DIAError(
            f"the kernel fit has χ²/ν = {chi2:.3g} > {max_chi2_per_dof:.3g}: the epoch does "
            "not match the reference (misregistered beyond the kernel, or corrupted)"
        )
    return KernelSolution(
        shape=(int(ny), int(nx)),
        kernel_size=int(kernel_size),
        kernel_order=int(kernel_order),
        scale_order=int(scale_order),
        background_order=int(background_order),
        x_offset=float(x_offset),
        x_scale=float(x_scale),
        y_offset=float(y_offset),
        y_scale=float(y_scale),
        kernel_coefficients=coef,
        background_coefficients=background,
        scale_covariance=system.covariance(layout["n_scale"]),
        chi2_per_dof=chi2,
        n_pixels=n_active,
        n_pixels_clipped=n_clipped,
        n_parameters=int(n_par),
        n_iterations=iteration,
        stamp_x=xs.copy(),
        stamp_y=ys.copy(),
        stamp_size=int(stamps.size),
        stamp_status=status,
        stamp_chi2_per_dof=np.where(usable, stamp_chi2, np.nan),
    )


# --------------------------------------------------------------------------------------------
# applying


def apply_kernel(
    solution: KernelSolution,
    reference: np.ndarray,
    epoch: np.ndarray,
    epoch_variance: np.ndarray,
    *,
    reference_bad: np.ndarray | None = None,
    epoch_bad: np.ndarray | None = None,
    reference_variance: np.ndarray | None = None,
) -> DifferenceImage:
    """The difference image ``D = I - (R ⊗ K(x, y) + B(x, y))``, the kernel evaluated at every
    pixel, with ``var_D = var_I + Σ K(x, y)² var_R`` (also per pixel; without
    ``reference_variance`` the reference is taken as noiseless).

    Bad or NaN reference pixels are replaced by 0 before convolving and flag every pixel whose
    kernel footprint contains them (so they spread no further than the footprint); bad / NaN
    epoch pixels, non-positive variances and the ``kernel_size // 2`` edge band are flagged too.
    ``data`` and ``variance`` are NaN where ``bad``."""
    shape = solution.shape
    ref, ref_var, ref_bad = _prepare_reference(reference, reference_bad, reference_variance)
    if ref.shape != tuple(shape):
        raise ValueError(f"reference has shape {ref.shape}, the solution is for {tuple(shape)}")
    image = _image(epoch, "epoch", ref.shape)
    image_var = _image(epoch_variance, "epoch_variance", ref.shape)
    image_bad = _mask(epoch_bad, "epoch_bad", ref.shape)
    h = solution.half_width
    ny, nx = ref.shape
    data = np.empty(ref.shape, np.float32)
    variance = np.empty(ref.shape, np.float32)
    if ny > 2 * h and nx > 2 * h:
        _difference_region(
            ref, ref_var, reference_variance is not None, image, image_var,
            *_apply_arguments(solution), h, ny - h, h, nx - h, data, variance, 0, 0,
        )  # fmt: skip
    bad = _dilate(ref_bad, h)
    _finish(
        data, variance, bad, _NO_MASK if image_bad is None else image_bad, image_bad is not None, h
    )
    return DifferenceImage(data=data, variance=variance, bad=bad)


# --------------------------------------------------------------------------------------------
# stamps


@numba.njit(cache=True, nogil=True)
def _window_scores(
    ref: np.ndarray,
    avoid: np.ndarray,
    inverse_var: np.ndarray,
    use_var: bool,
    cy: np.ndarray,
    cx: np.ndarray,
    half: int,
    max_count: int,
) -> np.ndarray:
    """For the windows of (2 half + 1)² pixels centred on the grid cy × cx: the gradient
    energy Σ ((ΔxR)² + (ΔyR)²) (÷ var_R when given) — the information the window carries on
    the off-centre kernel pixels — over its pixels not to ``avoid``, or -1 where more than
    ``max_count`` are to be avoided.
    Running sums: a horizontal pass sampled at the cx columns, then a vertical one."""
    ny, nx = ref.shape
    ncy, ncx = cy.size, cx.size
    energy_rows = np.zeros((ny, ncx))
    avoid_rows = np.zeros((ny, ncx), np.int32)
    energy = np.zeros(nx)
    for j in range(ny):
        for i in range(nx):
            e = 0.0
            if (
                j + 1 < ny
                and i + 1 < nx
                and not (avoid[j, i] or avoid[j, i + 1] or avoid[j + 1, i])
            ):
                gx = np.float64(ref[j, i + 1]) - ref[j, i]
                gy = np.float64(ref[j + 1, i]) - ref[j, i]
                e = gx * gx + gy * gy
                if use_var:
                    e *= inverse_var[j, i]
            energy[i] = e
        total = 0.0
        count = 0
        c = 0
        for i in range(nx):
            total += energy[i]
            count += avoid[j, i]
            if i - 2 * half - 1 >= 0:
                total -= energy[i - 2 * half - 1]
                count -= avoid[j, i - 2 * half - 1]
            while c < ncx and cx[c] + half < i:
                c += 1
            if c < ncx and cx[c] + half == i:
                energy_rows[j, c] = total
                avoid_rows[j, c] = count
    scores = np.zeros((ncy, ncx))
    for c in range(ncx):
        total = 0.0
        count = 0
        r = 0
        for j in range(ny):
            total += energy_rows[j, c]
            count += avoid_rows[j, c]
            if j - 2 * half - 1 >= 0:
                total -= energy_rows[j - 2 * half - 1, c]
                count -= avoid_rows[j - 2 * half - 1, c]
            while r < ncy and cy[r] + half < j:
                r += 1
            if r < ncy and cy[r] + half == j:
                scores[r, c] = total if count <= max_count else -1.0
    return scores


def choose_stamps(
    reference: np.ndarray,
    reference_bad: np.ndarray | None = None,
    *,
    reference_variance: np.ndarray | None = None,
    epoch_bad: np.ndarray | None = None,
    saturation: float | None = None,
    grid: int | tuple[int, int] = 12,
    size: int = 19,
    kernel_size: int = 7,
    step: int = 2,
    max_bad_fraction: float = 0.2,
) -> Stamps:
    """One stamp per cell of a ``grid`` (rows × columns of cells) over the image: in each cell,
    the ``size``-pixel window (centres every ``step`` pixels) richest in reference structure —
    the gradient energy ``Σ (∇R)² / var_R``, i.e. bright unsaturated stars — of its clean
    pixels, among windows with at most ``max_bad_fraction`` unclean ones (an image too small
    for ``grid`` cells of at least ``size`` pixels gets as many as fit). A clean pixel has a
    clean kernel footprint: no bad / NaN reference pixel within ``kernel_size // 2``, no
    pixel ≥ ``saturation`` within ``kernel_size // 2 + 2`` (wings), and it is not
    ``epoch_bad``. A cell without such a window gets no stamp.

    Chosen once per reference (the solver drops epoch-bad pixels itself), the stamps are the
    same for every epoch of a season."""
    h = kernel_size // 2
    half = size // 2
    ref, ref_var, ref_bad = _prepare_reference(reference, reference_bad, reference_variance)
    ny, nx = ref.shape
    avoid = ref_bad
    if saturation is not None:
        avoid = avoid | _dilate(ref >= saturation, h + 2)
    avoid = _dilate(avoid, h)
    emask = _mask(epoch_bad, "epoch_bad", ref.shape)
    if emask is not None:
        avoid |= emask
    gy, gx = (grid, grid) if isinstance(grid, int) else grid
    # a small image gets fewer cells: each must hold a whole stamp
    gy = max(1, min(gy, (ny - 2 * h) // size))
    gx = max(1, min(gx, (nx - 2 * h) // size))
    lo_y, hi_y = half + h, ny - 1 - half - h
    lo_x, hi_x = half + h, nx - 1 - half - h
    if hi_y < lo_y or hi_x < lo_x:
        return Stamps(x=np.zeros(0, np.int64), y=np.zeros(0, np.int64), size=size)
    # cells split the pixels whose footprint lies inside the image; a window stays inside its
    # cell, so stamps never overlap
    edges_y = h + (np.arange(gy + 1) * (ny - 2 * h)) // gy
    edges_x = h + (np.arange(gx + 1) * (nx - 2 * h)) // gx
    if np.min(np.diff(edges_y)) < size or np.min(np.diff(edges_x)) < size:
        raise ValueError(f"a {gy}×{gx} grid on {ny}×{nx} pixels has cells smaller than {size}")
    cy = np.arange(lo_y, hi_y + 1, step, dtype=np.int64)
    cx = np.arange(lo_x, hi_x + 1, step, dtype=np.int64)
    if reference_variance is not None:
        with np.errstate(divide="ignore"):
            inverse_var = np.where(ref_var > 0, 1.0 / ref_var, 0.0).astype(np.float32)
    else:
        inverse_var = _NO_VALUES
    max_count = int(max_bad_fraction * size * size)
    score = _window_scores(
        ref, avoid, inverse_var, reference_variance is not None, cy, cx, half, max_count
    )
    xs, ys = [], []
    for row in range(gy):
        iy = np.flatnonzero((cy - half >= edges_y[row]) & (cy + half < edges_y[row + 1]))
        for col in range(gx):
            ix = np.flatnonzero((cx - half >= edges_x[col]) & (cx + half < edges_x[col + 1]))
            if iy.size == 0 or ix.size == 0:
                continue
            cell = score[np.ix_(iy, ix)]
            best = np.unravel_index(np.argmax(cell), cell.shape)
            if cell[best] < 0:
                continue
            ys.append(cy[iy[best[0]]])
            xs.append(cx[ix[best[1]]])
    return Stamps(x=np.asarray(xs, np.int64), y=np.asarray(ys, np.int64), size=size)


def stamps_at(
    x: np.ndarray,
    y: np.ndarray,
    shape: tuple[int, int],
    *,
    size: int = 19,
    kernel_size: int = 7,
) -> Stamps:
    """Stamps centred on given positions (e.g. bright unsaturated, isolated stars from the
    catalog, brightest first): rounded to the nearest pixel, dropped when the stamp and its
    kernel footprint leave the image or when it overlaps a stamp kept before it."""
    half, h = size // 2, kernel_size // 2
    cx = np.floor(np.asarray(x, np.float64).reshape(-1) + 0.5).astype(np.int64)
    cy = np.floor(np.asarray(y, np.float64).reshape(-1) + 0.5).astype(np.int64)
    ny, nx = shape
    inside = (cx - half >= h) & (cx + half < nx - h) & (cy - half >= h) & (cy + half < ny - h)
    kept_x: list[int] = []
    kept_y: list[int] = []
    for px, py in zip(cx[inside], cy[inside], strict=True):
        if kept_x:
            kx, ky = np.asarray(kept_x), np.asarray(kept_y)
            if np.any((np.abs(kx - px) < size) & (np.abs(ky - py) < size)):
                continue
        kept_x.append(int(px))
        kept_y.append(int(py))
    return Stamps(x=np.asarray(kept_x, np.int64), y=np.asarray(kept_y, np.int64), size=size)
