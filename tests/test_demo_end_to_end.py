"""``./dev demo`` end to end: the installed commands on the embedded defaults, from scratch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSC_")}
    return subprocess.run(
        [str(BIN / command[0]), *command[1:]], cwd=cwd, env=env, capture_output=True, text=True
    )


@pytest.mark.slow
def test_the_demo_writes_validates_stores_registers_and_reads_back(tmp_path):
    first = run(["ssc", "demo"], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "1. wrote + validated + stored + registered" in first.stdout
    assert "3. rerun with the same inputs and parameters: did nothing" in first.stdout

    data = tmp_path / "ssc-data"
    products = sorted(p for p in data.rglob("*.asdf"))
    assert [p.name for p in products] == ["wfi_microlensing_reference_frame_level_3.asdf"]
    assert (data / "ssc-processing.sqlite3").exists()
    assert not [p for p in data.rglob("*") if ".partial-" in p.name], "temporary left behind"

    checked = run(["roman-schemas", "validate", str(products[0])], tmp_path)
    assert checked.returncode == 0, checked.stderr

    listed = run(["ssc", "products", "--json"], tmp_path)
    [record] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert record["uri"] == products[0].as_uri()
    assert record["product_type"] == "wfi_microlensing_reference_frame_level_3"

    again = run(["ssc", "demo"], tmp_path)
    assert again.returncode == 0 and "did nothing" in again.stdout
    assert len(run(["ssc", "products", "--json"], tmp_path).stdout.splitlines()) == 1
