"""The location kernel against the instrument model it reads, and a brute-force overlap."""

from __future__ import annotations

import numpy as np
import pytest

from gdps.instrument import load_instrument
from gdps.locate.kernel import locate, overlaps, trace_pixels


@pytest.fixture(scope="module")
def grism():
    return load_instrument().element("WFI07", "G150_1")


def test_each_wavelength_lands_where_the_instrument_model_puts_it(grism) -> None:
    lam = np.array([1100.0, 1465.0, 1800.0])
    x, y = trace_pixels(grism, np.array([1000.0, 2500.0]), np.array([500.0, 3000.0]), lam)
    assert x.shape == (2, 3)
    np.testing.assert_allclose(grism.wavelength_nm(x[1] - 2500.0), lam, atol=1e-6)
    np.testing.assert_allclose(y[0] - 500.0, grism.trace_dy_pix(x[0] - 1000.0), atol=1e-9)
    assert np.all(np.diff(x[0]) > 0)  # redder is further along +x


def test_a_box_covers_the_band_and_the_source_size(grism) -> None:
    where = locate(grism, np.array([2000.0]), np.array([2000.0]), 5.0)
    span = grism.dx_pix(np.array([grism.wavelength_min_nm, grism.wavelength_max_nm]))
    assert where.x_min[0] == pytest.approx(2000 + span[0] - 5, abs=1.5)
    assert where.x_max[0] == pytest.approx(2000 + span[1] + 5, abs=1.5)
    assert where.y_max[0] - where.y_min[0] >= 10
    assert where.on_detector[0] == 1.0
    length = where.x_max[0] - where.x_min[0]
    assert 800 < length - 10 < 1000  # 1.0–1.93 µm at ~1.08 nm per pixel


def test_spectra_off_the_edge_are_kept_whole_and_counted(grism) -> None:
    where = locate(grism, np.array([4080.0, -2000.0, 2000.0]), np.array([100.0, 100.0, 5000.0]),
                   3.0)  # fmt: skip
    ends = grism.dx_pix(np.array([grism.wavelength_min_nm, grism.wavelength_max_nm]))
    expected = (4087.5 - (4080.0 + ends[0])) / (ends[1] - ends[0])  # the length on the detector
    assert where.on_detector[0] == pytest.approx(expected, abs=0.02) and 0.3 < expected < 0.7
    assert where.x_max[0] > 4087 and where.clipped()[1][0] == 4087  # stored whole, read cut
    assert where.wavelength_min_nm[0] == pytest.approx(grism.wavelength_min_nm)
    edge = grism.wavelength_nm(4087.5 - 4080.0)
    assert where.wavelength_max_nm[0] == pytest.approx(edge, abs=2 * 15.0)  # one sample step
    assert where.on_detector[1] == 0.0 and where.on_detector[2] == 0.0
    assert np.isnan(where.wavelength_min_nm[1]) and np.isnan(where.wavelength_max_nm[2])
    assert list(where.visible) == [True, False, False]


def test_overlaps_match_a_brute_force_check(grism) -> None:
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 4088, 400), rng.uniform(0, 4088, 400)
    where = locate(grism, x, y, rng.uniform(1, 8, 400))
    pairs = {tuple(p) for p in overlaps(where)}
    brute = set()
    visible = np.flatnonzero(where.visible)
    for a in visible:
        for b in visible[visible > a]:
            if (
                where.x_min[a] <= where.x_max[b]
                and where.x_min[b] <= where.x_max[a]
                and where.y_min[a] <= where.y_max[b]
                and where.y_min[b] <= where.y_max[a]
            ):
                brute.add((int(a), int(b)))  # fmt: skip
    assert pairs == brute and len(pairs) > 0


@pytest.mark.parametrize(
    ("x", "y", "half", "message"),
    [([np.nan], [1.0], 1.0, "finite"), ([1.0], [1.0], -1.0, "negative"),
     ([1.0, 2.0], [1.0], 1.0, "same length")],
)  # fmt: skip
def test_bad_positions_are_refused(grism, x, y, half, message) -> None:
    with pytest.raises(ValueError, match=message):
        locate(grism, np.array(x), np.array(y), half)
