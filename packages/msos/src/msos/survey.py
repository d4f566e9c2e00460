"""The Galactic Bulge Time Domain Survey: its fields, seasons and the metadata they imply.

Field centres follow the survey design of Penny et al. (2019, ApJS 241, 3): six fields
near (l, b) ≈ (0.5°…1.9°, −1.2°…−1.8°) plus the Galactic Centre field (f07). They name a
partition's pointing; an epoch whose WCS is far from its field centre is another field's.
"""

from __future__ import annotations

from functools import cache

from astropy import units as u
from astropy.coordinates import SkyCoord

from msos.errors import MsosError

#: field → (Galactic longitude, latitude) in degrees
FIELDS_GALACTIC: dict[str, tuple[float, float]] = {
    "f01": (-0.42, -1.23),
    "f02": (0.31, -1.23),
    "f03": (1.04, -1.23),
    "f04": (-0.42, -1.80),
    "f05": (0.31, -1.80),
    "f06": (1.04, -1.80),
    "f07": (-0.05, 0.00),
}
GALACTIC_CENTRE_FIELDS = frozenset({"f07"})
DETECTORS = tuple(f"WFI{k:02d}" for k in range(1, 19))
#: centre-to-centre spacing of detectors in the schematic 6 × 3 focal-plane layout below
DETECTOR_PITCH_DEG = 0.135


@cache
def field_centre(field: str) -> tuple[float, float]:
    """(RA, Dec) in degrees, ICRS, of a survey field's centre."""
    if field not in FIELDS_GALACTIC:
        raise MsosError(field, f"not a GBTDS field (known: {', '.join(FIELDS_GALACTIC)})")
    l_deg, b_deg = FIELDS_GALACTIC[field]
    icrs = SkyCoord(l=l_deg * u.deg, b=b_deg * u.deg, frame="galactic").icrs
    return float(icrs.ra.deg), float(icrs.dec.deg)


def detector_offset_deg(detector: str) -> tuple[float, float]:
    """Tangent-plane offset (ξ east, η north; degrees) of a detector's centre from its field's
    centre, in a schematic 6 columns × 3 rows layout (WFI01–03 the first column; not the real
    WFI focal-plane geometry, which a later survey file replaces)."""
    if detector not in DETECTORS:
        raise MsosError(detector, "not a WFI detector (WFI01…WFI18)")
    column, row = divmod(DETECTORS.index(detector), 3)
    return (column - 2.5) * DETECTOR_PITCH_DEG, (row - 1) * DETECTOR_PITCH_DEG


def detector_centre(field: str, detector: str) -> tuple[float, float]:
    """(RA, Dec) in degrees where a detector of a field points (gnomonic offset)."""
    import numpy as np

    ra0, dec0 = (np.radians(v) for v in field_centre(field))
    xi, eta = (np.radians(v) for v in detector_offset_deg(detector))
    denominator = np.cos(dec0) - eta * np.sin(dec0)
    ra = ra0 + np.arctan2(xi, denominator)
    dec = np.arctan2(np.sin(dec0) + eta * np.cos(dec0), np.hypot(xi, denominator))
    return float(np.degrees(ra) % 360), float(np.degrees(dec))


def season_flip(season: str) -> int:
    """Footprint orientation of a season in degrees: spring and autumn seasons differ by 180."""
    return 0 if int(season[1:]) % 2 else 180


def is_galactic_centre(field: str) -> bool:
    """Whether the field holds Galactic Centre data."""
    return field in GALACTIC_CENTRE_FIELDS
