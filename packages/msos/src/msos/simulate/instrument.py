"""The WFI / F146 numbers the simulation is built on, and the DN/s ↔ µJy ↔ AB calibration.

Values are representative of Roman's WFI in F146 (pre-launch figures, rounded); they are the
simulation's definitions, so every product the simulation writes is consistent with them.
"""

from __future__ import annotations

import numpy as np

#: WFI pixel scale (arcsec / pixel)
PIXEL_SCALE_ARCSEC = 0.11
#: solid angle of one pixel (sr), the value L2 ``meta.photometry.pixel_area`` carries
PIXEL_AREA_SR = (PIXEL_SCALE_ARCSEC / 206264.806) ** 2
#: science pixels on a side of an H4RG-10 detector (4096 minus the 4-pixel reference border)
DETECTOR_PIXELS = 4088

#: F146 bandpass (µm), used for the polychromatic PSF
F146_BAND_UM = (0.927, 2.000)
#: AB magnitude of a star giving 1 e⁻/s in F146 (all pixels)
F146_ZEROPOINT_AB_E = 27.65
#: detector gain (e⁻ / DN)
GAIN_E_PER_DN = 2.0
#: AB magnitude of a star giving 1 DN/s
F146_ZEROPOINT_AB_DN = F146_ZEROPOINT_AB_E - 2.5 * np.log10(GAIN_E_PER_DN)
#: µJy of a source giving 1 DN/s (AB: m = 23.9 − 2.5 log10 f[µJy])
UJY_PER_DN_S = 10.0 ** (-0.4 * (F146_ZEROPOINT_AB_DN - 23.9))
#: L2 ``meta.photometry.conversion_megajanskys``: MJy/sr per DN/s
CONVERSION_MJY_SR = UJY_PER_DN_S * 1e-12 / PIXEL_AREA_SR
#: its relative uncertainty
CONVERSION_REL_UNCERTAINTY = 0.01

#: the multi-accumulation table of a GBTDS F146 exposure: 15 reads in 6 resultants
FRAME_TIME_S = 3.04
READ_PATTERN = [[1], [2, 3, 4], [5, 6, 7], [8, 9, 10], [11, 12, 13, 14], [15]]
#: exposure time: start of the first read to the end of the last (s)
EXPOSURE_TIME_S = FRAME_TIME_S * READ_PATTERN[-1][-1]
#: effective exposure time: between the (single-read) first and last resultants (s)
EFFECTIVE_EXPOSURE_TIME_S = FRAME_TIME_S * (READ_PATTERN[-1][-1] - READ_PATTERN[0][0])

#: read noise of the fitted slope (DN/s, 1σ), from ~3.6 DN per read over the MA table above
READ_NOISE_DN_S = 0.09
#: saturation (full-well-like) level of the accumulated signal (DN)
SATURATION_DN = 55000.0
#: the rate a saturated pixel is clipped to in L2 (DN/s)
SATURATION_RATE_DN_S = SATURATION_DN / EXPOSURE_TIME_S
#: relative error of the flat field (fixed per pixel), the source of ``var_flat``
FLAT_ERROR = 0.002
#: mean zodiacal sky in F146 toward the bulge (DN/s per pixel; ≈ 22.3 AB mag / arcsec²)
SKY_DN_S = 0.8


def dn_s_to_ujy(flux_dn_s: np.ndarray | float) -> np.ndarray | float:
    """Point-source flux: DN/s summed over pixels → µJy."""
    return np.asarray(flux_dn_s) * UJY_PER_DN_S


def ujy_to_dn_s(flux_ujy: np.ndarray | float) -> np.ndarray | float:
    """Point-source flux: µJy → DN/s summed over pixels."""
    return np.asarray(flux_ujy) / UJY_PER_DN_S


def mag_to_dn_s(mag_ab: np.ndarray | float) -> np.ndarray | float:
    """F146 AB magnitude → DN/s."""
    return 10.0 ** (-0.4 * (np.asarray(mag_ab) - F146_ZEROPOINT_AB_DN))


def dn_s_to_mag(flux_dn_s: np.ndarray | float) -> np.ndarray | float:
    """DN/s → F146 AB magnitude."""
    return F146_ZEROPOINT_AB_DN - 2.5 * np.log10(np.asarray(flux_dn_s))
