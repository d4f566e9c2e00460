"""Synthetic image pairs for the DIA tests.

A crowded field of undersampled stars (pixel-integrated Gaussians, FWHM 1.3 pix) makes the
reference ``R`` (true image + its own noise); the epoch is made *exactly* as the model says:
``I = P(x, y) · [R_true ⊗ K_shape(x, y)] + B(x, y) + noise``, where the kernel mixes a
narrow kernel shifted by (+0.3, -0.2) pix and a broad one shifted by (-0.25, +0.35) pix with
weights linear in position, and ``P`` and ``B`` are linear too: every kernel pixel is then a
polynomial of order 2 and the model can match the epoch to the noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf

SHAPE = (256, 256)
SIGMA_PSF = 0.55  # pix: FWHM 1.3
KERNEL_SIZE = 7
PAD = 8  # the truth is rendered on a padded canvas, so the epoch has no edge effects
SKY = 100.0
READ_VARIANCE = 25.0
REFERENCE_DEPTH = 5.0  # var_R = R_true / depth: a shallow stack, so its noise matters


def pixel_gaussian(centre: np.ndarray, sigma: float, first: np.ndarray, n: int) -> np.ndarray:
    """[stars, n] fractions of a unit 1-D Gaussian falling in pixels first … first + n - 1."""
    edges = first[:, None] + np.arange(n + 1)[None, :] - 0.5
    return 0.5 * np.diff(erf((edges - centre[:, None]) / (np.sqrt(2) * sigma)), axis=1)


def render(shape, x, y, flux, sigma=SIGMA_PSF, radius=6):
    """Stars of ``flux`` at (x, y) (0-based pixel centres), pixel-integrated Gaussians."""
    ny, nx = shape
    n = 2 * radius + 1
    ix = np.floor(np.asarray(x) + 0.5).astype(int) - radius
    iy = np.floor(np.asarray(y) + 0.5).astype(int) - radius
    stamps = flux[:, None, None] * (
        pixel_gaussian(np.asarray(y, float), sigma, iy, n)[:, :, None]
        * pixel_gaussian(np.asarray(x, float), sigma, ix, n)[:, None, :]
    )
    canvas = np.zeros((ny + 2 * n, nx + 2 * n))
    rows = (iy + n)[:, None, None] + np.arange(n)[None, :, None]
    cols = (ix + n)[:, None, None] + np.arange(n)[None, None, :]
    np.add.at(
        canvas, (np.broadcast_to(rows, stamps.shape), np.broadcast_to(cols, stamps.shape)), stamps
    )
    return canvas[n : n + ny, n : n + nx]


def shifted_kernel(sigma: float, sx: float, sy: float, size: int = KERNEL_SIZE) -> np.ndarray:
    h = size // 2
    first = np.array([-h])
    k = np.outer(
        pixel_gaussian(np.array([sy]), sigma, first, size)[0],
        pixel_gaussian(np.array([sx]), sigma, first, size)[0],
    )
    return k / k.sum()


KERNEL_A = shifted_kernel(0.45, +0.30, -0.20)
KERNEL_B = shifted_kernel(0.80, -0.25, +0.35)


def normalised(x, y, shape=SHAPE):
    ny, nx = shape
    return (np.asarray(x, float) - (nx - 1) / 2) / ((nx - 1) / 2), (
        np.asarray(y, float) - (ny - 1) / 2
    ) / ((ny - 1) / 2)


def true_scale(x, y):
    u, v = normalised(x, y)
    return 1.10 + 0.03 * u - 0.02 * v


def true_background(x, y):
    u, v = normalised(x, y)
    return 5.0 + 3.0 * u - 2.0 * v


def true_kernel(x, y):
    """K_true at positions: [..., 7, 7], sums to true_scale."""
    u, v = normalised(x, y)
    alpha = (0.5 + 0.3 * u + 0.2 * v)[..., None, None]
    return true_scale(x, y)[..., None, None] * ((1 - alpha) * KERNEL_A + alpha * KERNEL_B)


def convolve_truth(padded: np.ndarray, shape=SHAPE) -> np.ndarray:
    """R ⊗ K_true(x, y), the kernel evaluated at every output pixel, by brute force."""
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx]
    kernel = true_kernel(x, y)
    h = KERNEL_SIZE // 2
    out = np.zeros(shape)
    for b in range(KERNEL_SIZE):
        for a in range(KERNEL_SIZE):
            dy, dx = b - h, a - h
            out += kernel[..., b, a] * padded[PAD - dy : PAD - dy + ny, PAD - dx : PAD - dx + nx]
    return out


@dataclass
class Pair:
    reference: np.ndarray
    reference_variance: np.ndarray
    epoch: np.ndarray
    epoch_variance: np.ndarray
    star_x: np.ndarray
    star_y: np.ndarray
    star_flux: np.ndarray


def make_pair(seed=1, extra_epoch_stars=(), n_stars=3000):
    """``extra_epoch_stars``: (x, y, ΔF) added to R_true before the convolution — stars that
    are brighter at the epoch by ΔF in the reference's flux unit."""
    rng = np.random.default_rng(seed)
    ny, nx = SHAPE
    big = (ny + 2 * PAD, nx + 2 * PAD)
    x = rng.uniform(0, big[1] - 1, n_stars)
    y = rng.uniform(0, big[0] - 1, n_stars)
    flux = np.minimum(50.0 * rng.uniform(0.001, 1.0, n_stars) ** (-1 / 0.7), 3e5)
    truth_padded = SKY + render(big, x, y, flux)
    epoch_padded = truth_padded.copy()
    if extra_epoch_stars:
        ex, ey, ef = (np.asarray(c, float) for c in zip(*extra_epoch_stars, strict=True))
        epoch_padded += render(big, ex + PAD, ey + PAD, ef)
    yy, xx = np.mgrid[0:ny, 0:nx]
    epoch_true = convolve_truth(epoch_padded) + true_background(xx, yy)
    reference_true = truth_padded[PAD : PAD + ny, PAD : PAD + nx]
    reference_variance = reference_true / REFERENCE_DEPTH
    epoch_variance = epoch_true + READ_VARIANCE
    reference = reference_true + rng.standard_normal(SHAPE) * np.sqrt(reference_variance)
    epoch = epoch_true + rng.standard_normal(SHAPE) * np.sqrt(epoch_variance)
    return Pair(
        reference=reference.astype(np.float32),
        reference_variance=reference_variance.astype(np.float32),
        epoch=epoch.astype(np.float32),
        epoch_variance=epoch_variance.astype(np.float32),
        star_x=x - PAD,
        star_y=y - PAD,
        star_flux=flux,
    )
