"""The ``gdps`` command is installed and shares the SSC CLI base."""

from __future__ import annotations

import os
import subprocess
import sys

from gdps.cli import app
from ssc_common.cli_base import run_app


def test_version_names_(capsys):
    assert run_app(app, ["version"]) == 0
    out = capsys.readouterr().out
    assert "gdps " in out and "ssc-common " in out and "roman-schemas " in out


def test_the_console_script_shows_the_shared_options():
    script = os.path.join(os.path.dirname(sys.executable), "gdps")
    result = subprocess.run([script, "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for option in ("--storage", "--database", "--verbose", "--log-format"):
        assert option in result.stdout


def test_an_unknown_subcommand_is_a_usage_error(capsys):
    assert run_app(app, ["no-such-step"]) == 2
    assert "No such command" in capsys.readouterr().err
