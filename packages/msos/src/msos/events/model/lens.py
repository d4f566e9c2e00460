"""Magnification of the microlensing models MSOS fits, in MulensModel's names and conventions.

Models (roman-schemas ``MODEL_TYPES``): ``PSPL``, ``FSPL`` (uniform finite source), ``2L1S``
(binary lens, finite source), each optionally with annual parallax (``+par``). The source
trajectory follows MulensModel (Skowron et al. 2011, Appendix A, with ``alpha`` turned by
180°; binary lens centred on its centre of mass, the heavier body at negative x), so a fitted
parameter set means the same in MulensModel. Finite-source and binary-lens magnifications
come from VBMicrolensing (Bozza et al.); the point lens and the parallax are computed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: each model's nonlinear parameters, in fitting order (fluxes are linear, solved apart)
MODEL_PARAMETERS: dict[str, tuple[str, ...]] = {
    "PSPL": ("t_0", "u_0", "t_E"),
    "FSPL": ("t_0", "u_0", "t_E", "rho"),
    "2L1S": ("t_0", "u_0", "t_E", "rho", "s", "q", "alpha"),
}
PARALLAX = ("pi_E_N", "pi_E_E")
#: beyond this many source radii a finite source magnifies as a point (to < 1e-5)
FINITE_SOURCE_REACH = 30.0
#: VBMicrolensing's absolute and relative accuracy goals for binary-lens magnifications
BINARY_TOLERANCE = (1e-4, 1e-5)
AU_PER_DAY_PER_KM_S = 86400.0 / 1.495978707e8


def parameter_names(model: str) -> tuple[str, ...]:
    """The nonlinear parameters of ``model`` (e.g. ``"FSPL+par"``), MulensModel's names."""
    base, _, extra = model.partition("+")
    if base not in MODEL_PARAMETERS or extra not in ("", "par"):
        raise ValueError(f"unknown model {model!r}: one of {', '.join(MODEL_PARAMETERS)} "
                         "with an optional +par")  # fmt: skip
    return MODEL_PARAMETERS[base] + (PARALLAX if extra else ())


@dataclass(frozen=True)
class Sky:
    """Where the event is and how its times read as Julian dates: what annual parallax
    needs. ``jd_offset`` is added to the data's times (2400000.5 for MJD)."""

    ra_deg: float
    dec_deg: float
    jd_offset: float
    t_0_par: float  # the parallax reference time, on the data's time scale

    def offsets(self, time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The Sun's apparent shift (north, east; AU) at ``time`` relative to a uniformly
        moving Earth at ``t_0_par``: the annual-parallax displacement per unit π_E."""
        jd = tuple(np.asarray(time, np.float64) + self.jd_offset)
        return _annual_offsets(jd, self.ra_deg, self.dec_deg, self.t_0_par + self.jd_offset)


@lru_cache(maxsize=64)
def _annual_offsets(
    jd: tuple[float, ...], ra_deg: float, dec_deg: float, jd_par: float
) -> tuple[np.ndarray, np.ndarray]:
    """Projected (N, E) Earth-position offsets, cached: a fit asks for the same ones often."""
    from astropy import units as u
    from astropy.coordinates import get_body_barycentric
    from astropy.time import Time

    jd_arr = np.asarray(jd)
    dt = 0.01  # d: the velocity at jd_par by a central difference
    times = Time(np.concatenate([jd_arr, [jd_par, jd_par - dt, jd_par + dt]]), format="jd",
                 scale="tdb")  # fmt: skip
    xyz = get_body_barycentric("earth", times).xyz.to(u.au).value.T
    position, ref = xyz[:-3], xyz[-3]
    velocity = (xyz[-1] - xyz[-2]) / (2 * dt)
    delta = ref - position + np.outer(jd_arr - jd_par, velocity)
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    east = np.array([-np.sin(ra), np.cos(ra), 0.0])
    north = np.array([-np.sin(dec) * np.cos(ra), -np.sin(dec) * np.sin(ra), np.cos(dec)])
    return delta @ north, delta @ east


def trajectory(
    time: np.ndarray, params: dict[str, float], sky: Sky | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(tau, beta)``: the source's position along and across its path (Einstein radii),
    annual parallax included when the parameters have π_E."""
    tau = (np.asarray(time, np.float64) - params["t_0"]) / params["t_E"]
    beta = np.full(tau.shape, params["u_0"])
    if "pi_E_N" in params:
        if sky is None:
            raise ValueError("a parallax model needs the event's coordinates and time scale")
        north, east = sky.offsets(time)
        pn, pe = params["pi_E_N"], params["pi_E_E"]
        tau = tau + north * pn + east * pe
        beta = beta - north * pe + east * pn
    return tau, beta


def source_plane(
    tau: np.ndarray, beta: np.ndarray, alpha_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """The source's (x, y) in a binary lens's frame: MulensModel's rotation by ``alpha``."""
    alpha = np.radians(alpha_deg)
    x = -tau * np.cos(alpha) + beta * np.sin(alpha)
    y = -tau * np.sin(alpha) - beta * np.cos(alpha)
    return x, y


def point_lens(u: np.ndarray) -> np.ndarray:
    """Point-source point-lens magnification at separation ``u`` (Paczyński 1986)."""
    u2 = u * u
    with np.errstate(divide="ignore"):  # u = 0 exactly: infinite, as it is
        return (u2 + 2.0) / np.sqrt(u2 * (u2 + 4.0))


@lru_cache(maxsize=1)
def _vbm():  # noqa: ANN202 - VBMicrolensing has no type stubs
    import VBMicrolensing

    vbm = VBMicrolensing.VBMicrolensing()
    vbm.Tol, vbm.RelTol = BINARY_TOLERANCE
    return vbm


def magnification(
    model: str, time: np.ndarray, params: dict[str, float], sky: Sky | None = None
) -> np.ndarray:
    """The magnification of ``model`` with ``params`` at ``time``."""
    base = model.partition("+")[0]
    params = {name: params[name] for name in parameter_names(model)}
    tau, beta = trajectory(time, params, sky)
    if base == "2L1S":
        x, y = source_plane(tau, beta, params["alpha"])
        s, q, rho = float(params["s"]), float(params["q"]), float(params["rho"])
        binary = _vbm().BinaryMag2
        return np.array([binary(s, q, float(a), float(b), rho) for a, b in zip(x, y, strict=True)])
    u = np.hypot(tau, beta)
    a = point_lens(u)
    if base == "FSPL":
        rho = float(params["rho"])
        near = np.flatnonzero(u < FINITE_SOURCE_REACH * rho)
        espl = _vbm().ESPLMag2
        a[near] = [espl(float(u[k]), rho) for k in near]
    return a
