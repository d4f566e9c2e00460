"""One small simulated partition, written once and read by the file-level tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from msos.simulate.command import write_partition
from msos.simulate.partition import Partition, SimulationConfig
from msos.simulate.write import read_table

#: small, sparse enough for isolated bright stars, with every kind of variable
SMALL = SimulationConfig(
    n_epochs=4,
    shape=(192, 192),
    stars_per_arcmin2=6000.0,
    periodic_fraction=0.05,
    n_pspl=3,
    n_binary=1,
    seed=7,
)


@dataclass
class Simulated:
    config: SimulationConfig
    out: Path
    partition: Partition
    stars: object
    epochs: object
    variable_fluxes: object

    def image(self, epoch: int) -> Path:
        return self.out / str(self.epochs["filename"][epoch])


@pytest.fixture(scope="session")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Simulated:
    out = tmp_path_factory.mktemp("partition")
    write_partition(SMALL, out)
    return Simulated(
        config=SMALL,
        out=out,
        partition=Partition(SMALL),
        stars=read_table(out / "truth_stars.parquet"),
        epochs=read_table(out / "truth_epochs.parquet"),
        variable_fluxes=read_table(out / "truth_variable_fluxes.parquet"),
    )
