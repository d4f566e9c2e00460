"""Simulated light curves for the variability tests: constant stars, sinusoids, eclipsing
binaries and microlensing events at Roman's 15-minute cadence."""

from __future__ import annotations

import numpy as np

from msos.simulate.variability import periodic_factor, pspl_magnification

CADENCE_D = 15 / 1440


def times(n_epochs: int, start: float = 61400.0) -> np.ndarray:
    """``n_epochs`` epochs 15 minutes apart (MJD TDB)."""
    return start + np.arange(n_epochs) * CADENCE_D


def light_curve(
    rng: np.random.Generator, t: np.ndarray, kind: str, base: float = 200.0,
    err: float = 2.0, **shape: float,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(flux, flux_err) of one star: ``kind`` constant, sine, eclipsing or pspl."""
    if kind == "constant":
        model = np.full(t.size, base)
    elif kind == "pspl":
        model = base + shape["source"] * (
            pspl_magnification(t, shape["t_0"], shape["u_0"], shape["t_e"]) - 1
        )
    else:
        model = base * periodic_factor(t, kind, shape["period"], shape.get("t_ref", t[0]),
                                       shape["amplitude"], shape.get("amplitude2", 0.0),
                                       shape.get("width", 0.04))  # fmt: skip
    sigma = np.full(t.size, err)
    return model + rng.normal(0, sigma), sigma
