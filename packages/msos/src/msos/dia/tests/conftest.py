"""Fixtures of the DIA tests: the synthetic pairs of ``synthetic``."""

from __future__ import annotations

import pytest

from msos.dia.tests.synthetic import Pair, make_pair


@pytest.fixture(scope="session")
def pair() -> Pair:
    return make_pair()
