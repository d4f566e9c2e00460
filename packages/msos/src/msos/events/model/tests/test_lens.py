"""The model magnifications agree with MulensModel's for the same parameters (names and
conventions included), and the parallax trajectory with its annual-parallax shifts."""

from __future__ import annotations

import MulensModel
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from scipy import integrate

from msos.events.model.lens import Sky, magnification, parameter_names

COORDS = "18:05:16.35 -28:53:42.0"
OB03235 = dict(t_0=2452848.06, u_0=0.1317, t_E=61.5, rho=0.00096, q=0.0039, s=1.120, alpha=43.8)


def _sky(t_0_par: float) -> Sky:
    c = SkyCoord(COORDS, unit=("hourangle", "deg"))
    return Sky(c.ra.deg, c.dec.deg, 0.0, t_0_par)


def _mulens(params: dict, method: str, t: np.ndarray, parallax: bool = False) -> np.ndarray:
    extra = {"t_0_par": 2452848.0} if parallax else {}
    model = MulensModel.Model({**params, **extra}, coords=COORDS if parallax else None)
    model.set_magnification_methods([t[0] - 1, method, t[-1] + 1])
    return model.get_magnification(t)


def test_binary_lens_matches_mulensmodel() -> None:
    t = np.linspace(2452800, 2452900, 1500)
    ours = magnification("2L1S", t, OB03235)
    assert np.max(np.abs(ours / _mulens(OB03235, "VBBL", t) - 1)) < 2e-4
    assert ours.max() > 5  # the caustic crossings are in the range


def test_finite_source_matches_direct_integration_and_mulensmodel() -> None:
    rho = 0.01
    for u in (0.0, 0.005, 0.0095, 0.0105, 0.03):  # inside, at the limb, outside

        def point(r: float, phi: float, u: float = u) -> float:
            d2 = u * u + r * r + 2 * u * r * np.cos(phi)
            return (d2 + 2) / np.sqrt(d2 * (d2 + 4)) * r

        area, _ = integrate.dblquad(point, 0, np.pi, 0, rho, epsabs=1e-10, epsrel=1e-10)
        exact = area / (np.pi * rho**2 / 2)
        ours = magnification("FSPL", np.array([0.0]), dict(t_0=0.0, u_0=u, t_E=1.0, rho=rho))
        assert abs(ours[0] / exact - 1) < 2e-4, u
    t = np.linspace(2452846, 2452850, 800)
    params = dict(t_0=2452848.06, u_0=0.004, t_E=61.5, rho=rho)
    ours = magnification("FSPL", t, params)
    # MulensModel's Lee et al. (2009) integration is good to ~1e-4 (1e-3 at the limb)
    assert np.max(np.abs(ours / _mulens(params, "finite_source_uniform_Lee09", t) - 1)) < 2e-3
    point_source = magnification("PSPL", t, params)
    assert np.max(np.abs(ours / point_source - 1)) > 0.05  # the source's size matters here


@pytest.mark.parametrize("u_0", [0.2, -0.2])
def test_annual_parallax_matches_mulensmodel(u_0: float) -> None:
    t = np.linspace(2452600, 2453100, 2000)
    params = dict(t_0=2452848.06, u_0=u_0, t_E=61.5, pi_E_N=0.3, pi_E_E=-0.2)
    ours = magnification("PSPL+par", t, params, _sky(2452848.0))
    assert np.max(np.abs(ours / _mulens(params, "point_source", t, parallax=True) - 1)) < 1e-6
    still = magnification("PSPL", t, params)
    assert np.max(np.abs(ours / still - 1)) > 0.01  # the parallax moved the light curve


def test_binary_lens_with_parallax_matches_mulensmodel() -> None:
    t = np.linspace(2452800, 2452900, 1500)
    params = {**OB03235, "pi_E_N": 0.3, "pi_E_E": -0.2}
    ours = magnification("2L1S+par", t, params, _sky(2452848.0))
    assert np.max(np.abs(ours / _mulens(params, "VBBL", t, parallax=True) - 1)) < 2e-4


def test_model_names() -> None:
    assert parameter_names("FSPL+par") == ("t_0", "u_0", "t_E", "rho", "pi_E_N", "pi_E_E")
    with pytest.raises(ValueError, match="unknown model"):
        parameter_names("3L1S")
    with pytest.raises(ValueError, match="coordinates"):
        magnification("PSPL+par", np.zeros(3), dict(t_0=0, u_0=0.1, t_E=10, pi_E_N=0, pi_E_E=0))
