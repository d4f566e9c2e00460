"""The ``cgi-dm`` command is installed and follows the shared SSC CLI contract."""

from __future__ import annotations

from cgi_dm.cli import app
from ssc_common.testing.cli import check_cli_contract


def test_the_cgi_dm_command_follows_the_cli_contract():
    check_cli_contract("cgi-dm", app)
