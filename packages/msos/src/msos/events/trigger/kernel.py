"""The daily event trigger: a running baseline per object, and a run of significant
brightenings over it fires.

Each object keeps a small state between days — its baseline flux, its epoch-to-epoch
scatter and the photometric errors' share of it, its last flux, and the current run of
significant brightenings — so a day's pass reads only that day's epochs (the work scales
with the day, not the season). An epoch is significant when ``z = (f − baseline) / σ``
exceeds ``threshold``, with ``σ² = err² + excess`` and ``excess`` the scatter the errors do
not explain. The scatter comes from differences of consecutive epochs (half their mean
square), which a slow rise barely touches: measured about the baseline instead, an event
days long would raise its own bar as it rose. Stars varying from epoch to epoch need a
larger excursion to fire; smooth variables do fire, and the classification tells them apart.
``min_run`` consecutive significant brightenings trigger the object. Only epochs within
``clip`` σ update the baseline (an exponentially weighted mean over ``window`` epochs, a
plain mean while fewer have been seen), so an event does not drag its own baseline up.
Times at or before the last epoch already seen are skipped: re-running a day changes
nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numba
import numpy as np


@dataclass(frozen=True)
class TriggerParameters:
    """What makes an object trigger (defaults: 3 epochs in a row above 3σ, 5 days of memory
    at Roman's 15-minute cadence)."""

    threshold: float = 3.0
    min_run: int = 3
    clip: float = 3.0
    window: int = 480  # epochs the baseline remembers (exponential weighting)
    warmup: int = 10  # baseline epochs before an object can trigger

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> TriggerParameters:
        """The parameters named in ``values`` (others ignored; defaults where absent)."""
        known = {f.name: f for f in fields(cls)}
        kept = {}
        for name, value in values.items():
            if name in known:
                kept[name] = int(value) if known[name].type == "int" else float(value)
        return cls(**kept)


@dataclass
class TriggerState:
    """Per-object trigger state of one partition, carried from day to day."""

    object_id: np.ndarray  # int64, sorted
    n_baseline: np.ndarray  # int32: epochs that went into the baseline
    baseline: np.ndarray  # float64: baseline flux (the light curves' unit)
    scatter_var: np.ndarray  # float64: half the mean square of consecutive differences
    error_var: np.ndarray  # float64: the same pairs' mean err²
    last_flux: np.ndarray  # float64: the last good epoch's flux and err² (NaN: none yet)
    last_err2: np.ndarray
    run: np.ndarray  # int32: current run of significant brightenings
    peak_z: np.ndarray  # float32: largest significance seen
    trigger_time: np.ndarray  # float64: first trigger (NaN: not triggered)
    last_time: float = -np.inf  # the last epoch's time already processed
    n_epochs: int = 0  # epochs processed
    parameters: TriggerParameters = field(default_factory=TriggerParameters)

    @classmethod
    def new(
        cls, object_id: np.ndarray, parameters: TriggerParameters | None = None
    ) -> TriggerState:
        """A fresh state for ``object_id`` (nothing seen yet)."""
        ids = np.unique(np.asarray(object_id, dtype=np.int64))
        n = ids.size
        return cls(
            object_id=ids, n_baseline=np.zeros(n, np.int32), baseline=np.zeros(n),
            scatter_var=np.zeros(n), error_var=np.zeros(n), last_flux=np.full(n, np.nan),
            last_err2=np.full(n, np.nan), run=np.zeros(n, np.int32),
            peak_z=np.zeros(n, np.float32), trigger_time=np.full(n, np.nan),
            parameters=parameters or TriggerParameters(),
        )  # fmt: skip

    @property
    def triggered(self) -> np.ndarray:
        """Objects that have triggered (boolean, in ``object_id`` order)."""
        return np.isfinite(self.trigger_time)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every per-object array and the scalars, by name (to compare states)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "parameters"}
        out["last_time"] = np.float64(self.last_time)
        out["n_epochs"] = np.int64(self.n_epochs)
        return out


def _epoch_order(time: np.ndarray, after: float) -> np.ndarray:
    """Columns to process, in time order: finite, later than ``after``, first of duplicates."""
    time = np.asarray(time, dtype=np.float64)
    keep = np.flatnonzero(np.isfinite(time) & (time > after))
    order = keep[np.argsort(time[keep], kind="stable")]
    if order.size:
        first = np.concatenate([[True], np.diff(time[order]) > 0])
        order = order[first]
    return order


def update(
    state: TriggerState,
    object_id: np.ndarray,
    time: np.ndarray,
    flux: np.ndarray,
    flux_err: np.ndarray,
    flags: np.ndarray | None = None,
) -> np.ndarray:
    """Run one day's epochs (``flux``, ``flux_err``, ``flags``: objects × epochs, any time
    order) through ``state``; returns the object ids that triggered during them.

    Rows are matched to the state by ``object_id``; objects it has not seen are added.
    Epochs at or before the state's last time, duplicated times, NaN fluxes, non-positive
    or NaN errors and flagged measurements are skipped."""
    ids = np.asarray(object_id, dtype=np.int64)
    _add_objects(state, ids)
    rows = np.searchsorted(state.object_id, ids)
    order = _epoch_order(time, state.last_time)
    if order.size == 0:
        return np.zeros(0, dtype=np.int64)
    t = np.asarray(time, dtype=np.float64)[order]
    in_order = order.size == np.shape(time)[0] and bool(np.all(np.diff(order) == 1))
    pick = slice(None) if in_order else order  # a day already in order is not copied
    f = np.asarray(flux)[:, pick]
    e = np.asarray(flux_err)[:, pick]
    g = np.zeros((1, 1), np.bool_) if flags is None else (np.asarray(flags)[:, pick] != 0)
    p = state.parameters
    fired = np.zeros(ids.size, dtype=np.bool_)
    _update_rows(
        rows, t, f, e, g.view(np.uint8), state.n_baseline, state.baseline, state.scatter_var,
        state.error_var, state.last_flux, state.last_err2, state.run, state.peak_z,
        state.trigger_time, fired,
        float(p.threshold), int(p.min_run), float(p.clip), int(p.window), int(p.warmup),
    )  # fmt: skip
    state.last_time = float(t[-1])
    state.n_epochs += int(t.size)
    return ids[fired]


def _add_objects(state: TriggerState, ids: np.ndarray) -> None:
    """Grow the state by the objects of ``ids`` it does not hold yet (kept sorted)."""
    new = np.setdiff1d(ids, state.object_id)
    if new.size == 0:
        return
    grown = TriggerState.new(np.concatenate([state.object_id, new]), state.parameters)
    old_rows = np.searchsorted(grown.object_id, state.object_id)
    for f in fields(TriggerState):
        if f.name in ("object_id", "last_time", "n_epochs", "parameters"):
            continue
        getattr(grown, f.name)[old_rows] = getattr(state, f.name)
    for f in fields(TriggerState):
        if f.name in ("last_time", "n_epochs", "parameters"):
            continue
        setattr(state, f.name, getattr(grown, f.name))


# fast math without the no-NaN/no-inf assumptions: NaN is how a missing measurement arrives
@numba.njit(cache=True, fastmath={"arcp", "contract", "afn", "reassoc", "nsz"})
def _update_rows(
    rows: np.ndarray, t: np.ndarray, f: np.ndarray, e: np.ndarray, bad: np.ndarray,
    n_baseline: np.ndarray, baseline: np.ndarray, scatter_var: np.ndarray,
    error_var: np.ndarray, last_flux: np.ndarray, last_err2: np.ndarray, run: np.ndarray,
    peak_z: np.ndarray, trigger_time: np.ndarray, fired: np.ndarray, threshold: float,
    min_run: int, clip: float, window: int, warmup: int,
) -> None:  # fmt: skip
    n_obj, n_ep = f.shape
    flagged = bad.shape == f.shape  # (1, 1): no flags given
    for i in range(n_obj):
        k = rows[i]
        n = n_baseline[k]
        mean = baseline[k]
        var = scatter_var[k]
        evar = error_var[k]
        previous = last_flux[k]
        previous_e2 = last_err2[k]
        r = run[k]
        peak = peak_z[k]
        for j in range(n_ep):
            fj = f[i, j]
            ej = e[i, j]
            if (flagged and bad[i, j] != 0) or np.isnan(fj) or not (0.0 < ej < np.inf):
                continue
            e2 = ej * ej
            if not np.isnan(previous):  # the scatter, from this and the last good epoch
                step = n if n < window else window
                inverse = 1.0 / (step if step > 1 else 1)
                half = 0.5 * (fj - previous) * (fj - previous)
                var += (half - var) * inverse
                evar += (0.5 * (e2 + previous_e2) - evar) * inverse
            previous = fj
            previous_e2 = e2
            if n < warmup:  # still learning the baseline: a plain running mean
                n += 1
                mean += (fj - mean) / n
                continue
            excess = var - evar
            sigma2 = e2 + (excess if excess > 0.0 else 0.0)
            z = (fj - mean) / np.sqrt(sigma2)
            if z > peak:
                peak = z
            if z > threshold:
                r += 1
                if r >= min_run and np.isnan(trigger_time[k]):
                    trigger_time[k] = t[j]
                    fired[i] = True
            else:
                r = 0
            if -clip < z < clip:
                n += 1
                mean += (fj - mean) / (n if n < window else window)
        n_baseline[k] = n
        baseline[k] = mean
        scatter_var[k] = var
        error_var[k] = evar
        last_flux[k] = previous
        last_err2[k] = previous_e2
        run[k] = r
        peak_z[k] = peak
