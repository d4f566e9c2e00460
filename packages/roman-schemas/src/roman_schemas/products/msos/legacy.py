"""Earlier versions of MSOS products, kept so files written with them still open.

A class here is frozen: its schema file is released (see ``resources/released.txt``) and
it is never edited; the current version lives beside it in the sibling modules.
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator

from roman_schemas.arrays import NDArray
from roman_schemas.products.msos.base import MsosProduct
from roman_schemas.products.msos.meta import (
    RAD_MSOS,
    MsosDailyMeta,
    MsosPartitionMeta,
    example_partition,
)
from roman_schemas.products.msos.photometry import (
    LIGHT_CURVE_RAD,
    GriddedPSF,
    LightCurveArrays,
    ReferenceObjects,
)
from roman_schemas.tables import Table
from roman_schemas.wfi import ImageUnit


class ReferenceObjectsV1_0_0(Table):  # noqa: N801 - the version is part of the name
    """Objects measured on the reference frame (PSF photometry), version 1.0.0."""

    key_column: ClassVar[str] = "object_id"

    object_id: NDArray("int64", 1) = Field(description="stable object id in the partition")
    x_pix: NDArray("float64", 1, unit="pix") = Field(description="x on the reference frame")
    y_pix: NDArray("float64", 1, unit="pix") = Field(description="y on the reference frame")
    ra_deg: NDArray("float64", 1, unit="deg") = Field(description="right ascension (ICRS)")
    dec_deg: NDArray("float64", 1, unit="deg") = Field(description="declination (ICRS)")
    flux: NDArray("float32", 1) = Field(description="PSF flux: image_unit summed over pixels")
    flux_err: NDArray("float32", 1) = Field(description="1-sigma error of flux")
    flags: NDArray("uint32", 1) = Field(description="measurement flags (bit set)")


class ReferenceFrameV1_0_0(MsosProduct):  # noqa: N801 - the version is part of the name
    """L3 reference frame of one partition (version 1.0.0: no WCS, fluxes in image units)."""

    product_type: ClassVar[str] = "wfi_microlensing_reference_frame_level_3"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = f"{RAD_MSOS}/wfi_microlensing_reference_frame_level_3-1.0.0"
    export_table: ClassVar[str] = "objects"

    meta: MsosPartitionMeta
    image_unit: ImageUnit = Field(description="unit of data and err")
    n_epochs_stacked: int = Field(ge=1, description="epochs in the stack")
    data: NDArray("float32", 2) = Field(description="stacked image (image_unit)")
    err: NDArray("float32", 2) = Field(description="1-sigma error of data (image_unit)")
    mask: NDArray("uint32", 2) = Field(description="data-quality bits (romancal dq)")
    coverage: NDArray("uint16", 2) = Field(description="epochs contributing to each pixel")
    psf: GriddedPSF
    objects: ReferenceObjectsV1_0_0

    @model_validator(mode="after")
    def _same_shape(self) -> Self:
        shape = self.data.shape
        for name in ("err", "mask", "coverage"):
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} shape {getattr(self, name).shape} != data {shape}")
        return self

    @classmethod
    def example(cls) -> Self:
        """A small valid 1.0.0 reference frame (for the old-version tests)."""
        from roman_schemas.products.msos.photometry import ReferenceFrame

        new = ReferenceFrame.example()
        old = new.objects
        return cls(
            meta=MsosPartitionMeta(**example_partition(cls)),
            image_unit="MJy / sr",
            n_epochs_stacked=new.n_epochs_stacked,
            data=new.data,
            err=new.err,
            mask=new.mask,
            coverage=new.coverage,
            psf=new.psf,
            objects=ReferenceObjectsV1_0_0(
                object_id=old.object_id,
                x_pix=old.x_pix,
                y_pix=old.y_pix,
                ra_deg=old.ra_deg,
                dec_deg=old.dec_deg,
                flux=old.flux_ujy,
                flux_err=old.flux_err_ujy,
                flags=old.flags,
            ),
        )


class ReferenceFrameV1_1_0(MsosProduct):  # noqa: N801 - the version is part of the name
    """L3 reference frame of one partition (version 1.1.0: no photometric calibration)."""

    product_type: ClassVar[str] = "wfi_microlensing_reference_frame_level_3"
    schema_version: ClassVar[str] = "1.1.0"
    rad_schema: ClassVar[str] = f"{RAD_MSOS}/wfi_microlensing_reference_frame_level_3-1.0.0"
    export_table: ClassVar[str] = "objects"

    meta: MsosPartitionMeta
    image_unit: ImageUnit = Field(description="unit of data and err")
    n_epochs_stacked: int = Field(ge=1, description="epochs in the stack")
    data: NDArray("float32", 2) = Field(description="stacked image (image_unit)")
    err: NDArray("float32", 2) = Field(description="1-sigma error of data (image_unit)")
    mask: NDArray("uint32", 2) = Field(description="data-quality bits (romancal dq)")
    coverage: NDArray("uint16", 2) = Field(description="epochs contributing to each pixel")
    wcs_fits: dict[str, float | int | str] = Field(
        description="FITS WCS of the frame (TAN or TAN-SIP keywords), for astropy.wcs.WCS"
    )
    psf: GriddedPSF
    objects: ReferenceObjects

    @model_validator(mode="after")
    def _same_shape(self) -> Self:
        shape = self.data.shape
        for name in ("err", "mask", "coverage"):
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} shape {getattr(self, name).shape} != data {shape}")
        missing = {"CTYPE1", "CTYPE2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2"} - set(self.wcs_fits)
        if missing:
            raise ValueError(f"wcs_fits lacks {sorted(missing)}")
        return self

    @classmethod
    def example(cls) -> Self:
        """A small valid 1.1.0 reference frame (for the old-version tests)."""
        from roman_schemas.products.msos.photometry import ReferenceFrame

        new = ReferenceFrame.example()
        fields = {name: getattr(new, name) for name in cls.model_fields if name != "meta"}
        return cls(meta=MsosPartitionMeta(**example_partition(cls)), **fields)


class DailyLightCurvesV1_0_0(LightCurveArrays):  # noqa: N801 - the version is part of the name
    """One day of light curves of one partition (version 1.0.0: object ids only, no table)."""

    product_type: ClassVar[str] = "wfi_microlensing_daily_light_curves_level_3"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = LIGHT_CURVE_RAD

    meta: MsosDailyMeta

    @classmethod
    def example(cls) -> Self:
        """A small valid 1.0.0 daily partition (for the old-version tests)."""
        from roman_schemas.products.msos.photometry import DailyLightCurves

        new = DailyLightCurves.example()
        fields = {n: getattr(new, n) for n in cls.model_fields if n != "meta"}
        return cls(meta=MsosDailyMeta(**example_partition(cls, day=new.meta.day)), **fields)


__all__ = ["DailyLightCurvesV1_0_0", "ReferenceFrameV1_0_0", "ReferenceObjectsV1_0_0"]
