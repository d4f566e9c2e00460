"""Simulated crowded fields for the catalog tests: stars rendered with a known ePSF grid."""

import numpy as np
import pytest
from scipy.special import erf

from msos.psf.model import EPSFGrid, render_stars


def _g1(u, s):
    return 0.5 * (erf((u + 0.5) / (np.sqrt(2) * s)) - erf((u - 0.5) / (np.sqrt(2) * s)))


def truth_psf(size, n=3, os=4, half=5, s0=0.45, s1=0.58, halo=0.15):
    """A 3×3 grid of pixel-integrated double-Gaussian ePSFs, FWHM ≈ 1.2–1.45 pix."""
    c = half * os
    t = (np.arange(2 * c + 1) - c) / os
    vv, uu = np.meshgrid(t, t, indexing="ij")
    pos = (np.arange(n) + 0.5) * size / n
    stamps, xs, ys = [], [], []
    for yp in pos:
        for xp in pos:
            s = s0 + (s1 - s0) * (xp + yp) / (2 * size)
            st = (1 - halo) * _g1(uu, s) * _g1(vv, 1.1 * s) + halo * _g1(uu, 1.5) * _g1(vv, 1.5)
            stamps.append(st * os**2 / st.sum())
            xs.append(xp)
            ys.append(yp)
    return EPSFGrid(np.array(stamps, dtype="float32"), np.array(xs), np.array(ys), os)


def power_law(rng, n, fmin, fmax, slope=1.5):
    a = 1 - slope
    return (fmin**a + rng.uniform(size=n) * (fmax**a - fmin**a)) ** (1 / a)


def observe(shape, x, y, flux, psf, rng, sky=20.0, read_var=9.0):
    model = render_stars(shape, x, y, flux, psf).astype(np.float64) + sky
    var = model + read_var
    image = model + rng.normal(size=model.shape) * np.sqrt(var)
    return image.astype("float32"), var.astype("float32")


@pytest.fixture(scope="session")
def crowded():
    """A 200×200 crowded field: 1 star / 15 pix² down to S/N ≈ 2, power-law fluxes."""
    size = 200
    rng = np.random.default_rng(1)
    psf = truth_psf(size)
    n = rng.poisson(size * size / 15)
    x = rng.uniform(-2, size + 1, n)
    y = rng.uniform(-2, size + 1, n)
    flux = power_law(rng, n, 30.0, 3e5)
    image, var = observe((size, size), x, y, flux, psf, rng)
    return {"image": image, "variance": var, "x": x, "y": y, "flux": flux, "psf": psf}
