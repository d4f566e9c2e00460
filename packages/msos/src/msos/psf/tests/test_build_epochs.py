import numpy as np
from scipy.special import erf

from msos.psf.build import build_epsf_from_epochs

SIZE = 160


def _g1(u, s):
    return 0.5 * (erf((u + 0.5) / (np.sqrt(2) * s)) - erf((u - 0.5) / (np.sqrt(2) * s)))


def _epsf(u, v):
    return 0.85 * _g1(u, 0.5) * _g1(v, 0.55) + 0.15 * _g1(u, 1.5) * _g1(v, 1.5)


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
