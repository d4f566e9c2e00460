"""One simulated (season, field, detector) partition, in memory: the scene, the variables,
the epochs and the detector, and each epoch's Level-2 arrays on demand. No I/O.

Random streams are keyed by ``(seed, stream[, epoch])``: the scene, the variables, the plan,
the defects and each epoch's noise draw from their own generators, so a partition is the
same whatever the order its epochs are made in, and epoch ``e`` of a short run equals epoch
``e`` of a long one (up to the microlensing/periodic truth, which depends on the time span).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from astropy.table import Table
from astropy.time import Time

from msos.psf.model import EPSFGrid, render_stars
from msos.simulate import instrument as wfi
from msos.simulate.epochs import EpochPlan, plan_epochs
from msos.simulate.noise import Defects, Level2Arrays, draw_defects, observe
from msos.simulate.psf import PSFModel, epsf_stamp, stamp_fwhm
from msos.simulate.scene import (
    STARS_PER_ARCMIN2,
    WING_TOLERANCE_DN_S,
    StarField,
    draw_star_field,
)
from msos.simulate.variability import PARAMETERS, Variability, draw_variability
from msos.simulate.wcs import make_wcs
from msos.survey import detector_offset_deg
from msos.survey import field_centre as field_center
from roman_schemas.products.msos import GriddedPSF

_SCENE, _VARIABLES, _DEFECTS, _NOISE = 0, 1, 3, 4
#: stars this far (pixels) beyond the image edges are simulated, partly on the image
MARGIN_PIX = 16.0


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate (see ``msos simulate --help``)."""

    n_epochs: int = 96
    shape: tuple[int, int] = (wfi.DETECTOR_PIXELS, wfi.DETECTOR_PIXELS)
    field: str = "f03"
    detector: str = "WFI01"
    season: int = 1
    start: str = "2027-03-01T00:00:00"
    cadence_s: float = 900.0
    stars_per_arcmin2: float = STARS_PER_ARCMIN2
    periodic_fraction: float = 0.01
    n_pspl: int = 5
    n_binary: int = 1
    seed: int = 1
    psf: PSFModel = dataclasses.field(default_factory=PSFModel)


class Partition:
    """The truth of a partition and the L2 arrays of its epochs."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        seed = config.seed
        self.center = field_center(config.field)
        self.detector_offset = detector_offset_deg(config.detector)
        self.plan: EpochPlan = plan_epochs(
            seed,
            config.n_epochs,
            Time(config.start, scale="utc"),
            config.cadence_s,
            config.psf.jitter_sigma_pix,
            config.psf.jitter_scatter,
        )
        self.times_tdb = self.plan.mid_mjd_tdb
        self.stars: StarField = draw_star_field(
            np.random.default_rng([seed, _SCENE]),
            config.shape,
            config.stars_per_arcmin2,
            MARGIN_PIX,
        )
        ny, nx = config.shape
        edge = min(20.0, min(ny, nx) / 8)
        interior = (
            (self.stars.x > edge)
            & (self.stars.x < nx - 1 - edge)
            & (self.stars.y > edge)
            & (self.stars.y < ny - 1 - edge)
        )
        self.variables: Variability = draw_variability(
            np.random.default_rng([seed, _VARIABLES]),
            self.stars.mag,
            interior,
            float(self.times_tdb[0]),
            float(self.times_tdb[-1]),
            config.periodic_fraction,
            config.n_pspl,
            config.n_binary,
        )
        #: flux relative to baseline of each variable star at each epoch
        self.light_curves = self.variables.light_curves(self.times_tdb)
        self.defects: Defects = draw_defects(np.random.default_rng([seed, _DEFECTS]), config.shape)
        self.reference_wcs = make_wcs(config.shape, self.center, self.detector_offset)

    @property
    def n_epochs(self) -> int:
        return self.config.n_epochs

    def wcs(self, epoch: int) -> object:
        """The gwcs of ``epoch`` (the reference grid shifted by the true offset)."""
        return make_wcs(
            self.config.shape,
            self.center,
            self.detector_offset,
            float(self.plan.dx[epoch]),
            float(self.plan.dy[epoch]),
        )

    def psf(self, epoch: int) -> GriddedPSF:
        """The truth ePSF grid of ``epoch``."""
        return self.config.psf.gridded(self.config.shape, float(self.plan.jitter_sigma_pix[epoch]))

    def fluxes(self, epoch: int) -> np.ndarray:
        """True flux (DN/s) of every star at ``epoch``."""
        flux = self.stars.flux.copy()
        flux[self.variables.index] *= self.light_curves[:, epoch]
        return flux

    def model(self, epoch: int, psf: GriddedPSF | None = None) -> np.ndarray:
        """The noiseless rate image (DN/s, float32) of ``epoch``: sky plus stars, the stars
        rendered by :func:`msos.psf.model.render_stars` with the truth ePSF grid ``psf``
        (default :meth:`psf`) and ``wing_tolerance=WING_TOLERANCE_DN_S``."""
        psf = self.psf(epoch) if psf is None else psf
        image = np.full(self.config.shape, self.plan.sky_dn_s[epoch], np.float32)
        render_stars(
            self.config.shape,
            self.stars.x + self.plan.dx[epoch],
            self.stars.y + self.plan.dy[epoch],
            self.fluxes(epoch),
            EPSFGrid.from_gridded_psf(psf, normalize=True),
            out=image,
            wing_tolerance=WING_TOLERANCE_DN_S,
        )
        return image

    def observe(self, epoch: int, model: np.ndarray | None = None) -> Level2Arrays:
        """The Level-2 arrays of ``epoch``: noise, defects, error arrays, dq."""
        model = self.model(epoch) if model is None else model
        return observe(
            model, self.defects, np.random.default_rng([self.config.seed, _NOISE, epoch])
        )

    # ------------------------------------------------------------------ truth tables

    def star_table(self) -> Table:
        """One row per star (see :mod:`msos.simulate` for the columns)."""
        stars = self.stars
        n = len(stars)
        ny, nx = self.config.shape
        ra, dec = self.reference_wcs(stars.x, stars.y, with_bounding_box=False)
        kind = np.full(n, "constant", dtype="U12")
        model = np.full(n, "", dtype="U9")
        kind[self.variables.index] = self.variables.kind
        model[self.variables.index] = self.variables.model
        table = Table()
        table["truth_id"] = np.arange(n, dtype=np.int64)
        table["x_pix"] = stars.x
        table["y_pix"] = stars.y
        table["ra_deg"] = np.asarray(ra, np.float64)
        table["dec_deg"] = np.asarray(dec, np.float64)
        table["flux_dn_s"] = stars.flux
        table["flux_ujy"] = wfi.dn_s_to_ujy(stars.flux)
        table["mag_ab"] = stars.mag
        table["on_image"] = (
            (stars.x > -0.5) & (stars.x < nx - 0.5) & (stars.y > -0.5) & (stars.y < ny - 0.5)
        )
        table["kind"] = kind
        table["model"] = model
        for name in PARAMETERS:
            column = np.full(n, np.nan)
            column[self.variables.index] = self.variables.params[name]
            table[name] = column
        units = {
            "x_pix": "pix", "y_pix": "pix", "ra_deg": "deg", "dec_deg": "deg",
            "flux_dn_s": "DN / s", "flux_ujy": "uJy", "mag_ab": "mag(AB)", "period_d": "d",
            "t_ref_mjd_tdb": "d", "t0_mjd_tdb": "d", "te_d": "d", "alpha_deg": "deg",
        }  # fmt: skip
        for name, unit in units.items():
            table[name].unit = unit
        table.meta.update(self._meta("stars"))
        return table

    def epoch_table(
        self, filenames: list[str], counts: dict[str, list[int]] | None = None
    ) -> Table:
        """One row per epoch (see :mod:`msos.simulate`)."""
        plan = self.plan
        model = self.config.psf
        ny, nx = self.config.shape
        scale = float(model.scale_at((nx - 1) / 2, (ny - 1) / 2, self.config.shape))
        centre_fwhm = [
            stamp_fwhm(
                epsf_stamp(scale, float(j), model.oversampling, model.half_size), model.oversampling
            )
            for j in plan.jitter_sigma_pix
        ]
        table = Table()
        table["epoch"] = np.arange(self.n_epochs, dtype=np.int64)
        table["filename"] = np.array(filenames)
        table["start_utc"] = np.array(plan.start.isot)
        table["time_mjd_utc"] = np.asarray(plan.mid.utc.mjd, np.float64)
        table["time_mjd_tdb"] = self.times_tdb
        table["dx_pix"] = plan.dx
        table["dy_pix"] = plan.dy
        table["psf_jitter_sigma_pix"] = plan.jitter_sigma_pix
        table["psf_fwhm_pix"] = np.array(centre_fwhm)
        table["sky_dn_s"] = plan.sky_dn_s
        for name, values in (counts or {}).items():
            table[name] = np.asarray(values, np.int64)
        for name, unit in (
            ("time_mjd_utc", "d"), ("time_mjd_tdb", "d"), ("dx_pix", "pix"), ("dy_pix", "pix"),
            ("psf_jitter_sigma_pix", "pix"), ("psf_fwhm_pix", "pix"), ("sky_dn_s", "DN / s"),
        ):  # fmt: skip
            table[name].unit = unit
        table.meta.update(self._meta("epochs"))
        return table

    def variable_flux_table(self) -> Table:
        """Every non-constant star's true flux at every epoch (long format)."""
        n_var, n_ep = self.light_curves.shape
        ids = np.repeat(self.variables.index, n_ep)
        flux = (self.stars.flux[self.variables.index][:, None] * self.light_curves).ravel()
        table = Table()
        table["truth_id"] = ids.astype(np.int64)
        table["epoch"] = np.tile(np.arange(n_ep, dtype=np.int64), n_var)
        table["time_mjd_tdb"] = np.tile(self.times_tdb, n_var)
        table["flux_dn_s"] = flux
        table["flux_ujy"] = wfi.dn_s_to_ujy(flux)
        table["relative_flux"] = self.light_curves.ravel()
        table["time_mjd_tdb"].unit = "d"
        table["flux_dn_s"].unit = "DN / s"
        table["flux_ujy"].unit = "uJy"
        table.meta.update(self._meta("variable_fluxes"))
        return table

    def _meta(self, what: str) -> dict:
        c = self.config
        return {
            "content": f"msos simulate truth: {what}",
            "season": f"s{c.season:02d}",
            "field": c.field,
            "detector": c.detector,
            "seed": c.seed,
            "shape": list(c.shape),
            "ujy_per_dn_s": wfi.UJY_PER_DN_S,
            "conversion_megajanskys": wfi.CONVERSION_MJY_SR,
            "pixel_area_sr": wfi.PIXEL_AREA_SR,
            "offsets": "a reference-grid position (x, y) is at (x + dx, y + dy) in an epoch",
        }
