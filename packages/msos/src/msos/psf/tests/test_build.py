import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.special import erf

from msos.psf.build import build_epsf_grid, select_psf_stars
from msos.psf.model import EPSFGrid, gaussian_epsf

SIZE = 400
S0, S1 = 0.45, 0.58  # core σ across the detector: FWHM ≈ 1.2–1.45 pix


def _g1(u, s):
    return 0.5 * (erf((u + 0.5) / (np.sqrt(2) * s)) - erf((u - 0.5) / (np.sqrt(2) * s)))


def true_epsf(u, v, x, y):
    """Exact pixel-integrated double Gaussian, elliptical core varying over the detector."""
    s = S0 + (S1 - S0) * (x + y) / (2 * SIZE)
    return 0.85 * _g1(u, s) * _g1(v, 1.1 * s) + 0.15 * _g1(u, 1.5) * _g1(v, 1.5)


@pytest.fixture(scope="module")
def field():
    rng = np.random.default_rng(11)
    n = SIZE * SIZE // 40
    x = rng.uniform(-2, SIZE + 1, n)
    y = rng.uniform(-2, SIZE + 1, n)
    a = -0.5
    f = (100**a + rng.uniform(size=n) * (2e5**a - 100**a)) ** (1 / a)
    image = np.full((SIZE, SIZE), 20.0)
    r = 6
    for xi, yi, fi in zip(x, y, f, strict=True):  # rendered analytically, not by the model
        i0, i1 = max(int(xi) - r, 0), min(int(xi) + r + 1, SIZE)
        j0, j1 = max(int(yi) - r, 0), min(int(yi) + r + 1, SIZE)
        if i0 < i1 and j0 < j1:
            jj, ii = np.mgrid[j0:j1, i0:i1]
            image[j0:j1, i0:i1] += fi * true_epsf(ii - xi, jj - yi, xi, yi)
    var = image + 9.0
    noisy = (image + rng.normal(size=image.shape) * np.sqrt(var)).astype("float32")
    return noisy, var.astype("float32"), x, y, f, rng


def test_epsf_grid_matches_the_truth(field):
    image, var, x, y, f, rng = field
    sel = select_psf_stars(x, y, f, image.shape, flux_err=np.sqrt(f + 300.0), min_snr=50)
    assert sel.sum() > 250
    # first guesses as a catalog would give them: 0.05 pix and 5 % off
    gx = x[sel] + rng.normal(0, 0.05, sel.sum())
    gy = y[sel] + rng.normal(0, 0.05, sel.sum())
    res = build_epsf_grid(
        image, gx, gy, f[sel] * 1.05, variance=var, background=20.0,
        neighbours=(x[~sel], y[~sel], f[~sel]), grid_shape=(3, 3),
    )  # fmt: skip
    epsf = res.epsf  # kernel convention: stamps sum to oversampling²
    os = epsf.oversampling
    stamps = epsf.stamps.reshape(9, 41, 41)
    node_x, node_y = (a.ravel() for a in np.meshgrid(epsf.grid_x, epsf.grid_y))
    np.testing.assert_allclose(stamps.sum(axis=(1, 2)), os**2, rtol=1e-5)
    psf = res.gridded_psf()  # the product: stamps sum to 1
    assert psf.stamps.shape == (9, 41, 41) and psf.stamps.dtype == np.float32
    np.testing.assert_allclose(psf.stamps.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(psf.x_pix, node_x)
    np.testing.assert_array_equal(psf.y_pix, node_y)
    c = 20
    t = (np.arange(41) - c) / os
    vv, uu = np.meshgrid(t, t, indexing="ij")
    errors = []
    for n in range(9):
        truth = true_epsf(uu, vv, node_x[n], node_y[n])
        truth *= os**2 / truth.sum()
        errors.append(np.abs(stamps[n] - truth).max() / truth.max())
        # centred: the centroid within 1.5 pix is at the stamp centre
        w = np.where(uu**2 + vv**2 <= 1.5**2, stamps[n], 0)
        assert abs((w * uu).sum() / w.sum()) < 0.005
        assert abs((w * vv).sum() / w.sum()) < 0.005
    # ~40 stars per node: the largest deviation of any sample is a few % of the peak
    assert max(errors) < 0.05 and np.median(errors) < 0.03, np.round(errors, 4)
    # positions fitted with the built ePSF are unbiased
    dist, j = cKDTree(np.column_stack([x, y])).query(np.column_stack([res.x, res.y]))
    assert abs(np.mean(res.x - x[j])) < 0.01 and abs(np.mean(res.y - y[j])) < 0.01
    assert np.sqrt(np.mean(dist**2)) < 0.03
    assert abs(np.median(res.flux / f[j]) - 1) < 0.01


def test_an_empty_node_follows_the_plane_of_the_others(field):
    image, var, x, y, f, _ = field
    sel = select_psf_stars(x, y, f, image.shape, flux_err=np.sqrt(f + 300.0), min_snr=50)
    # only stars in the left half: the right-hand nodes have (almost) none
    sel &= x < SIZE / 2
    res = build_epsf_grid(
        image, x[sel], y[sel], f[sel], variance=var, background=20.0,
        neighbours=(x[~sel], y[~sel], f[~sel]), grid_shape=(1, 3), max_iter=6,
    )  # fmt: skip
    assert res.n_stars[2] < res.n_stars[0]
    stamps = res.epsf.stamps.reshape(3, 41, 41)
    assert np.all(np.isfinite(stamps))
    # the empty node is the plane through the others, not noise: nearer the truth there than
    # a copy of the best-populated node would be
    t = (np.arange(41) - 20) / 4
    vv, uu = np.meshgrid(t, t, indexing="ij")
    truth = true_epsf(uu, vv, res.epsf.grid_x[2], res.epsf.grid_y[0])
    truth *= 16 / truth.sum()
    error = np.abs(stamps[2] - truth).max() / truth.max()
    assert error < 0.8 * np.abs(stamps[0] - truth).max() / truth.max()
    assert error < 0.15


def test_an_initial_grid_is_resampled_to_the_nodes(field):
    image, var, x, y, f, _ = field
    sel = select_psf_stars(x, y, f, image.shape, flux_err=np.sqrt(f + 300.0), min_snr=50)
    # the truth on a coarser 2×2 grid with smaller stamps, as a first guess
    t = (np.arange(33) - 16) / 4
    vv, uu = np.meshgrid(t, t, indexing="ij")
    nodes = [(100.0, 100.0), (300.0, 100.0), (100.0, 300.0), (300.0, 300.0)]
    truth = np.array([true_epsf(uu, vv, nx, ny) for nx, ny in nodes])
    initial = EPSFGrid(truth, *np.array(nodes).T, 4, normalize=True)
    kw = dict(variance=var, background=20.0, neighbours=(x[~sel], y[~sel], f[~sel]))
    res = build_epsf_grid(image, x[sel], y[sel], f[sel], initial=initial, max_iter=1, **kw)
    assert res.epsf.stamps.shape == (3, 3, 41, 41)
    # one iteration from the truth stays at the truth (the Gaussian start needs several)
    t = (np.arange(41) - 20) / 4
    vv, uu = np.meshgrid(t, t, indexing="ij")
    centre = true_epsf(uu, vv, SIZE / 2, SIZE / 2)
    centre *= 16 / centre.sum()
    assert np.abs(res.epsf.stamps[1, 1] - centre).max() < 0.05 * centre.max()
    with pytest.raises(ValueError, match="oversampling"):
        build_epsf_grid(image, x[sel], y[sel], f[sel], initial=initial, oversampling=2, **kw)
    with pytest.raises(TypeError, match="EPSFGrid"):
        build_epsf_grid(image, x[sel], y[sel], f[sel], initial=res.gridded_psf(), **kw)


def test_select_psf_stars_rejects_crowded_saturated_and_edge_stars():
    x = np.array([50.0, 51.5, 80.0, 3.0, 120.0, 150.0, 153.0])
    y = np.array([50.0, 50.0, 80.0, 40.0, 120.0, 150.0, 150.0])
    f = np.array([1e4, 1e4, 1e4, 1e4, 1e4, 1e4, 1e3])
    sat = np.zeros((200, 200), dtype=bool)
    sat[120, 120] = True
    ok = select_psf_stars(x, y, f, (200, 200), saturated=sat)
    assert ok.tolist() == [False, False, True, False, False, True, False]


def test_gaussian_first_guess_is_normalised_and_centred():
    stamp = gaussian_epsf(1.3, oversampling=4, half_width_pix=5)
    assert stamp.shape == (41, 41)
    assert stamp.sum() == pytest.approx(16.0)
    assert np.unravel_index(np.argmax(stamp), stamp.shape) == (20, 20)
