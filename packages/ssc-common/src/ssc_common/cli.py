"""``ssc``: the operator's view of the shared core (settings, storage, database, products)."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from ssc_common.cli_base import main_of, make_app
from ssc_common.errors import SSCError

app = make_app("ssc", "Roman SSC shared core: settings, storage, processing database, products.")
db_app = typer.Typer(help="The processing database.", no_args_is_help=True)
app.add_typer(db_app, name="db")

OUR_DISTRIBUTIONS = (
    "roman-schemas",
    "ssc-common",
    "msos",
    "gdps",
    "cgi-dm",
    "ssc-orchestration",
)


@app.command()
def info(ctx: typer.Context) -> None:
    """Settings, software versions, and whether storage and the database can be reached."""
    context = ctx.obj
    settings = context.settings
    typer.echo(f"storage url:   {settings.storage_url}")
    typer.echo(f"log format:    {settings.log_format}")
    for name in OUR_DISTRIBUTIONS:
        try:
            typer.echo(f"{name + ':':14} {version(name)}")
        except PackageNotFoundError:
            typer.echo(f"{name + ':':14} not installed")
    problems = []
    try:
        context.storage.check()
        typer.echo(f"storage:       reachable ({context.storage.url})")
    except SSCError as error:
        problems.append(error)
        typer.echo(f"storage:       UNREACHABLE: {error}")
    try:
        db = context.db
        db.check()
        typer.echo(f"database:      reachable ({db.url}, revision {db.current_revision()})")
    except SSCError as error:
        problems.append(error)
        typer.echo(f"database:      UNREACHABLE: {error}")
    if problems:
        raise problems[0]


@app.command()
def products(
    ctx: typer.Context,
    product_type: Annotated[str | None, typer.Option("--type", help="product type")] = None,
    prefix: Annotated[str | None, typer.Option("--prefix", help="URI prefix")] = None,
    limit: Annotated[int | None, typer.Option(help="at most this many")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """List registered products, newest first, optionally by type or URI prefix."""
    records = ctx.obj.db.products(product_type=product_type, uri_prefix=prefix, limit=limit)
    for record in records:
        if as_json:
            typer.echo(json.dumps(record.__dict__, default=str))
        else:
            typer.echo(
                f"{record.created_at:%Y-%m-%d %H:%M:%S}  {record.product_type:45} "
                f"{record.size_bytes:>12}  {record.uri}"
            )


@app.command()
def lineage(ctx: typer.Context, uri: Annotated[str, typer.Argument(help="product URI")]) -> None:
    """The inputs (with checksums) a registered product was made from."""
    db = ctx.obj.db
    record = db.product(uri)
    if record is None:
        raise SSCError(uri, "not a registered product")
    typer.echo(f"{record.uri}  ({record.product_type}, task {record.task_id})")
    for ref in db.inputs_of(uri):
        typer.echo(f"  <- {ref.uri}  sha256 {ref.sha256}")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply every pending migration (run before deploying a new version)."""
    from ssc_common.db import ProcessingDB

    url = ctx.obj.settings.resolved_database_url()
    with ProcessingDB(url) as db:
        revision = db.upgrade()
        typer.echo(f"database {db.url} is at revision {revision}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """The migration revision the database is at."""
    from ssc_common.db import ProcessingDB

    with ProcessingDB(ctx.obj.settings.resolved_database_url()) as db:
        typer.echo(db.current_revision() or "none (empty database: run `ssc db upgrade`)")


@app.command()
def demo(ctx: typer.Context) -> None:
    """Write, validate, store, register and read back a product on the current settings."""
    from ssc_common.demo import run_demo

    run_demo(ctx.obj, echo=typer.echo)


def main() -> None:
    """Entry point of the ``ssc`` command."""
    main_of(app)
