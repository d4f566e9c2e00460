import numpy as np
import pytest
from scipy.special import erf

from msos.reference.kernel import (
    EpochQuality,
    Stacker,
    detect_stars,
    epoch_quality,
    fit_offset,
    reference_subset,
    resample,
    resampling_noise,
    resampling_weights,
    select_epochs,
    split_shift,
    stack_epochs,
)
from roman_schemas.products.msos.flags import EpochFlag

SIGMA = 0.5  # Gaussian core σ (pix) of the test ePSF: FWHM ≈ 1.3 pix pixel-integrated


def _g1(u, s=SIGMA):
    return 0.5 * (erf((u + 0.5) / (np.sqrt(2) * s)) - erf((u - 0.5) / (np.sqrt(2) * s)))


def render(shape, x, y, flux, sky=20.0):
    """Exact pixel-integrated Gaussian stars."""
    image = np.full(shape, sky)
    r = 5
    for xi, yi, fi in zip(x, y, flux, strict=True):
        i0, i1 = max(int(xi) - r, 0), min(int(xi) + r + 1, shape[1])
        j0, j1 = max(int(yi) - r, 0), min(int(yi) + r + 1, shape[0])
        if i0 < i1 and j0 < j1:
            image[j0:j1, i0:i1] += fi * np.outer(
                _g1(np.arange(j0, j1) - yi), _g1(np.arange(i0, i1) - xi)
            )
    return image


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(5)
    size, n = 160, 500
    x = rng.uniform(-3, size + 3, n)
    y = rng.uniform(-3, size + 3, n)
    f = 10 ** rng.uniform(2.0, 4.5, n)
    return size, x, y, f, rng


def epoch(scene, shift, rng, bad_fraction=0.01, cosmic_rays=0.002):
    size, x, y, f, _ = scene
    model = render((size, size), x - shift[0], y - shift[1], f)
    var = model + 9.0
    image = model + rng.normal(size=model.shape) * np.sqrt(var)
    bad = rng.uniform(size=model.shape) < bad_fraction
    image[bad] = np.nan
    image[rng.uniform(size=model.shape) < cosmic_rays] += 5000.0
    return image.astype("float32"), bad, var.astype("float32")


def test_resampling_weights_conserve_flux_and_are_exact_at_zero():
    for kernel in ("cubic", "lanczos3", "nearest"):
        for frac in (-0.5, -0.23, 0.0, 0.1, 0.37, 0.5):
            first, w = resampling_weights(frac, kernel)
            assert w.sum() == pytest.approx(1.0)
        first, w = resampling_weights(0.0, kernel)
        assert np.count_nonzero(w) == 1 and w[-first] == 1.0
    with pytest.raises(ValueError):
        resampling_weights(0.1, "spline")
    assert split_shift(2.6) == (3, pytest.approx(-0.4))
    assert split_shift(-0.5)[0] + split_shift(-0.5)[1] == -0.5


def test_resample_moves_a_star_and_keeps_its_flux():
    x0, y0, f = 30.2, 25.7, 1e4
    image = render((60, 60), [x0], [y0], [f], sky=0.0)
    for kernel in ("cubic", "lanczos3"):
        for shift in [(0.2, -0.1), (0.3, -0.2), (2.0, -1.0), (-1.45, 0.5)]:
            out, invalid, _, _ = resample(image, shift, kernel=kernel)
            truth = render((60, 60), [x0 + shift[0]], [y0 + shift[1]], [f], sky=0.0)
            assert out[~invalid].sum() == pytest.approx(f, rel=1e-3)
            _yy, xx = np.mgrid[0:60, 0:60]
            cx = (out * xx)[~invalid].sum() / out[~invalid].sum()
            assert cx == pytest.approx(x0 + shift[0], abs=0.03)  # lanczos: ≲ 0.02
            # undersampled (FWHM 1.3 pix): the peak error grows with the fractional shift
            frac = max(abs(split_shift(s)[1]) for s in shift)
            limit = 0.15 if frac <= 0.2 else 0.35
            assert np.abs(out - truth).max() < limit * truth.max()
    # a whole-pixel shift is exact, and the pixels shifted in are invalid
    out, invalid, _, _ = resample(image, (2.0, -1.0))
    np.testing.assert_allclose(out[5:55, 5:55], np.roll(image, (-1, 2), axis=(0, 1))[5:55, 5:55])
    assert invalid[:, :2].all() and invalid[-1:, :].all()


def test_resampling_noise_factors():
    zero = resampling_noise((0.0, 0.0))
    assert zero["variance"] == 1.0 and zero["corr_x"] == 0.0
    half = resampling_noise((0.5, 0.5))
    assert half["variance"] < 0.7 and half["corr_x"] > 0.2
    assert half["aperture_factor"] == pytest.approx(1 / half["variance"])


def test_variance_is_propagated():
    rng = np.random.default_rng(3)
    noise = rng.normal(size=(400, 400)).astype("float32")
    out, invalid, var, level = resample(noise, (0.4, -0.3), variance=np.ones((400, 400)))
    inner = ~invalid
    assert np.var(out[inner]) == pytest.approx(np.median(var[inner]), rel=0.03)
    assert np.median(level[inner]) == pytest.approx(1.0, rel=1e-3)


def test_detect_stars_centroids_and_quality(scene):
    _size, x, y, _f, rng = scene
    image, bad, var = epoch(scene, (0.0, 0.0), rng)
    stars = detect_stars(image, bad, var, threshold_sigma=20)
    assert len(stars) > 80 and stars.ok.mean() > 0.9
    d = np.hypot(stars.x[:, None] - x[None], stars.y[:, None] - y[None])
    nearest = d.min(axis=1)[stars.ok]
    assert np.median(nearest) < 0.03
    q = epoch_quality(image, bad, stars=stars)
    fwhm_true = 2.3548 * np.sqrt(SIGMA**2 + 1 / 12)  # a pixel-integrated Gaussian, roughly
    assert q.fwhm_pix == pytest.approx(2.3548 * SIGMA, rel=0.1) or q.fwhm_pix == pytest.approx(
        fwhm_true, rel=0.1
    )
    assert q.bad_fraction == pytest.approx(0.01, abs=0.005)
    assert q.background == pytest.approx(20.0, abs=5.0)
    assert q.n_stars > 50


def test_fit_offset_recovers_the_shift_from_a_poor_guess():
    rng = np.random.default_rng(8)
    anchor = rng.uniform(0, 1000, (800, 2))
    shift = np.array([3.237, -1.618])
    epoch_xy = anchor - shift + rng.normal(0, 0.02, anchor.shape)
    # missing and spurious stars on both sides
    epoch_xy = np.vstack([epoch_xy[100:], rng.uniform(0, 1000, (80, 2))])
    off = fit_offset(anchor, epoch_xy, guess=(3.9, -2.4), affine=True)
    assert off.dx == pytest.approx(shift[0], abs=0.005)
    assert off.dy == pytest.approx(shift[1], abs=0.005)
    assert (off.ix, off.iy) == (3, -2)
    assert off.fx == pytest.approx(0.237, abs=0.005) and off.fy == pytest.approx(0.382, abs=0.005)
    assert off.rms == pytest.approx(0.02 * np.sqrt(2), rel=0.2)
    assert off.n_matched > 600
    np.testing.assert_allclose(off.affine[:, :2], np.eye(2), atol=1e-4)
    np.testing.assert_allclose(off.affine[:, 2], shift, atol=0.01)
    failed = fit_offset(anchor[:2], epoch_xy[:2], guess=(1.0, 2.0))
    assert failed.n_matched < 3 and np.isnan(failed.dx_err) and failed.dx == 1.0


def test_select_epochs_rejects_outliers_and_picks_the_anchor():
    good = [EpochQuality(1.30 + 0.01 * k, 20.0 + 0.1 * k, 5.0, 0.01, 300) for k in range(10)]
    q = [*good]
    q[3] = EpochQuality(1.70, 20.0, 5.0, 0.01, 300)  # blurred
    q[5] = EpochQuality(1.31, 60.0, 9.0, 0.01, 300)  # high background
    q[7] = EpochQuality(1.31, 20.0, 5.0, 0.01, 40)  # few stars
    rms = np.full(10, 0.02)
    rms[8] = 0.5
    sel = select_epochs(q, offset_rms=rms)
    assert sel.flags[3] == EpochFlag.BAD_PSF
    assert sel.flags[5] == EpochFlag.HIGH_BACKGROUND
    assert sel.flags[7] == EpochFlag.HIGH_BACKGROUND
    assert sel.flags[8] == EpochFlag.POOR_ALIGNMENT
    assert sel.selected.sum() == 6 and sel.anchor == 0
    few = select_epochs(q, max_epochs=3)
    assert few.selected.sum() == 3


def test_stack_removes_cosmic_rays_and_propagates_variance(scene):
    size, x, y, f, rng = scene
    shifts = [(0.0, 0.0)] + [
        tuple(rng.normal(0, 0.1, 2) + rng.integers(-1, 2, 2)) for _ in range(9)
    ]
    epochs = [epoch(scene, s, rng) for s in shifts]
    # a region with no data in any epoch
    for _image, bad, _ in epochs:
        bad[70:74, 90:95] = True
    res = stack_epochs(lambda k: epochs[k], shifts, (size, size), clip_sigma=5.0)
    truth = render((size, size), x, y, f)
    assert res.image.dtype == np.float32 and res.coverage.dtype == np.uint16
    assert res.bad[71, 92] and res.coverage[71, 92] == 0 and np.isnan(res.image[71, 92])
    inner = np.zeros_like(res.bad)
    inner[6:-6, 6:-6] = True
    inner &= ~res.bad
    chi = (res.image - truth)[inner] / np.sqrt(res.variance[inner])
    assert 1.4826 * np.median(np.abs(chi)) < 1.25  # interpolation adds a little
    # no cosmic ray survives: nothing far above the truth, beyond the interpolation's ringing
    # (≲ 1 % of a neighbouring star's peak for these shifts)
    from scipy import ndimage

    peak = ndimage.maximum_filter(truth, size=5)
    excess = (res.image - truth - 0.02 * peak) / np.sqrt(res.variance)
    assert np.max(excess[inner]) < 6.0
    assert np.median(res.coverage[inner]) >= 9
    assert res.n_outliers < 3 * 0.002 * size * size * len(shifts)
    # flux is conserved
    assert res.image[inner].sum() == pytest.approx(truth[inner].sum(), rel=2e-3)


def test_stacker_guards():
    st = Stacker((8, 8), max_reference_epochs=1)
    img = np.ones((8, 8), "float32")
    st.add_reference(img, None, img, (0.0, 0.0))
    with pytest.raises(RuntimeError):
        st.add_reference(img, None, img, (0.0, 0.0))
    with pytest.raises(ValueError):
        st.add(np.ones((4, 4)), None, np.ones((4, 4)), (0.0, 0.0))
    st.add(img, None, img, (0.0, 0.0))
    out = st.result()
    assert np.allclose(out.image, 1.0) and np.all(out.coverage == 1)
    assert reference_subset([(0.4, 0.0), (1.0, 0.0), (0.1, 0.2), (0.0, 0.0)], 2) == [1, 3]


@pytest.mark.parametrize("kernel", ["cubic", "lanczos3", "nearest"])
@pytest.mark.parametrize("shift", [(0.3, -0.2), (2.6, -3.4), (0.0, 0.0), (-0.5, 0.5), (400.0, 2.2)])
def test_the_compiled_2d_shift_is_the_two_1d_shifts(kernel, shift):
    from msos.reference.kernel import _shift_1d, _shift_2d, resampling_weights, split_shift

    image = np.random.default_rng(1).normal(size=(120, 97)).astype(np.float32)
    (ix, fx), (iy, fy) = split_shift(shift[0]), split_shift(shift[1])
    fx0, wx = resampling_weights(fx, kernel)
    fy0, wy = resampling_weights(fy, kernel)
    for fill in (0.0, 1.0):
        two = _shift_1d(_shift_1d(image, fx0 - ix, wx, 1, fill), fy0 - iy, wy, 0, fill)
        one = _shift_2d(image, fx0 - ix, wx, fy0 - iy, wy, fill)
        np.testing.assert_allclose(one, two, atol=1e-5)
