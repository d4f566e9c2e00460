"""The ``msos`` subcommands of the event pipeline."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from msos.commands import DetectorOption, FieldOption, SeasonOption
from msos.partition import Partition


def trigger(
    ctx: typer.Context,
    day: Annotated[str, typer.Option(help="UTC day of the daily light curves (YYYY-MM-DD)")],
    season: SeasonOption = "s01",
    field: FieldOption = "f03",
    detector: DetectorOption = "WFI01",
    threshold: Annotated[float, typer.Option(help="significance (σ) of a brightening")] = 3.0,
    min_run: Annotated[int, typer.Option(help="consecutive brightenings that trigger")] = 3,
) -> None:
    """Run a day's light curves through the event trigger, from the latest earlier day's
    state in storage; print the state's URI and the objects that triggered that day."""
    from msos.events.trigger.step import newly_triggered, trigger_day

    partition = Partition(season, field, detector)
    when = date.fromisoformat(day)
    result = trigger_day(ctx.obj, partition, when, {"threshold": threshold, "min_run": min_run})
    state = "already done" if result.skipped else "done"
    for record in result.products:
        typer.echo(f"{result.step}: {state}: {record.uri}")
    fired = newly_triggered(ctx.obj, partition, when)
    typer.echo(
        f"{fired.size} objects triggered on {day}"
        + (f": {' '.join(map(str, fired))}" if fired.size else "")
    )


def events(
    ctx: typer.Context,
    lightcurves: Annotated[
        list[str] | None,
        typer.Argument(
            help="season light-curve products (.asdf) or outside tables (.parquet, "
            ".csv: object_id, time, flux, flux_err or mag, mag_err, optionally dataset: "
            "the telescope or band; tables naming datasets merge by object_id into one "
            "catalog, the others give one each); none: the partition's season in storage"
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            help="where results go: for .asdf inputs a store (file://… or "
            "s3://…, default --storage), for tables a .parquet/.ecsv "
            "path or s3:// URI (required)",
        ),
    ] = None,
    season: SeasonOption = "s01",
    field: FieldOption = "f03",
    detector: DetectorOption = "WFI01",
    threshold: Annotated[float, typer.Option(help="Δχ² a detection must reach")] = 500.0,
    models: Annotated[
        str, typer.Option(help="models beyond PSPL to try: a subset of FSPL,parallax,2L1S")
    ] = "FSPL,parallax,2L1S",
    all_objects: Annotated[
        bool, typer.Option(help="search every object, not only those the trigger picked")
    ] = False,
    ra: Annotated[float | None, typer.Option(help="tables: RA (deg), for parallax")] = None,
    dec: Annotated[float | None, typer.Option(help="tables: its Dec (deg)")] = None,
    jd_offset: Annotated[
        float, typer.Option(help="tables: add to the times for a Julian date (0: HJD/JD already)")
    ] = 0.0,
) -> None:
    """Search, classify and model light curves into microlensing event catalogs: the
    partition's season in storage (objects of its latest trigger state), season products
    given as files, or outside tables (results written to --out; an object seen by several
    telescopes is searched on the one with the most points, modelled on all)."""
    from msos.events.catalog.step import selection_settings

    try:
        settings = selection_settings(models)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--models") from None
    parameters = {"threshold": threshold, "models": models}
    if not lightcurves:
        _events_of_partition(ctx.obj, Partition(season, field, detector), parameters, all_objects)
        return
    tables = [source for source in lightcurves if not source.lower().endswith(".asdf")]
    if tables and out is None:
        raise typer.BadParameter("outside tables need --out FILE.parquet|.ecsv",
                                 param_hint="--out")  # fmt: skip
    context = _store(ctx, out) if len(tables) < len(lightcurves) else ctx.obj
    for source in lightcurves:
        if source not in tables:
            partition = _stage_season(context, source)
            _events_of_partition(context, partition, parameters, all_objects=True)
    if tables:
        _events_of_tables(ctx, tables, out, settings, ra, dec, jd_offset, len(lightcurves),
                          threshold)  # fmt: skip


def _events_of_partition(
    context: object, partition: Partition, parameters: dict, all_objects: bool
) -> None:
    from msos.events.catalog.step import EventsStep
    from msos.events.trigger.step import latest_state

    keys = [partition.season_key()]
    if not all_objects:
        keys += latest_state(context, partition)
    result = EventsStep(context, partition).run(keys, parameters, partition=partition.name)
    state = "already done" if result.skipped else "done"
    for record in result.products:
        typer.echo(f"{result.step}: {state}: {record.uri}")


def _store(ctx: typer.Context, out: str | None) -> object:
    """The context products go to: --out as the store, the same database."""
    if out is None:
        return ctx.obj
    from ssc_common.context import Context
    from ssc_common.settings import get_settings

    settings = ctx.obj.settings
    context = Context(get_settings(storage_url=out, database_url=settings.database_url,
                                   log_format=settings.log_format))  # fmt: skip
    ctx.call_on_close(context.close)
    return context


def _stage_season(context: object, source: str) -> Partition:
    """Put a season light-curve file where its partition's events step reads it."""
    from pathlib import Path

    from roman_schemas.io import open_product
    from roman_schemas.products.msos import LightCurveCatalog

    with open_product(source, LightCurveCatalog) as product:
        meta = product.meta
        partition = Partition(meta.season, meta.field, str(meta.detector))
    key = partition.season_key()
    if not context.storage.exists(key):
        context.storage.put_file(key, Path(source))
    return partition


def _events_of_tables(
    ctx: typer.Context, tables: list[str], out: str, settings: object, ra: float | None,
    dec: float | None, jd_offset: float, n_inputs: int, threshold: float,
) -> None:  # fmt: skip
    from pathlib import Path

    from msos.events.catalog.outside import events_of_table, write_events
    from msos.events.inputs import read_tables

    if (ra is None) != (dec is None):
        raise typer.BadParameter("give both --ra and --dec, or neither", param_hint="--ra")
    sky = None if ra is None else (ra, dec, jd_offset)
    for sources, curves in read_tables(tables):  # every table read before anything is written
        label, stem = " + ".join(sources), Path(sources[0]).stem
        result = events_of_table(curves, stem, threshold, settings, sky)
        for oid, reason in result.skipped.items():
            typer.echo(f"{label}: object {oid} not modelled: {reason}", err=True)
        for (oid, name), reason in result.dropped_datasets.items():
            typer.echo(f"{label}: object {oid}: dataset {name} left out: {reason}", err=True)
        target = out
        if n_inputs > len(sources):  # one output per catalog: name.parquet → name-<stem>.parquet
            base, dot, suffix = out.rpartition(".")
            target = f"{base}-{stem}{dot}{suffix}"
        names = " + ".join(Path(source).name for source in sources)
        rows = write_events(result, target, names, jd_offset, ctx.obj.settings)
        typer.echo(f"{label}: {rows} events → {target}")


def efficiency(
    ctx: typer.Context,
    images: Annotated[
        list[str] | None,
        typer.Argument(help="--medium images: the partition's Level-2 images (paths or URIs)"),
    ] = None,
    medium: Annotated[
        str, typer.Option(help="inject into the season's light curves or into the images")
    ] = "lightcurve",
    season: SeasonOption = "s01",
    field: FieldOption = "f03",
    detector: DetectorOption = "WFI01",
    n_injections: Annotated[int, typer.Option(help="light curves made, blanks included")] = 500,
    blank_fraction: Annotated[float, typer.Option(help="share of them left blank")] = 0.1,
    seed: Annotated[int, typer.Option(help="seed of the draws (same seed: same run)")] = 0,
    threshold: Annotated[float, typer.Option(help="Δχ² a detection must reach")] = 500.0,
    planet_fraction: Annotated[float, typer.Option(help="share of events planetary")] = 0.0,
    u_0_max: Annotated[float | None, typer.Option(help="largest impact parameter")] = None,
    t_e_d: Annotated[
        tuple[float, float] | None,
        typer.Option("--t-e-d", help="range of t_E (days), drawn log-uniform"),
    ] = None,
    source_flux_ujy: Annotated[
        tuple[float, float] | None,
        typer.Option(help="range of source fluxes (µJy; default: a fraction of the host's)"),
    ] = None,
    gain_e_per_dn: Annotated[
        float | None,
        typer.Option(help="--medium images: detector gain, for the added flux's photon noise"),
    ] = None,
) -> None:
    """Inject synthetic events into the partition's season light curves (or, with --medium
    images, into its Level-2 images, rerunning their photometry), search them as ``msos
    events`` does, and publish its detection-efficiency catalog; print the counts."""
    from msos.events.efficiency.step import (
        IMAGES_MEDIUM,
        MEDIUM,
        EfficiencyStep,
        ImagesEfficiencyStep,
    )
    from roman_schemas.products.msos import DetectionEfficiencyCatalog
    from ssc_common.publish import open_stored_product

    if medium not in (MEDIUM, IMAGES_MEDIUM):
        raise typer.BadParameter(f"{medium!r} is not {MEDIUM} or {IMAGES_MEDIUM}",
                                 param_hint="--medium")  # fmt: skip
    if (medium == IMAGES_MEDIUM) != bool(images):
        raise typer.BadParameter("Level-2 images go with --medium images, and only with it",
                                 param_hint="IMAGES")  # fmt: skip
    partition = Partition(season, field, detector)
    parameters = {
        "n_injections": n_injections,
        "blank_fraction": blank_fraction,
        "seed": seed,
        "threshold": threshold,
        "planet_fraction": planet_fraction,
    }
    optional = {"u_0_max": u_0_max, "t_E_d": t_e_d, "source_flux_ujy": source_flux_ujy,
                "gain_e_per_dn": gain_e_per_dn}  # fmt: skip
    parameters |= {k: list(v) if isinstance(v, tuple) else v
                   for k, v in optional.items() if v is not None}  # fmt: skip
    if medium == IMAGES_MEDIUM:
        step = ImagesEfficiencyStep(ctx.obj, partition)
        result = step.run(step.inputs(images), parameters, partition=partition.name)
    else:
        result = EfficiencyStep(ctx.obj, partition).run([partition.season_key()], parameters,
                                                        partition=partition.name)  # fmt: skip
    state = "already done" if result.skipped else "done"
    for record in result.products:
        typer.echo(f"{result.step}: {state}: {record.uri}")
    key = partition.efficiency_key(medium)
    with open_stored_product(ctx.obj, key, DetectionEfficiencyCatalog) as product:
        counts = product.counts()
    events = counts["TP"] + counts["FN"]
    blanks = counts["FP"] + counts["TN"]
    typer.echo(" ".join(f"{name} {value}" for name, value in counts.items())
               + f": {counts['TP']}/{events} events recovered"
               + f" ({counts['TP'] / max(events, 1):.1%}),"
               + f" {counts['FP']}/{blanks} blanks detected")  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add the event subcommands to the ``msos`` app."""
    app.command("trigger")(trigger)
    app.command("events")(events)
    app.command("efficiency")(efficiency)
