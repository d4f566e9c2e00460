"""The CLI base every package's command shares: ``--storage``, ``--database``, ``-v``, errors.

``make_app`` gives a typer app whose callback builds the :class:`Context`; ``run_app`` runs it
so that any SSC or product error ends as one ``error: <subject>: <problem>`` line on stderr
and a non-zero exit, never a traceback (``-v`` adds the traceback for developers).
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from roman_schemas import ProductError
from ssc_common.context import Context
from ssc_common.errors import SSCError
from ssc_common.logs import configure_logging
from ssc_common.metrics import export_metrics
from ssc_common.settings import get_settings

log = logging.getLogger(__name__)

StorageOption = Annotated[
    str | None,
    typer.Option("--storage", help="storage URL (file://… or s3://…); default $SSC_STORAGE_URL"),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option("--database", help="database URL; default $SSC_DATABASE_URL or embedded SQLite"),
]
VerboseOption = Annotated[
    int, typer.Option("--verbose", "-v", count=True, help="more logging (and tracebacks)")
]
LogFormatOption = Annotated[
    str | None, typer.Option("--log-format", help="text or json; default $SSC_LOG_FORMAT")
]


def make_app(name: str, help_text: str, distribution: str | None = None) -> typer.Typer:
    """A typer app with the shared options and a ``version`` command.

    Commands get the :class:`Context` as ``ctx.obj``; ``distribution`` (default ``name``) is
    the package whose version ``version`` reports beside the shared packages'.
    """
    app = typer.Typer(
        name=name,
        help=help_text,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def common(
        ctx: typer.Context,
        storage: StorageOption = None,
        database: DatabaseOption = None,
        verbose: VerboseOption = 0,
        log_format: LogFormatOption = None,
    ) -> None:
        settings = get_settings(storage_url=storage, database_url=database, log_format=log_format)
        configure_logging(settings.log_format, "DEBUG" if verbose else settings.log_level)
        context = Context(settings)
        context.verbose = verbose
        ctx.obj = context
        ctx.call_on_close(context.close)

    @app.command()
    def version() -> None:
        """Versions of this package and of the shared packages it runs with."""
        from ssc_common.publish import software_versions

        for package, number in software_versions(distribution or name).items():
            typer.echo(f"{package} {number}")

    return app


def run_app(app: typer.Typer, argv: list[str] | None = None) -> int:
    """Run ``app``; map our errors to one stderr line and an exit code; returns the code."""
    verbose = any(a in ("-v", "--verbose") or a.startswith("-vv") for a in (argv or sys.argv[1:]))
    code = 0
    try:
        # Standalone mode: usage errors, --help and typer.Exit end in SystemExit as usual;
        # our own errors are not click's, so they come through to be reported here.
        app(args=argv, prog_name=app.info.name)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except (SSCError, ProductError) as error:
        if verbose:
            log.exception("failed")
        typer.echo(f"error: {error}", err=True)
        code = getattr(error, "exit_code", 1)
    try:
        settings = get_settings()
        export_metrics(app.info.name or "ssc", settings.pushgateway_url, settings.metrics_file)
    except Exception as exc:  # metrics must never turn a result into a failure
        log.warning("metrics not exported: %s", exc)
    return code


def main_of(app: typer.Typer) -> None:
    """The console-script entry point for ``app``: run it and exit with its code."""
    sys.exit(run_app(app))
