"""``cgi-dm``: the command every cgi-dm step runs as, locally and in its Kubernetes pod."""

from __future__ import annotations

import typer

from ssc_common.cli_base import main_of, make_app
from ssc_common.publish import software_versions

app = make_app("cgi-dm", "CGI-DM: coronagraph data management around corgidrp.")


@app.command()
def version() -> None:
    """Versions of cgi-dm and of the shared packages it runs with."""
    for name, number in software_versions("cgi-dm").items():
        typer.echo(f"{name} {number}")


def main() -> None:
    """Entry point of the ``cgi-dm`` command."""
    main_of(app)
