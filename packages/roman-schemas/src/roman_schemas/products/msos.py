"""MSOS products: the microlensing survey's reference frames, light curves and catalogs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Self

import numpy as np
from pydantic import Field, model_validator

from roman_schemas.arrays import NDArray
from roman_schemas.meta import MetaModel, ProductMeta, archive
from roman_schemas.product import Product, archive_time
from roman_schemas.tables import Table
from roman_schemas.wfi import Detector, ImageUnit, OpticalElement

RAD_MSOS = "asdf://stsci.edu/datamodels/roman/schemas/SSC/MSOS"


class Pointing(MetaModel):
    """Centre of the GBTDS field the product belongs to."""

    ra_field_cen: float = archive("ra_field_cen", ge=0, lt=360, description="field RA (deg)")
    dec_field_cen: float = archive("dec_field_cen", ge=-90, le=90, description="field Dec (deg)")
    ref_frame: Literal["ICRS"] = archive("ref_frame", default="ICRS")
    equinox: float = archive("equinox", default=2000.0, description="equinox (Julian years)")


class ExposureSpan(MetaModel):
    """The span of the epochs a product is made from."""

    exptime_s: float = archive("exptime", ge=0, description="total exposure time (s)")
    start: datetime = archive("expstart", description="start of the first epoch (UTC)")
    end: datetime = archive("expend", description="end of the last epoch (UTC)")
    start_mjd_utc: float = archive("expstart_mjd", description="start of the first epoch (MJD UTC)")
    end_mjd_utc: float = archive("expend_mjd", description="end of the last epoch (MJD UTC)")


class MsosMeta(ProductMeta):
    """Metadata of every MSOS product: the program and the survey season."""

    instrument: Literal["WFI"] = archive("instrument", default="WFI")
    program: int = archive("program", ge=1, le=18445, description="observing program")
    category: str = archive("category", default="CCS", max_length=6)
    subcategory: str = archive("subcategory", default="GBTD", max_length=15)
    season: str = archive("season", pattern=r"^s\d{2}$", description="GBTDS season, e.g. s01")
    flip: int = archive("flip", description="footprint orientation of the season (deg)")
    gal_cen_flag: bool = archive("gal_cen_flag", description="Galactic Center field data present")


class MsosPartitionMeta(MsosMeta):
    """Metadata of MSOS products of one (field, detector) partition."""

    field: str = archive("field", pattern=r"^f\d{2}$", description="GBTDS field, e.g. f03")
    detector: Detector = archive("detector")
    optical_element: OpticalElement = archive("optical_element", default="F146")
    sequence: str = archive("sequence", pattern=r"^e\d{2}$", description="processing epoch")
    pointing: Pointing
    exposure: ExposureSpan
    s_region: str = archive("s_region", description="footprint: POLYGON ICRS ra dec …")


def example_partition_meta(cls: type[Product], file_name: str) -> dict[str, Any]:
    """Metadata of a plausible partition (season 1, field 3, detector 1) for examples."""
    start = datetime(2027, 3, 1, tzinfo=UTC)
    end = datetime(2027, 3, 2, tzinfo=UTC)
    return cls.new_meta(
        file_name=file_name,
        program=1,
        season="s01",
        flip=0,
        gal_cen_flag=False,
        field="f03",
        detector="WFI01",
        sequence="e01",
        pointing=Pointing(ra_field_cen=268.2, dec_field_cen=-29.1),
        exposure=ExposureSpan(
            exptime_s=12 * 46.8,
            start=start,
            end=end,
            start_mjd_utc=61465.0,
            end_mjd_utc=61466.0,
        ),
        s_region="POLYGON ICRS 268.10 -29.20 268.30 -29.20 268.30 -29.00 268.10 -29.00",
        provenance={"step": "example", "inputs": [], "parameters": {}},
        software_versions={"roman-schemas": _package_version()},
    )


def _package_version() -> str:
    from importlib.metadata import version

    return version("roman-schemas")


class MsosProduct(Product):
    """Base of MSOS products: their software keywords come from the msos version."""

    system: ClassVar[str] = "msos"

    def extra_archive_keywords(self) -> dict[str, Any]:
        # One msos distribution carries photometry, events and detection efficiency.
        version = self.meta.software_versions.get("msos", "unknown")
        return {
            "msos_photometry_version": version,
            "msos_events_version": version,
            "msos_detection_efficiency_version": version,
            "msos_processing_id": self.meta.processing_id,
        }


class GriddedPSF(MetaModel):
    """A spatially varying PSF: oversampled stamps at a grid of detector positions."""

    model_config = MetaModel.model_config | {"arbitrary_types_allowed": True}

    stamps: NDArray("float32", 3) = Field(description="PSF stamps (n_grid, ny, nx), sum 1")
    x_pix: NDArray("float64", 1, unit="pix") = Field(description="detector x of each stamp")
    y_pix: NDArray("float64", 1, unit="pix") = Field(description="detector y of each stamp")
    oversampling: int = Field(ge=1, description="stamp pixels per detector pixel")

    @model_validator(mode="after")
    def _grid_matches(self) -> Self:
        n = self.stamps.shape[0]
        if self.x_pix.shape != (n,) or self.y_pix.shape != (n,):
            raise ValueError(f"{n} stamps but {self.x_pix.shape[0]} grid positions")
        return self


class ReferenceObjects(Table):
    """Objects measured on the reference frame (PSF photometry)."""

    key_column: ClassVar[str] = "object_id"

    object_id: NDArray("int64", 1) = Field(description="stable object id in the partition")
    x_pix: NDArray("float64", 1, unit="pix") = Field(description="x on the reference frame")
    y_pix: NDArray("float64", 1, unit="pix") = Field(description="y on the reference frame")
    ra_deg: NDArray("float64", 1, unit="deg") = Field(description="right ascension (ICRS)")
    dec_deg: NDArray("float64", 1, unit="deg") = Field(description="declination (ICRS)")
    flux: NDArray("float32", 1) = Field(description="PSF flux: image_unit summed over pixels")
    flux_err: NDArray("float32", 1) = Field(description="1-sigma error of flux")
    flags: NDArray("uint32", 1) = Field(description="measurement flags (bit set)")


class ReferenceFrame(MsosProduct):
    """L3 reference frame of one partition: stacked image, error, mask, PSF and objects."""

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
    objects: ReferenceObjects

    @classmethod
    def example(cls, size: int = 64, n_objects: int = 20, seed: int = 1) -> Self:
        """A small, valid reference frame with a synthetic star field (docs and tests)."""
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:size, 0:size]
        x = rng.uniform(4, size - 4, n_objects)
        y = rng.uniform(4, size - 4, n_objects)
        flux = rng.lognormal(3, 1, n_objects).astype("float32")
        sigma = 1.2
        image = np.zeros((size, size), dtype="float32")
        for xi, yi, fi in zip(x, y, flux, strict=True):
            image += (
                fi
                * np.exp(-((xx - xi) ** 2 + (yy - yi) ** 2) / (2 * sigma**2))
                / (2 * np.pi * sigma**2)
            )
        image += rng.normal(0.5, 0.05, image.shape).astype("float32")
        stamp_y, stamp_x = np.mgrid[-12:13, -12:13] / 4.0
        stamp = np.exp(-(stamp_x**2 + stamp_y**2) / (2 * sigma**2)).astype("float32")
        grid = np.array([size / 4, 3 * size / 4])
        gx, gy = np.meshgrid(grid, grid)
        return cls(
            meta=MsosPartitionMeta(
                **example_partition_meta(cls, f"example_{cls.product_type}.asdf")
            ),
            image_unit="MJy / sr",
            n_epochs_stacked=12,
            data=image,
            err=np.full(image.shape, 0.05, dtype="float32"),
            mask=np.zeros(image.shape, dtype="uint32"),
            coverage=np.full(image.shape, 12, dtype="uint16"),
            psf=GriddedPSF(
                stamps=np.repeat((stamp / stamp.sum())[None], 4, axis=0),
                x_pix=gx.ravel().astype("float64"),
                y_pix=gy.ravel().astype("float64"),
                oversampling=4,
            ),
            objects=ReferenceObjects(
                object_id=np.arange(1, n_objects + 1, dtype="int64"),
                x_pix=x,
                y_pix=y,
                ra_deg=268.0 + x * 3e-5,
                dec_deg=-29.0 + y * 3e-5,
                flux=flux,
                flux_err=np.sqrt(flux) * 0.01,
                flags=np.zeros(n_objects, dtype="uint32"),
            ),
        )

    @model_validator(mode="after")
    def _same_shape(self) -> Self:
        shape = self.data.shape
        for name in ("err", "mask", "coverage"):
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} shape {getattr(self, name).shape} != data {shape}")
        return self


__all__ = [
    "ExposureSpan",
    "GriddedPSF",
    "MsosMeta",
    "MsosPartitionMeta",
    "Pointing",
    "ReferenceFrame",
    "ReferenceObjects",
    "archive_time",
]
