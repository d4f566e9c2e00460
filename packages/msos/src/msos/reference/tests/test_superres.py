"""The super-resolved frame predicts an undersampled scene at sub-pixel phases no exposure
had, which interpolating one exposure cannot."""

import numpy as np
import pytest
from scipy import ndimage
from scipy.special import erf

from msos.reference.superres import (
    Tiling,
    best_blur,
    fit_blurs,
    frame_weights,
    predict,
    reconstruct,
    reconstruct_tiled,
)

SIZE = 64
SIGMA = 0.55  # FWHM 1.3 pix: undersampled


def _render(x, y, f, shift, sigma=SIGMA):
    """Stars of a Gaussian PSF integrated over the pixels, seen offset by ``shift``."""
    u = np.arange(SIZE) + 0.5
    image = np.zeros((SIZE, SIZE))
    s = np.sqrt(2) * sigma
    for xi, yi, fi in zip(x + shift[0], y + shift[1], f, strict=True):
        gx = 0.5 * (erf((u - xi) / s) - erf((u - 1 - xi) / s))
        gy = 0.5 * (erf((u - yi) / s) - erf((u - 1 - yi) / s))
        image += fi * np.outer(gy, gx)
    return image


@pytest.fixture(scope="module")
def dithered():
    rng = np.random.default_rng(2)
    x, y = rng.uniform(6, SIZE - 7, (2, 40))
    f = rng.uniform(1e3, 3e4, 40)
    frames = []
    for k in range(24):
        shift = (0.0, 0.0) if k == 0 else tuple(rng.uniform(-0.5, 0.5, 2))
        truth = _render(x, y, f, shift)
        var = 25.0 + truth
        data = truth + rng.normal(size=truth.shape) * np.sqrt(var)
        frames.append((data, frame_weights(var, np.zeros(var.shape, bool)), shift))
    return x, y, f, frames


def test_a_new_phase_is_predicted_to_within_the_noise(dithered):
    x, y, f, frames = dithered
    image = reconstruct(frames, iterations=80)
    inner = (slice(4, SIZE - 4), slice(4, SIZE - 4))
    for shift in ((0.5, 0.5), (-0.37, 0.21)):
        truth = _render(x, y, f, shift)
        sigma = np.sqrt(25.0 + truth)
        ours = ((image.at(shift) - truth) / sigma)[inner]
        # one exposure moved by cubic interpolation: the undersampled PSF does not survive
        cubic = ndimage.shift(frames[0][0], (shift[1], shift[0]), order=3, mode="nearest")
        theirs = ((cubic - truth) / sigma)[inner]
        assert np.sqrt(np.mean(ours**2)) < 0.6
        assert np.sqrt(np.mean(ours**2)) < 0.2 * np.sqrt(np.mean(theirs**2))


def test_each_exposure_is_fitted_to_its_noise_and_bad_pixels_are_ignored(dithered):
    frames = dithered[3]
    frames = list(frames)
    data, weight, shift = frames[3]
    data, weight = data.copy(), weight.copy()
    data[30:33, 30:33] = 1e6  # a defect, flagged
    weight[30:33, 30:33] = 0.0
    frames[3] = (data, weight, shift)
    image = reconstruct(frames, iterations=80)
    # the frames' own noise: sky plus the (measured) source counts
    chi2 = [np.sum(((d - image.at(s)) ** 2 / (25.0 + np.clip(d, 0, None)))[w > 0]) / np.sum(w > 0)
            for d, w, s in frames]  # fmt: skip
    assert 0.6 < np.median(chi2) < 1.0  # 4 fine pixels per pixel, 24 exposures
    assert max(chi2) < 1.5
    assert np.all(np.isfinite(image.fine))


def test_frames_must_agree_in_shape():
    a = (np.zeros((8, 8)), np.ones((8, 8)), (0.0, 0.0))
    b = (np.zeros((8, 9)), np.ones((8, 9)), (0.1, 0.0))
    with pytest.raises(ValueError, match="shape"):
        reconstruct([a, b])
    with pytest.raises(ValueError, match="no frames"):
        reconstruct([])


def _jittered(seed: int, largest_blur: float):
    """Stars (x, y, flux) and 20 dithered exposures ``(data, weight, shift, blur)`` whose PSF
    variance differs by up to ``largest_blur`` pix² (the first by none)."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(6, SIZE - 7, (2, 30))
    f = rng.uniform(1e4, 3e5, 30)
    frames = []
    for k in range(20):
        shift = (0.0, 0.0) if k == 0 else tuple(rng.uniform(-0.5, 0.5, 2))
        blur = 0.0 if k == 0 else float(rng.uniform(-largest_blur, largest_blur))
        truth = _render(x, y, f, shift, np.sqrt(SIGMA**2 + blur))
        var = 25.0 + truth
        data = truth + rng.normal(size=truth.shape) * np.sqrt(var)
        frames.append((data, frame_weights(var, np.zeros(var.shape, bool)), shift, blur))
    return x, y, f, frames


def test_exposures_with_wider_or_narrower_psfs_are_modelled_with_their_blur():
    x, y, f, frames_known = _jittered(4, 0.08)
    frames_ignored = [frame[:3] for frame in frames_known]
    truth = _render(x, y, f, (0.5, -0.3))
    sigma = np.sqrt(25.0 + truth)
    inner = (slice(4, SIZE - 4), slice(4, SIZE - 4))
    errors = []
    for frames in (frames_known, frames_ignored):
        image = reconstruct(frames, iterations=150)
        errors.append(np.sqrt(np.mean((((image.at((0.5, -0.3)) - truth) / sigma)[inner]) ** 2)))
    # bright stars (S/N ~ 500) converge slowly: at 150 iterations within a noise σ, and
    # half the error of a reconstruction that takes every exposure's PSF for the same
    assert errors[0] < 1.0, errors
    assert errors[0] < 0.6 * errors[1], errors


def test_with_one_weight_per_exposure_the_preconditioner_solves_it_at_once(dithered):
    frames = dithered[3]
    image = reconstruct(frames, iterations=1, tol=0.0)
    assert image.residual < 1e-3
    # bad pixels take the CG a few iterations more
    rng = np.random.default_rng(5)
    holed = [(d, np.where(rng.random(w.shape) < 0.02, 0.0, w), s) for d, w, s in frames]
    image = reconstruct(holed, iterations=10, tol=1e-3)
    assert image.iterations <= 5, image.iterations


def test_the_compiled_prediction_is_the_reconstruction_model(dithered):
    image = reconstruct(dithered[3])
    for shift, blur in (((0.5, 0.5), 0.0), ((-2.37, 1.21), 0.04), ((0.1, -0.4), -0.03)):
        fast, outside = predict(image, shift, blur)
        exact = image.at(shift, blur)
        assert np.max(np.abs(fast - exact)[~outside]) < 1e-4 * np.max(np.abs(exact))

        # the pixels whose view (at n - shift, to a quarter pixel) is within a pixel of an edge
        def near_edge(margin, shift=shift):
            seen_x, seen_y = np.arange(SIZE) - shift[0], np.arange(SIZE) - shift[1]
            edge_y = (seen_y < 1 + margin) | (seen_y > SIZE - 2 - margin)
            edge_x = (seen_x < 1 + margin) | (seen_x > SIZE - 2 - margin)
            return edge_y[:, None] | edge_x[None, :]

        assert not (outside & ~near_edge(0.25)).any()  # nothing flagged in the interior
        assert outside[near_edge(-0.25)].all()  # everything at the edge flagged


def test_a_tiled_reconstruction_matches_the_whole_one(dithered):
    x, y, f, frames = dithered
    rng = np.random.default_rng(6)
    whole = [(int(a), int(b)) for a, b in rng.integers(-3, 4, (len(frames), 2))]
    # the same exposures, dithered by whole pixels too
    moved = []
    for (d, w, s), (ix, iy) in zip(frames, whole, strict=True):
        w = np.roll(w, (iy, ix), (0, 1))
        w[: max(iy, 0)] = w[SIZE + min(iy, 0) :] = 0.0  # what wrapped round is not seen
        w[:, : max(ix, 0)] = w[:, SIZE + min(ix, 0) :] = 0.0
        moved.append((np.roll(d, (iy, ix), (0, 1)), w, (s[0] + ix, s[1] + iy)))
    one = reconstruct(frames)
    tiled = reconstruct_tiled([m[0] for m in moved], [m[1] for m in moved],
                              [m[2] for m in moved], tiling=Tiling(tile=24, margin=12))  # fmt: skip
    truth = _render(x, y, f, (0.3, -0.2))
    sigma = np.sqrt(25.0 + truth)
    inner = (slice(6, SIZE - 6), slice(6, SIZE - 6))
    a = ((predict(one, (0.3, -0.2))[0] - truth) / sigma)[inner]
    b = ((predict(tiled, (0.3, -0.2))[0] - truth) / sigma)[inner]
    assert np.sqrt(np.mean(b**2)) < 1.1 * np.sqrt(np.mean(a**2)) + 0.02


def test_each_exposures_blur_is_recovered_from_the_data():
    frames = _jittered(7, 0.06)[3]
    true_blur = [frame[3] for frame in frames]
    frames = [frame[:3] for frame in frames]
    trials = np.linspace(-0.1, 0.1, 11)
    fitted = best_blur(fit_blurs(frames, reconstruct(frames), trials), trials)
    # against a scene that is their average: the blurs are recovered up to a common offset
    error = (fitted - np.mean(fitted)) - (np.array(true_blur) - np.mean(true_blur))
    assert np.std(error) < 0.3 * np.std(true_blur), (fitted, true_blur)
