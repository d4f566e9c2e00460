"""Bad input anywhere: one line naming the thing and the cause, non-zero, nothing left behind."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asdf
import numpy as np
import pytest
from typer.testing import CliRunner

from roman_schemas.io import product_bytes
from roman_schemas.products.msos import ReferenceFrame
from ssc_common.errors import InputError
from ssc_common.publish import open_stored_product
from ssc_common.step import Step

OUT = "msos/s01/f03/wfi01/copy.asdf"


class CopyFrame(Step):
    """Reads one reference frame from storage and publishes a copy of it."""

    name = "test.copy-frame"

    def process(self, input_keys: Sequence[str], parameters: Mapping[str, Any]) -> None:
        from roman_schemas.io import load_arrays

        with open_stored_product(self.ctx, input_keys[0], ReferenceFrame) as product:
            copy = load_arrays(product, input_keys[0])
        self.publish(copy, OUT, parameters)


def _corrupt_inputs() -> dict[str, bytes]:
    whole = product_bytes(ReferenceFrame.example(size=32, n_objects=3))
    other = asdf.AsdfFile({"roman": {"data": np.zeros(4)}})
    import io

    buffer = io.BytesIO()
    other.write_to(buffer)
    return {
        "truncated": whole[: len(whole) // 2],
        "garbage": b"\x00\x01 not asdf at all " * 100,
        "wrong-type": buffer.getvalue(),
    }


@pytest.mark.parametrize("kind", ["truncated", "garbage", "wrong-type"])
def test_a_step_refuses_a_bad_input_naming_its_uri_and_registers_nothing(ssc_context, kind):
    key = f"inputs/{kind}.asdf"
    ssc_context.storage.put_bytes(key, _corrupt_inputs()[kind])
    step = CopyFrame(ssc_context)
    with pytest.raises(InputError) as err:
        step.run([key], {})
    message = str(err.value)
    assert message.startswith(ssc_context.storage.uri(key) + ": ") and "\n" not in message
    assert not ssc_context.storage.exists(OUT)
    assert ssc_context.db.products() == []
    task = ssc_context.db.task(step._task_id)
    assert task.status == "rejected" and task.error == message


@pytest.mark.parametrize("kind", ["truncated", "garbage", "wrong-type"])
def test_roman_schemas_validate_names_the_bad_file_and_exits_1(tmp_path, kind):
    from roman_schemas.cli import app

    path = tmp_path / f"{kind}.asdf"
    path.write_bytes(_corrupt_inputs()[kind])
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: ")
