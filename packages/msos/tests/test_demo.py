"""``msos demo`` (what ``./dev demo`` runs): simulate, process, join the season, export."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_the_msos_demo_runs_from_scratch_and_its_events_match_their_truth(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSC_")}
    command = [str(BIN / "msos"), "demo", "--shape", "192", "--epochs", "8", "--seed", "7"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "epochs processed 8, already done 0, rejected 0" in result.stdout

    data = tmp_path / "ssc-data"
    [season] = data.rglob("wfi_microlensing_light_curve_catalog_level_4.asdf")
    from roman_schemas import read_product
    from roman_schemas.products.msos import LightCurveCatalog

    curves = read_product(season, LightCurveCatalog)
    assert np.asarray(curves.delta_flux_ujy).shape == (len(curves.objects), 8)
    [export] = (data / "exports").glob("*_season.parquet")
    table = pq.read_table(export)
    assert table.num_rows == len(curves.objects) * 8
    assert {"object_id", "ra", "dec", "time_mjd", "flux", "flux_err", "flag"} <= set(
        table.column_names
    )
    # every event the demo measured agrees with its truth within 5 sigma
    pattern = r"change over the run\s+(-?[\d.]+) ± ([\d.]+) µJy, true\s+(-?[\d.]+) µJy"
    shown = re.findall(pattern, result.stdout)
    assert shown, result.stdout
    for measured, sigma, true in shown:
        assert abs(float(measured) - float(true)) <= 5 * float(sigma) + 0.05, result.stdout

    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "epochs processed 0, already done 8, rejected 0" in again.stdout
