"""Outside light curves for the event pipeline: long-format tables (Parquet or CSV) of
``object_id, time, flux, flux_err`` — or ``mag, mag_err`` instead of the fluxes — cleaned the
same way for every source, so survey photometry (e.g. OGLE's) runs through the same code.

Magnitudes become fluxes on MulensModel's scale (magnitude 22 is flux 1), so fitted source
and blend fluxes compare with its fits. Per object, points are sorted by time; repeated
times keep their first point; NaN values and non-positive errors are dropped; an object left
with fewer than ``min_points`` is rejected with the reason, the others still returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from msos.errors import MsosError

#: MulensModel's magnitude zero point: flux 1 at this magnitude
MAG_ZERO_POINT = 22.0


@dataclass
class LightCurves:
    """Ragged light curves: object ``k`` is ``time[start[k]:start[k + 1]]`` (sorted)."""

    object_id: np.ndarray  # int64, ascending
    start: np.ndarray  # int64, len(object_id) + 1
    time: np.ndarray  # float64, the input's time scale
    flux: np.ndarray  # float64
    flux_err: np.ndarray  # float64
    dropped: dict[str, int] = field(default_factory=dict)  # points left out, by reason
    rejected: dict[int, str] = field(default_factory=dict)  # object id → reason

    def __len__(self) -> int:
        return int(self.object_id.size)

    def of(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(time, flux, flux_err) of the ``k``-th object."""
        s = slice(self.start[k], self.start[k + 1])
        return self.time[s], self.flux[s], self.flux_err[s]


def read_table(path: str | Path, min_points: int = 10) -> LightCurves:
    """Read and clean a long-format light-curve table (``.parquet`` or ``.csv``)."""
    path = Path(path)
    try:
        parquet = path.suffix.lower() == ".parquet"
        table = pq.read_table(path) if parquet else pacsv.read_csv(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise MsosError(str(path), f"not a readable table ({' '.join(str(exc).split())})") from None
    columns = set(table.column_names)
    if {"object_id", "time"} - columns:
        raise MsosError(str(path), f"needs columns object_id and time; has {sorted(columns)}")

    def column(name: str) -> np.ndarray:
        values = table.column(name).to_numpy(zero_copy_only=False)
        try:
            return np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise MsosError(str(path), f"column {name} is not numeric") from None

    if {"flux", "flux_err"} <= columns:
        flux, err = column("flux"), column("flux_err")
    elif {"mag", "mag_err"} <= columns:
        mag, mag_err = column("mag"), column("mag_err")
        flux = 10 ** (-0.4 * (mag - MAG_ZERO_POINT))
        err = 0.4 * np.log(10) * flux * mag_err
    else:
        raise MsosError(str(path), "needs flux, flux_err or mag, mag_err columns")
    try:
        ids = np.asarray(table.column("object_id").to_numpy(zero_copy_only=False), dtype=np.int64)
    except (TypeError, ValueError, pa.ArrowInvalid):
        raise MsosError(str(path), "object_id must be integers") from None
    return clean(ids, column("time"), flux, err, min_points=min_points)


def clean(
    object_id: np.ndarray, time: np.ndarray, flux: np.ndarray, flux_err: np.ndarray,
    min_points: int = 10,
) -> LightCurves:  # fmt: skip
    """Sort, de-duplicate and clean long-format points into :class:`LightCurves`."""
    dropped: dict[str, int] = {}

    def drop(mask: np.ndarray, reason: str) -> np.ndarray:
        if mask.any():
            dropped[reason] = dropped.get(reason, 0) + int(mask.sum())
        return ~mask

    keep = drop(~np.isfinite(time), "time not finite")
    keep &= drop(keep & ~np.isfinite(flux), "flux not finite")
    keep &= drop(keep & ~(np.isfinite(flux_err) & (flux_err > 0)), "error not positive")
    ids, t, f, e = object_id[keep], time[keep], flux[keep], flux_err[keep]
    order = np.lexsort((t, ids))
    ids, t, f, e = ids[order], t[order], f[order], e[order]
    repeat = np.zeros(ids.size, dtype=bool)
    repeat[1:] = (ids[1:] == ids[:-1]) & (t[1:] == t[:-1])
    keep = drop(repeat, "repeated time")
    ids, t, f, e = ids[keep], t[keep], f[keep], e[keep]
    unique, counts = np.unique(ids, return_counts=True)
    rejected = {}
    few = counts < min_points
    for oid, n in zip(unique[few], counts[few], strict=True):
        rejected[int(oid)] = f"{n} usable points, {min_points} needed"
    for oid in np.setdiff1d(np.unique(object_id), unique):
        rejected[int(oid)] = "no usable points"
    keep = np.repeat(~few, counts)
    ids, t, f, e = ids[keep], t[keep], f[keep], e[keep]
    unique, counts = unique[~few], counts[~few]
    start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return LightCurves(unique, start, t, f, e, dropped, rejected)
