"""Metadata blocks of MSOS products, each field mapped to its rad SSC archive keyword.

The rad keyword groups (msos_common, msos_pointing, msos_observation, msos_exposure,
msos_region, msos_detection_efficiency, msos_dqa) become nested models here, so a product's
metadata type says which groups it carries.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from importlib.metadata import version
from typing import Any, Literal

from pydantic import Field

from roman_schemas.meta import MetaModel, ProductMeta, archive
from roman_schemas.wfi import Detector, OpticalElement

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


class MsosRegionMeta(MsosMeta):
    """MSOS metadata with a sky footprint (catalogs spanning several partitions)."""

    s_region: str = archive("s_region", description="footprint: POLYGON ICRS ra dec …")


class MsosPartitionMeta(MsosMeta):
    """Metadata of MSOS products of one (field, detector) partition."""

    field: str = archive("field", pattern=r"^f\d{2}$", description="GBTDS field, e.g. f03")
    detector: Detector = archive("detector")
    optical_element: OpticalElement = archive("optical_element", default="F146")
    sequence: str = archive("sequence", pattern=r"^e\d{2}$", description="processing epoch")
    pointing: Pointing
    exposure: ExposureSpan
    s_region: str = archive("s_region", description="footprint: POLYGON ICRS ra dec …")


class MsosDailyMeta(MsosPartitionMeta):
    """Partition metadata of a product covering one UTC day."""

    day: date = Field(description="UTC calendar day the epochs were observed")


class MsosEpochMeta(MsosMeta):
    """Metadata of a working product of one epoch of one partition (not archived)."""

    field: str = Field(pattern=r"^f\d{2}$", description="GBTDS field, e.g. f03")
    detector: Detector
    optical_element: OpticalElement = "F146"
    exposure_name: str = Field(description="the Level-2 exposure (file name)")
    offset_pix: list[float] = Field(
        min_length=2,
        max_length=2,
        description="(dx, dy): the epoch's pixel grid minus the reference frame's",
    )
    ujy_per_dn_s: float = Field(gt=0, description="µJy of 1 DN/s summed over pixels (Level-2)")


class MsosEfficiencyMeta(MsosMeta):
    """Metadata of a detection-efficiency catalog: what was injected into."""

    inject_medium: Literal["images", "lightcurve", "rhie"] = archive(
        "inject_medium",
        description="where the synthetic events were injected (rhie: real-host image injection)",
    )


class MsosDqaMeta(ProductMeta):
    """Metadata of MSOS data-quality-assessment products (optional keywords when they apply)."""

    instrument: Literal["WFI"] = archive("instrument", default="WFI")
    program: int | None = archive("program", default=None, ge=1, le=18445)
    dqa_workflow: Literal["periodic", "longterm", "events"] = archive("dqa_workflow")
    dqa_artifact_type: Literal["report", "catalog"] = archive("dqa_artifact_type")
    season: str | None = archive("season", default=None, pattern=r"^s\d{2}$")
    period: str | None = archive("period", default=None, pattern=r"^p\d{2}$")
    sequence: str | None = archive("sequence", default=None, max_length=3)
    field: str | None = archive("field", default=None, pattern=r"^f\d{2}$")
    detector: str | None = archive("detector", default=None, pattern=r"^wfi\d{2}$")
    optical_element: str | None = archive("optical_element", default=None, pattern=r"^f\d{3}$")
    counter: str | None = archive("counter", default=None, max_length=16)
    object_id: str | None = archive("object_id", default=None, max_length=64)
    roman_name: str | None = archive("roman_name", default=None, max_length=128)
    classification: str | None = archive("classification", default=None, max_length=64)
    ra_deg: float | None = archive("ra", default=None, ge=0, lt=360, description="target RA")
    dec_deg: float | None = archive("dec", default=None, ge=-90, le=90, description="target Dec")
    dqa_flag: int | None = archive("dqa_flag", default=None, description="summary quality flag")


def msos_version(meta: ProductMeta) -> str:
    """The msos version a product was made with ("unknown" for hand-made examples)."""
    return meta.software_versions.get("msos", "unknown")


def _package_version() -> str:
    return version("roman-schemas")


def example_common(cls: Any, **fields: Any) -> dict[str, Any]:
    """Keyword arguments of a plausible MSOS meta (season 1, program 1) for examples."""
    return cls.new_meta(
        file_name=f"{cls.product_type}_example.asdf",
        program=1,
        season="s01",
        flip=0,
        gal_cen_flag=False,
        provenance={"step": "example", "inputs": [], "parameters": {}},
        software_versions={"roman-schemas": _package_version()},
        **fields,
    )


EXAMPLE_REGION = "POLYGON ICRS 268.10 -29.20 268.30 -29.20 268.30 -29.00 268.10 -29.00"


def example_partition(cls: Any, **fields: Any) -> dict[str, Any]:
    """Keyword arguments of a plausible partition meta (season 1, field 3, WFI01)."""
    start = datetime(2027, 3, 1, tzinfo=UTC)
    end = datetime(2027, 3, 2, tzinfo=UTC)
    return example_common(
        cls,
        field="f03",
        detector="WFI01",
        sequence="e01",
        pointing=Pointing(ra_field_cen=268.2, dec_field_cen=-29.1),
        exposure=ExposureSpan(
            exptime_s=96 * 46.8,
            start=start,
            end=end,
            start_mjd_utc=61465.0,
            end_mjd_utc=61466.0,
        ),
        s_region=EXAMPLE_REGION,
        **fields,
    )


def example_exposure_names(n_epochs: int) -> Any:
    """Level-2 file names of ``n_epochs`` consecutive exposures of WFI01."""
    import numpy as np

    return np.array([f"r0000101001001001{i:04d}_wfi01_cal.asdf" for i in range(n_epochs)])
