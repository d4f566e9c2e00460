"""``msos demo``: the microlensing photometry end to end on the embedded defaults.

Simulates a small partition of real Level-2 files, runs ``process-partition`` on it (local
files, SQLite), and shows what came out: the products, a microlensing event's light curve
against its truth, and a long-format export of the season's light curves (L4).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def run_demo(ctx: Any, echo: Any, *, shape: int = 384, epochs: int = 24, seed: int = 5) -> None:
    """Simulate, process and summarise one partition."""
    from msos.errors import MsosError
    from msos.lightcurves.step import SeasonLightCurvesStep
    from msos.partition import Partition
    from msos.partition_run import process_partition
    from msos.simulate.command import write_partition
    from msos.simulate.partition import SimulationConfig
    from msos.simulate.write import read_table
    from roman_schemas import read_product
    from roman_schemas.export import export_table
    from roman_schemas.products.msos import LightCurveCatalog
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
    season = SeasonLightCurvesStep(ctx, partition)
    keys = [partition.daily_key(day) for day in run.days]
    season.run([partition.catalog_key(), *keys], {}, partition=partition.name)
    curves = read_product(ctx.storage.path(partition.season_key()), LightCurveCatalog)
    echo(f"   {LightCurveCatalog.product_type:45} {partition.season_key()} "
         f"({len(run.days)} days joined)")  # fmt: skip
    truth = read_table(inputs / "truth_stars.parquet")
    events = truth[np.asarray(truth["kind"]) == "microlensing"]
    echo(f"3. {len(curves.objects)} objects × {len(curves.epochs)} epochs; "
         f"{len(events)} simulated microlensing events, measured against their truth:")  # fmt: skip
    _show_events(curves, events, inputs, echo)
    out = root / "exports" / f"{partition.name.replace('/', '_')}_season.parquet"
    rows = export_table(curves, out)
    echo(f"4. exported {rows} light-curve rows (object_id, ra, dec, time_mjd, flux, flux_err, "
         f"flag) to {out}")  # fmt: skip


def _show_events(curves: Any, events: Any, inputs: Any, echo: Any) -> None:
    """For each simulated event found in the light curves: its flux change over the run,
    measured (difference of the brightest and faintest true epochs) and true."""
    from msos.simulate.write import read_table

    fluxes = read_table(inputs / "truth_variable_fluxes.parquet")
    epochs = read_table(inputs / "truth_epochs.parquet")
    index = {str(name): k for k, name in enumerate(epochs["filename"])}
    column = np.array([index.get(str(name), -1) for name in curves.epochs.exposure_name])
    ra, dec = np.asarray(curves.objects.ra_deg), np.asarray(curves.objects.dec_deg)
    for event in events:
        separation = np.hypot(
            (ra - event["ra_deg"]) * np.cos(np.radians(dec)), dec - event["dec_deg"]
        )
        row = int(np.argmin(separation))
        if separation[row] * 3600 > 0.05:
            echo(f"   event at ({event['ra_deg']:.5f}, {event['dec_deg']:.5f}): "
                 f"{event['mag_ab']:.1f} mag, not in the catalog")  # fmt: skip
            continue
        mine = fluxes[np.asarray(fluxes["truth_id"]) == event["truth_id"]]
        true = np.full(len(epochs), np.nan)
        true[np.asarray(mine["epoch"])] = np.asarray(mine["flux_ujy"])
        true = np.where(column >= 0, true[column], np.nan)
        flux = np.asarray(curves.delta_flux_ujy[row], dtype=float)
        error = np.asarray(curves.delta_flux_err_ujy[row], dtype=float)
        good = np.isfinite(flux) & np.isfinite(true) & (np.asarray(curves.flags[row]) == 0)
        if good.sum() < 2:
            echo(f"   event on object {curves.object_id[row]}: too few good epochs")
            continue
        lo, hi = (int(np.flatnonzero(good)[k]) for k in (np.argmin(true[good]),
                                                          np.argmax(true[good])))  # fmt: skip
        measured = flux[hi] - flux[lo]
        sigma = float(np.hypot(error[hi], error[lo]))
        echo(f"   event on object {curves.object_id[row]} ({event['mag_ab']:.1f} mag, "
             f"t0 {event['t0_mjd_tdb']:.2f}, tE {event['te_d']:.1f} d): change over the run "
             f"{measured:8.2f} ± {sigma:.2f} µJy, true {true[hi] - true[lo]:8.2f} µJy")  # fmt: skip
