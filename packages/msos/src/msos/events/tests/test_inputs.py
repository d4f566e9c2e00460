"""Outside light-curve tables: fluxes or magnitudes, cleaned point by point per object and
dataset (telescope), short light curves rejected with their reason, tables of several
telescopes merged by object, unreadable tables named in a one-line error."""

from __future__ import annotations

from pathlib import Path

import MulensModel
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from msos.errors import MsosError
from msos.events.inputs import MAG_ZERO_POINT, read_table, read_tables

OGLE = Path(MulensModel.__file__).parent / "data" / "photometry_files" / "OB05086"


def test_an_ogle_file_read_as_magnitudes_gives_mulensmodels_fluxes(tmp_path):
    time, mag, err = np.loadtxt(next(OGLE.glob("*.dat")), unpack=True)
    path = tmp_path / "ogle.csv"
    pacsv.write_csv(pa.table({"object_id": np.full(time.size, 7), "time": time, "mag": mag,
                              "mag_err": err}), path)  # fmt: skip
    curves = read_table(path)
    t, flux, flux_err = curves.of(0)
    theirs = MulensModel.MulensData([time, mag, err], phot_fmt="mag")
    order = np.argsort(time)
    np.testing.assert_allclose(t, time[order])
    np.testing.assert_allclose(flux, theirs.flux[order], rtol=1e-12)
    np.testing.assert_allclose(flux_err, theirs.err_flux[order], rtol=1e-12)
    assert MAG_ZERO_POINT == MulensModel.utils.MAG_ZEROPOINT


def test_bad_points_are_dropped_with_their_reasons_and_short_curves_rejected(tmp_path):
    rng = np.random.default_rng(1)
    ids = np.repeat([1, 2, 3], [30, 30, 3])
    time = rng.permutation(ids.size).astype(float)
    flux = rng.normal(10, 1, ids.size)
    err = np.full(ids.size, 1.0)
    time[ids == 2] = np.arange(30.0)[::-1]  # unsorted
    time[np.flatnonzero(ids == 2)[1]] = time[np.flatnonzero(ids == 2)[0]]  # a repeated time
    flux[0], err[1], err[2], time[3] = np.nan, 0.0, -1.0, np.nan
    path = tmp_path / "curves.parquet"
    pq.write_table(pa.table({"object_id": ids, "time": time, "flux": flux, "flux_err": err}),
                   path)  # fmt: skip
    curves = read_table(path)
    assert list(curves.object_id) == [1, 2]
    assert curves.rejected == {3: "3 usable points, 10 needed"}
    assert curves.dropped == {"time not finite": 1, "flux not finite": 1,
                              "error not positive": 2, "repeated time": 1}  # fmt: skip
    t, _, _ = curves.of(1)
    assert t.size == 29 and np.all(np.diff(t) > 0)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x00\x01 not a table", "not a readable table"),
        (b"object_id,time,flux\n1,2.0,3.0\n", "needs flux, flux_err or mag, mag_err"),
        (b"id,time,flux,flux_err\n1,2.0,3.0,1.0\n", "needs columns object_id and time"),
        (b"object_id,time,flux,flux_err\n1,2.0,abc,1.0\n", "column flux is not numeric"),
        (b"object_id,time,flux,flux_err,dataset\n1,2.0,3.0,1.0,\n", "dataset has empty values"),
        (
            b"object_id,time,flux,flux_err,dataset\n1,2.0,3.0,1.0,OGLE\n1,3.0,3.0,1.0,\n",
            "dataset has empty values",
        ),
        (
            b"object_id,time,flux,flux_err,dataset\n1,2.0,3.0,1.0,7\n1,3.0,3.0,1.0,\n",
            "dataset has empty values",
        ),
        (b"object_id,time,flux,flux_err,dataset\n1,2.0,3.0,1.0,0.5\n", "dataset is double"),
    ],
)
def test_an_unusable_table_is_named_with_its_problem(tmp_path, content, reason):
    path = tmp_path / "bad.parquet"
    path.write_bytes(content)
    if content.startswith(b"object") or content.startswith(b"id"):
        path = path.with_suffix(".csv")
        path.write_bytes(content)
    with pytest.raises(MsosError, match=reason) as caught:
        read_table(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def _table(path: Path, ids, time, flux, dataset=None) -> Path:
    columns = {"object_id": ids, "time": time, "flux": flux, "flux_err": np.ones(len(ids))}
    if dataset is not None:
        columns["dataset"] = dataset
    (pq.write_table if path.suffix == ".parquet" else pacsv.write_csv)(pa.table(columns), path)
    return path


def test_points_are_cleaned_per_dataset_and_a_short_dataset_is_dropped_with_its_reason(tmp_path):
    # object 1: OGLE 40 points (one time repeated), MOA 25 (at OGLE's times), KMT 5;
    # object 2: OGLE 3 points, MOA none usable
    ids = np.repeat([1, 1, 1, 2, 2], [41, 25, 5, 3, 12])
    dataset = np.repeat(["OGLE", "MOA", "KMT", "OGLE", "MOA"], [41, 25, 5, 3, 12])
    time = np.concatenate([np.arange(40.0)[::-1], [7.0], np.arange(25.0), np.arange(5.0),
                           np.arange(3.0), np.arange(12.0)])  # fmt: skip
    flux = np.where((ids == 2) & (dataset == "MOA"), np.nan, 10.0)
    curves = read_table(_table(tmp_path / "curves.parquet", ids, time, flux, dataset))
    assert list(curves.object_id) == [1, 1] and list(curves.dataset) == ["MOA", "OGLE"]
    assert curves.rejected_datasets == {(1, "KMT"): "5 usable points, 10 needed"}
    assert curves.rejected == {2: "MOA: no usable points; OGLE: 3 usable points, 10 needed"}
    # MOA's times are OGLE's too: a repeat only within one dataset
    assert curves.dropped == {"flux not finite": 12, "repeated time": 1}
    (oid, data), *others = curves.objects()
    assert oid == 1 and not others
    assert [(d.name, d.time.size) for d in data] == [("OGLE", 40), ("MOA", 25)]  # primary first
    assert np.all(np.diff(data[0].time) > 0)


def test_integer_dataset_names_are_read_as_names(tmp_path):
    time, telescope = np.tile(np.arange(10.0), 2), np.repeat([1, 2], 10)
    curves = read_table(_table(tmp_path / "curves.csv", np.full(20, 5), time, time, telescope))
    assert list(curves.dataset) == ["1", "2"]


def test_tables_naming_their_datasets_merge_by_object_the_others_stay_apart(tmp_path):
    ids, time = np.full(20, 3), np.arange(20.0)
    ogle = _table(tmp_path / "ogle.csv", ids, time, np.ones(20), ["OGLE"] * 20)
    moa = _table(tmp_path / "moa.parquet", ids[:15], time[:15], np.ones(15), ["MOA"] * 15)
    [(sources, curves)] = read_tables([ogle, moa])
    assert sources == [str(ogle), str(moa)]
    [(oid, data)] = curves.objects()
    assert oid == 3 and [d.name for d in data] == ["OGLE", "MOA"]
    plain = [_table(tmp_path / f"{name}.csv", ids, time, np.ones(20)) for name in ("a", "b")]
    assert [(s, list(c.dataset)) for s, c in read_tables(plain)] == [
        ([str(plain[0])], [""]), ([str(plain[1])], [""])]  # fmt: skip


@pytest.mark.parametrize(
    ("second", "reason"),
    [
        (["OGLE"] * 20, "object 3 dataset OGLE is in .*ogle.csv too"),
        (None, "has no dataset column but .*ogle.csv has"),
    ],
)
def test_tables_that_cannot_merge_are_refused_naming_both(tmp_path, second, reason):
    ids, time = np.full(20, 3), np.arange(20.0)
    ogle = _table(tmp_path / "ogle.csv", ids, time, np.ones(20), ["OGLE"] * 20)
    other = _table(tmp_path / "other.csv", ids, time + 0.5, np.ones(20), second)
    with pytest.raises(MsosError, match=reason) as caught:
        read_tables([ogle, other])
    assert str(other) in str(caught.value) and "\n" not in str(caught.value)
