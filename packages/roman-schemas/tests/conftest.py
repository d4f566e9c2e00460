"""Fixtures of the roman-schemas tests: one example file of every product type."""

from __future__ import annotations

from pathlib import Path

import pytest

from roman_schemas import registered_products, write_product
from roman_schemas.product import Product


@pytest.fixture(params=sorted(registered_products()), ids=lambda tag: tag.rsplit("/", 1)[1])
def product_cls(request) -> type[Product]:
    return registered_products()[request.param]


@pytest.fixture
def example_file(tmp_path: Path, product_cls: type[Product]) -> Path:
    path = tmp_path / f"{product_cls.product_type}.asdf"
    write_product(product_cls.example(), path)
    return path
