"""The truth PSF: a Roman-like, undersampled F146 ePSF in the GriddedPSF convention."""

from __future__ import annotations

import numpy as np
import pytest

from msos.simulate.psf import PSFModel, epsf_stamp, optical_psf, stamp_fwhm


def test_the_optical_psf_is_diffraction_limited_for_a_2_36_m_telescope_in_f146():
    r = np.linspace(0.0, 3.0, 30001)
    profile = optical_psf(r)
    fwhm = 2 * r[np.argmax(profile < profile[0] / 2)]
    # ≈ λ/D at the band's photon-weighted wavelength: 0.10–0.11" = 0.9–1.0 pixel
    assert 0.9 < fwhm < 1.0
    # normalised to unit flux: ~90 % within 3 pixels, the rest in the Airy rings
    encircled = np.sum(2 * np.pi * r * profile) * (r[1] - r[0])
    assert 0.85 < encircled < 0.93


def test_the_epsf_stamp_follows_the_gridded_psf_convention():
    o, half = 4, 12
    stamp = epsf_stamp(oversampling=o, half_size=half)
    assert stamp.dtype == np.float32
    assert stamp.shape == (2 * half * o + 1,) * 2
    assert stamp.sum() == pytest.approx(o * o, rel=1e-6)
    c = (stamp.shape[0] - 1) // 2
    assert np.unravel_index(np.argmax(stamp), stamp.shape) == (c, c)
    yy, xx = np.mgrid[: stamp.shape[0], : stamp.shape[1]]
    assert np.sum(stamp * xx) / stamp.sum() == pytest.approx(c, abs=1e-4)
    assert np.sum(stamp * yy) / stamp.sum() == pytest.approx(c, abs=1e-4)
    # a star puts its whole flux in the pixels whatever its sub-pixel phase
    for py in range(o):
        for px in range(o):
            assert stamp[py::o, px::o].sum() == pytest.approx(1.0, abs=2e-3)


def test_the_epsf_is_undersampled_like_roman_f146():
    fwhm = stamp_fwhm(epsf_stamp(jitter_sigma_pix=0.10), 4)
    assert 1.2 <= fwhm <= 1.4
    # the jitter widens it a little
    assert stamp_fwhm(epsf_stamp(jitter_sigma_pix=0.14), 4) > fwhm


def test_the_psf_width_changes_by_a_few_percent_across_the_detector():
    model = PSFModel()
    grid = model.gridded((512, 512))
    assert grid.stamps.shape == (25, 97, 97)
    fwhm = np.array([stamp_fwhm(s, grid.oversampling) for s in grid.stamps])
    lower_left = fwhm[0]  # (x, y) = (0, 0): row-major, y outer
    upper_right = fwhm[-1]
    assert grid.x_pix[-1] == 511 and grid.y_pix[-1] == 511
    assert 0.02 < upper_right / lower_left - 1 < 0.08
