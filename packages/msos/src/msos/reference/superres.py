"""A super-resolved image reconstructed from dithered, undersampled exposures.

Roman's PSF is undersampled: no interpolation of one frame can show it at another sub-pixel
phase. Dithered exposures together can. The unknown is the scene as a ``factor``-times finer
grid (the scene convolved with the optics and a fine pixel). An exposure offset by
``(dx, dy)`` (a source at frame position ``(x, y)`` falls at ``(x + dx, y + dy)`` in it) sees
it through a short separable filter (:func:`predict_taps`): the band-limited move by
``factor·(dx, dy)`` fine pixels, a Gaussian of variance ``blur`` (pixel², negative to
sharpen: that exposure's jitter) and the mean over the ``factor × factor`` fine pixels of
each of its pixels, truncated at ±``PREDICT_HALF_TAPS`` fine pixels. Reconstruction and the
compiled whole-detector prediction (:func:`predict`) use the same taps, so they agree.

The fine grid is the least-squares solution over all exposures, one weight per exposure (0
on bad pixels) and a penalty on its highest frequencies (which no undersampled exposure
sees well, and which would otherwise carry amplified noise and let tile edges leak in).
With one weight per exposure the normal matrix only couples each frequency with its
``factor²`` aliases: the preconditioner inverts those blocks exactly and conjugate
gradients mop up bad pixels and edges. Large frames are solved in overlapping tiles
(:func:`reconstruct_tiled`). Pure functions on arrays; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np


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
        Gaussian of variance ``blur`` (pixel²), sees it (float64; :func:`predict` does the
        same for a whole detector)."""
        spectrum = np.fft.fft2(self.fine)
        response = _response(spectrum.shape, self.factor, shift, blur)
        return _observe_spectrum(spectrum, response, self.factor, self.pad, self.shape)


def _observe_spectrum(
    spectrum: np.ndarray, response: np.ndarray, factor: int, pad: int, shape: tuple[int, int]
) -> np.ndarray:
    """Filter the fine grid (given as its Fourier transform, which every frame shares) with a
    frame's ``response`` and keep every ``factor``-th fine pixel: the frame's pixels. Keeping
    every ``factor``-th pixel folds the spectrum's aliases together, so the inverse
    transform is on the coarse grid (``factor²`` times smaller)."""
    folded = _aliases(spectrum * response, factor).sum(axis=-1) / (factor * factor)
    coarse = np.fft.ifft2(folded).real
    ny, nx = shape
    return coarse[pad : pad + ny, pad : pad + nx]


def _response(
    fine_shape: tuple[int, int], factor: int, shift: tuple[float, float], blur: float
) -> np.ndarray:
    """The Fourier response, on the fine grid, of a frame's view of it: the
    :func:`predict_taps` of its shift and blur, applied before keeping every ``factor``-th
    fine pixel. Reconstruction and prediction use the same taps, so they agree exactly."""
    out = []
    for n, s in zip(fine_shape, (shift[1], shift[0]), strict=True):
        first, taps = predict_taps(s, factor, blur)
        f = np.fft.fftfreq(n)
        t = first + np.arange(taps.size)
        out.append(np.exp(2j * np.pi * f[:, None] * t[None, :]) @ taps)
    return out[0][:, None] * out[1][None, :]


def _aliases(spectrum: np.ndarray, factor: int) -> np.ndarray:
    """(Qy, Qx, factor²) view of a fine-grid spectrum: each coarse frequency's aliases, which
    keeping every ``factor``-th pixel folds together."""
    fy, fx = spectrum.shape
    qy, qx = fy // factor, fx // factor
    blocks = spectrum.reshape(factor, qy, factor, qx).transpose(1, 3, 0, 2)
    return blocks.reshape(qy, qx, factor * factor)


def _unalias(blocks: np.ndarray, factor: int) -> np.ndarray:
    """Inverse of :func:`_aliases`."""
    qy, qx, _ = blocks.shape
    return (
        blocks.reshape(qy, qx, factor, factor)
        .transpose(2, 0, 3, 1)
        .reshape(factor * qy, factor * qx)
    )


def _penalty(fine_shape: tuple[int, int], level: float, ridge: float, smooth: float) -> np.ndarray:
    """The regularisation's Fourier weight: ``ridge`` plus ``smooth`` × (frequency / fine
    Nyquist)⁴, times the exposures' mean weight ``level``."""
    fy = np.fft.fftfreq(fine_shape[0])[:, None]
    fx = np.fft.fftfreq(fine_shape[1])[None, :]
    return level * (ridge + smooth * ((fx**2 + fy**2) / 0.25) ** 2)


def _alias_preconditioner(
    factor: int, responses: Sequence[np.ndarray], weights: Sequence[float], lam: np.ndarray
) -> np.ndarray:
    """Inverse of the normal matrix as it would be if every exposure weighted all its pixels
    alike (``weights``): then it only couples each frequency with its ``factor²`` aliases,
    so it is a stack of small blocks, inverted exactly. Bad pixels and the unseen border
    are what is left for the conjugate gradients. Responses and ``lam`` in alias-block
    layout."""
    n = factor * factor
    blocks = np.zeros((*responses[0].shape[:2], n, n), dtype=complex)
    for u, w in zip(responses, weights, strict=True):
        blocks += (w / n) * (u.conj()[..., :, None] * u[..., None, :])
    blocks += lam[..., :, None] * np.eye(n)
    return np.linalg.inv(blocks)


def reconstruct(
    frames: Sequence[tuple],
    *,
    factor: int = 2,
    pad: int = 8,
    iterations: int = 60,
    tol: float = 1e-4,
    ridge: float = 1e-6,
    smooth: float = 0.1,
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
        if d.shape != shape:
            raise ValueError(f"frames differ in shape: {d.shape} and {shape}")
        clean.append((np.where(good, np.nan_to_num(d), 0.0), np.where(good, w, 0.0), s, blur))
    level = float(np.mean([c[1].mean() for c in clean]))
    lam = _penalty(fine_shape, level, ridge, smooth)
    # every spectrum below is in alias-block layout (Qy, Qx, factor²): what keeping every
    # factor-th pixel folds together sits in one row, so a frame's view is a sum over it
    responses = [
        np.ascontiguousarray(_aliases(_response(fine_shape, factor, s, b), factor))
        for _, _, s, b in clean
    ]
    conjugates = [u.conj() for u in responses]
    lam_blocks = _aliases(lam, factor)
    coarse_shape = (fine_shape[0] // factor, fine_shape[1] // factor)

    def spread(images: Iterable[tuple[np.ndarray, int]], extra: Any = 0.0) -> np.ndarray:
        """Σ over frames of the adjoint applied to ``(image, frame index)`` (plus ``extra``,
        a spectrum), back on the fine grid."""
        total = extra
        for image, k in images:
            coarse = np.zeros(coarse_shape)
            coarse[pad : pad + ny, pad : pad + nx] = image
            total = total + np.fft.fft2(coarse)[..., None] * conjugates[k]
        return np.fft.ifft2(_unalias(total, factor)).real

    def normal(fine: np.ndarray) -> np.ndarray:
        spectrum = _aliases(np.fft.fft2(fine), factor)  # once for all frames
        seen = []
        for k, (c, u) in enumerate(zip(clean, responses, strict=True)):
            folded = np.einsum("...a,...a->...", spectrum, u) / (factor * factor)
            view = np.fft.ifft2(folded).real[pad : pad + ny, pad : pad + nx]
            seen.append((c[1] * view, k))
        return spread(seen, lam_blocks * spectrum)

    # the preconditioner's uniform weights: each frame's mean over the padded grid
    means = [float(w.sum()) / ((ny + 2 * pad) * (nx + 2 * pad)) for _, w, _, _ in clean]
    inverse = _alias_preconditioner(factor, responses, means, lam_blocks)

    def precondition(r: np.ndarray) -> np.ndarray:
        blocks = _aliases(np.fft.fft2(r), factor)
        solved = np.einsum("...ij,...j->...i", inverse, blocks)
        return np.fft.ifft2(_unalias(solved, factor)).real

    rhs = spread([(c[1] * c[0], k) for k, c in enumerate(clean)])
    norm = float(np.sqrt(np.sum(rhs * rhs))) or 1.0
    fine = np.zeros(fine_shape)
    r = rhs.copy()
    z = precondition(r)
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
        z = precondition(r)
        rz_new = float(np.sum(r * z))
        p = z + (rz_new / rz) * p
        rz = rz_new
    return SuperResolvedImage(fine, factor, pad, shape, done, residual)


def frame_weights(variance: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """An exposure's weights for :func:`reconstruct`: its median inverse variance on every good
    pixel, 0 on bad ones. One weight per exposure keeps the normal matrix made of
    ``factor²``-blocks, which the preconditioner inverts exactly (3-4 iterations instead of
    ~80 with per-pixel weights, for ~20 % more noise in the reconstruction)."""
    good = ~bad & np.isfinite(variance) & (variance > 0)
    if not good.any():
        return np.zeros(variance.shape, dtype=np.float32)
    level = 1.0 / float(np.median(variance[good]))
    return np.where(good, np.float32(level), np.float32(0.0))


def fit_blurs(frames: Sequence[tuple], image: SuperResolvedImage, blurs: np.ndarray) -> np.ndarray:
    """χ² of each frame (rows) against ``image`` seen with each trial ``blurs`` (columns)."""
    spectrum = np.fft.fft2(image.fine)
    chi2 = np.zeros((len(frames), len(blurs)))
    for j, frame in enumerate(frames):
        d, w, s = frame[:3]
        good = w > 0
        for k, b in enumerate(blurs):
            response = _response(spectrum.shape, image.factor, s, float(b))
            seen = _observe_spectrum(spectrum, response, image.factor, image.pad, image.shape)
            chi2[j, k] = float(np.sum((w * (np.nan_to_num(d) - seen) ** 2)[good]))
    return chi2


def best_blur(chi2: np.ndarray, blurs: np.ndarray) -> np.ndarray:
    """Each row's minimum of χ²(blur): a parabola through the best trial and its neighbours."""
    best = np.argmin(chi2, axis=1)
    out = blurs[best].astype(float)
    step = float(blurs[1] - blurs[0])
    for j, k in enumerate(best):
        if 0 < k < len(blurs) - 1:
            a, b, c = chi2[j, k - 1 : k + 2]
            curvature = a - 2 * b + c
            if curvature > 0:
                out[j] += step * 0.5 * (a - c) / curvature
    return out


@dataclass(frozen=True)
class Tiling:
    """How a large frame is reconstructed: independent square tiles, each solved with
    ``margin`` pixels of its neighbours (the fine grid there is discarded)."""

    tile: int = 256
    margin: int = 24

    def tiles(self, shape: tuple[int, int]) -> list[tuple[slice, slice, slice, slice]]:
        """(tile rows, tile columns, region rows, region columns) on the frame's grid."""
        ny, nx = shape
        out = []
        for y0 in range(0, ny, self.tile):
            for x0 in range(0, nx, self.tile):
                y1, x1 = min(ny, y0 + self.tile), min(nx, x0 + self.tile)
                out.append((
                    slice(y0, y1), slice(x0, x1),
                    slice(max(0, y0 - self.margin), min(ny, y1 + self.margin)),
                    slice(max(0, x0 - self.margin), min(nx, x1 + self.margin)),
                ))  # fmt: skip
        return out


def _cut(array: np.ndarray, rows: slice, cols: slice, whole: tuple[int, int]) -> np.ndarray:
    """``array[rows, cols]`` moved by whole pixels ``(ix, iy)``: zeros where it is outside."""
    ix, iy = whole
    ny, nx = array.shape
    out = np.zeros((rows.stop - rows.start, cols.stop - cols.start), dtype=np.float64)
    r0, r1 = max(0, rows.start + iy), min(ny, rows.stop + iy)
    c0, c1 = max(0, cols.start + ix), min(nx, cols.stop + ix)
    if r1 > r0 and c1 > c0:
        out[
            r0 - rows.start - iy : r1 - rows.start - iy, c0 - cols.start - ix : c1 - cols.start - ix
        ] = array[r0:r1, c0:c1]
    return out


def _region_frames(
    data: Sequence[np.ndarray],
    weight: Sequence[np.ndarray],
    shifts: Sequence[tuple[float, float]],
    blurs: Sequence[float],
    rows: slice,
    cols: slice,
) -> list[tuple]:
    """Each frame's pixels over a region of the reference grid, moved by its whole-pixel
    shift so only the fraction is left to model."""
    out = []
    for d, w, (sx, sy), b in zip(data, weight, shifts, blurs, strict=True):
        whole = (int(np.floor(sx + 0.5)), int(np.floor(sy + 0.5)))
        frac = (sx - whole[0], sy - whole[1])
        out.append((_cut(d, rows, cols, whole), _cut(w, rows, cols, whole), frac, b))
    return out


def reconstruct_tiled(
    data: Sequence[np.ndarray],
    weight: Sequence[np.ndarray],
    shifts: Sequence[tuple[float, float]],
    blurs: Sequence[float] | None = None,
    *,
    factor: int = 2,
    pad: int = 8,
    tiling: Tiling | None = None,
    iterations: int = 60,
    tol: float = 1e-4,
    smooth: float = 0.1,
) -> SuperResolvedImage:
    """:func:`reconstruct` of whole frames (any size: arrays or memory maps), tile by tile.
    ``shifts`` are each frame's ``(dx, dy)`` from the reference grid, whole pixels included;
    the result is on the reference grid with ``pad`` pixels of zeros all round."""
    tiling = tiling or Tiling()
    shape = data[0].shape
    blurs = [0.0] * len(data) if blurs is None else [float(b) for b in blurs]
    ny, nx = shape
    fine = np.zeros((factor * (ny + 2 * pad), factor * (nx + 2 * pad)), dtype=np.float32)
    done, worst = 0, 0.0
    for rows, cols, region_rows, region_cols in tiling.tiles(shape):
        frames = _region_frames(data, weight, shifts, blurs, region_rows, region_cols)
        part = reconstruct(
            frames, factor=factor, pad=pad, iterations=iterations, tol=tol, smooth=smooth
        )
        top = factor * (pad + rows.start - region_rows.start)
        left = factor * (pad + cols.start - region_cols.start)
        h, w = factor * (rows.stop - rows.start), factor * (cols.stop - cols.start)
        fine[factor * (pad + rows.start) : factor * (pad + rows.start) + h,
             factor * (pad + cols.start) : factor * (pad + cols.start) + w] = (
            part.fine[top : top + h, left : left + w]
        )  # fmt: skip
        done, worst = max(done, part.iterations), max(worst, part.residual)
    return SuperResolvedImage(fine, factor, pad, shape, done, worst)


#: prediction taps each side of a coarse pixel's centre, in fine pixels
PREDICT_HALF_TAPS = 16


def predict_taps(
    shift: float, factor: int, blur: float, half: int = PREDICT_HALF_TAPS
) -> tuple[int, np.ndarray]:
    """1-D taps ``c`` and ``first`` with ``coarse[n] = Σₜ c[t] · fine[factor·(n + pad) + first
    + t]``: :func:`_observe_spectrum`'s move, blur and box mean as a short filter (the
    box mean cancels the fine Nyquist frequency, so the taps fall off as 1/t²)."""
    centre = (factor - 1) / 2 - factor * shift
    first = int(np.floor(centre + 0.5)) - half
    t = first + np.arange(2 * half + 1)
    length = 4096
    f = np.fft.fftfreq(length)
    spectrum = np.exp(-2 * np.pi**2 * blur * factor**2 * f**2)
    taps = np.zeros(t.size)
    for i in range(factor):
        # k(r) at r = i - t: the band-limited shift by factor·shift, blurred
        r = (i - t)[:, None] - factor * shift
        taps += (np.cos(2 * np.pi * f[None, :] * r) * spectrum[None, :]).sum(axis=1) / length
    taps /= factor
    return first, taps


def predict(
    image: SuperResolvedImage, shift: tuple[float, float], blur: float = 0.0,
    half: int = PREDICT_HALF_TAPS,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``(frame, outside)``: :meth:`SuperResolvedImage.at` for a whole detector in one
    compiled pass (float32), and the pixels whose view falls outside the reconstructed area
    (within a pixel of its edge)."""
    factor, pad = image.factor, image.pad
    ny, nx = image.shape
    first_x, cx = predict_taps(shift[0], factor, blur, half)
    first_y, cy = predict_taps(shift[1], factor, blur, half)
    fine = np.ascontiguousarray(image.fine, dtype=np.float32)
    out = np.empty((ny, nx), dtype=np.float32)
    _decimate(fine, factor, pad, first_x, cx, first_y, cy, out)
    # where each pixel's view is centred, in frame pixels
    cxs = (np.arange(nx) * factor + first_x + half - (factor - 1) / 2) / factor
    cys = (np.arange(ny) * factor + first_y + half - (factor - 1) / 2) / factor
    outside = ((cys < 1) | (cys > ny - 2))[:, None] | ((cxs < 1) | (cxs > nx - 2))[None, :]
    return out, outside


@numba.njit(cache=True, fastmath=True)
def _decimate(
    fine: np.ndarray, factor: int, pad: int, first_x: int, cx: np.ndarray, first_y: int,
    cy: np.ndarray, out: np.ndarray,
) -> None:  # fmt: skip
    """``out[j, i] = Σₐ cy[a] Σ_b cx[b] · fine[factor·(j + pad) + first_y + a,
    factor·(i + pad) + first_x + b]`` (zero beyond the fine grid)."""
    fy, fx = fine.shape
    ny, nx = out.shape
    nt = cx.size
    rows = np.zeros((fy, nx), dtype=np.float32)
    for r in range(fy):
        src = fine[r]
        for i in range(nx):
            base = factor * (i + pad) + first_x
            s = 0.0
            if base >= 0 and base + nt <= fx:
                for b in range(nt):
                    s += cx[b] * src[base + b]
            else:
                for b in range(nt):
                    p = base + b
                    if 0 <= p < fx:
                        s += cx[b] * src[p]
            rows[r, i] = s
    acc = np.zeros(nx)
    for j in range(ny):
        base = factor * (j + pad) + first_y
        acc[:] = 0.0
        for a in range(cy.size):
            p = base + a
            if 0 <= p < fy:
                w = cy[a]
                row = rows[p]
                for i in range(nx):
                    acc[i] += w * row[i]
        for i in range(nx):
            out[j, i] = acc[i]


class TooFewExposures(ValueError):
    """Fewer usable exposures than a super-resolved frame needs."""


#: trial per-exposure blurs (pixel²): Roman's pointing jitter changes an exposure's PSF
#: variance by a few thousandths of a pixel²; a grid of ±0.03 brackets that with room
BLUR_TRIALS = np.linspace(-0.03, 0.03, 13)


def super_resolve(
    frames: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float]]],
    shape: tuple[int, int],
    scratch: str,
    *,
    factor: int = 2,
    pad: int = 8,
    tiling: Tiling | None = None,
    smooth: float = 0.1,
    iterations: int = 60,
    minimum: int = 1,
) -> tuple[SuperResolvedImage, np.ndarray]:
    """The super-resolved reference from whole exposures ``(data, variance, bad, (dx, dy))``
    (read once each and kept as memory maps under ``scratch``, so a detector's worth of
    epochs need not fit in memory), and each exposure's fitted blur. Every exposure's own
    sky (median) is removed; the blurs are fitted on the frame's central tile against a
    first reconstruction that ignores them, then every tile is solved with them."""
    tiling = tiling or Tiling()
    data, weight, shifts = [], [], []
    for k, (d, variance, bad, shift) in enumerate(frames):
        if d.shape != shape:
            raise ValueError(f"exposure {k} is {d.shape}, the reference {shape}")
        w = frame_weights(variance, bad | ~np.isfinite(d))
        good = w > 0
        sky = float(np.median(d[good])) if good.any() else 0.0
        for name, values, out in (
            ("data", np.where(good, d - sky, 0.0), data),
            ("weight", w, weight),
        ):
            stored = np.lib.format.open_memmap(f"{scratch}/{name}{k}.npy", "w+", np.float32, shape)
            stored[...] = values
            out.append(stored)
        shifts.append((float(shift[0]), float(shift[1])))
    if len(data) < minimum:
        raise TooFewExposures(f"{len(data)} usable exposures to super-resolve, {minimum} needed")
    ny, nx = shape
    size = min(tiling.tile, ny, nx)
    rows = slice((ny - size) // 2, (ny - size) // 2 + size)
    cols = slice((nx - size) // 2, (nx - size) // 2 + size)
    probe = _region_frames(data, weight, shifts, [0.0] * len(data), rows, cols)
    first = reconstruct(probe, factor=factor, pad=pad, smooth=smooth, iterations=iterations)
    blurs = best_blur(fit_blurs(probe, first, BLUR_TRIALS), BLUR_TRIALS)
    blurs -= np.median(blurs)  # the scene takes the typical exposure's PSF
    image = reconstruct_tiled(
        data, weight, shifts, blurs, factor=factor, pad=pad, tiling=tiling, smooth=smooth,
        iterations=iterations,
    )  # fmt: skip
    return image, blurs
