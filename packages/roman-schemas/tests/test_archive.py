"""Every product emits exactly the archive keyword set of its rad SSC schema."""

from __future__ import annotations

import pytest

from roman_schemas import ProductValidationError
from roman_schemas.archive import check_archive_keywords, rad_keyword_names


def test_the_archive_keywords_of_every_product_validate_against_rad(product_cls):
    if not product_cls.archived:
        assert product_cls.rad_schema is None
        return  # a working product between steps: never delivered to the archive
    if product_cls.rad_schema is None:
        pytest.fail(f"{product_cls.__name__} names no rad schema")
    keywords = product_cls.example().archive_keywords()
    check_archive_keywords(keywords, product_cls.rad_schema)
    names, required = rad_keyword_names(product_cls.rad_schema)
    assert required <= set(keywords) <= names


def test_the_model_covers_exactly_the_rad_keyword_set(product_cls):
    if not product_cls.archived:
        return
    names, _ = rad_keyword_names(product_cls.rad_schema)
    assert product_cls.archive_keyword_names() == names


def test_a_keyword_of_the_wrong_type_or_length_is_refused(product_cls):
    if not product_cls.archived:
        return
    keywords = product_cls.example().archive_keywords()
    keywords["origin"] = "an institution with a very long name"
    with pytest.raises(ProductValidationError, match="origin"):
        check_archive_keywords(keywords, product_cls.rad_schema)


def test_a_keyword_rad_does_not_define_is_refused(product_cls):
    if not product_cls.archived:
        return
    keywords = product_cls.example().archive_keywords()
    keywords["favourite_colour"] = "blue"
    with pytest.raises(ProductValidationError, match="favourite_colour"):
        check_archive_keywords(keywords, product_cls.rad_schema)


def test_a_missing_required_keyword_is_refused(product_cls):
    if not product_cls.archived:
        return
    keywords = product_cls.example().archive_keywords()
    del keywords["filename"]
    with pytest.raises(ProductValidationError, match="filename"):
        check_archive_keywords(keywords, product_cls.rad_schema)
