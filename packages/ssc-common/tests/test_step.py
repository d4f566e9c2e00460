"""The step pattern on both deployments: publish validated products, record, never redo."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from roman_schemas import ProductValidationError
from roman_schemas.io import load_arrays
from roman_schemas.products.msos import ReferenceFrame
from ssc_common.errors import DatabaseError
from ssc_common.publish import open_stored_product
from ssc_common.step import Step

OUT = "msos/s01/f03/wfi01/reference.asdf"


class MakeFrame(Step):
    """A step that turns a stored 'input' (any object) into a reference frame."""

    name = "test.make-frame"
    calls = 0

    def process(self, input_keys: Sequence[str], parameters: Mapping[str, Any]) -> None:
        type(self).calls += 1
        if parameters.get("explode"):
            raise RuntimeError("kernel failed on purpose")
        product = ReferenceFrame.example(size=32, n_objects=5, seed=int(parameters["seed"]))
        if parameters.get("break_schema"):
            product.meta.provenance.parameters = {"ok": True}
            object.__setattr__(product, "data", product.data.astype("float64"))
        self.publish(product, OUT, parameters)


@pytest.fixture(autouse=True)
def _reset_calls():
    MakeFrame.calls = 0


def test_a_step_publishes_a_registered_product_with_provenance(ssc_context):
    ssc_context.storage.put_bytes("inputs/epoch-0001.bin", b"epoch one")
    result = MakeFrame(ssc_context).run(["inputs/epoch-0001.bin"], {"seed": 3}, partition="p")
    assert not result.skipped and len(result.products) == 1
    record = result.products[0]
    assert record.uri == ssc_context.storage.uri(OUT)
    assert record.sha256 == ssc_context.storage.info(OUT).sha256
    assert record.schema_tag == ReferenceFrame.tag_uri()
    [source] = ssc_context.db.inputs_of(record.uri)
    assert source.uri == ssc_context.storage.uri("inputs/epoch-0001.bin")
    with open_stored_product(ssc_context, OUT, ReferenceFrame) as product:
        assert product.meta.provenance.step == "test.make-frame"
        assert product.meta.provenance.parameters == {"seed": 3}
        assert product.meta.provenance.inputs[0].sha256 == source.sha256
        assert product.meta.provenance.task_id == result.task_id
        assert product.meta.file_name == "reference.asdf"
        assert "ssc-common" in product.meta.software_versions
        whole = load_arrays(product, record.uri)
    np.testing.assert_array_equal(
        whole.data, ReferenceFrame.example(size=32, n_objects=5, seed=3).data
    )


def test_rerun_of_finished_step_writes_nothing(ssc_context):
    ssc_context.storage.put_bytes("inputs/a.bin", b"a")
    first = MakeFrame(ssc_context).run(["inputs/a.bin"], {"seed": 1})
    before = ssc_context.storage.info(OUT)
    second = MakeFrame(ssc_context).run(["inputs/a.bin"], {"seed": 1})
    assert second.skipped and second.task_id == first.task_id
    assert MakeFrame.calls == 1
    assert ssc_context.storage.info(OUT) == before
    assert [p.uri for p in second.products] == [p.uri for p in first.products]


def test_a_changed_input_or_parameter_runs_again(ssc_context):
    ssc_context.storage.put_bytes("inputs/a.bin", b"a")
    MakeFrame(ssc_context).run(["inputs/a.bin"], {"seed": 1})
    assert not MakeFrame(ssc_context).run(["inputs/a.bin"], {"seed": 2}).skipped
    ssc_context.storage.put_bytes("inputs/a.bin", b"a, reprocessed")
    assert not MakeFrame(ssc_context).run(["inputs/a.bin"], {"seed": 2}).skipped
    assert MakeFrame.calls == 3


def test_a_vanished_product_is_made_again(ssc_context):
    ssc_context.storage.put_bytes("inputs/a.bin", b"a")
    MakeFrame(ssc_context).run(["inputs/a.bin"], {"seed": 1})
    ssc_context.storage.delete(OUT)
    again = MakeFrame(ssc_context).run(["inputs/a.bin"], {"seed": 1})
    assert not again.skipped and ssc_context.storage.exists(OUT)


def test_a_failing_kernel_records_the_failure_and_writes_nothing(ssc_context):
    ssc_context.storage.put_bytes("inputs/a.bin", b"a")
    step = MakeFrame(ssc_context)
    with pytest.raises(RuntimeError, match="on purpose"):
        step.run(["inputs/a.bin"], {"seed": 1, "explode": True})
    assert not ssc_context.storage.exists(OUT)
    assert ssc_context.db.products() == []
    task = ssc_context.db.task(step._task_id)
    assert task.status == "failed" and "on purpose" in task.error


def test_a_product_breaking_its_schema_is_never_stored(ssc_context):
    ssc_context.storage.put_bytes("inputs/a.bin", b"a")
    with pytest.raises(ProductValidationError, match="float64"):
        MakeFrame(ssc_context).run(["inputs/a.bin"], {"seed": 1, "break_schema": True})
    assert not ssc_context.storage.exists(OUT)
    assert ssc_context.db.products() == []


def test_a_product_the_database_refuses_is_withdrawn_from_storage(ssc_context, monkeypatch):
    ssc_context.storage.put_bytes("inputs/a.bin", b"a")

    def refuse(**kwargs):
        raise DatabaseError("db", "registering failed: simulated outage")

    monkeypatch.setattr(ssc_context.db, "register_product", refuse)
    with pytest.raises(DatabaseError, match="simulated outage"):
        MakeFrame(ssc_context).run(["inputs/a.bin"], {"seed": 1})
    assert not ssc_context.storage.exists(OUT)
    assert list(ssc_context.storage.list("msos/")) == []


def test_inputs_outside_the_product_store_are_pinned_by_content(ssc_context, tmp_path):
    outside = tmp_path / "elsewhere" / "r0001_wfi01_cal.asdf"
    outside.parent.mkdir()
    outside.write_bytes(b"a level-2 file")
    import hashlib

    for ref in (str(outside), outside.as_uri()):
        [pinned] = MakeFrame(ssc_context).input_refs([ref])
        assert pinned.uri == outside.as_uri()
        assert pinned.sha256 == hashlib.sha256(b"a level-2 file").hexdigest()
    storage, key = ssc_context.locate(ssc_context.storage.uri("msos/x.asdf"))
    assert storage is ssc_context.storage and key == "msos/x.asdf"
