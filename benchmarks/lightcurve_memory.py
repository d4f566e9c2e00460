"""Memory of assembling one partition-day of light curves (96 epochs × ≥1 million objects).

Stores a fiducial catalog and 96 epoch-photometry products, then measures the peak memory
of (a) the ``msos lightcurves`` step, which fills memory-mapped arrays epoch by epoch, and
(b) the usual numpy approach that stacks every epoch in memory before writing. "Anonymous"
is what a process needs; RSS also counts mapped file pages the kernel may drop. Each runs in
its own process so its peak is its own.

    ./dev run python benchmarks/lightcurve_memory.py [--objects 1000000] [--epochs 96]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PARTITION = ("s01", "f03", "WFI01")


def prepare(root: Path, n_objects: int, n_epochs: int) -> list[str]:
    from msos.partition import Partition
    from roman_schemas import write_product
    from roman_schemas.products.msos import EpochPhotometry, ObjectFiducialCatalog
    from ssc_common.context import Context
    from ssc_common.settings import Settings

    partition = Partition(*PARTITION)
    ctx = Context(Settings(storage_url=root.as_uri()))
    rng = np.random.default_rng(1)
    small = ObjectFiducialCatalog.example(n_objects=4)
    columns = {name: getattr(small.objects, name) for name in type(small.objects).model_fields}
    for name, value in columns.items():
        columns[name] = np.resize(value, n_objects)
    columns["object_id"] = np.arange(1, n_objects + 1, dtype="int64")
    catalog = ObjectFiducialCatalog(meta=small.meta, objects=type(small.objects)(**columns))
    keys = [partition.catalog_key()]
    ctx.storage.put_file(keys[0], write_product(catalog, root / "catalog.asdf"))
    template = EpochPhotometry.example(n_objects=4)
    for index in range(n_epochs):
        epoch = template.epoch.model_copy(deep=True)
        epoch.time_mjd_tdb[0] = 61465.0 + index * 15 / 1440
        epoch.exposure_name[0] = f"r0000101001001001{index:04d}_wfi01_cal.asdf"
        product = EpochPhotometry(
            meta=template.meta,
            epoch=epoch,
            object_id=columns["object_id"],
            delta_flux_ujy=rng.standard_normal(n_objects, dtype="float32"),
            delta_flux_err_ujy=np.ones(n_objects, dtype="float32"),
            flags=np.zeros(n_objects, dtype="uint16"),
        )
        key = partition.photometry_key(str(epoch.exposure_name[0]))
        path = write_product(product, root / "epoch.asdf")
        ctx.storage.put_file(key, path)
        keys.append(key)
    (root / "epoch.asdf").unlink()
    ctx.close()
    return keys


def run_step(root: Path, keys: list[str]) -> None:
    from msos.lightcurves.step import DailyLightCurvesStep
    from msos.partition import Partition
    from ssc_common.context import Context
    from ssc_common.settings import Settings

    ctx = Context(Settings(storage_url=root.as_uri()))
    DailyLightCurvesStep(ctx, Partition(*PARTITION), scratch=root).run(keys, {"day": "2027-03-01"})
    ctx.close()


def run_naive(root: Path, keys: list[str]) -> None:
    import asdf

    columns = []
    for key in keys[1:]:
        with asdf.open(root / key) as af:
            columns.append(np.array(af["ssc"].delta_flux_ujy))
    stacked = np.stack(columns, axis=1)  # objects × epochs, all in memory
    asdf.AsdfFile({"delta_flux": stacked}).write_to(root / "naive.asdf")


def _anonymous_mb() -> float:
    """Resident anonymous memory (heap, not file-backed pages the kernel can drop) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(mode: str, root: str, keys: str) -> None:
    import threading

    peak = {"anon": _anonymous_mb()}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak["anon"] = max(peak["anon"], _anonymous_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    (run_step if mode == "step" else run_naive)(Path(root), json.loads(keys))
    done.set()
    sampler.join()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_mb": rss_mb, "anon_mb": peak["anon"]}))


def measure(mode: str, root: Path, keys: list[str]) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(root), json.dumps(keys)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "SSC_LOG_LEVEL": "WARNING"},
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=96)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        keys = prepare(root, args.objects, args.epochs)
        ours = measure("step", root, keys)
        naive = measure("naive", root, keys)
    day_mb = args.objects * args.epochs * 10 / 1e6
    print(f"partition-day: {args.objects} objects × {args.epochs} epochs ({day_mb:.0f} MB)")
    for label, result in (("msos lightcurves step", ours), ("numpy stack in memory", naive)):
        print(
            f"{label}: peak anonymous {result['anon_mb']:7.0f} MB, "
            f"peak RSS {result['peak_mb']:7.0f} MB (incl. droppable file pages), "
            f"{result['seconds']:6.1f} s"
        )
    print(f"ratio of anonymous peaks (numpy / msos): {naive['anon_mb'] / ours['anon_mb']:.2f}")


if __name__ == "__main__":
    main()
