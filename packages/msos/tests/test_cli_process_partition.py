"""``msos process-partition IMAGES… --out URI`` as an operator runs it: products where asked,
bad epochs named on stderr one line each, exit code 3 when some were rejected."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_process_partition_writes_to_out_and_names_each_rejected_file(small_partition, tmp_path):
    garbage = tmp_path / "broken_cal.asdf"
    garbage.write_bytes(b"not an asdf file at all" * 10)
    out = tmp_path / "products"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSC_")}
    env["SSC_DATABASE_URL"] = f"sqlite:///{tmp_path / 'processing.sqlite3'}"
    images = [str(p) for p in sorted(small_partition.glob("*_cal.asdf"))] + [str(garbage)]
    command = [str(BIN / "msos"), "process-partition", "--out", out.as_uri(),
               "--reference-epochs", "8", *images]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 3, result.stderr
    rejected = [line for line in result.stderr.splitlines() if line.startswith("rejected:")]
    assert len(rejected) == 1 and "broken_cal.asdf: not a readable Level-2 file" in rejected[0]
    assert "epochs processed 8" in result.stdout
    names = {p.name for p in out.rglob("*.asdf")}
    assert "wfi_microlensing_reference_frame_level_3.asdf" in names
    assert "wfi_microlensing_daily_light_curves_level_3.asdf" in names
    assert not (tmp_path / "ssc-data").exists()  # nothing went to the default storage
