"""Outside users install roman-schemas alone: a fresh environment must read every product."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from uv import find_uv_bin

from roman_schemas import registered_products, write_product

PACKAGE = Path(__file__).resolve().parents[1]
LOCK = PACKAGE.parents[1] / "requirements" / "workspace.lock"

READER = textwrap.dedent(
    """
    import importlib.util, sys
    import asdf
    for name in ("ssc_common", "msos", "gdps", "cgi_dm", "rad", "roman_datamodels"):
        assert importlib.util.find_spec(name) is None, f"{name} is importable"
    for path in sys.argv[1:]:
        with asdf.open(path) as af:
            product = af["ssc"]
            cls = type(product)
            assert cls.__module__.startswith("roman_schemas.products"), cls
            shapes = {n: getattr(getattr(product, n), "shape", None) for n in cls.model_fields}
            print(cls.__name__, product.meta.file_name, shapes)
    """
)


@pytest.fixture(scope="module")
def standalone_python(tmp_path_factory) -> Path:
    """A new virtual environment holding roman-schemas (not editable) and its dependencies."""
    venv = tmp_path_factory.mktemp("standalone") / "venv"
    uv = find_uv_bin()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_CONSTRAINT")}
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True, env=env)
    python = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(python), "-c", str(LOCK), str(PACKAGE)],
        check=True,
        env=env,
    )
    return python


@pytest.mark.slow
def test_a_fresh_environment_with_only_roman_schemas_opens_every_product(
    standalone_python, tmp_path
):
    files = []
    for cls in registered_products().values():
        path = tmp_path / f"{cls.product_type}-{cls.schema_version}.asdf"
        files.append(write_product(cls.example(), path))
    result = subprocess.run(
        [str(standalone_python), "-I", "-c", READER, *map(str, files)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    for cls in registered_products().values():
        assert cls.__name__ in result.stdout
    assert "Warning" not in result.stderr, result.stderr


@pytest.mark.slow
def test_the_standalone_cli_validates_and_describes_a_product(standalone_python, tmp_path):
    path = tmp_path / "example.asdf"
    cli = standalone_python.parent / "roman-schemas"
    made = subprocess.run(
        [str(cli), "example", "wfi_microlensing_reference_frame_level_3", str(path)],
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    checked = subprocess.run([str(cli), "validate", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0 and "ok" in checked.stdout, checked.stderr
