"""Outside light curves for the event pipeline: long-format tables (Parquet or CSV) of
``object_id, time, flux, flux_err`` — or ``mag, mag_err`` instead of the fluxes — and an
optional ``dataset`` (the telescope or band: a name or an integer), cleaned the same way for
every source, so survey photometry (e.g. OGLE's and MOA's of one event) runs through the same
code.

Magnitudes become fluxes on MulensModel's scale (magnitude 22 is flux 1), so fitted source
and blend fluxes compare with its fits. Per object and dataset, points are sorted by time;
repeated times keep their first point; NaN values and non-positive errors are dropped; a
dataset left with fewer than ``min_points`` is dropped with the reason, and an object with no
dataset left is rejected with it, the others still returned. Tables that name their datasets
merge by object id (one file per telescope); a table without the column is one dataset per
object, named "".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from msos.errors import MsosError
from msos.events.model.fit import Dataset

#: MulensModel's magnitude zero point: flux 1 at this magnitude
MAG_ZERO_POINT = 22.0


@dataclass
class LightCurves:
    """Ragged light curves: light curve ``k`` is ``time[start[k]:start[k + 1]]`` (sorted), of
    object ``object_id[k]`` seen in ``dataset[k]``; an object's datasets are next to each other."""

    object_id: np.ndarray  # int64, ascending; repeated for an object's datasets
    dataset: np.ndarray  # str, the telescope or band ("" where the table names none)
    start: np.ndarray  # int64, len(object_id) + 1
    time: np.ndarray  # float64, the input's time scale
    flux: np.ndarray  # float64
    flux_err: np.ndarray  # float64
    dropped: dict[str, int] = field(default_factory=dict)  # points left out, by reason
    rejected: dict[int, str] = field(default_factory=dict)  # object id → reason
    #: datasets left out of objects that kept another: (object id, dataset) → reason
    rejected_datasets: dict[tuple[int, str], str] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.object_id.size)

    def of(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(time, flux, flux_err) of the ``k``-th light curve."""
        s = slice(self.start[k], self.start[k + 1])
        return self.time[s], self.flux[s], self.flux_err[s]

    def objects(self) -> Iterator[tuple[int, list[Dataset]]]:
        """Each object's id and datasets, the one with the most points (its primary) first:
        what the search and point-lens fit run on, and whose flux scale the catalog gives."""
        ids, first = np.unique(self.object_id, return_index=True)
        for oid, lo, hi in zip(ids, first, [*first[1:], len(self)], strict=True):
            data = [Dataset(*self.of(k), str(self.dataset[k])) for k in range(lo, hi)]
            yield int(oid), sorted(data, key=lambda d: -d.time.size)  # ties: by name


def read_table(path: str | Path, min_points: int = 10) -> LightCurves:
    """Read and clean a long-format light-curve table (``.parquet`` or ``.csv``)."""
    *columns, dataset = _points(Path(path))
    return clean(*columns, min_points=min_points, dataset=dataset)


def read_tables(
    paths: Sequence[str | Path], min_points: int = 10
) -> list[tuple[list[str], LightCurves]]:
    """The tables' light curves, one entry per catalog: tables that name their datasets
    merged by object id (one file per telescope), tables without the column each alone."""
    points = {str(path): _points(Path(path)) for path in paths}
    named = [path for path, columns in points.items() if columns[-1] is not None]
    if not named:
        return [([path], clean(*columns[:-1], min_points=min_points))
                for path, columns in points.items()]  # fmt: skip
    if len(named) < len(points):
        unnamed = next(path for path in points if path not in named)
        raise MsosError(unnamed, f"has no dataset column but {named[0]} has: name the "
                        "datasets of every table or of none")  # fmt: skip
    seen: dict[tuple[int, str], str] = {}
    for path, (ids, *_, dataset) in points.items():
        _, first = np.unique(np.rec.fromarrays([ids, dataset]), return_index=True)
        for pair in zip(ids[first].tolist(), dataset[first].tolist(), strict=True):
            if pair in seen:  # two reductions of one light curve need not share a scale
                raise MsosError(path, f"object {pair[0]} dataset {pair[1]} is in {seen[pair]} "
                                "too: give each object's dataset in one table")  # fmt: skip
            seen[pair] = path
    *merged, dataset = (np.concatenate(column) for column in zip(*points.values(), strict=True))
    return [(named, clean(*merged, min_points=min_points, dataset=dataset))]


def _points(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """A table's (object_id, time, flux, flux_err, dataset or None), fluxes from magnitudes
    where it has those; a table that cannot be used raises one line naming it."""
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
    dataset = _dataset(table, path) if "dataset" in columns else None
    return ids, column("time"), flux, err, dataset


def _dataset(table: pa.Table, path: Path) -> np.ndarray:
    """The ``dataset`` column as names: strings or integers, none of them empty."""
    values = table.column("dataset")
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    kind = values.type
    if values.null_count or not (pa.types.is_string(kind) or pa.types.is_large_string(kind)
                                 or pa.types.is_integer(kind)):  # fmt: skip
        problem = "has empty values" if values.null_count else f"is {kind}"
        raise MsosError(str(path), f"column dataset {problem}: name every point's telescope "
                        "or band (text or an integer)")  # fmt: skip
    names = np.asarray(values.to_numpy(zero_copy_only=False)).astype(str)
    if names.size and np.any(np.char.str_len(np.char.strip(names)) == 0):
        raise MsosError(str(path), "column dataset has empty values: name every point's "
                        "telescope or band (text or an integer)")  # fmt: skip
    return names


def clean(
    object_id: np.ndarray, time: np.ndarray, flux: np.ndarray, flux_err: np.ndarray,
    min_points: int = 10, dataset: np.ndarray | None = None,
) -> LightCurves:  # fmt: skip
    """Sort, de-duplicate and clean long-format points into :class:`LightCurves`, per object
    and dataset (``dataset``: each point's; None: one dataset per object, named "")."""
    names = np.full(object_id.size, "") if dataset is None else np.asarray(dataset, dtype=str)
    labels, code = np.unique(names, return_inverse=True)
    objects, at = np.unique(object_id, return_inverse=True)
    # one integer per (object, dataset), in that order: what every light curve is keyed by
    curve = at.astype(np.int64) * labels.size + code
    dropped: dict[str, int] = {}

    def drop(mask: np.ndarray, reason: str) -> np.ndarray:
        if mask.any():
            dropped[reason] = dropped.get(reason, 0) + int(mask.sum())
        return ~mask

    keep = drop(~np.isfinite(time), "time not finite")
    keep &= drop(keep & ~np.isfinite(flux), "flux not finite")
    keep &= drop(keep & ~(np.isfinite(flux_err) & (flux_err > 0)), "error not positive")
    c, t, f, e = curve[keep], time[keep], flux[keep], flux_err[keep]
    order = np.lexsort((t, c))
    c, t, f, e = c[order], t[order], f[order], e[order]
    repeat = np.zeros(c.size, dtype=bool)
    repeat[1:] = (c[1:] == c[:-1]) & (t[1:] == t[:-1])
    keep = drop(repeat, "repeated time")
    c, t, f, e = c[keep], t[keep], f[keep], e[keep]
    usable, counts = np.unique(c, return_counts=True)
    few = counts < min_points
    reasons = {int(k): "no usable points" for k in np.setdiff1d(np.unique(curve), usable)}
    reasons |= {int(k): f"{n} usable points, {min_points} needed"
                for k, n in zip(usable[few], counts[few], strict=True)}  # fmt: skip
    kept = usable[~few]
    kept_objects = set((kept // labels.size).tolist())
    rejected: dict[int, str] = {}
    rejected_datasets: dict[tuple[int, str], str] = {}
    for k, reason in sorted(reasons.items()):
        oid, name = int(objects[k // labels.size]), str(labels[k % labels.size])
        if k // labels.size in kept_objects:
            rejected_datasets[oid, name] = reason
        else:
            said = f"{name}: {reason}" if name else reason
            rejected[oid] = f"{rejected[oid]}; {said}" if oid in rejected else said
    keep = np.repeat(~few, counts)
    c, t, f, e = c[keep], t[keep], f[keep], e[keep]
    start = np.concatenate([[0], np.cumsum(counts[~few])]).astype(np.int64)
    return LightCurves(objects[kept // labels.size], labels[kept % labels.size], start, t, f,
                       e, dropped, rejected, rejected_datasets)  # fmt: skip
