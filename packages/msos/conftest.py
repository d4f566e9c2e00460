"""Shared fixtures of the msos tests: a small simulated partition of real Level-2 files."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def small_partition(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight 192×192 epochs of s01/f03/WFI01 (stars, variables, events, defects) + truth."""
    from msos.simulate.command import write_partition
    from msos.simulate.partition import SimulationConfig

    out = tmp_path_factory.mktemp("partition")
    config = SimulationConfig(n_epochs=8, shape=(192, 192), n_pspl=2, n_binary=0, seed=7)
    write_partition(config, out, compression="none")
    return out


def level2_files(directory: Path) -> list[Path]:
    """The Level-2 files of a simulated partition, in time order."""
    return sorted(directory.glob("*_cal.asdf"))
