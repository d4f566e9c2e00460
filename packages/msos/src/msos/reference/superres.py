"""A super-resolved image reconstructed from dithered, undersampled exposures.

Roman's PSF is undersampled: no interpolation of one frame can show it at another sub-pixel
phase. Dithered exposures together can. The unknown is the scene as a ``factor``-times finer
grid of sub-pixel sums (the scene convolved with the optics, integrated over each fine
pixel); an exposure offset by ``(dx, dy)`` (a source at frame position ``(x, y)`` falls at
``(x + dx, y + dy)`` in it) sees that grid moved by ``factor·(dx, dy)`` fine pixels and summed
``factor × factor`` into its pixels (the mean: fine pixels split a pixel's area evenly); an
exposure whose PSF is wider or narrower than the others (jitter) also gets a Gaussian of
variance ``blur`` (pixel², negative to sharpen) applied. The move is a phase ramp of the
fine grid's Fourier transform, exact for a scene band-limited below the fine grid's Nyquist
frequency: for F146 (D/λ_min ≈ 1.36 cycles/pixel) a factor of 2 already is. The fine grid
is the weighted least-squares solution over all exposures, found by conjugate gradients
preconditioned with the normal matrix's diagonal.

Pure functions on arrays; no I/O. The whole frame is one FFT, so memory and time grow with
``(factor · size)²`` per exposure and iteration.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class SuperResolvedImage:
    """The fine grid (``factor`` × the frame's pixels, plus ``pad`` frame pixels all round)."""

    fine: np.ndarray
    factor: int
    pad: int
    shape: tuple[int, int]  # the frame's (ny, nx)
    iterations: int
    residual: float  # final |r| / |b| of the normal equations

    def at(self, shift: tuple[float, float], blur: float = 0.0) -> np.ndarray:
        """The frame as an exposure offset by ``shift = (dx, dy)``, its PSF widened by a
        Gaussian of variance ``blur`` (pixel²), sees it (float64)."""
        spectrum = np.fft.fft2(self.fine)
        return _observe_spectrum(spectrum, shift, self.factor, self.pad, self.shape, blur)


def _transfer(shape: tuple[int, int], factor: int, blur: float) -> np.ndarray | float:
    """The Fourier transfer of a Gaussian of variance ``blur`` pixel² on the fine grid."""
    if blur == 0.0:
        return 1.0
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.fftfreq(shape[1])[None, :]
    return np.exp(-2 * np.pi**2 * blur * factor**2 * (kx**2 + ky**2))


def _observe_spectrum(
    spectrum: np.ndarray,
    shift: tuple[float, float],
    factor: int,
    pad: int,
    shape: tuple[int, int],
    blur: float = 0.0,
) -> np.ndarray:
    """Move the fine grid (given as its Fourier transform, which every frame shares) by
    ``factor · shift``, blur it, and sum it into frame pixels."""
    fy, fx = spectrum.shape
    moved = ndimage.fourier_shift(spectrum, (factor * shift[1], factor * shift[0]))
    moved = np.fft.ifft2(moved * _transfer(spectrum.shape, factor, blur)).real
    coarse = moved.reshape(fy // factor, factor, fx // factor, factor).mean(axis=(1, 3))
    ny, nx = shape
    return coarse[pad : pad + ny, pad : pad + nx]


def _spread_spectrum(
    image: np.ndarray,
    shift: tuple[float, float],
    factor: int,
    pad: int,
    fine_shape: tuple,
    blur: float = 0.0,
) -> np.ndarray:
    """The Fourier transform of the adjoint of :func:`_observe_spectrum`: each frame pixel spread
    evenly over its fine pixels, blurred alike and moved back by ``factor · shift``. Frames'
    spectra add, so a sum over frames needs one inverse transform."""
    fy, fx = fine_shape
    ny, nx = image.shape
    coarse = np.zeros((fy // factor, fx // factor))
    coarse[pad : pad + ny, pad : pad + nx] = image
    up = np.repeat(np.repeat(coarse, factor, axis=0), factor, axis=1) / (factor * factor)
    spectrum = ndimage.fourier_shift(np.fft.fft2(up), (-factor * shift[1], -factor * shift[0]))
    return spectrum * _transfer(fine_shape, factor, blur)


def reconstruct(
    frames: Sequence[tuple],
    *,
    factor: int = 2,
    pad: int = 8,
    iterations: int = 300,
    tol: float = 1e-3,
    ridge: float = 1e-6,
) -> SuperResolvedImage:
    """The super-resolved frame from ``frames``: each ``(data, weight, (dx, dy))`` or
    ``(data, weight, (dx, dy), blur)``, data with its own sky already removed, weight the
    inverse variance (0 where bad), ``blur`` the variance (pixel²) of the Gaussian by which
    that exposure's PSF is wider than the reconstructed scene's. ``ridge`` × the
    mean weight keeps fine pixels no exposure constrains at 0; iterations stop once the
    normal equations' residual is below ``tol`` of their right-hand side."""
    if not frames:
        raise ValueError("no frames to reconstruct from")
    shape = frames[0][0].shape
    for frame in frames:
        if frame[0].shape != shape or frame[1].shape != shape:
            raise ValueError(f"frames differ in shape: {frame[0].shape} and {shape}")
    ny, nx = shape
    fine_shape = (factor * (ny + 2 * pad), factor * (nx + 2 * pad))
    clean = []
    for frame in frames:
        d, w, s = frame[:3]
        blur = float(frame[3]) if len(frame) > 3 else 0.0
        good = np.isfinite(w) & (w > 0)
        clean.append((np.where(good, np.nan_to_num(d), 0.0), np.where(good, w, 0.0), s, blur))
    lam = ridge * float(np.mean([c[1].mean() for c in clean]))

    def spread(images: Iterable[tuple]) -> np.ndarray:
        """Σ over frames of the adjoint applied to ``(image, shift, blur)``."""
        total = sum(_spread_spectrum(im, s, factor, pad, fine_shape, b) for im, s, b in images)
        return np.fft.ifft2(total).real

    def normal(fine: np.ndarray) -> np.ndarray:
        spectrum = np.fft.fft2(fine)  # once for all frames
        seen = (
            (w * _observe_spectrum(spectrum, s, factor, pad, shape, b), s, b)
            for _, w, s, b in clean
        )
        return lam * fine + spread(seen)

    rhs = spread([(w * d, s, b) for d, w, s, b in clean])
    diagonal = spread([(w, s, 0.0) for _, w, s, _ in clean]) / factor**2
    diagonal = diagonal + lam
    inverse = 1.0 / np.maximum(diagonal, 1e-3 * diagonal.max())
    norm = float(np.sqrt(np.sum(rhs * rhs))) or 1.0
    fine = np.zeros(fine_shape)
    r = rhs.copy()
    z = inverse * r
    p = z.copy()
    rz = float(np.sum(r * z))
    done = 0
    residual = 1.0
    while done < iterations:
        done += 1
        ap = normal(p)
        alpha = rz / float(np.sum(p * ap))
        fine += alpha * p
        r -= alpha * ap
        residual = float(np.sqrt(np.sum(r * r))) / norm
        if residual < tol:
            break
        z = inverse * r
        rz_new = float(np.sum(r * z))
        p = z + (rz_new / rz) * p
        rz = rz_new
    return SuperResolvedImage(fine, factor, pad, shape, done, residual)
