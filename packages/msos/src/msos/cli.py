"""``msos``: the command every msos step runs as, locally and in its Kubernetes pod."""

from __future__ import annotations

from msos.commands import register
from msos.events.command import register as register_events
from msos.simulate.command import simulate
from msos.variability.command import register as register_variability
from ssc_common.cli_base import main_of, make_app

app = make_app("msos", "MSOS: microlensing photometry and events of the Galactic Bulge survey.")

app.command("simulate")(simulate)
register(app)
register_events(app)
register_variability(app)


def main() -> None:
    """Entry point of the ``msos`` command."""
    main_of(app)
