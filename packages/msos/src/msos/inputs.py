"""Reading romancal Level-2 ``wfi_image`` files into epochs the kernels can use.

Every check an operator needs lives here: an unreadable file, another product type, a
missing WCS or calibration, an epoch of another field or detector, an image with no valid
pixel — each becomes one :class:`EpochRejected` line naming the file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from roman_datamodels import dqflags

from msos.errors import EpochRejected
from msos.timing import bjd_tdb

#: dq bits that make a pixel unusable for photometry
BAD_DQ = np.uint32(
    dqflags.pixel.DO_NOT_USE
    | dqflags.pixel.SATURATED
    | dqflags.pixel.JUMP_DET
    | dqflags.pixel.DEAD
    | dqflags.pixel.HOT
    | dqflags.pixel.NONLINEAR
    | dqflags.pixel.NO_FLAT_FIELD
    | dqflags.pixel.UNRELIABLE_SLOPE
    | dqflags.pixel.OTHER_BAD_PIXEL
    | dqflags.pixel.REFERENCE_PIXEL
    | dqflags.pixel.DROPOUT
    | dqflags.pixel.AD_FLOOR
)
SATURATED = np.uint32(dqflags.pixel.SATURATED)
#: an epoch whose WCS centre lies farther than this from where its detector of its field points
#: is another field's (fields are ~0.5° apart; pointing repeats to a few milliarcseconds)
POINTING_TOLERANCE_DEG = 0.1


@dataclass
class Epoch:
    """One Level-2 exposure of one detector, ready for the kernels (DN/s, float32)."""

    uri: str
    exposure_name: str
    detector: str
    optical_element: str
    data: np.ndarray
    variance: np.ndarray
    bad: np.ndarray
    saturated: np.ndarray
    wcs: Any
    start: datetime
    end: datetime
    exposure_time_s: float
    time_mjd_tdb: float
    time_method: str
    ujy_per_dn_s: float
    mjy_sr_per_dn_s: float
    centre_ra_deg: float
    centre_dec_deg: float
    shape: tuple[int, int]  # (ny, nx), kept when the pixels are dropped

    def pixel_of(self, ra_deg: np.ndarray, dec_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel (x, y) of sky positions through this epoch's WCS."""
        x, y = self.wcs.invert(np.asarray(ra_deg), np.asarray(dec_deg))
        return np.asarray(x), np.asarray(y)

    def sky_of(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sky positions (RA, Dec in degrees) of pixels through this epoch's WCS."""
        ra, dec = self.wcs(np.asarray(x), np.asarray(y))
        return np.asarray(ra), np.asarray(dec)


def _utc(value: Any) -> datetime:
    return value.to_datetime(timezone=UTC) if hasattr(value, "to_datetime") else value


def _valid_number(value: Any) -> bool:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return np.isfinite(number) and number > 0 and number != 999999.0


def read_epoch(
    path: str | Path,
    *,
    uri: str | None = None,
    detector: str | None = None,
    pointing: tuple[float, float] | None = None,
) -> Epoch:
    """Read and check one Level-2 file; ``detector`` and ``pointing`` (RA, Dec of the
    detector's centre, ``msos.survey.detector_centre``) are the partition's."""
    import roman_datamodels.datamodels as rdd

    name = uri or str(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = rdd.open(path)
    except Exception as exc:  # roman_datamodels raises many kinds for an unreadable file
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise EpochRejected(name, f"not a readable Level-2 file ({reason})") from None
    with model:
        if not isinstance(model, rdd.ImageModel):
            kind = type(model).__name__
            raise EpochRejected(name, f"is a {kind}, not a Level-2 wfi_image (ImageModel)")
        meta = model.meta
        wcs = getattr(meta, "wcs", None)
        if wcs is None:
            raise EpochRejected(name, "has no WCS (meta.wcs is missing)")
        epoch_detector = str(meta.instrument.detector)
        if detector is not None and epoch_detector.upper() != detector.upper():
            raise EpochRejected(name, f"is detector {epoch_detector}, partition is {detector}")
        photometry = meta.photometry
        if not (
            _valid_number(photometry.conversion_megajanskys)
            and _valid_number(photometry.pixel_area)
        ):
            raise EpochRejected(name, "has no photometric calibration (meta.photometry)")
        data = np.array(model.data, dtype="float32")
        err = np.array(model.err, dtype="float32")
        dq = np.array(model.dq, dtype="uint32")
        if data.ndim != 2 or err.shape != data.shape or dq.shape != data.shape:
            raise EpochRejected(name, f"arrays disagree in shape ({data.shape}, {err.shape})")
        ny, nx = data.shape
        try:
            centre_ra, centre_dec = (float(v) for v in wcs((nx - 1) / 2, (ny - 1) / 2))
        except Exception as exc:
            raise EpochRejected(name, f"has an unusable WCS ({type(exc).__name__})") from None
        if pointing is not None:
            separation = separation_deg(centre_ra, centre_dec, *pointing)
            if separation > POINTING_TOLERANCE_DEG:
                raise EpochRejected(
                    name, f"points {separation:.2f} deg from where the partition's detector looks"
                )
        bad = ((dq & BAD_DQ) != 0) | ~np.isfinite(data) | ~np.isfinite(err) | (err <= 0)
        if bad.all():
            raise EpochRejected(name, "has no valid pixel (all NaN or flagged)")
        variance = np.where(bad, np.float32(np.nan), err * err).astype("float32")
        data = np.where(bad, np.float32(np.nan), data).astype("float32")
        exposure = meta.exposure
        start, end = exposure.start_time, exposure.end_time
        middle = start + (end - start) / 2
        position = _ephemeris_position(meta)
        time_tdb, method = bjd_tdb(middle, centre_ra, centre_dec, position)
        ujy = float(photometry.conversion_megajanskys) * float(photometry.pixel_area) * 1e12
        return Epoch(
            uri=name,
            exposure_name=str(getattr(meta, "filename", Path(str(path)).name)),
            detector=epoch_detector.upper(),
            optical_element=str(meta.instrument.optical_element),
            data=data,
            variance=variance,
            bad=bad,
            saturated=(dq & SATURATED) != 0,
            wcs=wcs,
            start=_utc(start),
            end=_utc(end),
            exposure_time_s=float(exposure.exposure_time),
            time_mjd_tdb=time_tdb,
            time_method=method,
            ujy_per_dn_s=ujy,
            mjy_sr_per_dn_s=float(photometry.conversion_megajanskys),
            centre_ra_deg=centre_ra,
            centre_dec_deg=centre_dec,
            shape=(ny, nx),
        )


def _ephemeris_position(meta: Any) -> np.ndarray | None:
    ephemeris = getattr(meta, "ephemeris", None)
    if ephemeris is None:
        return None
    position = np.array(
        [ephemeris.spatial_x, ephemeris.spatial_y, ephemeris.spatial_z], dtype=float
    )
    frame = str(getattr(ephemeris, "ephemeris_reference_frame", "")).upper()
    if np.any(position == -999999.0) or ("BARY" not in frame and "ICRS" not in frame):
        return None
    return position


def separation_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Angle between two sky positions (degrees in, degrees out)."""
    a1, d1, a2, d2 = map(np.radians, (ra1, dec1, ra2, dec2))
    cos = np.sin(d1) * np.sin(d2) + np.cos(d1) * np.cos(d2) * np.cos(a1 - a2)
    return float(np.degrees(np.arccos(np.clip(cos, -1, 1))))
