"""Synthetic crowded fields with a known, spatially varying ePSF, for catalog tests and
benchmarks: what a measured catalog is compared against (no Level-2 files, no I/O)."""

from __future__ import annotations

import numpy as np
from scipy.special import erf

from msos.psf.model import EPSFGrid, render_stars


def _pixel_gaussian(u: np.ndarray, sigma: float) -> np.ndarray:
    """A unit 1-D Gaussian integrated over the pixel centred at ``u``."""
    return 0.5 * (erf((u + 0.5) / (np.sqrt(2) * sigma)) - erf((u - 0.5) / (np.sqrt(2) * sigma)))


def truth_psf(
    size: int,
    n: int = 3,
    os: int = 4,
    half: int = 5,
    s0: float = 0.45,
    s1: float = 0.58,
    halo: float = 0.15,
) -> EPSFGrid:
    """An ``n × n`` grid over a ``size``-pixel field of pixel-integrated, slightly elliptical
    double-Gaussian ePSFs (a 15 % halo), σ growing from ``s0`` to ``s1`` across the field
    (FWHM ≈ 1.2–1.45 pix), sampled ``os`` times per pixel out to ``half`` pixels."""
    c = half * os
    t = (np.arange(2 * c + 1) - c) / os
    vv, uu = np.meshgrid(t, t, indexing="ij")
    pos = (np.arange(n) + 0.5) * size / n
    stamps, xs, ys = [], [], []
    for yp in pos:
        for xp in pos:
            s = s0 + (s1 - s0) * (xp + yp) / (2 * size)
            core = _pixel_gaussian(uu, s) * _pixel_gaussian(vv, 1.1 * s)
            st = (1 - halo) * core + halo * _pixel_gaussian(uu, 1.5) * _pixel_gaussian(vv, 1.5)
            stamps.append(st * os**2 / st.sum())
            xs.append(xp)
            ys.append(yp)
    return EPSFGrid(np.array(stamps, dtype="float32"), np.array(xs), np.array(ys), os)


def power_law(
    rng: np.random.Generator, n: int, fmin: float, fmax: float, slope: float = 1.5
) -> np.ndarray:
    """``n`` fluxes with ``dN/dF ∝ F^-slope`` between ``fmin`` and ``fmax``."""
    a = 1 - slope
    return (fmin**a + rng.uniform(size=n) * (fmax**a - fmin**a)) ** (1 / a)


def crowded_field(
    size: int, seed: int = 1, *, pix_per_star: float = 15.0, sky: float = 20.0,
    read_var: float = 9.0,
) -> dict:  # fmt: skip
    """A ``size``² field, one star per ``pix_per_star`` pixels (some just off the edges),
    power-law fluxes 30–3e5 (down to S/N ≈ 2), rendered with :func:`truth_psf`, sky + read
    noise + Poisson: ``image, variance`` (float32) and the truth ``x, y, flux, psf``."""
    rng = np.random.default_rng(seed)
    psf = truth_psf(size)
    n = rng.poisson(size * size / pix_per_star)
    x = rng.uniform(-2, size + 1, n)
    y = rng.uniform(-2, size + 1, n)
    flux = power_law(rng, n, 30.0, 3e5)
    image, variance = observe((size, size), x, y, flux, psf, rng, sky, read_var)
    return {"image": image, "variance": variance, "x": x, "y": y, "flux": flux, "psf": psf}


def observe(
    shape: tuple[int, int], x: np.ndarray, y: np.ndarray, flux: np.ndarray, psf: EPSFGrid,
    rng: np.random.Generator, sky: float = 20.0, read_var: float = 9.0,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``(image, variance)`` float32 of stars on a flat sky with read and Poisson noise."""
    model = render_stars(shape, x, y, flux, psf).astype(np.float64) + sky
    variance = model + read_var
    image = model + rng.normal(size=model.shape) * np.sqrt(variance)
    return image.astype("float32"), variance.astype("float32")


def true_snr(
    x: np.ndarray, y: np.ndarray, flux: np.ndarray, psf: EPSFGrid, noise_var: float
) -> np.ndarray:
    """Optimal S/N of each star alone on the background: F·sqrt(Σ P² / σ²) at its own phase."""
    s2 = np.array([np.sum(psf.pixels(xk, yk, 3)[0] ** 2) for xk, yk in zip(x, y, strict=True)])
    return flux * np.sqrt(s2 / noise_var)
