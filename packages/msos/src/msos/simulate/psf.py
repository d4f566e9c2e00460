"""A Roman-like F146 PSF and its effective PSF (ePSF) grid, in the ``GriddedPSF`` convention.

The optical PSF is the polychromatic diffraction pattern of a 2.36 m primary with a 0.32 linear
central obscuration, averaged over the F146 band (0.927–2.000 µm, flat in photons, 11
wavelengths), blurred by a Gaussian pointing jitter. Across the detector its angular scale
changes linearly by a few per cent (a focus-like width gradient); from epoch to epoch the
jitter changes slightly.

The ePSF is that PSF integrated over a pixel, sampled ``oversampling`` times per pixel. An
incoherent PSF is band-limited (cut-off D/λ_min ≈ 1.35 cycles/pixel here), so samples at
1/4 pixel are alias-free and the pixel integration and the jitter are applied exactly, as
products in Fourier space (sinc × Gaussian). The stamp is cropped to ±``half_size`` pixels
and normalised to sum to ``oversampling²`` (the truncated stamp *is* the truth: a star of
flux F puts F into the image, wings beyond ``half_size`` included in that F).

Stamps follow the convention in ``packages/msos/README.md``: ``stamps[n, sy, sx]``, centre at
index ``((sy-1)/2, (sx-1)/2)``, ``ePSF(u, v)`` at index ``(c + v·O, c + u·O)``, grid nodes
row-major (y outer, x inner), bilinear between nodes and clamped to the edge nodes outside.
They are evaluated only by ``msos.psf.model`` (:mod:`msos.simulate.scene`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import j1

from msos.simulate.instrument import F146_BAND_UM, PIXEL_SCALE_ARCSEC
from roman_schemas.products.msos import GriddedPSF

PRIMARY_DIAMETER_M = 2.36
LINEAR_OBSCURATION = 0.32
N_WAVELENGTHS = 11
#: half-size (pixels) of the field on which the optical PSF is computed before cropping
_FFT_HALF_PIX = 32
_PROFILE_STEP_PIX = 0.002


def obscured_airy(r_pix: np.ndarray, wavelength_um: float) -> np.ndarray:
    """Monochromatic obscured-aperture Airy intensity, per pixel², unit total flux."""
    theta = np.asarray(r_pix, dtype=float) * PIXEL_SCALE_ARCSEC / 206264.806
    v = np.pi * PRIMARY_DIAMETER_M * theta / (wavelength_um * 1e-6)
    eps = LINEAR_OBSCURATION
    with np.errstate(invalid="ignore", divide="ignore"):
        outer = np.where(v > 0, 2 * j1(v) / v, 1.0)
        inner = np.where(v > 0, 2 * j1(eps * v) / (eps * v), 1.0)
    amplitude = (outer - eps**2 * inner) / (1 - eps**2)
    # peak intensity per steradian for unit flux = collecting area / λ²
    area = np.pi * PRIMARY_DIAMETER_M**2 * (1 - eps**2) / 4
    peak_per_pix2 = area / (wavelength_um * 1e-6) ** 2 * (PIXEL_SCALE_ARCSEC / 206264.806) ** 2
    return peak_per_pix2 * amplitude**2


@lru_cache(maxsize=1)
def _f146_profile() -> tuple[np.ndarray, np.ndarray]:
    """Polychromatic radial profile I(r) on a fine r grid (per pixel², unit flux)."""
    r = np.arange(0.0, 2 * _FFT_HALF_PIX, _PROFILE_STEP_PIX)
    wavelengths = np.linspace(*F146_BAND_UM, N_WAVELENGTHS)
    profile = np.mean([obscured_airy(r, lam) for lam in wavelengths], axis=0)
    return r, profile


def optical_psf(r_pix: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """The F146 polychromatic PSF (no jitter, not pixel-integrated) at radius ``r_pix``,
    angular size multiplied by ``scale``; per pixel², unit total flux."""
    r, profile = _f146_profile()
    return np.interp(np.asarray(r_pix) / scale, r, profile, right=0.0) / scale**2


def epsf_stamp(
    scale: float = 1.0, jitter_sigma_pix: float = 0.1, oversampling: int = 4, half_size: int = 12
) -> np.ndarray:
    """One ePSF stamp ``(2·half_size·O + 1)²``, centred, summing to ``O²``."""
    o = oversampling
    n = 2 * _FFT_HALF_PIX * o
    u = (np.arange(n) - n // 2) / o
    psf = optical_psf(np.hypot(u[:, None], u[None, :]), scale)
    f = np.fft.fftfreq(n, d=1.0 / o)  # cycles per pixel
    transfer_1d = np.sinc(f) * np.exp(-2 * (np.pi * jitter_sigma_pix * f) ** 2)
    spectrum = np.fft.rfft2(np.fft.ifftshift(psf))
    transfer = transfer_1d[:, None] * transfer_1d[None, : spectrum.shape[1]]
    epsf = np.fft.fftshift(np.fft.irfft2(spectrum * transfer, s=(n, n)))
    c, h = n // 2, half_size * o
    stamp = epsf[c - h : c + h + 1, c - h : c + h + 1]
    return (stamp * (o * o / stamp.sum())).astype(np.float32)


@dataclass(frozen=True)
class PSFModel:
    """How the PSF varies over the detector and between epochs.

    ``width_gradient`` is the fractional change of the PSF's angular scale from one edge of
    the simulated image to the other, in x and in y (0.03, 0.02: 5 % corner to corner).
    """

    jitter_sigma_pix: float = 0.10
    jitter_scatter: float = 0.08
    width_gradient: tuple[float, float] = (0.03, 0.02)
    oversampling: int = 4
    half_size: int = 12
    grid_points: int = 5

    def scale_at(self, x: np.ndarray, y: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """PSF angular-scale factor at detector position(s) ``(x, y)`` of an image ``shape``."""
        ny, nx = shape
        gx, gy = self.width_gradient
        return (
            1.0
            + gx * (np.asarray(x) / max(nx - 1, 1) - 0.5)
            + gy * (np.asarray(y) / max(ny - 1, 1) - 0.5)
        )

    def grid_nodes(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Regular grid node coordinates (x nodes, y nodes) spanning the image."""
        ny, nx = shape
        k = max(self.grid_points, 1)
        return np.linspace(0.0, nx - 1.0, k), np.linspace(0.0, ny - 1.0, k)

    def gridded(self, shape: tuple[int, int], jitter_sigma_pix: float | None = None) -> GriddedPSF:
        """The ePSF grid over an image of ``shape`` for one jitter (default: nominal)."""
        jitter = self.jitter_sigma_pix if jitter_sigma_pix is None else jitter_sigma_pix
        xs, ys = self.grid_nodes(shape)
        gx, gy = np.meshgrid(xs, ys)  # row-major: y outer, x inner
        scales = self.scale_at(gx.ravel(), gy.ravel(), shape)
        stamps = np.stack(
            [epsf_stamp(s, jitter, self.oversampling, self.half_size) for s in scales]
        )
        return GriddedPSF(
            stamps=stamps,
            x_pix=gx.ravel().astype(np.float64),
            y_pix=gy.ravel().astype(np.float64),
            oversampling=self.oversampling,
        )


def stamp_fwhm(stamp: np.ndarray, oversampling: int) -> float:
    """FWHM (pixels) of an ePSF stamp: mean of the half-maximum widths along x and y through
    the centre, the profile interpolated linearly between samples."""
    c = (stamp.shape[0] - 1) // 2
    widths = []
    for profile in (stamp[c, :], stamp[:, c]):
        half = profile[c] / 2.0
        sides = []
        for direction in (1, -1):
            k = c
            while 0 < k + direction < len(profile) and profile[k + direction] > half:
                k += direction
            a, b = profile[k], profile[k + direction]
            sides.append(abs(k - c) + (a - half) / (a - b))
        widths.append(sum(sides) / oversampling)
    return float(np.mean(widths))
