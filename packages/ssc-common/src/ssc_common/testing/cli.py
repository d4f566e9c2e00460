"""The contract every package's command keeps, checked by each package's own tests."""

from __future__ import annotations

import os
import subprocess
import sys

import typer

from ssc_common.cli_base import run_app

SHARED_OPTIONS = ("--storage", "--database", "--verbose", "--log-format")


def check_cli_contract(name: str, app: typer.Typer) -> None:
    """The console script ``name`` exists, shows the shared options, reports versions,
    and answers an unknown subcommand with a usage error (exit 2)."""
    script = os.path.join(os.path.dirname(sys.executable), name)
    shown = subprocess.run([script, "--help"], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    missing = [option for option in SHARED_OPTIONS if option not in shown.stdout]
    assert not missing, f"{name} --help lacks {missing}"
    versions = subprocess.run([script, "version"], capture_output=True, text=True)
    assert versions.returncode == 0, versions.stderr
    for package in (name, "ssc-common", "roman-schemas"):
        assert f"{package} " in versions.stdout, versions.stdout
    assert run_app(app, ["no-such-step"]) == 2
