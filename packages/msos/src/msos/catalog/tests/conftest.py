"""Simulated crowded fields for the catalog tests (:mod:`msos.catalog.synthetic`)."""

import pytest

from msos.catalog.synthetic import crowded_field


@pytest.fixture(scope="session")
def crowded():
    """A 200×200 crowded field: 1 star / 15 pix² down to S/N ≈ 2, power-law fluxes."""
    return crowded_field(200, seed=1)
