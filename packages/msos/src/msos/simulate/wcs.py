"""Where a simulated detector looks: field centres, a schematic WFI layout, the gwcs.

The WCS is a TAN projection with its tangent point at the field centre and 0.11"/pixel,
no distortion, detector +y toward north and +x toward west (east to the left, as on the sky).
Each detector sits at its own offset from the field centre in the tangent plane (a schematic
6 × 3 layout, 0.135° pitch; not the real WFI focal-plane geometry). An epoch whose scene is
shifted by ``(dx, dy)`` pixels on the detector has the WCS of the reference grid composed
with ``(x, y) → (x − dx, y − dy)``: its ``world_to_pixel`` of any star is the reference
position plus ``(dx, dy)``.

Field centres and the detector layout come from ``msos.survey``.
"""

from __future__ import annotations

import numpy as np
from astropy import coordinates as coord
from astropy import units as u
from astropy.modeling import models
from gwcs import WCS
from gwcs import coordinate_frames as cf

from msos.simulate.instrument import PIXEL_SCALE_ARCSEC


def make_wcs(
    shape: tuple[int, int],
    center: tuple[float, float],
    offset_deg: tuple[float, float] = (0.0, 0.0),
    dx: float = 0.0,
    dy: float = 0.0,
) -> WCS:
    """The gwcs of an epoch: detector pixels (0-based, centres at integers) → ICRS degrees."""
    ny, nx = shape
    xc, yc = (nx - 1) / 2.0, (ny - 1) / 2.0
    scale = PIXEL_SCALE_ARCSEC / 3600.0
    transform = (
        (models.Shift(-(xc + dx)) & models.Shift(-(yc + dy)))
        | (models.Scale(-scale) & models.Scale(scale))
        | (models.Shift(offset_deg[0]) & models.Shift(offset_deg[1]))
        | models.Pix2Sky_TAN()
        | models.RotateNative2Celestial(center[0], center[1], 180.0)
    )
    detector = cf.Frame2D(name="detector", axes_names=("x", "y"), unit=(u.pix, u.pix))
    world = cf.CelestialFrame(
        reference_frame=coord.ICRS(), name="world", unit=(u.deg, u.deg), axes_names=("lon", "lat")
    )
    wcs = WCS([(detector, transform), (world, None)])
    wcs.bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5))
    return wcs


def s_region(wcs: WCS, shape: tuple[int, int]) -> str:
    """The footprint polygon (pixel-edge corners) as an ``s_region`` string."""
    ny, nx = shape
    x = np.array([-0.5, nx - 0.5, nx - 0.5, -0.5])
    y = np.array([-0.5, -0.5, ny - 0.5, ny - 0.5])
    ra, dec = wcs(x, y, with_bounding_box=False)
    return "POLYGON ICRS " + " ".join(f"{a:.8f} {d:.8f}" for a, d in zip(ra, dec, strict=True))
