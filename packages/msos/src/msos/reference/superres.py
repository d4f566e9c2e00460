"""A super-resolved image reconstructed from dithered, undersampled exposures.

Roman's PSF is undersampled: no interpolation of one frame can show it at another sub-pixel
phase. Dithered exposures together can. The unknown is the scene as a ``factor``-times finer
grid of sub-pixel sums (the scene convolved with the optics, integrated over each fine
pixel); an exposure offset by ``(dx, dy)`` (a source at frame position ``(x, y)`` falls at
``(x + dx, y + dy)`` in it) sees that grid moved by ``factor·(dx, dy)`` fine pixels and summed
``factor × factor`` into its pixels (the mean: fine pixels split a pixel's area evenly). The
move is a phase ramp of the fine grid's Fourier transform, exact for a scene band-limited
below the fine grid's Nyquist frequency: for F146 (D/λ_min ≈ 1.36 cycles/pixel) a factor of
2 already is. The fine grid is the weighted least-squares solution over all exposures, found by
conjugate gradients preconditioned with the normal matrix's diagonal.

Pure functions on arrays; no I/O. The whole frame is one FFT, so memory and time grow with
``(factor · size)²`` per exposure and iteration.
"""

from __future__ import annotations

from collections.abc import Sequence
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

    def at(self, shift: tuple[float, float]) -> np.ndarray:
        """The frame as an exposure offset by ``shift = (dx, dy)`` sees it (float64)."""
        return _observe(self.fine, shift, self.factor, self.pad, self.shape)


def _observe(
    fine: np.ndarray, shift: tuple[float, float], factor: int, pad: int, shape: tuple[int, int]
) -> np.ndarray:
    """Move the fine grid by ``factor · shift`` and sum it into frame pixels (the mean)."""
    fy, fx = fine.shape
    moved = np.fft.ifft2(
        ndimage.fourier_shift(np.fft.fft2(fine), (factor * shift[1], factor * shift[0]))
    ).real
    coarse = moved.reshape(fy // factor, factor, fx // factor, factor).mean(axis=(1, 3))
    ny, nx = shape
    return coarse[pad : pad + ny, pad : pad + nx]


def _spread(
    image: np.ndarray, shift: tuple[float, float], factor: int, pad: int, fine_shape: tuple
) -> np.ndarray:
    """The adjoint of :func:`_observe`: each frame pixel spread evenly over its fine pixels,
    moved back by ``factor · shift``."""
    fy, fx = fine_shape
    ny, nx = image.shape
    coarse = np.zeros((fy // factor, fx // factor))
    coarse[pad : pad + ny, pad : pad + nx] = image
    up = np.repeat(np.repeat(coarse, factor, axis=0), factor, axis=1) / (factor * factor)
    return np.fft.ifft2(
        ndimage.fourier_shift(np.fft.fft2(up), (-factor * shift[1], -factor * shift[0]))
    ).real


def reconstruct(
    frames: Sequence[tuple[np.ndarray, np.ndarray, tuple[float, float]]],
    *,
    factor: int = 2,
    pad: int = 8,
    iterations: int = 300,
    tol: float = 1e-3,
    ridge: float = 1e-6,
) -> SuperResolvedImage:
    """The super-resolved frame from ``frames``: each ``(data, weight, (dx, dy))``, data with
    its own sky already removed, weight the inverse variance (0 where bad). ``ridge`` × the
    mean weight keeps fine pixels no exposure constrains at 0; iterations stop once the
    normal equations' residual is below ``tol`` of their right-hand side."""
    if not frames:
        raise ValueError("no frames to reconstruct from")
    shape = frames[0][0].shape
    for data, weight, _ in frames:
        if data.shape != shape or weight.shape != shape:
            raise ValueError(f"frames differ in shape: {data.shape} and {shape}")
    ny, nx = shape
    fine_shape = (factor * (ny + 2 * pad), factor * (nx + 2 * pad))
    clean = [
        (np.where(w > 0, np.nan_to_num(d), 0.0), np.where(np.isfinite(w) & (w > 0), w, 0.0), s)
        for d, w, s in frames
    ]
    lam = ridge * float(np.mean([w.mean() for _, w, _ in clean]))

    def normal(fine: np.ndarray) -> np.ndarray:
        out = lam * fine
        for _, w, s in clean:
            out += _spread(w * _observe(fine, s, factor, pad, shape), s, factor, pad, fine_shape)
        return out

    rhs = sum(_spread(w * d, s, factor, pad, fine_shape) for d, w, s in clean)
    diagonal = sum(_spread(w, s, factor, pad, fine_shape) for _, w, s in clean) / factor**2
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
