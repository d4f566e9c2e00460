"""``msos variability``: a partition's season light curves become its L4 variability catalog
(statistics of every object) and its periodic-object catalog (the variables with a period).

Input: the season's L4 light-curve catalog; statistics are of the total flux (difference flux
plus the object's reference flux), epochs in time order, flagged epochs left out. Parameters
(all optional): the cuts of :class:`~msos.variability.kernel.VariabilityCuts` (``chi2_min``,
``eta_sigma``, ``j_min``) and the search of :class:`~msos.variability.period.PeriodSettings`
(``fap_max``, ``min_cycles``, ``max_frequency_per_d``, ``oversample``, ``max_harmonics``,
``subharmonics``, ``eb_dip_max``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any, TypeVar

import numpy as np

from msos.partition import Partition
from msos.partition_step import PartitionStep
from msos.products import derived_meta
from msos.variability.kernel import (
    VariabilityCuts,
    VariabilityStatistics,
    select_variables,
    variability_statistics,
)
from msos.variability.period import PeriodFit, PeriodSettings, frequency_grid, search_periods
from roman_schemas.io import load_arrays
from roman_schemas.products.msos import (
    LightCurveCatalog,
    MsosPartitionMeta,
    MsosRegionMeta,
    ObjectPeriodicCatalog,
    PeriodicObjects,
    VariabilityCatalog,
    VariableObjects,
)
from ssc_common.publish import open_stored_product

log = logging.getLogger(__name__)

S = TypeVar("S")


def settings_from(cls: type[S], parameters: Mapping[str, Any]) -> S:
    """The ``cls`` dataclass the parameters ask for (its defaults where they are silent)."""
    defaults = cls()
    given = {
        f.name: type(getattr(defaults, f.name))(parameters[f.name])
        for f in fields(cls)
        if parameters.get(f.name) is not None
    }
    return cls(**given)


class VariabilityStep(PartitionStep):
    """Measures the variability of a partition's season light curves and their periods."""

    name = "msos.variability"

    def process(self, input_keys: Sequence[str], parameters: Mapping[str, Any]) -> None:
        (season_key,) = input_keys
        with open_stored_product(self.ctx, season_key, LightCurveCatalog) as opened:
            season = load_arrays(opened, season_key)
        time = np.asarray(season.epochs.time_mjd_tdb, dtype=np.float64)
        flux, err, flags = season.delta_flux_ujy, season.delta_flux_err_ujy, season.flags
        if np.any(np.diff(time) < 0):  # η and J pair each epoch with the next in time
            order = np.argsort(time, kind="stable")
            time, flux, err, flags = time[order], flux[:, order], err[:, order], flags[:, order]
        ref = np.asarray(season.objects.ref_flux_ujy, dtype=np.float64)
        stats = variability_statistics(flux, err, flags, offset=ref)
        variable = select_variables(stats, settings_from(VariabilityCuts, parameters))
        period_settings = settings_from(PeriodSettings, parameters)
        grid = frequency_grid(float(time[-1] - time[0]), period_settings)
        rows = np.flatnonzero(variable)
        total = np.asarray(flux[rows], dtype=np.float64) + ref[rows, None]
        found = search_periods(time, total, err[rows], flags[rows], np.arange(rows.size), grid,
                               period_settings)  # fmt: skip
        periodic = {int(rows[k]): fit for k, fit in found.items()}
        log.info("%d objects, %d variable, %d periodic", len(stats), rows.size, len(periodic),
                 extra={"step": self.name})  # fmt: skip
        self.publish(
            VariabilityCatalog(
                meta=derived_meta(season.meta, VariabilityCatalog, MsosRegionMeta),
                objects=variable_objects(stats, variable, season, self.partition),
            ),
            self.partition.variability_key(), parameters,
        )  # fmt: skip
        self.publish(
            ObjectPeriodicCatalog(
                meta=derived_meta(season.meta, ObjectPeriodicCatalog, MsosPartitionMeta),
                frequency_grid_per_d=grid,
                objects=periodic_objects(periodic, season),
            ),
            self.partition.periodic_key(), parameters,
        )  # fmt: skip


def variable_objects(
    stats: VariabilityStatistics, variable: np.ndarray, season: LightCurveCatalog,
    partition: Partition,
) -> VariableObjects:  # fmt: skip
    """The variability catalog's table: every object of the season, in its order."""
    n = len(stats)

    def f32(values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float32)

    return VariableObjects(
        object_id=np.asarray(season.object_id, dtype=np.int64),
        field=np.full(n, partition.field, dtype="U3"),
        detector=np.full(n, partition.detector, dtype="U5"),
        ra_deg=np.asarray(season.objects.ra_deg, dtype=np.float64),
        dec_deg=np.asarray(season.objects.dec_deg, dtype=np.float64),
        n_epochs=stats.n_epochs.astype(np.uint32),
        mean_flux_ujy=f32(stats.mean), std_flux_ujy=f32(stats.std), mad_flux_ujy=f32(stats.mad),
        chi2_dof=f32(stats.chi2_dof), von_neumann_eta=f32(stats.eta),
        stetson_j=f32(stats.stetson_j), stetson_k=f32(stats.stetson_k),
        skewness=f32(stats.skewness), amplitude_ujy=f32(stats.amplitude),
        is_variable=np.asarray(variable, dtype=bool),
    )  # fmt: skip


def periodic_objects(found: dict[int, PeriodFit], season: LightCurveCatalog) -> PeriodicObjects:
    """The periodic-object catalog's table: one row per object with a period, in the season's
    object order (``found``: season row → fit)."""
    rows = np.array(sorted(found), dtype=np.int64)
    fits = [found[int(row)] for row in rows]

    def column(name: str, dtype: Any) -> np.ndarray:
        return np.array([getattr(fit, name) for fit in fits], dtype=dtype).reshape(rows.size)

    return PeriodicObjects(
        object_id=np.asarray(season.object_id, dtype=np.int64)[rows],
        ra_deg=np.asarray(season.objects.ra_deg, dtype=np.float64)[rows],
        dec_deg=np.asarray(season.objects.dec_deg, dtype=np.float64)[rows],
        period_d=column("period_d", np.float64), period_err_d=column("period_err_d", np.float64),
        epoch_mjd_tdb=column("epoch_mjd_tdb", np.float64),
        amplitude_ujy=column("amplitude", np.float32), power=column("power", np.float32),
        false_alarm_probability=column("false_alarm_probability", np.float64),
        n_harmonics=column("n_harmonics", np.uint8), n_epochs=column("n_epochs", np.uint32),
        variable_class=column("variable_class", "U24"),
    )  # fmt: skip
