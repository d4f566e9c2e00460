"""``gdps``: the command every gdps step runs as, locally and in its Kubernetes pod."""

from __future__ import annotations

import typer

from ssc_common.cli_base import main_of, make_app
from ssc_common.publish import software_versions

app = make_app("gdps", "GDPS: grism and prism spectra and redshifts.")


@app.command()
def version() -> None:
    """Versions of gdps and of the shared packages it runs with."""
    for name, number in software_versions("gdps").items():
        typer.echo(f"{name} {number}")


def main() -> None:
    """Entry point of the ``gdps`` command."""
    main_of(app)
