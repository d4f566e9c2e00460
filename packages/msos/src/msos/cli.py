"""``msos``: the command every msos step runs as, locally and in its Kubernetes pod."""

from __future__ import annotations

import typer

from ssc_common.cli_base import main_of, make_app
from ssc_common.publish import software_versions

app = make_app("msos", "MSOS: microlensing photometry and events of the Galactic Bulge survey.")


@app.command()
def version() -> None:
    """Versions of msos and of the shared packages it runs with."""
    for name, number in software_versions("msos").items():
        typer.echo(f"{name} {number}")


def main() -> None:
    """Entry point of the ``msos`` command."""
    main_of(app)
