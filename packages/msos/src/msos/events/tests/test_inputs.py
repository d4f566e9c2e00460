"""Outside light-curve tables: fluxes or magnitudes, cleaned point by point, short light
curves rejected with their reason, unreadable tables named in a one-line error."""

from __future__ import annotations

from pathlib import Path

import MulensModel
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from msos.errors import MsosError
from msos.events.inputs import MAG_ZERO_POINT, read_table

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
