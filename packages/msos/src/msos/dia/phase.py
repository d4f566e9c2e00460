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

#: the stars' wings are rendered down to this fraction of the reference's median pixel error;
#: what lies beyond stays in the interpolated remainder, where faint, smooth light belongs
WING_TOLERANCE_SIGMA = 0.05


@dataclass(frozen=True)
class SceneModel:
    """The catalog of a reference frame as rendered stars, reused for every epoch."""

    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray
    epsf: EPSFGrid
    wing_tolerance: float | None
    model: np.ndarray  # the stars rendered on the reference grid (float32)

    @classmethod
    def render(
        cls, shape: tuple[int, int], x: np.ndarray, y: np.ndarray, flux: np.ndarray,
        epsf: EPSFGrid, wing_tolerance: float | None = None,
    ) -> SceneModel:  # fmt: skip
        """Render the catalog stars (reference-grid positions, fluxes in image units), each
        down to ``wing_tolerance`` (image unit; None: the whole ePSF support)."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        flux = np.nan_to_num(np.asarray(flux, dtype=np.float64), nan=0.0)
        model = render_stars(shape, x, y, flux, epsf, wing_tolerance=wing_tolerance)
        return cls(x, y, flux, epsf, wing_tolerance, model)

    def rendered_at(self, shape: tuple[int, int], shift: tuple[float, float]) -> np.ndarray:
        """The same stars, footprints and all, moved by ``shift``."""
        return render_stars(shape, self.x + shift[0], self.y + shift[1], self.flux, self.epsf,
                            wing_tolerance=self.wing_tolerance)  # fmt: skip


def phase_matched_reference(
    reference: np.ndarray,
    reference_variance: np.ndarray,
    reference_bad: np.ndarray,
    scene: SceneModel,
    shift: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(image, variance, bad)`` of the reference on the epoch's pixel grid.

    ``shift = (dx, dy)`` is the epoch's grid minus the reference's: a star at reference
    position ``(x, y)`` falls at ``(x + dx, y + dy)`` in the epoch.
    """
    dx, dy = (float(s) for s in shift)
    residual = np.where(reference_bad, 0.0, reference - scene.model).astype(np.float32)
    moved, moved_bad, moved_variance, _ = resample(
        residual, (dx, dy), bad=reference_bad, variance=reference_variance
    )
    stars = scene.rendered_at(reference.shape, (dx, dy))
    image = (stars + moved).astype(np.float32)
    bad = moved_bad | ~np.isfinite(image)
    variance = np.where(bad, np.float32(np.nan), moved_variance).astype(np.float32)
    image[bad] = np.nan
    return image, variance, bad
