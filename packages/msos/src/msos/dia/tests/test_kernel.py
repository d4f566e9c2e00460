"""The DIA kernel, specified on synthetic pairs (see conftest): an epoch that *is* the
reference convolved with a spatially varying kernel (sub-pixel shift, width change, scale,
background) must subtract to pure noise, and the kernel must be the injected one."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.signal import convolve2d

from msos.dia.kernel import (
    DIAError,
    KernelSolution,
    Stamps,
    StampStatus,
    apply_kernel,
    background_at,
    choose_stamps,
    kernel_at,
    photometric_scale,
    photometric_scale_error,
    polynomial_terms,
    solve_kernel,
    stamps_at,
)
from msos.dia.tests.synthetic import (
    KERNEL_SIZE,
    SHAPE,
    make_pair,
    render,
    true_background,
    true_kernel,
    true_scale,
)

H = KERNEL_SIZE // 2
GRID = 8  # 64 stamps of 19 pix on 256 × 256
POSITIONS = np.array([(20, 20), (128, 128), (236, 30), (30, 236), (236, 236), (60, 180)], float)


def stamps_for(pair, **kwargs):
    return choose_stamps(
        pair.reference, reference_variance=pair.reference_variance, grid=GRID, **kwargs
    )


def solve(pair, stamps=None, **kwargs):
    return solve_kernel(
        pair.reference,
        pair.epoch,
        pair.epoch_variance,
        stamps_for(pair) if stamps is None else stamps,
        reference_variance=pair.reference_variance,
        **kwargs,
    )


def difference(solution, pair, **kwargs):
    return apply_kernel(
        solution,
        pair.reference,
        pair.epoch,
        pair.epoch_variance,
        reference_variance=pair.reference_variance,
        **kwargs,
    )


@pytest.fixture(scope="module")
def solution(pair) -> KernelSolution:
    return solve(pair)


@pytest.fixture(scope="module")
def diff(solution, pair):
    return difference(solution, pair)


# --- a matching epoch -----------------------------------------------------------------------


def test_a_matching_epoch_subtracts_to_noise_of_the_stated_variance(solution, diff):
    good = ~diff.bad
    chi2 = diff.data[good].astype(float) ** 2 / diff.variance[good]
    assert good.sum() > 0.9 * SHAPE[0] * SHAPE[1]
    assert chi2.mean() == pytest.approx(1.0, abs=0.05)
    assert np.mean(diff.data[good] / np.sqrt(diff.variance[good])) == pytest.approx(0.0, abs=0.02)
    assert solution.chi2_per_dof == pytest.approx(1.0, abs=0.05)
    assert solution.n_stamps_used >= 0.9 * len(solution.stamp_x)


def test_the_reference_noise_is_in_the_variance(solution, pair, diff):
    """var_D = var_I + var_R ⊗ K²: leaving out the reference term underestimates it."""
    without = apply_kernel(solution, pair.reference, pair.epoch, pair.epoch_variance)
    good = ~diff.bad
    np.testing.assert_array_equal(without.data[good], diff.data[good])
    chi2_with = np.mean(diff.data[good].astype(float) ** 2 / diff.variance[good])
    chi2_without = np.mean(without.data[good].astype(float) ** 2 / without.variance[good])
    assert chi2_without - chi2_with > 0.015  # 6 × the statistical error of either mean
    assert abs(chi2_with - 1) < abs(chi2_without - 1)


def test_the_kernel_sum_is_the_injected_photometric_scale(solution):
    x, y = POSITIONS.T
    scale, error = photometric_scale(solution, x, y), photometric_scale_error(solution, x, y)
    assert np.all(error < 0.005)
    assert np.all(np.abs(scale - true_scale(x, y)) < 4 * error)
    sums = kernel_at(solution, x, y).sum(axis=(-2, -1))
    np.testing.assert_allclose(sums, scale, rtol=1e-12)


def test_the_kernel_and_background_are_the_injected_ones(solution):
    x, y = POSITIONS.T
    kernels = kernel_at(solution, x, y)
    assert kernels.shape == (len(x), KERNEL_SIZE, KERNEL_SIZE)
    np.testing.assert_allclose(kernels, true_kernel(x, y), atol=0.02)
    # the sub-pixel centroid, which carries the shift, to a few hundredths of a pixel
    offsets = np.arange(KERNEL_SIZE) - H
    for got, want in zip(kernels, true_kernel(x, y), strict=True):
        for axis in (0, 1):
            centroid = lambda k, axis=axis: (k.sum(axis=1 - axis) * offsets).sum() / k.sum()  # noqa: E731
            assert centroid(got) == pytest.approx(centroid(want), abs=0.03)
    np.testing.assert_allclose(background_at(solution, x, y), true_background(x, y), atol=3.0)


def test_a_small_image_gets_as_many_stamp_cells_as_fit():
    rng = np.random.default_rng(4)
    reference = (100 + rng.exponential(300, (96, 96))).astype(np.float32)
    stamps = choose_stamps(reference, grid=12, size=19)  # 12 cells of 19 px do not fit in 96
    assert 1 <= len(stamps.x) <= 16  # 4 × 4 cells
    half = stamps.size // 2
    xs, ys = np.asarray(stamps.x), np.asarray(stamps.y)
    for a in range(len(xs)):  # whole stamps, none overlapping
        assert half <= xs[a] <= 95 - half and half <= ys[a] <= 95 - half
        for b in range(a):
            assert abs(xs[a] - xs[b]) >= stamps.size or abs(ys[a] - ys[b]) >= stamps.size


def test_the_kernel_is_a_convolution_kernel():
    """K[h, h + 1] moves light by +1 pixel in x, K[h + 1, h] by +1 in y."""
    rng = np.random.default_rng(3)
    reference = (100 + rng.exponential(300, (96, 96))).astype(np.float32)
    variance = np.ones_like(reference)
    stamps = choose_stamps(reference, grid=4)
    for (dy, dx), index in (((0, 1), (H, H + 1)), ((1, 0), (H + 1, H))):
        epoch = np.roll(reference, (dy, dx), axis=(0, 1))
        solution = solve_kernel(
            reference, epoch, variance, stamps, kernel_order=0, background_order=0, min_stamps=4
        )
        kernel = kernel_at(solution, 48, 48)
        expected = np.zeros_like(kernel)
        expected[index] = 1.0
        np.testing.assert_allclose(kernel, expected, atol=1e-4)


# --- photometry on the difference -----------------------------------------------------------


def test_a_brightened_star_appears_with_the_scaled_flux_and_the_convolved_psf():
    x0, y0, delta = 101.3, 150.6, 20000.0
    pair = make_pair(extra_epoch_stars=[(x0, y0, delta)])
    solution = solve(pair)
    diff = difference(solution, pair)
    scale = float(photometric_scale(solution, x0, y0))
    # PSF of D: the reference PSF (rendered at the star) ⊗ K(x0, y0), on a 25-pixel box
    box = np.s_[int(y0) - 12 : int(y0) + 13, int(x0) - 12 : int(x0) + 13]
    psf_reference = render(SHAPE, np.array([x0]), np.array([y0]), np.array([1.0]))
    psf_difference = convolve2d(psf_reference, kernel_at(solution, x0, y0), mode="same")[box]
    data, variance = diff.data[box].astype(float), diff.variance[box].astype(float)
    assert not diff.bad[box].any()
    # total flux in D: ΔF × P, to within its noise
    assert data.sum() == pytest.approx(delta * scale, abs=4 * np.sqrt(variance.sum()))
    # PSF fit with PSF_R ⊗ K gives ΔF in the reference's unit, and leaves noise
    weight = 1 / variance
    amplitude = (psf_difference * data * weight).sum() / (psf_difference**2 * weight).sum()
    error = 1 / np.sqrt((psf_difference**2 * weight).sum())
    assert amplitude == pytest.approx(delta, abs=4 * error)
    assert error < 0.01 * delta
    residual = data - amplitude * psf_difference
    assert np.mean(residual**2 * weight) == pytest.approx(1.0, abs=0.35)


# --- outliers -------------------------------------------------------------------------------


def test_clipping_keeps_cosmic_rays_and_a_variable_star_out_of_the_fit(pair):
    stamps = stamps_for(pair)
    # a star that brightened by 3e5 at the centre of stamp 10, cosmic rays in stamps 20–27
    varied = make_pair(extra_epoch_stars=[(stamps.x[10] + 0.2, stamps.y[10] - 0.3, 3e5)])
    epoch = varied.epoch.copy()
    for s in range(20, 28):
        epoch[stamps.y[s] + 2, stamps.x[s] - 3] += 5e4
    varied = dataclasses.replace(varied, epoch=epoch)
    clipped = solve(varied, stamps)
    stamps_only = solve(varied, stamps, clip_sigma=np.inf)
    naive = solve(varied, stamps, clip_sigma=np.inf, stamp_clip_sigma=np.inf)
    x, y = POSITIONS.T
    error = photometric_scale_error(clipped, x, y)
    # pixel clipping removes the cosmic rays and the variable star's core; the stamps stay
    assert np.all(clipped.stamp_status == StampStatus.USED)
    assert clipped.n_pixels_clipped >= 8 + 9
    assert clipped.chi2_per_dof == pytest.approx(1.0, abs=0.05)
    assert np.all(np.abs(photometric_scale(clipped, x, y) - true_scale(x, y)) < 4 * error)
    # stamp clipping alone rejects the stamps themselves, just as well
    rejected = np.flatnonzero(stamps_only.stamp_status == StampStatus.CLIPPED)
    assert {10, *range(20, 28)} <= set(rejected) and len(rejected) <= 9 + 2
    assert np.all(np.abs(photometric_scale(stamps_only, x, y) - true_scale(x, y)) < 4 * error)
    # without clipping the same data bias the scale far beyond its error
    assert np.max(np.abs(photometric_scale(naive, x, y) - true_scale(x, y)) / error) > 10
    assert naive.chi2_per_dof > 100


# --- bad pixels -----------------------------------------------------------------------------


def test_bad_and_nan_pixels_stay_inside_the_kernel_footprint_and_are_flagged(solution, pair, diff):
    reference, epoch = pair.reference.copy(), pair.epoch.copy()
    reference_bad = np.zeros(SHAPE, bool)
    epoch_bad = np.zeros(SHAPE, bool)
    reference[40, 50] = np.nan
    reference_bad[200, 60] = True
    reference[200, 60] = 1e30  # a bad pixel's value must not reach anything
    epoch[120, 130] = np.nan
    epoch_bad[90, 210] = True
    epoch[90, 210] = -1e30
    got = apply_kernel(
        solution,
        reference,
        epoch,
        pair.epoch_variance,
        reference_bad=reference_bad,
        epoch_bad=epoch_bad,
        reference_variance=pair.reference_variance,
    )
    expected = np.zeros(SHAPE, bool)
    expected[:H] = expected[-H:] = True
    expected[:, :H] = expected[:, -H:] = True
    expected[40 - H : 40 + H + 1, 50 - H : 50 + H + 1] = True
    expected[200 - H : 200 + H + 1, 60 - H : 60 + H + 1] = True
    expected[120, 130] = expected[90, 210] = True
    np.testing.assert_array_equal(got.bad, expected)
    assert np.all(np.isnan(got.data[expected])) and np.all(np.isnan(got.variance[expected]))
    np.testing.assert_array_equal(got.data[~expected], diff.data[~expected])
    np.testing.assert_array_equal(got.variance[~expected], diff.variance[~expected])


def test_the_solver_skips_bad_pixels_in_stamps(pair):
    stamps = stamps_for(pair)
    reference, epoch = pair.reference.copy(), pair.epoch.copy()
    for s in range(0, len(stamps), 3):  # a NaN in every third stamp of each image
        reference[stamps.y[s], stamps.x[s]] = np.nan
        epoch[stamps.y[s] + 1, stamps.x[s] - 2] = np.nan
    damaged = dataclasses.replace(pair, reference=reference, epoch=epoch)
    solution = solve(damaged, stamps)
    assert solution.chi2_per_dof == pytest.approx(1.0, abs=0.05)
    x, y = POSITIONS.T
    error = photometric_scale_error(solution, x, y)
    assert np.all(np.abs(photometric_scale(solution, x, y) - true_scale(x, y)) < 4 * error)


# --- hopeless epochs ------------------------------------------------------------------------


def test_an_all_nan_epoch_is_rejected(pair):
    nan = dataclasses.replace(pair, epoch=np.full(SHAPE, np.nan, np.float32))
    with pytest.raises(DIAError, match="usable"):
        solve(nan)


def test_an_epoch_bad_almost_everywhere_is_rejected(pair):
    bad = np.ones(SHAPE, bool)
    bad[:60, :60] = False  # a corner with a handful of stamps is not enough for order 2
    with pytest.raises(DIAError, match="usable"):
        solve(pair, epoch_bad=bad)


def test_too_few_stamps_are_rejected(pair):
    few = stamps_at([60, 120, 180], [60, 120, 180], SHAPE)
    with pytest.raises(DIAError):
        solve(pair, few)


def test_a_misregistered_epoch_is_rejected_by_clipping_or_its_chi2_limit(pair):
    shifted = dataclasses.replace(pair, epoch=np.roll(pair.epoch, (5, -6), axis=(0, 1)))
    with pytest.raises(DIAError):
        solve(shifted, max_chi2_per_dof=3.0)


# --- stamps ---------------------------------------------------------------------------------


def test_stamps_avoid_bad_and_saturated_pixels_and_never_overlap(pair):
    reference = pair.reference.copy()
    bad = np.zeros(SHAPE, bool)
    bad[:, 100] = True  # a bad column
    saturation = np.sort(reference.ravel())[-12]  # the cores of a few bright stars
    stamps = choose_stamps(
        reference,
        bad,
        reference_variance=pair.reference_variance,
        saturation=saturation,
        grid=GRID,
        max_bad_fraction=0.0,
    )
    assert len(stamps) >= 0.75 * GRID * GRID
    half = stamps.size // 2
    reach = half + H
    saturated = reference >= saturation
    for x, y in zip(stamps.x, stamps.y, strict=True):
        assert reach <= x < SHAPE[1] - reach and reach <= y < SHAPE[0] - reach
        window = np.s_[y - reach : y + reach + 1, x - reach : x + reach + 1]
        assert not bad[window].any()
        assert not saturated[y - reach - 2 : y + reach + 3, x - reach - 2 : x + reach + 3].any()
    dx = np.abs(stamps.x[:, None] - stamps.x[None, :])
    dy = np.abs(stamps.y[:, None] - stamps.y[None, :])
    overlap = (dx < stamps.size) & (dy < stamps.size)
    assert np.count_nonzero(overlap) == len(stamps)  # only each with itself


def test_stamps_at_positions_drop_the_edge_and_overlaps():
    stamps = stamps_at([5.0, 50.2, 55.0, 120.6, 250.0], [50.0, 50.4, 52.0, 80.4, 128.0], SHAPE)
    assert list(stamps.x) == [50, 121] and list(stamps.y) == [50, 80]
    with pytest.raises(ValueError):
        Stamps(x=[1], y=[1], size=10)


# --- the solution as data -------------------------------------------------------------------


def test_the_solution_is_plain_data_and_round_trips(solution, pair, diff):
    fields = dataclasses.asdict(solution)
    for name, value in fields.items():
        assert isinstance(value, (int, float, tuple, np.ndarray)), name
    rebuilt = KernelSolution(
        **{k: (np.array(v) if isinstance(v, np.ndarray) else v) for k, v in fields.items()}
    )
    np.testing.assert_array_equal(difference(rebuilt, pair).data, diff.data)
    n_terms = len(polynomial_terms(2)[0])
    assert solution.kernel_coefficients.shape == (KERNEL_SIZE, KERNEL_SIZE, n_terms)
    assert solution.n_parameters == n_terms + (KERNEL_SIZE**2 - 1) * n_terms + 3


def test_the_flux_constraint_leaves_a_matching_epoch_unbiased(pair):
    solution = solve(pair, flux_weight=10.0)
    x, y = POSITIONS.T
    error = photometric_scale_error(solution, x, y)
    assert np.all(np.abs(photometric_scale(solution, x, y) - true_scale(x, y)) < 4 * error)
    assert solution.chi2_per_dof == pytest.approx(1.0, abs=0.05)


# --- the whole-image pass against a direct evaluation ---------------------------------------


def test_apply_evaluates_the_kernel_at_every_pixel():
    rng = np.random.default_rng(5)
    ny, nx, k = 40, 52, 5
    h = k // 2
    reference = rng.normal(100, 20, (ny, nx)).astype(np.float32)
    reference_variance = rng.uniform(1, 4, (ny, nx)).astype(np.float32)
    epoch = rng.normal(100, 20, (ny, nx)).astype(np.float32)
    epoch_variance = rng.uniform(1, 4, (ny, nx)).astype(np.float32)
    solution = KernelSolution(
        shape=(ny, nx),
        kernel_size=k,
        kernel_order=2,
        scale_order=2,
        background_order=2,
        x_offset=(nx - 1) / 2,
        x_scale=(nx - 1) / 2,
        y_offset=(ny - 1) / 2,
        y_scale=(ny - 1) / 2,
        kernel_coefficients=rng.normal(0, 0.1, (k, k, 6)),
        background_coefficients=rng.normal(0, 1, 6),
        scale_covariance=np.eye(6),
        chi2_per_dof=1.0,
        n_pixels=0,
        n_pixels_clipped=0,
        n_parameters=0,
        n_iterations=0,
        stamp_x=np.zeros(0, np.int64),
        stamp_y=np.zeros(0, np.int64),
    )
    got = apply_kernel(
        solution, reference, epoch, epoch_variance, reference_variance=reference_variance
    )
    model = np.zeros((ny, nx))
    model_variance = np.zeros((ny, nx))
    for j in range(h, ny - h):
        for i in range(h, nx - h):
            kernel = kernel_at(solution, i, j)
            patch = reference[j - h : j + h + 1, i - h : i + h + 1][::-1, ::-1]
            vpatch = reference_variance[j - h : j + h + 1, i - h : i + h + 1][::-1, ::-1]
            model[j, i] = (kernel * patch).sum() + background_at(solution, i, j)
            model_variance[j, i] = (kernel**2 * vpatch).sum()
    inner = np.s_[h:-h, h:-h]
    np.testing.assert_allclose(got.data[inner], (epoch - model)[inner], rtol=0, atol=2e-3)
    np.testing.assert_allclose(
        got.variance[inner], (epoch_variance + model_variance)[inner], rtol=1e-5
    )
    assert got.bad.sum() == ny * nx - (ny - 2 * h) * (nx - 2 * h)


def test_regularisation_pulls_the_shape_toward_a_scaled_delta(pair, solution):
    light = solve(pair, regularisation=1e-8)
    x, y = POSITIONS.T
    np.testing.assert_allclose(kernel_at(light, x, y), kernel_at(solution, x, y), atol=1e-3)
    heavy = solve(pair, regularisation=1e4, clip_sigma=np.inf, stamp_clip_sigma=np.inf)
    kernels = kernel_at(heavy, x, y)
    off_centre = kernels.copy()
    off_centre[:, H, H] = 0
    assert np.abs(off_centre).max() < 0.01 * np.abs(kernels[:, H, H]).min()
