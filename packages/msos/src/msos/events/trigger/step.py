"""``msos trigger``: one day of a partition's light curves through the event trigger.

Inputs: the previous day's trigger state (absent on the season's first day), then the day's
daily light curves. The state after the day is published as a working product keyed by the
day, so each day's pass reads only its own epochs and a re-run of a day starts from the
same state and gives the same answer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import date
from typing import Any

import numpy as np

from msos.errors import MsosError
from msos.events.trigger.kernel import TriggerParameters, TriggerState, update
from msos.partition_step import PartitionStep
from roman_schemas.io import load_arrays
from roman_schemas.products.msos import DailyLightCurves, MsosDailyMeta
from roman_schemas.products.msos import TriggerState as TriggerStateProduct
from ssc_common.publish import open_stored_product

log = logging.getLogger(__name__)

#: kernel state array ↔ product field
_ARRAYS = {
    "object_id": "object_id", "n_baseline": "n_baseline", "baseline": "baseline_ujy",
    "scatter_var": "scatter_var_ujy2", "error_var": "error_var_ujy2",
    "last_flux": "last_flux_ujy", "last_err2": "last_err2_ujy2", "run": "run",
    "peak_z": "peak_z", "trigger_time": "trigger_time_mjd_tdb",
}  # fmt: skip


def state_from_product(product: TriggerStateProduct) -> TriggerState:
    """The kernel's state from its stored form."""
    parameters = TriggerParameters.from_values(
        {f.name: getattr(product, f.name) for f in fields(TriggerParameters)}
    )
    last = product.last_time_mjd_tdb
    return TriggerState(
        **{name: np.array(getattr(product, stored)) for name, stored in _ARRAYS.items()},
        last_time=-np.inf if last is None else float(last), n_epochs=product.n_epochs,
        parameters=parameters,
    )  # fmt: skip


def product_from_state(state: TriggerState, meta: MsosDailyMeta) -> TriggerStateProduct:
    """The kernel's state in its stored form."""
    return TriggerStateProduct(
        meta=meta,
        **{stored: getattr(state, name) for name, stored in _ARRAYS.items()},
        last_time_mjd_tdb=None if not np.isfinite(state.last_time) else float(state.last_time),
        n_epochs=state.n_epochs,
        **{f.name: getattr(state.parameters, f.name) for f in fields(TriggerParameters)},
    )


class TriggerStep(PartitionStep):
    """Runs one day of a partition's light curves through the event trigger."""

    name = "msos.trigger"

    def process(self, input_keys: Sequence[str], parameters: Mapping[str, Any]) -> None:
        *previous, daily_key = input_keys
        if len(previous) > 1:
            raise MsosError(self.partition.name, "give at most one previous trigger state")
        with open_stored_product(self.ctx, daily_key, DailyLightCurves) as opened:
            daily = load_arrays(opened, daily_key)
        day = daily.meta.day
        if previous:
            with open_stored_product(self.ctx, previous[0], TriggerStateProduct) as opened:
                stored = load_arrays(opened, previous[0])
            if stored.meta.day >= day:
                raise MsosError(
                    previous[0], f"is the state after {stored.meta.day}, not before {day}"
                )
            state = state_from_product(stored)
        else:
            state = TriggerState.new(
                np.asarray(daily.object_id), TriggerParameters.from_values(parameters)
            )
        fired = update(
            state, np.asarray(daily.object_id), np.asarray(daily.epochs.time_mjd_tdb),
            np.asarray(daily.delta_flux_ujy), np.asarray(daily.delta_flux_err_ujy),
            np.asarray(daily.flags),
        )  # fmt: skip
        log.info("%d objects triggered on %s (%d so far)", fired.size, day,
                 int(state.triggered.sum()), extra={"step": self.name})  # fmt: skip
        fields_ = daily.meta.model_dump(exclude={"product_type", "model_type", "file_date"})
        meta = MsosDailyMeta(**TriggerStateProduct.new_meta(**fields_))
        self.publish(product_from_state(state, meta), self.partition.trigger_state_key(day),
                     parameters)  # fmt: skip


def trigger_day(
    ctx: Any, partition: Any, day: date, parameters: Mapping[str, Any] | None = None
) -> Any:
    """Run the trigger for ``day`` from the latest earlier state in storage (if any)."""
    previous = _previous_state(ctx, partition, day)
    keys = [*previous, partition.daily_key(day)]
    return TriggerStep(ctx, partition).run(keys, dict(parameters or {}), partition=partition.name)


def latest_state(ctx: Any, partition: Any) -> list[str]:
    """The key of the partition's latest trigger state, as a list (empty: none)."""
    return _previous_state(ctx, partition, date.max)


def _previous_state(ctx: Any, partition: Any, day: date) -> list[str]:
    """The key of the latest trigger state before ``day``, as a list (empty: none)."""
    prefix = f"{partition.prefix}/events/trigger/"
    days = []
    for info in ctx.storage.list(prefix):
        name = info.key[len(prefix) :].split("/", 1)[0]
        try:
            stored = date.fromisoformat(name)
        except ValueError:
            continue
        if stored < day:
            days.append(stored)
    return [partition.trigger_state_key(max(days))] if days else []


def newly_triggered(ctx: Any, partition: Any, day: date) -> np.ndarray:
    """Object ids whose first trigger fell on ``day`` (from the stored state after it)."""
    key = partition.trigger_state_key(day)
    with open_stored_product(ctx, key, TriggerStateProduct) as opened:
        state = load_arrays(opened, key)
        last = state.last_time_mjd_tdb
        times = np.asarray(state.trigger_time_mjd_tdb)
        ids = np.asarray(state.object_id)
    with open_stored_product(ctx, partition.daily_key(day), DailyLightCurves) as opened:
        first = float(np.min(np.asarray(opened.epochs.time_mjd_tdb)))
    if last is None:
        return np.zeros(0, dtype=np.int64)
    return ids[(times >= first) & (times <= last)]
