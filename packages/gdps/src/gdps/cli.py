"""``gdps``: the command every gdps step runs as, locally and in its Kubernetes pod."""

from __future__ import annotations

from ssc_common.cli_base import main_of, make_app

app = make_app("gdps", "GDPS: grism and prism spectra and redshifts.")


def main() -> None:
    """Entry point of the ``gdps`` command."""
    main_of(app)
