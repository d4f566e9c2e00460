"""The committed product reference pages are exactly what the schemas generate."""

from __future__ import annotations

from pathlib import Path

from roman_schemas import registered_products
from roman_schemas.reference_docs import expected_pages, page_path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "products"


def test_every_product_version_has_a_current_reference_page():
    stale = [
        str(path.relative_to(DOCS))
        for path, text in expected_pages(DOCS).items()
        if not path.exists() or path.read_text() != text
    ]
    assert not stale, f"run `roman-schemas docs {DOCS}`: stale pages {stale}"


def test_a_page_lists_every_field_with_its_unit():
    from roman_schemas.products.msos import DailyLightCurves

    text = page_path(DOCS, DailyLightCurves).read_text()
    assert "| `delta_flux_ujy` | array float32, 2-d | uJy | yes |" in text
    assert "| `epochs.time_mjd_tdb` | array float64, 1-d | d (TDB) | yes |" in text
    assert "`meta.season`" in text and "`season`" in text


def test_no_stray_pages():
    expected = set(expected_pages(DOCS))
    present = set(DOCS.rglob("*.md"))
    assert present <= expected, f"pages of no product: {sorted(present - expected)}"
    assert len(expected) == len(registered_products()) + 1
