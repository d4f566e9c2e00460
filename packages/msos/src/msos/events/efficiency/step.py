"""``msos efficiency``: synthetic events injected into a partition's season light curves
(medium ``lightcurve``, :class:`EfficiencyStep`) or into its Level-2 images (medium
``images``, :class:`ImagesEfficiencyStep`) and searched again, published as its
detection-efficiency catalog of that medium.

Input: the season's L4 light-curve catalog (total flux = difference flux + reference flux,
as ``msos events`` fits it). Parameters (all optional): ``n_injections`` (rows, blanks
included), ``blank_fraction``, ``seed``, ``threshold`` (search Δχ², as ``msos events``),
``u_0_max``, ``t_E_d``, ``source_fraction`` and ``source_flux_ujy`` (ranges),
``planet_fraction``, ``electrons_per_ujy`` (photon noise of the added flux;
:mod:`msos.events.efficiency.kernel`). The seed is a parameter, so a rerun with the same
parameters is the same run and is skipped.

The images medium's inputs are the partition's reference frame, its fiducial catalog and its
Level-2 images (as ``msos process-partition`` takes them); its parameters are the same but
``gain_e_per_dn`` (detector gain, for the added flux's photon noise; the images do not carry
it) instead of ``electrons_per_ujy``, see :mod:`msos.events.efficiency.images`. Every image is
read once first (its time, and its readability: an unreadable image stops the run, naming
the file, before any photometry and with nothing published), then again for the photometry.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from msos.context import PartitionReference
from msos.dia.step import read_input_epoch
from msos.errors import MsosError
from msos.events.catalog.kernel import DEFAULT_THRESHOLD
from msos.events.catalog.step import event_name
from msos.events.efficiency.images import draw_image_injections, injected_light_curves
from msos.events.efficiency.kernel import (
    InjectionPlan,
    InjectionSettings,
    Recovery,
    added_flux,
    draw_injections,
    recover,
    search_and_match,
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

#: the injection medium of each step (the product's ``inject_medium``)
MEDIUM = "lightcurve"
IMAGES_MEDIUM = "images"
DEFAULT_SEED = 0


def injection_settings(parameters: Mapping[str, Any]) -> InjectionSettings:
    """The draw a step's parameters ask for (the kernel's defaults where they are silent;
    ranges such as ``t_E_d`` as two-item lists)."""
    names = ("n_injections", "blank_fraction", "u_0_max", "planet_fraction")
    given = {name: parameters[name] for name in names if parameters.get(name) is not None}
    for name in ("t_E_d", "source_fraction", "source_flux_ujy"):
        if parameters.get(name) is not None:
            low, high = parameters[name]
            given[name] = (float(low), float(high))
    return InjectionSettings(**given)


class EfficiencyStep(PartitionStep):
    """Injects synthetic events into a partition's season light curves and recovers them."""

    name = "msos.efficiency"

    def process(self, input_keys: Sequence[str], parameters: Mapping[str, Any]) -> None:
        (season_key,) = input_keys
        with open_stored_product(self.ctx, season_key, LightCurveCatalog) as opened:
            season = load_arrays(opened, season_key)
        ref = np.asarray(season.objects.ref_flux_ujy, dtype=np.float64)
        time = np.asarray(season.epochs.time_mjd_tdb, dtype=np.float64)
        rng = np.random.default_rng(int(parameters.get("seed", DEFAULT_SEED)))
        plan = draw_injections(rng, time, ref, injection_settings(parameters))
        # only the hosts' light curves are read (a season holds ~10⁶ of them)
        hosts, local = np.unique(plan.host, return_inverse=True)
        flux = np.asarray(season.delta_flux_ujy[hosts], dtype=np.float64) + ref[hosts, None]
        electrons = parameters.get("electrons_per_ujy")
        recovery = recover(
            time, flux, np.asarray(season.delta_flux_err_ujy[hosts], dtype=np.float64),
            np.asarray(season.flags[hosts]), dataclasses.replace(plan, host=local),
            threshold=float(parameters.get("threshold", DEFAULT_THRESHOLD)),
            electrons_per_ujy=None if electrons is None else float(electrons), rng=rng,
        )  # fmt: skip
        for row, reason in recovery.skipped.items():
            log.warning("injection %d not searched: %s", row, reason, extra={"step": self.name})
        product = efficiency_catalog(self.partition, MEDIUM, season.meta.program, plan,
                                     recovery, season.objects)  # fmt: skip
        log.info("%d injections: %s", len(plan), product.counts(), extra={"step": self.name})
        self.publish(product, self.partition.efficiency_key(MEDIUM), parameters)


class ImagesEfficiencyStep(PartitionStep):
    """Injects synthetic events into a partition's Level-2 images, reruns its photometry on
    them and recovers the events from the light curves it measures."""

    name = "msos.efficiency.images"

    def inputs(self, images: Sequence[str]) -> list[str]:
        """The input list of a run over ``images`` (reference frame, catalog, images)."""
        return [self.partition.reference_key(), self.partition.catalog_key(), *images]

    def process(self, input_keys: Sequence[str], parameters: Mapping[str, Any]) -> None:
        images = list(input_keys[2:])
        if not images:
            raise MsosError(self.name, "no Level-2 image to inject into")
        reference = PartitionReference.load(self.ctx, self.partition)
        times = np.array([read_input_epoch(self.ctx, image, self.partition).time_mjd_tdb
                          for image in images])  # fmt: skip
        order = np.argsort(times, kind="stable")
        time, images = times[order], [images[k] for k in order]
        rng = np.random.default_rng(int(parameters.get("seed", DEFAULT_SEED)))
        plan, pass_of_row = draw_image_injections(rng, time, reference,
                                                  injection_settings(parameters))  # fmt: skip
        added = added_flux(time, plan)
        gain = parameters.get("gain_e_per_dn")
        epochs = (read_input_epoch(self.ctx, image, self.partition) for image in images)
        curves = injected_light_curves(
            reference, epochs, plan, pass_of_row, added,
            gain_e_per_dn=None if gain is None else float(gain), rng=rng,
        )  # fmt: skip
        for rejection in curves.rejected:
            log.warning("epoch left out: %s", rejection, extra={"step": self.name})
        recovery = search_and_match(
            time, [curves.as_injected(added)], plan,
            threshold=float(parameters.get("threshold", DEFAULT_THRESHOLD)),
        )  # fmt: skip
        for row, reason in recovery.skipped.items():
            log.warning("injection %d not searched: %s", row, reason, extra={"step": self.name})
        product = efficiency_catalog(self.partition, IMAGES_MEDIUM, reference.catalog.meta.program,
                                     plan, recovery, reference.catalog.objects)  # fmt: skip
        log.info("%d injections in %d passes over %d epochs: %s", len(plan),
                 int(pass_of_row.max()) + 1, time.size, product.counts(),
                 extra={"step": self.name})  # fmt: skip
        self.publish(product, self.partition.efficiency_key(IMAGES_MEDIUM), parameters)


def efficiency_catalog(
    partition: Partition, medium: str, program: int, plan: InjectionPlan, recovery: Recovery,
    objects: Any,
) -> DetectionEfficiencyCatalog:  # fmt: skip
    """The detection-efficiency catalog of one run in ``medium`` (``objects``: the table the
    plan's hosts index, with object_id, ra_deg and dec_deg)."""
    return DetectionEfficiencyCatalog(
        meta=MsosEfficiencyMeta(**common_meta(
            DetectionEfficiencyCatalog, partition, program, inject_medium=medium,
        )),
        injections=injections_table(plan, recovery, objects, partition),
    )  # fmt: skip


def injections_table(
    plan: InjectionPlan, recovery: Recovery, objects: Any, partition: Partition
) -> Injections:
    """The catalog's table: one row per injection (or blank), the host's object id and
    position (from ``objects``, the table the plan's hosts index), what was injected and
    what the search recovered."""
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
