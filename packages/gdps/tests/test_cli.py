"""The ``gdps`` command is installed and follows the shared SSC CLI contract."""

from __future__ import annotations

from gdps.cli import app
from ssc_common.testing.cli import check_cli_contract


def test_the_gdps_command_follows_the_cli_contract():
    check_cli_contract("gdps", app)
