"""The shipped instrument model loads, is self-consistent and matches the published figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from gdps.errors import InstrumentModelError
from gdps.instrument import load_instrument
from gdps.instrument.model import DETECTORS, shipped_model_path

# Published: grism ≈1.08 nm/pixel at field centre (roman-technical-information), R = 461 λ[µm]
# (two pixels); prism R ≈ 80–180. Per-detector pixel scales differ by up to ~2.5 % from the mean.
GRISM_DISPERSION_NM = 1.08
GRISM_TOLERANCE = 0.04
PRISM_R_RANGE = (80.0 * 0.95, 180.0 * 1.05)


@pytest.fixture(scope="module")
def instrument():
    return load_instrument()


def test_the_shipped_file_loads_and_has_every_detector_and_element(instrument):
    assert instrument.format_version.startswith("1.")
    assert set(instrument.sources) == {"roman-technical-information", "pysiaf"}
    for det in DETECTORS:
        for name in ("G150_1", "G150_0", "P127"):
            assert instrument.element(det, name).detector == det
    assert shipped_model_path().stat().st_size < 1_000_000


@pytest.mark.parametrize("name", ["G150_1", "P127"])
def test_wavelength_solution_round_trips(instrument, name):
    for det in DETECTORS:
        e = instrument.element(det, name)
        lam = np.linspace(e.wavelength_min_nm, e.wavelength_max_nm, 301)
        assert np.max(np.abs(e.wavelength_nm(e.dx_pix(lam)) - lam)) < 1e-6
        dx = np.linspace(*e.dx_range_pix, 301)
        assert np.max(np.abs(e.dx_pix(e.wavelength_nm(dx)) - dx)) < 1e-6


def test_grism_dispersion_and_resolution_match_the_published_values(instrument):
    for det in DETECTORS:
        e = instrument.element(det, "G150_1")
        lam = np.linspace(e.wavelength_min_nm, e.wavelength_max_nm, 50)
        dispersion = e.dispersion_nm_per_pix(lam)
        assert np.all(np.abs(dispersion / GRISM_DISPERSION_NM - 1) < GRISM_TOLERANCE), det
        assert np.all(np.abs(e.resolution(lam) / (461.0 * lam / 1000.0) - 1) < GRISM_TOLERANCE)
        assert np.all(np.diff(e.wavelength_nm(np.linspace(*e.dx_range_pix, 50))) > 0)


def test_prism_resolution_spans_the_published_80_to_180(instrument):
    for det in DETECTORS:
        e = instrument.element(det, "P127")
        lam = np.linspace(e.wavelength_min_nm, e.wavelength_max_nm, 50)
        r = e.resolution(lam)
        assert PRISM_R_RANGE[0] < r.min() < 95 and 160 < r.max() < PRISM_R_RANGE[1], det
        assert 750 < e.wavelength_min_nm < 770 and 1800 < e.wavelength_max_nm < 1830


def test_the_trace_stays_within_a_few_pixels_of_the_direct_image_row(instrument):
    for det in DETECTORS:
        e = instrument.element(det, "G150_1")
        assert np.all(np.abs(e.trace_dy_pix(np.linspace(*e.dx_range_pix, 20))) < 10)


@pytest.mark.parametrize("name", ["G150_1", "G150_0", "P127"])
def test_sensitivity_is_positive_inside_the_band_and_zero_outside(instrument, name):
    for det in DETECTORS:
        e = instrument.element(det, name)
        inside = e.sensitivity(np.linspace(e.wavelength_min_nm, e.wavelength_max_nm, 500))
        if name == "G150_0":  # the source's zeroth-order area is zero at a few wavelengths
            assert np.all(inside >= 0) and np.mean(inside > 0) > 0.5, det
        else:
            assert np.all(inside > 0), det
        outside = np.r_[
            np.linspace(400, e.wavelength_min_nm - 0.01, 50), e.wavelength_max_nm + 0.01
        ]
        assert np.all(e.sensitivity(outside) == 0), det


def test_the_grism_zeroth_order_has_no_public_geometry(instrument):
    e = instrument.element("WFI01", "G150_0")
    assert not e.has_geometry
    with pytest.raises(InstrumentModelError, match="no public trace"):
        e.wavelength_nm(0.0)


def _assert_one_line_naming(error, path, words):
    text = str(error.value)
    assert "\n" not in text and str(path) in text and words in text


def test_a_corrupt_file_gives_a_one_line_error_naming_the_file(tmp_path):
    bad = tmp_path / "instrument.yaml"
    bad.write_text("format: [unclosed\n  detectors: {")
    with pytest.raises(InstrumentModelError) as error:
        load_instrument(bad)
    _assert_one_line_naming(error, bad, "not a readable YAML file")


def test_a_missing_file_gives_a_one_line_error_naming_the_file(tmp_path):
    with pytest.raises(InstrumentModelError) as error:
        load_instrument(tmp_path / "absent.yaml")
    _assert_one_line_naming(error, tmp_path / "absent.yaml", "not found")


def test_a_file_missing_a_detector_names_the_detector(tmp_path):
    tree = yaml.safe_load(shipped_model_path().read_text())
    del tree["detectors"]["WFI07"]
    bad = tmp_path / "instrument.yaml"
    bad.write_text(yaml.safe_dump(tree))
    with pytest.raises(InstrumentModelError) as error:
        load_instrument(bad)
    _assert_one_line_naming(error, bad, "WFI07")


def test_a_negative_effective_area_is_rejected(tmp_path):
    tree = yaml.safe_load(shipped_model_path().read_text())
    tree["detectors"]["WFI03"]["effective_area"]["P127"][10] = -1.0
    bad = tmp_path / "instrument.yaml"
    bad.write_text(yaml.safe_dump(tree))
    with pytest.raises(InstrumentModelError) as error:
        load_instrument(bad)
    _assert_one_line_naming(error, bad, "detectors.WFI03.effective_area")


def _same(a, b, where="") -> None:
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            _same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), where
    else:
        assert a == b, where


def test_the_builder_reproduces_the_shipped_file(tmp_path):
    # the dev environment has the build extra (pysiaf, roman-technical-information): a
    # missing one is a broken environment, to fail on, not to skip
    from gdps.instrument.build import write_model

    rebuilt = write_model(tmp_path / "instrument.yaml")
    _same(yaml.safe_load(rebuilt.read_text()), yaml.safe_load(shipped_model_path().read_text()))
