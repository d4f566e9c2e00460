"""Metadata of the MSOS products of a partition, built from what the steps know."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from astropy.time import Time

from msos.partition import Partition
from msos.survey import field_centre, is_galactic_centre, season_flip
from roman_schemas.products.msos import ExposureSpan, Pointing


def common_meta(cls: Any, partition: Partition, program: int, **fields: Any) -> dict[str, Any]:
    """Keyword arguments of an MSOS meta: the program, season, flip and Galactic-centre flag."""
    return cls.new_meta(
        file_name=f"{cls.product_type}.asdf",
        program=program,
        season=partition.season,
        flip=season_flip(partition.season),
        gal_cen_flag=is_galactic_centre(partition.field),
        provenance={"step": "msos", "inputs": [], "parameters": {}},
        **fields,
    )


def partition_meta(
    cls: Any,
    partition: Partition,
    *,
    program: int,
    sequence: str,
    start: datetime,
    end: datetime,
    exposure_time_s: float,
    s_region: str,
    **fields: Any,
) -> dict[str, Any]:
    """Keyword arguments of a partition meta (pointing, observation, exposure, region)."""
    ra, dec = field_centre(partition.field)
    return common_meta(
        cls,
        partition,
        program,
        field=partition.field,
        detector=partition.detector,
        sequence=sequence,
        pointing=Pointing(ra_field_cen=ra, dec_field_cen=dec),
        exposure=ExposureSpan(
            exptime_s=exposure_time_s,
            start=start,
            end=end,
            start_mjd_utc=float(Time(start).mjd),
            end_mjd_utc=float(Time(end).mjd),
        ),
        s_region=s_region,
        **fields,
    )


def s_region(ra_deg: np.ndarray, dec_deg: np.ndarray) -> str:
    """``POLYGON ICRS ra1 dec1 …`` of a footprint's corners (in order around it)."""
    points = " ".join(f"{ra:.6f} {dec:.6f}" for ra, dec in zip(ra_deg, dec_deg, strict=True))
    return f"POLYGON ICRS {points}"


def derived_meta(source: Any, cls: Any, meta_cls: Any) -> Any:
    """``meta_cls`` metadata of a ``cls`` product made from a product with meta ``source``:
    its program, season, partition and span, the new product's type and file name."""
    fields = source.model_dump(exclude={"product_type", "model_type", "file_date", "file_name"})
    kept = {name: value for name, value in fields.items() if name in meta_cls.model_fields}
    return meta_cls(**cls.new_meta(file_name=f"{cls.product_type}.asdf", **kept))
