"""A phase-matched reference subtracts undersampled stars to the noise; a shifting kernel
cannot (the reason it exists)."""

from __future__ import annotations

import numpy as np
import pytest

from msos.dia.kernel import apply_kernel, choose_stamps, solve_kernel
from msos.dia.phase import SceneModel, phase_matched_reference, superres_reference
from msos.psf.model import EPSFGrid, gaussian_epsf, render_stars
from msos.reference.superres import frame_weights, reconstruct

SHAPE = (160, 160)
SHIFT = (0.41, -0.27)


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(3)
    n = 500
    x, y = rng.uniform(-3, SHAPE[1] + 3, n), rng.uniform(-3, SHAPE[0] + 3, n)
    flux = 10 ** rng.uniform(1, 4.3, n)
    epsf = EPSFGrid(gaussian_epsf(1.25, oversampling=4, half_width_pix=6), oversampling=4)
    sky = 5.0
    ref_true = render_stars(SHAPE, x, y, flux, epsf) + sky
    epoch_true = render_stars(SHAPE, x + SHIFT[0], y + SHIFT[1], flux, epsf) + sky
    ref_var = (ref_true / 50).astype("float32")  # a deep stack: 50 epochs
    epoch_var = epoch_true.astype("float32")
    reference = (ref_true + rng.normal(0, np.sqrt(ref_var))).astype("float32")
    epoch = (epoch_true + rng.normal(0, np.sqrt(epoch_var))).astype("float32")
    return dict(x=x, y=y, flux=flux, epsf=epsf, reference=reference, ref_var=ref_var,
                epoch=epoch, epoch_var=epoch_var)  # fmt: skip


def _bright_chi2(difference, s) -> float:
    inside = (s["x"] > 8) & (s["x"] < SHAPE[1] - 8) & (s["y"] > 8) & (s["y"] < SHAPE[0] - 8)
    bright = inside & (s["flux"] > 3000)
    chi = []
    for xi, yi in zip(s["x"][bright] + SHIFT[0], s["y"][bright] + SHIFT[1], strict=True):
        i, j = round(xi), round(yi)
        cut = (slice(j - 2, j + 3), slice(i - 2, i + 3))
        chi.append(np.nanmean(difference.data[cut] ** 2 / difference.variance[cut]))
    return float(np.median(chi))


def _difference(reference, variance, bad, s):
    stamps = choose_stamps(reference, bad, grid=6, size=19)
    solution = solve_kernel(
        reference, s["epoch"], s["epoch_var"], stamps, reference_bad=bad,
        reference_variance=variance, kernel_order=1, background_order=0,
    )  # fmt: skip
    return apply_kernel(solution, reference, s["epoch"], s["epoch_var"], reference_bad=bad,
                        reference_variance=variance)  # fmt: skip


def test_a_phase_matched_reference_subtracts_bright_stars_to_the_noise(scene):
    s = scene
    model = SceneModel.render(SHAPE, s["x"], s["y"], s["flux"], s["epsf"])
    bad = np.zeros(SHAPE, dtype=bool)
    image, variance, bad_e = phase_matched_reference(
        s["reference"], s["ref_var"], bad, model, SHIFT
    )
    assert _bright_chi2(_difference(image, variance, bad_e, s), s) < 1.5


def test_a_kernel_alone_cannot_absorb_a_sub_pixel_shift_of_an_undersampled_psf(scene):
    s = scene
    bad = np.zeros(SHAPE, dtype=bool)
    assert _bright_chi2(_difference(s["reference"], s["ref_var"], bad, s), s) > 5


def test_bad_reference_pixels_stay_bad_and_local(scene):
    s = scene
    model = SceneModel.render(SHAPE, s["x"], s["y"], s["flux"], s["epsf"])
    bad = np.zeros(SHAPE, dtype=bool)
    bad[80, 80] = True
    reference = s["reference"].copy()
    reference[80, 80] = np.nan
    image, _, bad_e = phase_matched_reference(reference, s["ref_var"], bad, model, SHIFT)
    assert bad_e[80, 80] or bad_e[79, 80] or bad_e[80, 79]
    interior = bad_e[4:-4, 4:-4]
    assert 1 <= interior.sum() <= 16  # around the bad pixel only (edges shift in empty)
    assert np.isfinite(image[~bad_e]).all() and np.isnan(image[bad_e]).all()


@pytest.fixture(scope="module")
def super_resolved(scene):
    """The scene's field super-resolved from 16 dithered epochs (none at the test's phase)."""
    s = scene
    rng = np.random.default_rng(4)
    frames = []
    for _ in range(16):
        shift = tuple(rng.uniform(-0.5, 0.5, 2))
        truth = render_stars(SHAPE, s["x"] + shift[0], s["y"] + shift[1], s["flux"], s["epsf"])
        var = truth + 5.0
        data = truth + rng.normal(0, np.sqrt(var))
        frames.append((data, frame_weights(var, np.zeros(SHAPE, bool)), shift))
    return reconstruct(frames)


def test_a_super_resolved_reference_subtracts_bright_stars_to_the_noise(scene, super_resolved):
    s = scene
    bad = np.zeros(SHAPE, dtype=bool)
    # the stack's variance stands for the reference's: 16 epochs instead of 50
    variance = (s["ref_var"] * 50 / 16).astype("float32")
    image, variance, bad_e = superres_reference(super_resolved, variance, bad, SHIFT)
    assert _bright_chi2(_difference(np.nan_to_num(image), variance, bad_e, s), s) < 1.5


def test_a_super_resolved_reference_keeps_bad_pixels_and_the_edges_it_cannot_see(
    scene, super_resolved
):
    s = scene
    bad = np.zeros(SHAPE, dtype=bool)
    bad[80, 80] = True
    image, _, bad_e = superres_reference(super_resolved, s["ref_var"], bad, (2.4, -1.3))
    assert bad_e[81, 82] or bad_e[79, 82] or bad_e[78, 82]  # the pixel, moved with the epoch
    assert 1 <= bad_e[8:-8, 8:-8].sum() <= 16
    assert bad_e[:, :3].all() and bad_e[-2:].all()  # what the frame never saw
    assert np.isfinite(image[~bad_e]).all() and np.isnan(image[bad_e]).all()


def test_a_tiled_scene_matches_the_exact_render_of_a_varying_epsf():
    rng = np.random.default_rng(5)
    shape = (512, 512)
    n = 2000
    x, y = rng.uniform(0, 512, (2, n))
    flux = 10 ** rng.uniform(0, 3, n)
    # a few per cent of width change across the grid, as across a Roman detector
    stamps = [gaussian_epsf(w, 4, half_width_pix=6) for w in (1.25, 1.26, 1.27, 1.28)]
    epsf = EPSFGrid(np.array(stamps), [0, 511, 0, 511], [0, 0, 511, 511], 4)
    scene = SceneModel.render(shape, x, y, flux, epsf)
    assert len(scene.tiles) > 4  # tiles of at most a quarter of the node spacing
    exact = render_stars(shape, x, y, flux, epsf)

    # a tile reaches 1/8 of the node spacing from its centre along each axis: its stars'
    # ePSF is within 1/4 of the change from the first node to the last
    def unit(stamp):
        single = EPSFGrid(stamp, oversampling=4)
        return render_stars((41, 41), [20.3], [20.1], [1.0], single)

    change = np.abs(unit(stamps[0]) - unit(stamps[-1])).max() * flux.max()
    assert np.abs(scene.model - exact).max() <= 0.25 * change
    moved = scene.rendered_at(shape, SHIFT)
    exact_moved = render_stars(shape, x + SHIFT[0], y + SHIFT[1], flux, epsf)
    assert np.abs(moved - exact_moved).max() <= 0.25 * change
