"""The ``msos`` subcommands of the photometry pipeline (each one step, or all of them)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from msos.errors import EpochRejected
from msos.partition import Partition

SeasonOption = Annotated[str, typer.Option(help="GBTDS season, e.g. s01")]
FieldOption = Annotated[str, typer.Option(help="GBTDS field, e.g. f03")]
DetectorOption = Annotated[str, typer.Option(help="WFI detector, e.g. WFI01")]
Images = Annotated[list[str], typer.Argument(help="Level-2 wfi_image files (paths or URIs)")]


def reference(
    ctx: typer.Context,
    images: Images,
    season: SeasonOption = "s01",
    field: FieldOption = "f03",
    detector: DetectorOption = "WFI01",
    sequence: Annotated[str, typer.Option(help="processing sequence, e.g. e01")] = "e01",
    program: Annotated[int, typer.Option(help="observing program")] = 1,
) -> None:
    """Stack good epochs into the partition's L3 reference frame, with its ePSF."""
    from msos.reference.step import ReferenceStep

    partition = Partition(season, field, detector)
    step = ReferenceStep(ctx.obj, partition)
    result = step.run(images, {"sequence": sequence, "program": program}, partition=partition.name)
    for rejection in step.rejected:
        typer.echo(f"rejected: {rejection}", err=True)
    _report(result)


def catalog(
    ctx: typer.Context,
    season: SeasonOption = "s01",
    field: FieldOption = "f03",
    detector: DetectorOption = "WFI01",
) -> None:
    """Measure the partition's object fiducial catalog on its reference frame."""
    from msos.catalog.step import CatalogStep

    partition = Partition(season, field, detector)
    _report(CatalogStep(ctx.obj, partition).run([partition.reference_key()], {},
                                                partition=partition.name))  # fmt: skip


def dia(
    ctx: typer.Context,
    images: Images,
    season: SeasonOption = "s01",
    field: FieldOption = "f03",
    detector: DetectorOption = "WFI01",
) -> None:
    """Difference each epoch against the reference (keeping the difference images) and
    photometer the catalog on it."""
    from msos.dia.step import DifferenceStep

    partition = Partition(season, field, detector)
    _epochs(ctx, partition, images, DifferenceStep)


def photometry(
    ctx: typer.Context,
    differences: Annotated[list[str], typer.Argument(help="stored difference images (keys)")],
    season: SeasonOption = "s01",
    field: FieldOption = "f03",
    detector: DetectorOption = "WFI01",
) -> None:
    """Forced photometry of the catalog on stored difference images."""
    from msos.dia.step import PhotometryStep

    partition = Partition(season, field, detector)
    for key in differences:
        _report(PhotometryStep(ctx.obj, partition).run(
            [key, partition.reference_key(), partition.catalog_key()], {},
            partition=partition.name))  # fmt: skip


def lightcurves(
    ctx: typer.Context,
    day: Annotated[str, typer.Option(help="UTC day (YYYY-MM-DD); 'season' for the L4 catalog")],
    season: SeasonOption = "s01",
    field: FieldOption = "f03",
    detector: DetectorOption = "WFI01",
) -> None:
    """Publish the daily light curves of a day (or, with --day season, the L4 catalog) from
    the epoch photometry / daily products in storage."""
    from msos.lightcurves.step import DailyLightCurvesStep, SeasonLightCurvesStep

    partition = Partition(season, field, detector)
    storage = ctx.obj.storage
    if day == "season":
        keys = [o.key for o in storage.list(f"{partition.prefix}/lightcurves/daily/")]
        step = SeasonLightCurvesStep(ctx.obj, partition)
        _report(step.run([partition.catalog_key(), *keys], {}, partition=partition.name))
        return
    date.fromisoformat(day)
    keys = _photometry_of_day(ctx.obj, partition, date.fromisoformat(day))
    step = DailyLightCurvesStep(ctx.obj, partition)
    _report(step.run([partition.catalog_key(), *keys], {"day": day}, partition=partition.name))


def process_partition(
    ctx: typer.Context,
    images: Images,
    season: SeasonOption = "s01",
    reference_epochs: Annotated[int, typer.Option(help="epochs offered to the reference")] = 48,
    keep_differences: Annotated[bool, typer.Option(help="also store difference images")] = False,
    out: Annotated[
        str | None,
        typer.Option("--out", help="where the products go (file://… or s3://…); default --storage"),
    ] = None,
) -> None:
    """Run reference, catalog, difference imaging, photometry and light curves for one
    (field, detector): the partition is read from the images. Exit 3 if epochs were rejected
    (the others are processed)."""
    from msos.partition_run import infer_partition
    from msos.partition_run import process_partition as run_partition
    from ssc_common.context import Context
    from ssc_common.settings import get_settings

    context = ctx.obj
    if out is not None:  # the same settings (and database), another product store
        settings = context.settings
        context = Context(get_settings(storage_url=out, database_url=settings.database_url,
                                       log_format=settings.log_format))  # fmt: skip
        ctx.call_on_close(context.close)
    partition = infer_partition(context, images, season)
    typer.echo(f"partition {partition.name}: {len(images)} images")
    run = run_partition(context, partition, images, reference_epochs=reference_epochs,
                        keep_differences=keep_differences)  # fmt: skip
    for rejection in run.rejected:
        typer.echo(f"rejected: {rejection}", err=True)
    typer.echo(
        f"epochs processed {len(run.processed)}, already done {len(run.skipped)}, "
        f"rejected {len(run.rejected)}; daily light curves: "
        + (", ".join(d.isoformat() for d in run.days) or "none")
    )
    if run.rejected:
        raise typer.Exit(3)


def _photometry_of_day(ctx: object, partition: Partition, day: date) -> list[str]:
    from astropy.time import Time

    from roman_schemas.products.msos import EpochPhotometry
    from ssc_common.publish import open_stored_product

    keys = []
    for info in ctx.storage.list(f"{partition.prefix}/photometry/"):
        with open_stored_product(ctx, info.key, EpochPhotometry) as product:
            time = float(product.epoch.time_mjd_tdb[0])
        if Time(time, format="mjd", scale="tdb").utc.to_datetime().date() == day:
            keys.append(info.key)
    return keys


def _epochs(ctx: typer.Context, partition: Partition, images: list[str], step_class: type) -> None:
    from msos.context import PartitionReference

    reference = PartitionReference.load(ctx.obj, partition)
    rejected = 0
    for image in images:
        step = step_class(ctx.obj, partition, reference)
        try:
            _report(step.run(step.inputs(image), {}, partition=partition.name))
        except EpochRejected as rejection:
            rejected += 1
            typer.echo(f"rejected: {rejection}", err=True)
    if rejected:
        raise typer.Exit(3)


def _report(result: object) -> None:
    state = "already done" if result.skipped else "done"
    for record in result.products:
        typer.echo(f"{result.step}: {state}: {record.uri}")


def demo(
    ctx: typer.Context,
    shape: Annotated[int, typer.Option(help="simulated image size (pixels per side)")] = 384,
    epochs: Annotated[int, typer.Option(help="simulated epochs (15 min apart)")] = 24,
    seed: Annotated[int, typer.Option(help="simulation seed")] = 5,
) -> None:
    """Simulate a small partition and run the whole photometry on it (the ./dev demo)."""
    from msos.demo import run_demo

    run_demo(ctx.obj, typer.echo, shape=shape, epochs=epochs, seed=seed)


def register(app: typer.Typer) -> None:
    """Add the photometry subcommands to the ``msos`` app."""
    app.command("reference")(reference)
    app.command("catalog")(catalog)
    app.command("dia")(dia)
    app.command("photometry")(photometry)
    app.command("lightcurves")(lightcurves)
    app.command("process-partition")(process_partition)
    app.command("demo")(demo)
