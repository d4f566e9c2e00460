"""``msos events``: a partition's season light curves become its microlensing event catalog.

Inputs: the season's L4 light-curve catalog, then optionally the trigger's last state (only
the objects it triggered are searched; without it, every object is). Fluxes are fitted as
total fluxes (difference flux plus the reference flux), so ``f_source`` and ``f_blend`` are
µJy on the sky. Detections classified as variable stars or artefacts stay out of the event
catalog (they belong to the variability catalog); events go in with the model the data
support (PSPL, FSPL, parallax, binary lens) and its Fisher errors. Parameters: ``models``
(comma-separated subset of ``FSPL,parallax,2L1S`` the selection may try; empty: PSPL only),
``threshold`` (search Δχ²).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from msos.events.catalog.kernel import DEFAULT_THRESHOLD, EventRow, find_events
from msos.events.dqa import event_dqa, plot_event, publish_event_dqa
from msos.events.model.lens import parameter_names
from msos.events.model.select import SelectionSettings
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
EVENT_CLASSES = ("single_lens", "planetary", "binary_lens", "candidate")
#: the models beyond PSPL a step may be told to try (parameter ``models``)
HIGHER_MODELS = ("FSPL", "parallax", "2L1S")


def selection_settings(models: str | None) -> SelectionSettings:
    """The selection a ``models`` parameter asks for (None, the default: every model; an
    empty string: the point lens alone)."""
    if models is None:
        return SelectionSettings()
    asked = {m.strip() for m in models.split(",") if m.strip()}
    unknown = asked - set(HIGHER_MODELS)
    if unknown:
        raise ValueError(f"unknown models {sorted(unknown)}: "
                         f"a subset of {','.join(HIGHER_MODELS)}")  # fmt: skip
    return SelectionSettings(finite_source="FSPL" in asked, parallax="parallax" in asked,
                             binary="2L1S" in asked)  # fmt: skip


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
        flux = np.asarray(season.delta_flux_ujy[rows], dtype=np.float64) + ref[:, None]
        found, skipped = find_events(
            ids[rows], np.asarray(season.epochs.time_mjd_tdb), flux,
            np.asarray(season.delta_flux_err_ujy[rows], dtype=np.float64),
            np.asarray(season.flags[rows]),
            threshold=float(parameters.get("threshold", DEFAULT_THRESHOLD)),
            positions=np.column_stack([np.asarray(objects.ra_deg, dtype=np.float64)[rows],
                                       np.asarray(objects.dec_deg, dtype=np.float64)[rows]]),
            selection=selection_settings(parameters.get("models")),
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
        # each event's DQA report first: a catalog on record means its reports are too
        events = product.events
        by_object = {row.object_id: row for row in kept}
        for k, event in enumerate(np.asarray(events.event_id)):
            row = by_object[int(events.object_id[k])]
            if row.model is None or row.data is None:
                continue
            report = event_dqa(
                str(event), row.object_id, row.classification.classification,
                float(events.ra_deg[k]), float(events.dec_deg[k]), self.partition, row.data,
                row.model, program=season.meta.program,
            )  # fmt: skip
            publish_event_dqa(self, report, plot_event(str(event), row.data, row.model),
                              parameters)  # fmt: skip
        self.publish(product, self.partition.events_key(), parameters)


def events_table(rows: list[EventRow], season: LightCurveCatalog, partition: Any) -> Events:
    """The partition catalog's table: one row per event, in time order."""
    rows = sorted(rows, key=lambda row: row.fit.t_0)
    index = {int(oid): k for k, oid in enumerate(np.asarray(season.objects.object_id))}
    at = np.array([index[row.object_id] for row in rows], dtype=np.int64)
    return event_rows_table(
        rows, [event_name(partition, row.object_id) for row in rows], partition.field,
        partition.detector, np.asarray(season.objects.ra_deg, dtype=np.float64)[at],
        np.asarray(season.objects.dec_deg, dtype=np.float64)[at],
    )  # fmt: skip


def event_rows_table(
    rows: list[EventRow], names: list[str], field: str, detector: str, ra_deg: np.ndarray,
    dec_deg: np.ndarray,
) -> Events:  # fmt: skip
    """``rows`` as the catalog's table (in their order): the selected model's parameters and
    errors (NaN where the model has no such parameter; the compiled PSPL fit where no model
    was selected)."""
    n = len(rows)
    values = [_model_values(row) for row in rows]

    def column(name: str) -> np.ndarray:
        return np.array([v.get(name, np.nan) for v in values], dtype=np.float64)

    return Events(
        event_id=np.array(names, dtype="U32").reshape(n),
        object_id=np.array([row.object_id for row in rows], dtype=np.int64),
        field=np.full(n, field, dtype="U3"),
        detector=np.full(n, detector, dtype="U5"),
        ra_deg=np.asarray(ra_deg, dtype=np.float64), dec_deg=np.asarray(dec_deg, dtype=np.float64),
        t_peak_mjd_tdb=np.array([row.detection.t_0 for row in rows], dtype=np.float64),
        delta_chi2=np.array([row.detection.delta_chi2 for row in rows], dtype=np.float32),
        peak_snr=np.array([row.peak_snr for row in rows], dtype=np.float32),
        n_points_magnified=np.array([row.n_points_magnified for row in rows], dtype=np.uint32),
        model_type=np.array([v["model"] for v in values], dtype="U12").reshape(n),
        t_0_mjd_tdb=column("t_0"), t_0_err_d=column("t_0_err"),
        u_0=column("u_0"), u_0_err=column("u_0_err"),
        t_E_d=column("t_E"), t_E_err_d=column("t_E_err"),
        rho=column("rho"), rho_err=column("rho_err"),
        pi_E_N=column("pi_E_N"), pi_E_N_err=column("pi_E_N_err"),
        pi_E_E=column("pi_E_E"), pi_E_E_err=column("pi_E_E_err"),
        q=column("q"), q_err=column("q_err"), s=column("s"), s_err=column("s_err"),
        alpha_deg=column("alpha"), alpha_err_deg=column("alpha_err"),
        source_flux_ujy=column("f_source"), source_flux_err_ujy=column("f_source_err"),
        blend_flux_ujy=column("f_blend"), blend_flux_err_ujy=column("f_blend_err"),
        chi2=column("chi2"),
        dof=np.array([v["dof"] for v in values], dtype=np.uint32),
        classification=np.array([row.classification.classification for row in rows],
                                dtype="U16").reshape(n),
        classification_score=np.array([row.classification.score for row in rows],
                                      dtype=np.float32),
    )  # fmt: skip


def event_name(partition: Any, object_id: int) -> str:
    """An event's catalog name: survey season, field and the object's number."""
    return f"MSOS-{partition.season}-{partition.field}-{object_id % 10**6:06d}"


def _model_values(row: EventRow) -> dict[str, Any]:
    """A row's model as catalog values: the selected model, else the compiled PSPL fit."""
    fit = row.model
    if fit is None:
        pspl = row.fit
        names = (*parameter_names("PSPL"), "f_source", "f_blend")
        out: dict[str, Any] = {"model": "PSPL", "chi2": pspl.chi2, "dof": pspl.dof}
        for name in names:
            out[name], out[f"{name}_err"] = getattr(pspl, name), pspl.error(name)
        return out
    out = {
        "model": fit.model,
        "chi2": fit.chi2,
        "dof": fit.dof,
        **fit.params,
        **{f"{name}_err": error for name, error in fit.errors.items()},
    }
    out |= {"f_source": fit.f_source[0], "f_source_err": fit.f_source_err[0],
            "f_blend": fit.f_blend[0], "f_blend_err": fit.f_blend_err[0]}  # fmt: skip
    return out
