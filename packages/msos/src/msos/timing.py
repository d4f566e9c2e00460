"""Times of epochs on the barycentric dynamical scale (BJD TDB, as MJD), from Level-2 UTC.

Light-travel time to the solar-system barycentre uses the spacecraft position of the
Level-2 ephemeris when it is given (barycentric, km), else the Earth's (Roman orbits L2,
1.5 million km away: at most ~5 s of error, recorded as the method).
"""

from __future__ import annotations

import numpy as np
from astropy import constants
from astropy import units as u
from astropy.coordinates import SkyCoord, get_body_barycentric
from astropy.time import Time


def bjd_tdb(
    time_utc: Time, ra_deg: float, dec_deg: float, position_km: np.ndarray | None = None
) -> tuple[float, str]:
    """(MJD TDB at the barycentre, method) for a UTC time and a target direction."""
    direction = SkyCoord(ra_deg * u.deg, dec_deg * u.deg, frame="icrs").cartesian.xyz.value
    if position_km is not None and np.all(np.isfinite(position_km)):
        position = np.asarray(position_km, dtype=float) * 1e3
        method = "spacecraft ephemeris"
    else:
        position = get_body_barycentric("earth", time_utc).xyz.to_value(u.m)
        method = "Earth position (no spacecraft ephemeris)"
    delay_s = float(np.dot(position, direction) / constants.c.value)
    return float((time_utc.tdb + delay_s * u.s).mjd), method
