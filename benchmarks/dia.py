"""Difference imaging of one 4088 × 4088 epoch: msos.dia (numba) against the usual tools.

Builds a crowded synthetic pair on the full detector — an undersampled reference R (FWHM
1.3 pix) with its noise, and an epoch made as P(x, y) · R_true ⊗ K(x, y) + B(x, y) + noise with
a kernel whose sub-pixel shift and width vary over the detector — then times, per epoch and
on one core (BLAS and numba limited to one thread, numba compiled beforehand):

* msos.dia: solve the 7 × 7, order-2 kernel on 144 stamps, then apply it with the variance;
* a straightforward scipy implementation of the same model (design matrix and normal
  equations in numpy on the same stamps, then one ``scipy.signal.fftconvolve`` per spatial
  term of the kernel and, for the variance, per pair of terms).

HOTPANTS, the field's usual DIA tool, is not on PyPI. The one DIA package from PyPI that
installs here and fits a spatially varying delta-basis kernel is SFFT (Hu et al. 2022,
``pip install sfft``; not a dependency of this workspace). Its CPU (numpy) backend needs
≈ 3 GB and 20 s for 1024²; 4088² would need ≈ 50 GB, so with ``--sfft`` it runs side by side
with msos.dia on a 1024² cut of the same pair (put sfft on ``PYTHONPATH`` first).

    ./dev run python benchmarks/dia.py [--size 4088] [--repeat 3] [--sfft]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy.ndimage import binary_dilation  # noqa: E402
from scipy.signal import fftconvolve  # noqa: E402
from scipy.special import erf  # noqa: E402

from msos.dia.kernel import (  # noqa: E402
    apply_kernel,
    choose_stamps,
    photometric_scale,
    polynomial_terms,
    solve_kernel,
)

KERNEL_SIZE, KERNEL_ORDER, BACKGROUND_ORDER = 7, 2, 1


# --- the synthetic pair ---------------------------------------------------------------------


def _pixel_gaussian(centre, sigma, first, n):
    edges = first[:, None] + np.arange(n + 1)[None, :] - 0.5
    return 0.5 * np.diff(erf((edges - centre[:, None]) / (np.sqrt(2) * sigma)), axis=1)


def render_stars(shape, x, y, flux, sigma=0.55, radius=5, chunk=100_000):
    ny, nx = shape
    n = 2 * radius + 1
    out = np.zeros(ny * nx)
    for start in range(0, x.size, chunk):
        xs, ys, fs = x[start : start + chunk], y[start : start + chunk], flux[start : start + chunk]
        ix = np.floor(xs + 0.5).astype(np.int64) - radius
        iy = np.floor(ys + 0.5).astype(np.int64) - radius
        values = fs[:, None, None] * (
            _pixel_gaussian(ys, sigma, iy, n)[:, :, None]
            * _pixel_gaussian(xs, sigma, ix, n)[:, None, :]
        )
        rows = iy[:, None, None] + np.arange(n)[None, :, None]
        cols = ix[:, None, None] + np.arange(n)[None, None, :]
        inside = (rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx)
        index = (rows * nx + cols)[inside]
        out += np.bincount(index, weights=values[inside], minlength=ny * nx)
    return out.reshape(shape)


def shifted_kernel(sigma, sx, sy, size=KERNEL_SIZE):
    first = np.array([-(size // 2)])
    k = np.outer(
        _pixel_gaussian(np.array([sy]), sigma, first, size)[0],
        _pixel_gaussian(np.array([sx]), sigma, first, size)[0],
    )
    return k / k.sum()


def make_pair(size, seed=0):
    rng = np.random.default_rng(seed)
    shape = (size, size)
    n_stars = size * size // 25
    x = rng.uniform(-3, size + 2, n_stars)
    y = rng.uniform(-3, size + 2, n_stars)
    flux = np.minimum(50.0 * rng.uniform(0.001, 1.0, n_stars) ** (-1 / 0.7), 3e5)
    reference_true = 100.0 + render_stars(shape, x, y, flux)
    yy, xx = np.mgrid[0:size, 0:size]
    u = (xx - (size - 1) / 2) / ((size - 1) / 2)
    v = (yy - (size - 1) / 2) / ((size - 1) / 2)
    del xx, yy
    alpha = 0.5 + 0.3 * u + 0.2 * v
    scale = 1.02 + 0.01 * u - 0.005 * v
    narrow = fftconvolve(reference_true, shifted_kernel(0.45, 0.30, -0.20), mode="same")
    broad = fftconvolve(reference_true, shifted_kernel(0.80, -0.25, 0.35), mode="same")
    epoch_true = scale * ((1 - alpha) * narrow + alpha * broad) + (5.0 + 3.0 * u - 2.0 * v)
    del narrow, broad, alpha, u, v
    reference_variance = reference_true / 20.0
    epoch_variance = epoch_true + 25.0
    reference = reference_true + rng.standard_normal(shape) * np.sqrt(reference_variance)
    epoch = epoch_true + rng.standard_normal(shape) * np.sqrt(epoch_variance)
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    return f32(reference), f32(reference_variance), f32(epoch), f32(epoch_variance)


# --- msos.dia -------------------------------------------------------------------------------


def run_msos(pair, stamps):
    reference, reference_variance, epoch, epoch_variance = pair
    solution = solve_kernel(
        reference,
        epoch,
        epoch_variance,
        stamps,
        reference_variance=reference_variance,
        kernel_size=KERNEL_SIZE,
        kernel_order=KERNEL_ORDER,
        background_order=BACKGROUND_ORDER,
    )
    diff = apply_kernel(
        solution, reference, epoch, epoch_variance, reference_variance=reference_variance
    )
    return solution, diff


# --- the scipy baseline: the same model, the straightforward way ----------------------------


def _terms(order, u, v):
    pu, pv = polynomial_terms(order)
    return [u**a * v**b for a, b in zip(pu, pv, strict=True)]


def run_scipy(pair, stamps, fits=2, clip=4.0):
    """Same parameters as msos.dia (Bramich basis, scale and shape of order 2, background of
    order 1, weights 1 / var_I); ``fits`` fits with pixel clipping in between; then the whole
    image by FFT convolutions (kernel per term; K² per pair of terms for the variance)."""
    reference, reference_variance, epoch, epoch_variance = pair
    ny, nx = reference.shape
    h, half = KERNEL_SIZE // 2, stamps.size // 2
    offsets = [(b - h, a - h) for b in range(KERNEL_SIZE) for a in range(KERNEL_SIZE)]
    centre = len(offsets) // 2
    off = [q for q in range(len(offsets)) if q != centre]
    columns, targets, sigmas = [], [], []
    for x0, y0 in zip(stamps.x, stamps.y, strict=True):
        win = np.s_[y0 - half : y0 + half + 1, x0 - half : x0 + half + 1]
        yy, xx = np.mgrid[win]
        u = ((xx - (nx - 1) / 2) / ((nx - 1) / 2)).ravel()
        v = ((yy - (ny - 1) / 2) / ((ny - 1) / 2)).ravel()
        r0 = reference[win].ravel().astype(float)
        kterms = _terms(KERNEL_ORDER, u, v)
        cols = [r0 * t for t in kterms]
        for q in off:
            dy, dx = offsets[q]
            shifted = reference[
                y0 - half - dy : y0 + half + 1 - dy, x0 - half - dx : x0 + half + 1 - dx
            ]
            cols += [(shifted.ravel() - r0) * t for t in kterms]
        cols += _terms(BACKGROUND_ORDER, u, v)
        columns.append(np.stack(cols, axis=1))
        targets.append(epoch[win].ravel().astype(float))
        sigmas.append(np.sqrt(epoch_variance[win].ravel().astype(float)))
    design = np.concatenate(columns)
    target, sigma = np.concatenate(targets), np.concatenate(sigmas)
    keep = np.ones(target.size, bool)
    for _ in range(fits):
        a = design[keep] / sigma[keep, None]
        params = np.linalg.solve(a.T @ a, a.T @ (target[keep] / sigma[keep]))
        keep = np.abs(target - design @ params) < clip * sigma
    nt = len(polynomial_terms(KERNEL_ORDER)[0])
    kernels = np.zeros((nt, KERNEL_SIZE, KERNEL_SIZE))  # one kernel per spatial term
    shape_params = params[nt : nt + len(off) * nt].reshape(len(off), nt)
    for i, q in enumerate(off):
        kernels[:, q // KERNEL_SIZE, q % KERNEL_SIZE] = shape_params[i]
    kernels[:, h, h] = params[:nt] - shape_params.sum(axis=0)
    background = params[nt + len(off) * nt :]

    yy, xx = np.mgrid[0:ny, 0:nx]
    u = (xx - (nx - 1) / 2) / ((nx - 1) / 2)
    v = (yy - (ny - 1) / 2) / ((ny - 1) / 2)
    del xx, yy
    bad_reference = ~np.isfinite(reference)
    clean = np.where(bad_reference, 0.0, reference)
    clean_variance = np.where(bad_reference, 0.0, reference_variance)
    terms = _terms(KERNEL_ORDER, u, v)
    model = sum(_terms(BACKGROUND_ORDER, u, v)[i] * background[i] for i in range(len(background)))
    for m in range(nt):
        model = model + terms[m] * fftconvolve(clean, kernels[m], mode="same")
    variance = epoch_variance.astype(float)
    for m in range(nt):
        for m2 in range(m, nt):
            factor = 1.0 if m == m2 else 2.0
            variance = variance + factor * terms[m] * terms[m2] * fftconvolve(
                clean_variance, kernels[m] * kernels[m2], mode="same"
            )
    bad = binary_dilation(bad_reference, np.ones((KERNEL_SIZE, KERNEL_SIZE), bool))
    bad |= ~np.isfinite(epoch)
    bad[:h] = bad[-h:] = True
    bad[:, :h] = bad[:, -h:] = True
    data = (epoch - model).astype(np.float32)
    data[bad] = np.nan
    return data, variance.astype(np.float32), bad


# --- SFFT (optional) ------------------------------------------------------------------------


def run_sfft(pair, config):
    from sfft.sfftcore.SFFTSubtract import GeneralSFFTSubtract

    reference, _, epoch, _ = pair
    ref = np.ascontiguousarray(reference.T, dtype=np.float64)
    sci = np.ascontiguousarray(epoch.T, dtype=np.float64)
    _, diff = GeneralSFFTSubtract.GSS(
        PixA_I=ref, PixA_J=sci, PixA_mI=ref, PixA_mJ=sci, SFFTConfig=config,
        ContamMask_I=None, BACKEND_4SUBTRACT="Numpy", NUM_CPU_THREADS_4SUBTRACT=1,
        VERBOSE_LEVEL=0,
    )[:2]  # fmt: skip
    return diff.T


# --- timing ---------------------------------------------------------------------------------


def timed(function, *args, repeat=1):
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function(*args)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def chi2(data, variance, bad):
    good = ~bad & np.isfinite(data)
    return float(np.mean(data[good].astype(float) ** 2 / variance[good]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4088)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sfft", action="store_true", help="also SFFT on a 1024² cut")
    args = parser.parse_args()

    small = make_pair(256, seed=1)  # compile every numba kernel first
    run_msos(small, choose_stamps(small[0], reference_variance=small[1], grid=8))

    start = time.perf_counter()
    pair = make_pair(args.size)
    print(f"synthetic pair {args.size}²: built in {time.perf_counter() - start:.1f} s")
    wall, cpu, stamps = timed(lambda: choose_stamps(pair[0], reference_variance=pair[1]))
    print(f"stamps (once per reference): {len(stamps)} of {stamps.size}², {wall:.2f} s")

    wall, cpu, (solution, diff) = timed(run_msos, pair, stamps, repeat=args.repeat)
    centre = args.size / 2
    scale = float(photometric_scale(solution, centre, centre))
    print(
        f"msos.dia  solve + apply + variance: {wall:6.2f} s/epoch/core (CPU {cpu:.2f} s); "
        f"χ²/dof of D {chi2(diff.data, diff.variance, diff.bad):.3f}, "
        f"fit {solution.chi2_per_dof:.3f} in {solution.n_iterations} fits, "
        f"scale at centre {scale:.4f} (injected 1.0200)"
    )
    wall_scipy, cpu_scipy, (data, variance, bad) = timed(run_scipy, pair, stamps)
    agree = np.nanmax(np.abs(data - diff.data) / np.sqrt(diff.variance))
    print(
        f"scipy     solve + apply + variance: {wall_scipy:6.2f} s/epoch/core "
        f"(CPU {cpu_scipy:.2f} s); "
        f"χ²/dof of D {chi2(data, variance, bad):.3f}; max |ΔD| / σ_D vs msos.dia {agree:.3f}"
    )
    print(
        "HOTPANTS (the usual tool) is not on PyPI, so the baseline is the same spatially "
        "varying delta-basis model written with numpy normal equations + scipy fftconvolve."
    )
    print(f"ratio (scipy baseline time / msos.dia time): {wall_scipy / wall:.1f}")

    if args.sfft:
        from sfft.sfftcore.SFFTConfigure import SingleSFFTConfigure

        cut = np.s_[:1024, :1024]
        sub = tuple(np.ascontiguousarray(a[cut]) for a in pair)
        sub_stamps = choose_stamps(sub[0], reference_variance=sub[1], grid=6)
        config = SingleSFFTConfigure.SSC(
            NX=1024, NY=1024, KerHW=KERNEL_SIZE // 2, KerPolyOrder=KERNEL_ORDER,
            BGPolyOrder=BACKGROUND_ORDER, ConstPhotRatio=False, BACKEND_4SUBTRACT="Numpy",
            NUM_CPU_THREADS_4SUBTRACT=1, NUMBA_CACHE=True, VERBOSE_LEVEL=0,
        )  # fmt: skip
        ours, _, (_, sub_diff) = timed(run_msos, sub, sub_stamps, repeat=args.repeat)
        theirs, _, sfft_diff = timed(run_sfft, sub, config)
        good = ~sub_diff.bad
        sfft_chi2 = float(np.mean(sfft_diff[good] ** 2 / sub_diff.variance[good]))
        ours_chi2 = chi2(sub_diff.data, sub_diff.variance, sub_diff.bad)
        print(
            f"1024² cut: msos.dia {ours:.2f} s, SFFT (numpy backend, whole-image fit) "
            f"{theirs:.2f} s; χ²/dof of D {ours_chi2:.3f} vs {sfft_chi2:.3f}; "
            f"ratio (SFFT time / msos.dia time): {theirs / ours:.1f}"
        )


if __name__ == "__main__":
    main()
