"""Units and time scales are explicit: every time and flux column declares them."""

from __future__ import annotations

import re

from astropy import units as u

from roman_schemas import registered_products
from roman_schemas.arrays import ArraySpec
from roman_schemas.schema_gen import latest_products

TIME = re.compile(r"(^time_|mjd)")  # instants; durations such as exposure_time_s are not
FLUX = re.compile(r"(^|_)(flux|flam|fnu)(_|$)")


def _array_fields(model, prefix=""):
    for name, field in model.model_fields.items():
        spec = next((m for m in field.metadata if isinstance(m, ArraySpec)), None)
        if spec is not None:
            yield f"{prefix}{name}", spec
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            yield from _array_fields(annotation, f"{prefix}{name}.")


def test_every_time_column_has_a_unit_and_a_time_scale(product_cls):
    for path, spec in _array_fields(product_cls):
        leaf = path.rsplit(".", 1)[-1]
        if TIME.search(leaf) and spec.dtype.startswith("float") and "err" not in leaf:
            assert spec.time_scale, f"{path} has no time scale"
            assert spec.unit, f"{path} has no unit"


def test_every_flux_column_has_a_unit(product_cls):
    if product_cls not in latest_products():
        return  # a released old version keeps its released schema
    for path, spec in _array_fields(product_cls):
        leaf = path.rsplit(".", 1)[-1]
        if FLUX.search(leaf) and spec.dtype.startswith("float"):
            assert spec.unit, f"{path} has no unit"


def test_every_unit_parses_with_astropy():
    for cls in registered_products().values():
        for _path, spec in _array_fields(cls):
            if spec.unit:
                u.Unit(spec.unit)  # raises on a unit astropy does not know
