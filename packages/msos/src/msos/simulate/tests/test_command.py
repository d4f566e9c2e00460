"""``msos simulate``: what it writes, what it says, how it refuses."""

from __future__ import annotations

import contextlib
import io

import pytest

from msos.cli import app
from ssc_common.cli_base import run_app

QUICK = ["--shape", "48", "--epochs", "2", "--stars-per-arcmin2", "3000"]


def _run(capsys, *args):
    code = run_app(app, ["simulate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three quick runs: seed 3 twice, seed 4 once; (directory, exit code, stdout) each."""
    base = tmp_path_factory.mktemp("runs")
    results = {}
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        out = base / name
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            code = run_app(app, ["simulate", "--out", str(out), *QUICK, "--seed", seed])
        results[name] = (out, code, buffer.getvalue())
    return results


def test_it_writes_a_partition_and_says_what_it_wrote(runs):
    out, code, said = runs["a"]
    assert code == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == [
        "r0000101001001003001_0001_wfi01_f146_cal.asdf",
        "r0000101001001003002_0001_wfi01_f146_cal.asdf",
        "truth_epochs.parquet",
        "truth_psf.asdf",
        "truth_stars.parquet",
        "truth_variable_fluxes.parquet",
    ]
    for name in written:
        assert f"wrote {out / name}" in said
    assert "2 epochs of 48×48 pixels" in said


def test_the_same_seed_gives_identical_files(runs):
    a, b, c = (runs[name][0] for name in "abc")
    for path in sorted(a.iterdir()):
        assert path.read_bytes() == (b / path.name).read_bytes(), path.name
        if path.name.endswith("_cal.asdf"):
            assert path.read_bytes() != (c / path.name).read_bytes()


def test_the_partition_options_name_the_files(tmp_path, capsys):
    args = ["--field", "f05", "--detector", "wfi07", "--season", "s02", "--shape", "32"]
    code, _, _ = _run(capsys, "--out", str(tmp_path), "--epochs", "1", *args)
    assert code == 0
    assert (tmp_path / "r0000101002001005001_0001_wfi07_f146_cal.asdf").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--field", "f09"], "error: --field: 'f09' is not one of f01"),
        (["--detector", "WFI19"], "error: --detector: 'WFI19' is not one of WFI01–WFI18"),
        (["--season", "spring"], "error: --season: 'spring' is not a season like s01"),
        (["--shape", "5000"], "error: --shape: 5000 pixels is outside 32–4088"),
        (["--start", "yesterday"], "error: --start: 'yesterday' is not an ISO UTC time"),
        (["--epochs", "0"], "error: --epochs: 0 is not a positive number of exposures"),
        (["--compression", "zip"], "error: --compression: 'zip' is not one of none, lz4, zlib"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, capsys, args, message):
    code, _, err = _run(capsys, "--out", str(tmp_path), *args)
    assert code == 1
    assert err.startswith(message) and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_it_does_not_overwrite_a_simulation_unless_asked(tmp_path, capsys):
    args = ["--out", str(tmp_path), "--shape", "32", "--epochs", "1"]
    assert _run(capsys, *args)[0] == 0
    code, _, err = _run(capsys, *args)
    assert code == 1 and "already holds a simulation (use --overwrite" in err
    assert _run(capsys, *args, "--overwrite")[0] == 0
