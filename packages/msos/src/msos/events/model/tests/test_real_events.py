"""Real planetary data: OGLE-2003-BLG-235/MOA-2003-BLG-53, the first microlensing planet
(OGLE I-band magnitudes and MOA fluxes as shipped with MulensModel).

Bond et al. (2004) publish q = 0.0039 (+0.0011, −0.0007) for it (abstract). Started from the
model MulensModel's documentation quotes for the event, the 2L1S fit over both datasets must
reach a χ² at least as good as that model's (as MulensModel computes it) and a mass ratio
within the published uncertainty. (``msos events`` finding it blind: the catalog's
``test_outside``.)
"""

from __future__ import annotations

from pathlib import Path

import MulensModel
import numpy as np

from msos.events.model.fit import Dataset, fit_model

DATA = Path(MulensModel.__file__).parent / "data" / "photometry_files" / "OB03235"
QUOTED = dict(t_0=2452848.06, u_0=0.1317, t_E=61.5, rho=0.00096, q=0.0039, s=1.120, alpha=43.72)


def _datasets() -> tuple[Dataset, Dataset, np.ndarray, np.ndarray]:
    ogle = np.loadtxt(DATA / "OB03235_OGLE.tbl.txt", comments=["\\", "|"])
    moa = np.loadtxt(DATA / "OB03235_MOA.tbl.txt", comments=["\\", "|"])
    flux = 10 ** (0.4 * (22.0 - ogle[:, 1]))  # MulensModel's zero point
    flux_err = flux * ogle[:, 2] * np.log(10) / 2.5
    return (Dataset(ogle[:, 0], flux, flux_err, "OGLE"),
            Dataset(moa[:, 0], moa[:, 1], moa[:, 2], "MOA"), ogle, moa)  # fmt: skip


def test_ob03235_planet_mass_ratio_within_the_published_uncertainty() -> None:
    ogle, moa, ogle_raw, moa_raw = _datasets()
    fit = fit_model([ogle, moa], "2L1S", QUOTED)
    model = MulensModel.Model(QUOTED)
    model.set_magnification_methods([2452800.0, "VBBL", 2452900.0])
    event = MulensModel.Event(
        [MulensModel.MulensData(ogle_raw.T, phot_fmt="mag"),
         MulensModel.MulensData(moa_raw.T, phot_fmt="flux")], model=model,
    )  # fmt: skip
    assert fit.converged
    assert fit.chi2 <= event.get_chi2() + 1e-6
    assert 0.0039 - 0.0007 <= fit.params["q"] <= 0.0039 + 0.0011
    assert 0.0 < fit.errors["q"] < 0.0011  # the data constrain it as well as the paper says
    assert abs(fit.params["t_E"] - 61.5) < 3 * fit.errors["t_E"]
    assert abs(fit.params["s"] - 1.120) < 3 * fit.errors["s"]
