import numpy as np
from scipy.special import erf

from msos.psf.build import build_epsf_from_epochs, grid_for_stars

SIZE = 160


def _g1(u, s):
    return 0.5 * (erf((u + 0.5) / (np.sqrt(2) * s)) - erf((u - 0.5) / (np.sqrt(2) * s)))


def _epsf(u, v, scale=1.0):
    core = _g1(u, 0.5 * scale) * _g1(v, 0.55 * scale)
    return 0.85 * core + 0.15 * _g1(u, 1.5 * scale) * _g1(v, 1.5 * scale)


def _scale(x):
    """A PSF 20 % wider at the right edge than at the left (for the grid tests)."""
    return 0.9 + 0.2 * np.asarray(x) / SIZE


def test_epochs_share_positions_and_fluxes():
    rng = np.random.default_rng(3)
    n = 120
    x = rng.uniform(10, SIZE - 10, n)
    y = rng.uniform(10, SIZE - 10, n)
    f = rng.uniform(2e4, 1e5, n)
    offsets = rng.normal(0, 0.3, (4, 2))
    offsets[0] = 0.0
    frames = []
    for dx, dy in offsets:
        image = np.full((SIZE, SIZE), 10.0)
        for xi, yi, fi in zip(x - dx, y - dy, f, strict=True):
            i0, j0 = int(xi) - 7, int(yi) - 7
            jj, ii = np.mgrid[j0 : j0 + 15, i0 : i0 + 15]
            image[j0 : j0 + 15, i0 : i0 + 15] += fi * _epsf(ii - xi, jj - yi)
        var = image + 4.0
        noisy = image + rng.normal(size=image.shape) * np.sqrt(var)
        frames.append((noisy - 10.0, var, np.zeros(image.shape, bool), dx, dy))
    res = build_epsf_from_epochs(
        lambda: iter(frames), x + rng.normal(0, 0.03, n), y + rng.normal(0, 0.03, n), f * 1.03,
        (SIZE, SIZE), grid_shape=(1, 1), stamp_radius=6, background_box=None, max_iter=6,
    )  # fmt: skip
    u = np.arange(-6, 7)
    worst = 0.0
    for phase in (-0.4, 0.0, 0.3):
        model = res.epsf.evaluate(u[None, :] - phase, u[:, None], SIZE / 2, SIZE / 2)
        truth = _epsf(u[None, :] - phase, u[:, None])
        worst = max(worst, np.sqrt(((model - truth) ** 2).sum()) / np.sqrt((truth**2).sum()))
    assert worst < 0.01


def _crowded_epochs(rng, n_epochs=8, varying=False):
    """A crowded 160² field (PSF stars plus 4× as many faint neighbours, given to the build
    with 3 % flux and 0.1 pix position errors) in ``n_epochs`` dithered epochs; with
    ``varying`` the PSF widens from left to right (:func:`_scale`)."""
    n, m = 120, 480
    x, y = rng.uniform(8, SIZE - 8, (2, n))
    f = rng.uniform(2e4, 1e5, n)
    nx_, ny_ = rng.uniform(0, SIZE, (2, m))
    nf = rng.uniform(5e2, 5e3, m)
    offsets = rng.uniform(-0.5, 0.5, (n_epochs, 2))
    offsets[0] = 0.0
    frames = []
    for dx, dy in offsets:
        image = np.full((SIZE, SIZE), 10.0)
        for xi, yi, fi in zip(np.r_[x, nx_] - dx, np.r_[y, ny_] - dy, np.r_[f, nf], strict=True):
            i0, j0 = int(xi) - 7, int(yi) - 7
            jj, ii = np.mgrid[j0 : j0 + 15, i0 : i0 + 15]
            ok = (jj >= 0) & (jj < SIZE) & (ii >= 0) & (ii < SIZE)
            scale = _scale(xi) if varying else 1.0
            image[jj[ok], ii[ok]] += fi * _epsf(ii[ok] - xi, jj[ok] - yi, scale)
        var = image + 4.0
        noisy = image + rng.normal(size=image.shape) * np.sqrt(var)
        frames.append((noisy - 10.0, var, np.zeros(image.shape, bool), dx, dy))
    neighbours = (nx_ + rng.normal(0, 0.1, m), ny_ + rng.normal(0, 0.1, m), nf * 1.03)
    return frames, x, y, f, neighbours


def _worst_error(epsf, points, varying=False) -> float:
    u = np.arange(-6, 7)
    worst = 0.0
    for px, py in points:
        for phase in (-0.4, 0.0, 0.3):
            model = epsf.evaluate(u[None, :] - phase, u[:, None], px, py)
            truth = _epsf(u[None, :] - phase, u[:, None], _scale(px) if varying else 1.0)
            worst = max(worst, np.sqrt(((model - truth) ** 2).sum()) / np.sqrt((truth**2).sum()))
    return worst


def _crowded_build(grid_shape: tuple[int, int], varying: bool = False):
    """16 iterations (no early stop) of the epoch build on :func:`_crowded_epochs`."""
    frames, x, y, f, neighbours = _crowded_epochs(np.random.default_rng(5), varying=varying)
    return build_epsf_from_epochs(
        lambda: iter(frames), x, y, f, (SIZE, SIZE), neighbours=neighbours,
        grid_shape=grid_shape, stamp_radius=6, background_box=None, max_iter=16, tol=0.0,
    ).epsf  # fmt: skip


def test_one_node_build_in_a_crowded_field_is_stable():
    assert _worst_error(_crowded_build((1, 1)), [(SIZE / 2, SIZE / 2)]) < 0.01


def test_the_grid_has_enough_stars_per_node_and_nodes_far_apart():
    assert grid_for_stars(120, (160, 160)) == (1, 1)
    assert grid_for_stars(200, (4088, 4088)) == (1, 1)
    assert grid_for_stars(450, (4088, 4088)) == (2, 2)
    assert grid_for_stars(450, (512, 512)) == (2, 2)
    assert grid_for_stars(5000, (512, 512)) == (2, 2)
    assert grid_for_stars(50_000, (4088, 4088)) == (5, 5)


def test_multi_node_build_follows_a_psf_that_varies_across_the_field():
    left, right = [(25, 80)], [(SIZE - 25, 80)]
    grid = _crowded_build((2, 2), varying=True)
    one = _crowded_build((1, 1), varying=True)
    for side in (left, right):
        assert _worst_error(grid, side, varying=True) < 0.5 * _worst_error(one, side, varying=True)
        assert _worst_error(grid, side, varying=True) < 0.02
