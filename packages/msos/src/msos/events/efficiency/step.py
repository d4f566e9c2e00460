"""``msos efficiency``: synthetic events injected into a partition's season light curves and
searched again, published as its detection-efficiency catalog (medium ``lightcurve``).

Input: the season's L4 light-curve catalog (total flux = difference flux + reference flux,
as ``msos events`` fits it). Parameters (all optional): ``n_injections`` (rows, blanks
included), ``blank_fraction``, ``seed``, ``threshold`` (search Δχ², as ``msos events``),
``u_0_max``, ``planet_fraction``, ``electrons_per_ujy`` (photon noise of the added flux;
:mod:`msos.events.efficiency.kernel`). The seed is a parameter, so a rerun with the same
parameters is the same run and is skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from msos.events.catalog.kernel import DEFAULT_THRESHOLD
from msos.events.catalog.step import event_name
from msos.events.efficiency.kernel import (
    InjectionPlan,
    InjectionSettings,
    Recovery,
    draw_injections,
    recover,
)
from msos.partition import Partition
from msos.partition_step import PartitionStep
from msos.products import common_meta
from roman_schemas.io import load_arrays
from roman_schemas.products.msos import (
    DetectionEfficiencyCatalog,
    Injections,
    LightCurveCatalog,
    MsosEfficiencyMeta,
)
from ssc_common.publish import open_stored_product

log = logging.getLogger(__name__)

#: the injection medium of this step (the product's ``inject_medium``)
MEDIUM = "lightcurve"
DEFAULT_SEED = 0


def injection_settings(parameters: Mapping[str, Any]) -> InjectionSettings:
    """The draw a step's parameters ask for (the kernel's defaults where they are silent)."""
    names = ("n_injections", "blank_fraction", "u_0_max", "planet_fraction")
    given = {name: parameters[name] for name in names if parameters.get(name) is not None}
    return InjectionSettings(**given)


class EfficiencyStep(PartitionStep):
    """Injects synthetic events into a partition's season light curves and recovers them."""

    name = "msos.efficiency"

    def process(self, input_keys: Sequence[str], parameters: Mapping[str, Any]) -> None:
        (season_key,) = input_keys
        with open_stored_product(self.ctx, season_key, LightCurveCatalog) as opened:
            season = load_arrays(opened, season_key)
        ref = np.asarray(season.objects.ref_flux_ujy, dtype=np.float64)
        flux = np.asarray(season.delta_flux_ujy, dtype=np.float64) + ref[:, None]
        time = np.asarray(season.epochs.time_mjd_tdb, dtype=np.float64)
        rng = np.random.default_rng(int(parameters.get("seed", DEFAULT_SEED)))
        plan = draw_injections(rng, time, ref, injection_settings(parameters))
        electrons = parameters.get("electrons_per_ujy")
        recovery = recover(
            time, flux, np.asarray(season.delta_flux_err_ujy, dtype=np.float64),
            np.asarray(season.flags), plan,
            threshold=float(parameters.get("threshold", DEFAULT_THRESHOLD)),
            electrons_per_ujy=None if electrons is None else float(electrons), rng=rng,
        )  # fmt: skip
        for row, reason in recovery.skipped.items():
            log.warning("injection %d not searched: %s", row, reason, extra={"step": self.name})
        product = DetectionEfficiencyCatalog(
            meta=MsosEfficiencyMeta(**common_meta(
                DetectionEfficiencyCatalog, self.partition, season.meta.program,
                inject_medium=MEDIUM,
            )),
            injections=injections_table(plan, recovery, season, self.partition),
        )  # fmt: skip
        counts = product.counts()
        log.info("%d injections: %s", len(plan), counts, extra={"step": self.name})
        self.publish(product, self.partition.efficiency_key(MEDIUM), parameters)


def injections_table(
    plan: InjectionPlan, recovery: Recovery, season: LightCurveCatalog, partition: Partition
) -> Injections:
    """The catalog's table: one row per injection (or blank), the host's object id and
    position, what was injected and what the search recovered."""
    objects = season.objects
    host = plan.host
    object_id = np.asarray(objects.object_id, dtype=np.int64)[host]
    detected = recovery.detected
    return Injections(
        injection_id=np.arange(len(plan), dtype=np.int64),
        object_id=object_id,
        ra_deg=np.asarray(objects.ra_deg, dtype=np.float64)[host],
        dec_deg=np.asarray(objects.dec_deg, dtype=np.float64)[host],
        injected=plan.injected,
        model_type=plan.model_type.astype("U12"),
        t_0_mjd_tdb=plan.t_0, u_0=plan.u_0, t_E_d=plan.t_E, rho=plan.rho, q=plan.q, s=plan.s,
        alpha_deg=plan.alpha, source_flux_ujy=plan.source_flux,
        detected=detected,
        recovered_event_id=np.array([event_name(partition, int(oid)) if found else ""
                                     for oid, found in zip(object_id, detected, strict=True)],
                                    dtype="U32"),
        recovered_t_0_mjd_tdb=recovery.t_0, recovered_u_0=recovery.u_0,
        recovered_t_E_d=recovery.t_E,
        delta_chi2=recovery.delta_chi2.astype(np.float32),
        binary_class=recovery.binary_class(plan.injected).astype("U2"),
    )  # fmt: skip
