"""``msos demo``: the microlensing photometry end to end on the embedded defaults.

Simulates a small partition of real Level-2 files, runs ``process-partition`` on it (local
files, SQLite), and shows what came out: the products, a microlensing event's light curve
against its truth, and a long-format export of the light curves.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def run_demo(ctx: Any, echo: Any, *, shape: int = 384, epochs: int = 24, seed: int = 5) -> None:
    """Simulate, process and summarise one partition."""
    from msos.errors import MsosError
    from msos.partition import Partition
    from msos.partition_run import process_partition
    from msos.simulate.command import write_partition
    from msos.simulate.partition import SimulationConfig
    from msos.simulate.write import read_table
    from roman_schemas import read_product
    from roman_schemas.export import export_table
    from roman_schemas.products.msos import DailyLightCurves
    from ssc_common.storage import LocalStorage

    if not isinstance(ctx.storage, LocalStorage):
        raise MsosError(ctx.storage.url, "the demo runs on local storage (file://)")
    root = ctx.storage.root
    inputs = root / "demo-level2"
    if not (inputs / "truth_stars.parquet").exists():
        echo(f"1. simulating {epochs} Level-2 epochs of {shape}×{shape} pixels into {inputs}")
        config = SimulationConfig(n_epochs=epochs, shape=(shape, shape), n_pspl=3, n_binary=0,
                                  seed=seed)  # fmt: skip
        inputs.mkdir(parents=True, exist_ok=True)
        write_partition(config, inputs, compression="none")
    else:
        echo(f"1. simulated Level-2 epochs already in {inputs}")
    partition = Partition("s01", "f03", "WFI01")
    images = [str(p) for p in sorted(inputs.glob("*_cal.asdf"))]
    echo(
        f"2. process-partition {partition.name}: reference, catalog, DIA, photometry, light curves"
    )
    run = process_partition(ctx, partition, images, reference_epochs=epochs)
    echo(f"   epochs processed {len(run.processed)}, already done {len(run.skipped)}, "
         f"rejected {len(run.rejected)}")  # fmt: skip
    for record in ctx.db.products(uri_prefix=ctx.storage.uri(partition.prefix) + "/"):
        if "/photometry/" not in record.uri:
            echo(f"   {record.product_type:45} {record.size_bytes:>11} B  {record.uri}")
    day = run.days[0]
    daily = read_product(ctx.storage.path(partition.daily_key(day)), DailyLightCurves)
    truth = read_table(inputs / "truth_stars.parquet")
    events = truth[np.asarray(truth["kind"]) == "microlensing"]
    echo(f"3. {len(daily.objects)} objects × {len(daily.epochs)} epochs; "
         f"{len(events)} simulated microlensing events")  # fmt: skip
    ra, dec = np.asarray(daily.objects.ra_deg), np.asarray(daily.objects.dec_deg)
    for event in events:
        separation = np.hypot(
            (ra - event["ra_deg"]) * np.cos(np.radians(dec)), dec - event["dec_deg"]
        )
        row = int(np.argmin(separation))
        if separation[row] * 3600 > 0.05:
            continue
        peak = float(np.nanmax(daily.delta_flux_ujy[row]))
        echo(f"   event on object {daily.object_id[row]}: largest brightening {peak:8.2f} µJy "
             f"(reference flux {daily.objects.ref_flux_ujy[row]:.2f} µJy)")  # fmt: skip
    out = root / "exports" / f"{partition.name.replace('/', '_')}_{day}.parquet"
    rows = export_table(daily, out)
    echo(f"4. exported {rows} light-curve rows (object_id, ra, dec, time_mjd, flux, flux_err, "
         f"flag) to {out}")  # fmt: skip
