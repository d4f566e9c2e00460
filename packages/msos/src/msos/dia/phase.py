"""The reference as an epoch would have seen it: catalog stars re-rendered at the epoch's
sub-pixel phase, plus the rest of the frame shifted by interpolation.

Roman's PSF is undersampled (FWHM ≈ 1.3 pix), so no convolution kernel can move an image by
a fraction of a pixel: a difference image made that way leaves a few per cent of every
constant star's flux behind, varying with each epoch's offset. Stars, however, can be
rendered from the effective PSF (sampled 4× finer than the pixels) at any position, exactly;
only what the catalog does not model — sky, faint unresolved stars, noise — is interpolated,
and its interpolation error is small because it holds little flux.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from msos.psf.model import EPSFGrid, render_stars
from msos.reference.kernel import resample
from msos.reference.superres import PREDICT_HALF_TAPS, SuperResolvedImage, predict

#: each star is rendered out to where no pixel beyond holds more than this fraction of an
#: epoch's median pixel noise; the fainter wing beyond stays in the remainder, which is
#: interpolated. A unit star shifted by cubic interpolation errs by ≤ 0.19 of its value at
#: the core and far less in the smooth wings, so what the remainder adds to a difference
#: image is ≤ 0.02 of the epoch's noise in any pixel. (A bound on the *total* flux left out
#: would keep every footprint at the whole 25 × 25 pixels: Airy wings hold 1.7 % of a
#: star's flux beyond 7.5 pixels, spread over hundreds of pixels.)
EDGE_TOLERANCE_SIGMA = 0.1


#: the scene is rendered in square tiles of this many pixels, each with the ePSF blended at
#: its centre (one stamp instead of four per star: ~2× faster); a tile is at most a quarter of
#: the grid's node spacing, so within it the ePSF differs from its bilinear blend by at most
#: 1/4 of the node-to-node change (≲ 0.1 % of a star's flux on a Roman detector); the
#: reference's model and the shifted one are rendered alike, so only the interpolated
#: remainder carries that, at ≤ 0.2×.
TILE_PIX = 256


@dataclass(frozen=True)
class SceneModel:
    """The catalog of a reference frame as rendered stars, reused for every epoch."""

    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray
    epsf: EPSFGrid
    radii: np.ndarray  # each star's footprint radius (pixels)
    tiles: tuple[tuple[np.ndarray, EPSFGrid], ...]  # (stars, ePSF at the tile centre)
    model: np.ndarray  # the stars rendered on the reference grid (float32)

    @classmethod
    def render(
        cls, shape: tuple[int, int], x: np.ndarray, y: np.ndarray, flux: np.ndarray,
        epsf: EPSFGrid, edge_tolerance: float | None = None, tile: int = TILE_PIX,
    ) -> SceneModel:  # fmt: skip
        """Render the catalog stars (reference-grid positions, fluxes in image units), each
        out to where no pixel beyond holds more than ``edge_tolerance`` (image unit; None:
        the whole ePSF support)."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        flux = np.nan_to_num(np.asarray(flux, dtype=np.float64), nan=0.0)
        if edge_tolerance is None:
            radii = np.full(x.size, epsf.render_radius(), dtype=np.int64)
        else:
            radii = epsf.footprint_radii(flux, edge_tolerance, per_pixel=True)
        tiles = _tiles(shape, x, y, epsf, tile)
        scene = cls(x, y, flux, epsf, radii, tiles, np.zeros(shape, dtype=np.float32))
        scene.rendered_at(shape, (0.0, 0.0), out=scene.model)
        return scene

    def rendered_at(
        self, shape: tuple[int, int], shift: tuple[float, float], out: np.ndarray | None = None
    ) -> np.ndarray:
        """The same stars, footprints and all, moved by ``shift`` (added into ``out``)."""
        if out is None:
            out = np.zeros(shape, dtype=np.float32)
        dx, dy = shift
        for stars, epsf in self.tiles:
            render_stars(shape, self.x[stars] + dx, self.y[stars] + dy, self.flux[stars], epsf,
                         out, radii=self.radii[stars])  # fmt: skip
        return out


def _tiles(
    shape: tuple[int, int], x: np.ndarray, y: np.ndarray, epsf: EPSFGrid, tile: int
) -> tuple[tuple[np.ndarray, EPSFGrid], ...]:
    """The stars of each ``tile``-pixel square (row-major; at most a quarter of the grid's
    node spacing) and the ePSF blended at its centre (the whole grid if it is one stamp)."""
    ny, nx = shape
    single = epsf.grid_x.size * epsf.grid_y.size == 1
    if not single:  # at most a quarter of the node spacing
        spacing = min(np.min(np.diff(g)) for g in (epsf.grid_x, epsf.grid_y) if g.size > 1)
        tile = max(16, min(tile, int(spacing // 4)))
    ty = np.clip(np.floor(np.nan_to_num(y) / tile), 0, (ny - 1) // tile).astype(np.int64)
    tx = np.clip(np.floor(np.nan_to_num(x) / tile), 0, (nx - 1) // tile).astype(np.int64)
    key = ty * ((nx - 1) // tile + 1) + tx
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    out = []
    for stars in np.split(order, bounds):
        if stars.size == 0:
            continue
        if single:
            out.append((stars, epsf))
            continue
        k = key[stars[0]]
        cy = (k // ((nx - 1) // tile + 1) + 0.5) * tile
        cx = (k % ((nx - 1) // tile + 1) + 0.5) * tile
        stamp = np.asarray(epsf.stamp_at(min(cx, nx - 1.0), min(cy, ny - 1.0)))
        out.append((stars, EPSFGrid(stamp, oversampling=epsf.oversampling)))
    return tuple(out)


def phase_matched_reference(
    reference: np.ndarray,
    reference_variance: np.ndarray,
    reference_bad: np.ndarray,
    scene: SceneModel,
    shift: tuple[float, float],
    remainder: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(image, variance, bad)`` of the reference on the epoch's pixel grid.

    ``shift = (dx, dy)`` is the epoch's grid minus the reference's: a star at reference
    position ``(x, y)`` falls at ``(x + dx, y + dy)`` in the epoch. ``remainder``: the
    reference less ``scene.model`` (0 where bad), the same for every epoch (:func:`remainder_of`).
    """
    dx, dy = (float(s) for s in shift)
    if remainder is None:
        remainder = remainder_of(reference, reference_bad, scene)
    image, moved_bad, variance, _ = resample(
        remainder, (dx, dy), bad=reference_bad, variance=reference_variance, want_level=False
    )
    scene.rendered_at(reference.shape, (dx, dy), out=image)  # the stars, added in place
    bad = moved_bad | ~np.isfinite(image)
    image[bad] = np.nan
    variance[bad] = np.nan
    return image, variance, bad


def remainder_of(reference: np.ndarray, reference_bad: np.ndarray, scene: SceneModel) -> np.ndarray:
    """What the scene does not model: the reference less the rendered stars, 0 where bad."""
    return np.where(reference_bad, 0.0, reference - scene.model).astype(np.float32)


def superres_reference(
    superres: SuperResolvedImage,
    reference_variance: np.ndarray,
    reference_bad: np.ndarray,
    shift: tuple[float, float],
    half_taps: int = PREDICT_HALF_TAPS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(image, variance, bad)`` of the reference on the epoch's pixel grid, predicted from
    the super-resolved frame (sky removed: the DIA kernel's background takes the epoch's).
    Variance and bad pixels are the stack's, moved like :func:`phase_matched_reference`'s."""
    image, outside = predict(superres, shift, half=half_taps)
    _, moved_bad, variance, _ = resample(
        None, shift, bad=reference_bad, variance=reference_variance, want_level=False
    )
    bad = moved_bad | outside | ~np.isfinite(image)
    image[bad] = np.nan
    variance[bad] = np.nan
    return image, variance, bad
