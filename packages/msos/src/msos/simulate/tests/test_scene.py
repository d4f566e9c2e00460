"""The crowded bulge scene: luminosity function, positions, and how its stars are rendered
(``msos.psf.model``, the pipeline's ePSF model of the truth ePSF)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from msos.psf.model import EPSFGrid, render_stars
from msos.simulate.instrument import DETECTOR_PIXELS
from msos.simulate.psf import PSFModel
from msos.simulate.scene import (
    STARS_PER_ARCMIN2,
    WING_TOLERANCE_DN_S,
    area_arcmin2,
    draw_magnitudes,
    draw_star_field,
)


def _reference_render(shape, x0, y0, flux, psf):
    """The README's convention, spelled out independently of ``msos.psf.model``: the stamps
    blended bilinearly between grid nodes (clamped outside the grid), then the interpolating
    cubic B-spline of the zero-extended stamp (scipy) at ``(c + (j - y0)·O, c + (i - x0)·O)``."""
    xs, ys = np.unique(psf.x_pix), np.unique(psf.y_pix)
    stamps = psf.stamps.astype(np.float64).reshape(len(ys), len(xs), *psf.stamps.shape[1:])
    stamps *= psf.oversampling**2 / stamps.sum(axis=(2, 3), keepdims=True)
    fx = np.clip(np.interp(x0, xs, np.arange(len(xs))), 0, len(xs) - 1)
    fy = np.clip(np.interp(y0, ys, np.arange(len(ys))), 0, len(ys) - 1)
    jx, jy = min(int(fx), len(xs) - 2), min(int(fy), len(ys) - 2)
    wx, wy = fx - jx, fy - jy
    stamp = (
        (1 - wy) * (1 - wx) * stamps[jy, jx]
        + (1 - wy) * wx * stamps[jy, jx + 1]
        + wy * (1 - wx) * stamps[jy + 1, jx]
        + wy * wx * stamps[jy + 1, jx + 1]
    )
    o, pad = psf.oversampling, 40
    c = (stamp.shape[0] - 1) / 2 + pad
    jj, ii = np.mgrid[0 : shape[0], 0 : shape[1]]
    rows, cols = c + (jj - y0) * o, c + (ii - x0) * o
    inside = (rows > -1) & (rows < stamp.shape[0] + 2 * pad) & (cols > -1)
    inside &= cols < stamp.shape[1] + 2 * pad
    values = ndimage.map_coordinates(
        np.pad(stamp, pad), [rows, cols], order=3, mode="grid-constant", prefilter=True
    )
    return flux * np.where(inside, values, 0.0)


def _truth_epsf(psf):
    return EPSFGrid.from_gridded_psf(psf, normalize=True)


def test_stars_are_rendered_exactly_in_the_gridded_psf_convention():
    """As the simulator renders them: ``msos.psf.model`` with its wing tolerance."""
    shape = (48, 56)
    psf = PSFModel(grid_points=3, width_gradient=(0.3, -0.2)).gridded(shape)
    # interior, between grid nodes, on a node, partly off the image, outside the grid
    stars = [(20.37, 17.81, 100.0), (27.5, 23.5, 50.0), (2.2, 40.9, 80.0), (-3.6, -2.1, 60.0)]
    for x0, y0, flux in stars:
        image = render_stars(
            shape, [x0], [y0], [flux], _truth_epsf(psf), wing_tolerance=WING_TOLERANCE_DN_S
        )
        expected = _reference_render(shape, x0, y0, flux, psf)
        np.testing.assert_allclose(image, expected, atol=2e-5 * flux)


def test_the_wings_left_out_hold_at_most_the_tolerance():
    shape = (96, 96)
    epsf = _truth_epsf(PSFModel(grid_points=3).gridded(shape))
    rng = np.random.default_rng(5)
    radii = []
    for flux in (2.3, 10.0, 100.0, 3000.0, 25000.0):  # the faintest to the brightest
        for x0, y0 in rng.uniform(40, 56, (6, 2)):
            whole = render_stars(shape, [x0], [y0], [flux], epsf, out=np.zeros(shape))
            cut = render_stars(
                shape, [x0], [y0], [flux], epsf, out=np.zeros(shape),
                wing_tolerance=WING_TOLERANCE_DN_S,
            )  # fmt: skip
            assert np.abs(whole - cut).sum() <= WING_TOLERANCE_DN_S
            assert whole.sum() == pytest.approx(flux, rel=2e-3)  # phase sums of the stamp: 1 ± 2e-3
        radii.append(epsf.footprint_radii(np.array([flux]), WING_TOLERANCE_DN_S)[0])
    assert radii == sorted(radii) and radii[-1] == epsf.render_radius()


def test_a_star_puts_its_flux_into_the_image():
    epsf = _truth_epsf(PSFModel().gridded((64, 64)))
    rng = np.random.default_rng(3)
    for x0, y0 in rng.uniform(20, 44, (5, 2)):
        image = render_stars(
            (64, 64), [x0], [y0], [1000.0], epsf, wing_tolerance=WING_TOLERANCE_DN_S
        )
        assert image.sum() == pytest.approx(1000.0, rel=2e-3)
        assert np.unravel_index(np.argmax(image), image.shape) == (round(y0), round(x0))
    # a star beyond the edge puts only part of its light in
    edge = render_stars(
        (64, 64), [-0.8], [30.0], [1000.0], epsf, wing_tolerance=WING_TOLERANCE_DN_S
    )
    assert 50 < edge.sum() < 500


def test_the_luminosity_function_rises_steeply_to_faint_magnitudes():
    mag = draw_magnitudes(np.random.default_rng(1), 200_000)
    assert mag.min() >= 16.0 and mag.max() <= 26.0
    counts, _ = np.histogram(mag, bins=np.arange(16, 27))
    assert counts[-1] > 4 * counts[4] > 4 * counts[2]  # 25–26 ≫ 20–21 > 18–19
    assert np.all(np.diff(counts[2:]) > 0)  # rising beyond the red clump
    fine, _ = np.histogram(mag, bins=[16.6, 17.0, 17.4, 17.8])
    assert fine[0] > fine[2]  # the red-clump bump at 16.8


def test_the_default_density_gives_about_a_million_stars_per_detector():
    full = STARS_PER_ARCMIN2 * area_arcmin2(DETECTOR_PIXELS, DETECTOR_PIXELS)
    assert 0.8e6 < full < 1.3e6
    field = draw_star_field(np.random.default_rng(2), (200, 300), margin=16.0)
    expected = STARS_PER_ARCMIN2 * area_arcmin2(300 + 32, 200 + 32)
    assert abs(len(field) - expected) < 5 * np.sqrt(expected)
    # sorted by (y, x), some centres beyond the edges
    assert np.all(np.diff(field.y) >= 0)
    assert (field.x < -0.5).any() and (field.y > 199.5).any()
