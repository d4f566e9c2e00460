"""``cgi-dm``: the command every cgi-dm step runs as, locally and in its Kubernetes pod."""

from __future__ import annotations

from ssc_common.cli_base import main_of, make_app

app = make_app("cgi-dm", "CGI-DM: coronagraph data management around corgidrp.")


def main() -> None:
    """Entry point of the ``cgi-dm`` command."""
    main_of(app)
