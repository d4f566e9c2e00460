"""``msos events``: a partition's season light curves become its microlensing event catalog.

Inputs: the season's L4 light-curve catalog, then optionally the trigger's last state (only
the objects it triggered are searched; without it, every object is). Fluxes are fitted as
total fluxes (difference flux plus the reference flux), so ``f_source`` and ``f_blend`` are
µJy on the sky. Detections classified as variable stars or artefacts stay out of the event
catalog (they belong to the variability catalog); point-lens events and candidates for the
binary models go in, with the PSPL model and its Fisher errors.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from msos.events.catalog.kernel import DEFAULT_THRESHOLD, EventRow, find_events
from msos.partition_step import PartitionStep
from roman_schemas.io import load_arrays
from roman_schemas.products.msos import (
    Events,
    LightCurveCatalog,
    MicrolensingEventCatalog,
    MsosRegionMeta,
    TriggerState,
)
from ssc_common.publish import open_stored_product

log = logging.getLogger(__name__)

#: what the event catalog keeps
EVENT_CLASSES = ("single_lens", "candidate")


class EventsStep(PartitionStep):
    """Searches, models and classifies a partition's season light curves."""

    name = "msos.events"

    def process(self, input_keys: Sequence[str], parameters: Mapping[str, Any]) -> None:
        season_key, *state_key = input_keys
        with open_stored_product(self.ctx, season_key, LightCurveCatalog) as opened:
            season = load_arrays(opened, season_key)
        ids = np.asarray(season.object_id)
        rows = np.arange(ids.size)
        if state_key:
            with open_stored_product(self.ctx, state_key[0], TriggerState) as opened:
                state = load_arrays(opened, state_key[0])
            fired = np.asarray(state.object_id)[np.isfinite(state.trigger_time_mjd_tdb)]
            rows = np.flatnonzero(np.isin(ids, fired))
        objects = season.objects
        ref = np.asarray(objects.ref_flux_ujy, dtype=np.float64)[rows]
        flux = np.asarray(season.delta_flux_ujy, dtype=np.float64)[rows] + ref[:, None]
        found, skipped = find_events(
            ids[rows], np.asarray(season.epochs.time_mjd_tdb), flux,
            np.asarray(season.delta_flux_err_ujy, dtype=np.float64)[rows],
            np.asarray(season.flags)[rows],
            threshold=float(parameters.get("threshold", DEFAULT_THRESHOLD)),
        )  # fmt: skip
        for oid, reason in skipped.items():
            log.warning("object %d not modelled: %s", oid, reason, extra={"step": self.name})
        kept = [row for row in found if row.classification.classification in EVENT_CLASSES]
        log.info("%d objects searched, %d detections, %d events", rows.size, len(found),
                 len(kept), extra={"step": self.name})  # fmt: skip
        meta = season.meta.model_dump()
        meta = {k: v for k, v in meta.items() if k in MsosRegionMeta.model_fields}
        meta.pop("product_type", None)
        meta.pop("model_type", None)
        meta.pop("file_date", None)
        product = MicrolensingEventCatalog(
            meta=MsosRegionMeta(**MicrolensingEventCatalog.new_meta(**meta)),
            events=events_table(kept, season, self.partition),
        )
        self.publish(product, self.partition.events_key(), parameters)


def events_table(rows: list[EventRow], season: LightCurveCatalog, partition: Any) -> Events:
    """The catalog's table: one row per event, in time order, PSPL parameters and errors
    (the parameters a PSPL does not have are NaN)."""
    rows = sorted(rows, key=lambda row: row.fit.t_0)
    n = len(rows)
    index = {int(oid): k for k, oid in enumerate(np.asarray(season.objects.object_id))}
    at = np.array([index[row.object_id] for row in rows], dtype=np.int64)
    nan = np.full(n, np.nan)

    def fitted(name: str) -> np.ndarray:
        return np.array([getattr(row.fit, name) for row in rows], dtype=np.float64)

    def error(name: str) -> np.ndarray:
        return np.array([row.fit.error(name) for row in rows], dtype=np.float64)

    return Events(
        event_id=np.array([f"MSOS-{partition.season}-{partition.field}-{row.object_id % 10**6:06d}"
                           for row in rows], dtype="U32"),
        object_id=np.array([row.object_id for row in rows], dtype=np.int64),
        field=np.full(n, partition.field, dtype="U3"),
        detector=np.full(n, partition.detector, dtype="U5"),
        ra_deg=np.asarray(season.objects.ra_deg, dtype=np.float64)[at],
        dec_deg=np.asarray(season.objects.dec_deg, dtype=np.float64)[at],
        t_peak_mjd_tdb=np.array([row.detection.t_0 for row in rows], dtype=np.float64),
        delta_chi2=np.array([row.detection.delta_chi2 for row in rows], dtype=np.float32),
        peak_snr=np.array([row.peak_snr for row in rows], dtype=np.float32),
        n_points_magnified=np.array([row.n_points_magnified for row in rows], dtype=np.uint32),
        model_type=np.full(n, "PSPL", dtype="U12"),
        t_0_mjd_tdb=fitted("t_0"), t_0_err_d=error("t_0"),
        u_0=fitted("u_0"), u_0_err=error("u_0"),
        t_E_d=fitted("t_E"), t_E_err_d=error("t_E"),
        rho=nan, rho_err=nan, pi_E_N=nan, pi_E_N_err=nan, pi_E_E=nan, pi_E_E_err=nan,
        q=nan, q_err=nan, s=nan, s_err=nan, alpha_deg=nan, alpha_err_deg=nan,
        source_flux_ujy=fitted("f_source"), source_flux_err_ujy=error("f_source"),
        blend_flux_ujy=fitted("f_blend"), blend_flux_err_ujy=error("f_blend"),
        chi2=np.array([row.fit.chi2 for row in rows], dtype=np.float64),
        dof=np.array([row.fit.dof for row in rows], dtype=np.uint32),
        classification=np.array([row.classification.classification for row in rows],
                                dtype="U16"),
        classification_score=np.array([row.classification.score for row in rows],
                                      dtype=np.float32),
    )  # fmt: skip
