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
    season: SeasonOption = "s01",
    field: FieldOption = "f03",
    detector: DetectorOption = "WFI01",
    threshold: Annotated[float, typer.Option(help="Δχ² a detection must reach")] = 500.0,
    all_objects: Annotated[
        bool, typer.Option(help="search every object, not only those the trigger picked")
    ] = False,
) -> None:
    """Search, model and classify the partition's season light curves (the objects of the
    latest trigger state, when there is one) into its microlensing event catalog."""
    from msos.events.catalog.step import EventsStep
    from msos.events.trigger.step import latest_state

    partition = Partition(season, field, detector)
    keys = [partition.season_key()]
    if not all_objects:
        keys += latest_state(ctx.obj, partition)
    result = EventsStep(ctx.obj, partition).run(keys, {"threshold": threshold},
                                                partition=partition.name)  # fmt: skip
    state = "already done" if result.skipped else "done"
    for record in result.products:
        typer.echo(f"{result.step}: {state}: {record.uri}")


def efficiency(
    ctx: typer.Context,
    season: SeasonOption = "s01",
    field: FieldOption = "f03",
    detector: DetectorOption = "WFI01",
    n_injections: Annotated[int, typer.Option(help="light curves made, blanks included")] = 500,
    blank_fraction: Annotated[float, typer.Option(help="share of them left blank")] = 0.1,
    seed: Annotated[int, typer.Option(help="seed of the draws (same seed: same run)")] = 0,
    threshold: Annotated[float, typer.Option(help="Δχ² a detection must reach")] = 500.0,
    planet_fraction: Annotated[float, typer.Option(help="share of events planetary")] = 0.0,
) -> None:
    """Inject synthetic events into the partition's season light curves, search them as
    ``msos events`` does, and publish its detection-efficiency catalog; print the counts."""
    from msos.events.efficiency.step import MEDIUM, EfficiencyStep
    from roman_schemas.products.msos import DetectionEfficiencyCatalog
    from ssc_common.publish import open_stored_product

    partition = Partition(season, field, detector)
    parameters = {
        "n_injections": n_injections,
        "blank_fraction": blank_fraction,
        "seed": seed,
        "threshold": threshold,
        "planet_fraction": planet_fraction,
    }
    result = EfficiencyStep(ctx.obj, partition).run([partition.season_key()], parameters,
                                                    partition=partition.name)  # fmt: skip
    state = "already done" if result.skipped else "done"
    for record in result.products:
        typer.echo(f"{result.step}: {state}: {record.uri}")
    key = partition.efficiency_key(MEDIUM)
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
