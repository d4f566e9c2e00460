"""The ``msos variability`` subcommand: a partition's variability and periodic catalogs."""

from __future__ import annotations

from typing import Annotated

import typer

from msos.commands import DetectorOption, FieldOption, SeasonOption
from msos.partition import Partition


def variability(
    ctx: typer.Context,
    season: SeasonOption = "s01",
    field: FieldOption = "f03",
    detector: DetectorOption = "WFI01",
    chi2_min: Annotated[float, typer.Option(help="χ²/dof a variable must exceed")] = 3.0,
    eta_sigma: Annotated[
        float, typer.Option(help="σ below white noise's von Neumann η = 2 a variable must be")
    ] = 5.0,
    j_min: Annotated[float, typer.Option(help="Stetson J a variable must exceed")] = 0.1,
    fap_max: Annotated[
        float, typer.Option(help="false-alarm probability a period must stay below")
    ] = 1e-3,
    max_frequency: Annotated[float, typer.Option(help="highest frequency searched (1/d)")] = 24.0,
) -> None:
    """Measure the variability of the partition's season light curves and search the
    variables for periods; print both catalogs' URIs and the counts."""
    from msos.variability.step import VariabilityStep
    from roman_schemas.io import load_arrays
    from roman_schemas.products.msos import ObjectPeriodicCatalog, VariabilityCatalog
    from ssc_common.publish import open_stored_product

    partition = Partition(season, field, detector)
    parameters = {"chi2_min": chi2_min, "eta_sigma": eta_sigma, "j_min": j_min,
                  "fap_max": fap_max, "max_frequency_per_d": max_frequency}  # fmt: skip
    step = VariabilityStep(ctx.obj, partition)
    result = step.run([partition.season_key()], parameters, partition=partition.name)
    state = "already done" if result.skipped else "done"
    for record in result.products:
        typer.echo(f"{result.step}: {state}: {record.uri}")
    tables = {}
    for key, cls in ((partition.variability_key(), VariabilityCatalog),
                     (partition.periodic_key(), ObjectPeriodicCatalog)):  # fmt: skip
        with open_stored_product(ctx.obj, key, cls) as opened:
            tables[cls] = load_arrays(opened, key).objects
    table = tables[VariabilityCatalog]
    typer.echo(f"{len(table.object_id)} objects, {int(table.is_variable.sum())} variable, "
               f"{len(tables[ObjectPeriodicCatalog].object_id)} periodic")  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add ``msos variability`` to the app."""
    app.command("variability")(variability)
