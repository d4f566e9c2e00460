"""Bit meanings of MSOS flag columns: part of the product contract, so they live here."""

from __future__ import annotations

import enum


class PhotometryFlag(enum.IntFlag):
    """Flags of one measurement (an object at an epoch, or on the reference frame)."""

    NONE = 0
    SATURATED = 1 << 0  # a pixel of the PSF core reached saturation
    BAD_PIXEL = 1 << 1  # a romancal dq bit marks a pixel of the PSF core
    EDGE = 1 << 2  # the PSF footprint runs off the detector
    COSMIC_RAY = 1 << 3  # a jump / cosmic ray in the footprint
    POOR_SUBTRACTION = 1 << 4  # the difference image fits badly around the object
    BLENDED = 1 << 5  # a brighter neighbour within the PSF core
    NO_DATA = 1 << 6  # no usable pixels: the value is NaN
    EPOCH_REJECTED = 1 << 7  # the whole epoch failed quality cuts


class EpochFlag(enum.IntFlag):
    """Flags of one epoch (exposure) of a partition."""

    NONE = 0
    BAD_PSF = 1 << 0  # PSF much broader than usual
    HIGH_BACKGROUND = 1 << 1
    POOR_ALIGNMENT = 1 << 2  # astrometric residuals above the limit
    POOR_KERNEL = 1 << 3  # the DIA kernel fit failed its chi² cut
    MISSING = 1 << 4  # the exposure was expected but is absent


def describe(flag_type: type[enum.IntFlag]) -> str:
    """``1=SATURATED, 2=BAD_PIXEL, …``: the text every flag field's description carries."""
    return ", ".join(f"{int(f)}={f.name}" for f in flag_type if f.value)
