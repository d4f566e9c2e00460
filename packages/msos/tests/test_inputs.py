"""Level-2 epochs are read into kernel-ready arrays, and unusable ones refused in one line."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from msos.errors import EpochRejected
from msos.inputs import read_epoch
from msos.survey import detector_centre
from roman_schemas import write_product
from roman_schemas.products.msos import ReferenceFrame

POINTING = detector_centre("f03", "WFI01")


def _files(directory):
    return sorted(directory.glob("*_cal.asdf"))


def test_a_simulated_epoch_reads_with_calibration_time_and_mask(small_partition):
    path = _files(small_partition)[0]
    epoch = read_epoch(path, detector="WFI01", pointing=POINTING)
    assert epoch.data.dtype == np.float32 and epoch.shape == (192, 192)
    assert np.isnan(epoch.data[epoch.bad]).all() and np.isfinite(epoch.data[~epoch.bad]).all()
    assert np.all(epoch.variance[~epoch.bad] > 0)
    assert epoch.ujy_per_dn_s == pytest.approx(0.063246, rel=1e-3)
    from msos.simulate.write import read_table

    truth = read_table(small_partition / "truth_epochs.parquet")
    tdb = float(truth[truth["filename"] == path.name][0]["time_mjd_tdb"])
    light_time_days = abs(epoch.time_mjd_tdb - tdb)
    assert 0 < light_time_days < 500 / 86400  # barycentric: Earth–Sun light time at most
    assert "Earth position" in epoch.time_method
    assert epoch.detector == "WFI01" and epoch.optical_element == "F146"
    x, y = epoch.pixel_of(*epoch.sky_of(np.array([10.0]), np.array([20.0])))
    assert x[0] == pytest.approx(10.0, abs=1e-6) and y[0] == pytest.approx(20.0, abs=1e-6)


def test_an_epoch_of_another_detector_or_field_is_rejected(small_partition):
    path = _files(small_partition)[0]
    with pytest.raises(EpochRejected, match="is detector WFI01, partition is WFI07"):
        read_epoch(path, detector="WFI07")
    with pytest.raises(EpochRejected, match="deg from where the partition's detector looks"):
        read_epoch(path, pointing=detector_centre("f06", "WFI01"))


def test_unreadable_and_wrong_type_files_are_rejected_naming_the_file(tmp_path):
    garbage = tmp_path / "garbage_cal.asdf"
    garbage.write_bytes(b"not an asdf file" * 100)
    with pytest.raises(EpochRejected, match=r"garbage_cal\.asdf: not a readable Level-2 file"):
        read_epoch(garbage)
    other = write_product(ReferenceFrame.example(), tmp_path / "frame.asdf")
    with pytest.raises(EpochRejected) as error:
        read_epoch(other)
    assert str(error.value).startswith(str(other)) and "\n" not in str(error.value)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_an_all_nan_epoch_and_one_without_wcs_are_rejected(small_partition, tmp_path):
    import roman_datamodels.datamodels as rdd

    source = _files(small_partition)[0]
    for change, message in (("nan", "has no valid pixel"), ("wcs", "has no WCS")):
        target = tmp_path / f"{change}_cal.asdf"
        shutil.copy(source, target)
        with rdd.open(target) as model:
            if change == "nan":
                model.data[:] = np.nan
            else:
                model.meta.wcs = None
            model.save(tmp_path / f"{change}2_cal.asdf")
        with pytest.raises(EpochRejected, match=message):
            read_epoch(tmp_path / f"{change}2_cal.asdf")
