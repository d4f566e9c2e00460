"""The foundation demo: one product written, validated, stored, registered and read back.

It runs the same path every pipeline step uses (``Step.run`` → ``publish_product``) on the
embedded defaults, then proves the stored file reads back whole and that a rerun does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from roman_schemas.products.msos import ReferenceFrame
from ssc_common.context import Context
from ssc_common.step import Step, StepResult

DEMO_KEY = "demo/s01/f03/wfi01/wfi_microlensing_reference_frame_level_3.asdf"


class ExampleReferenceFrameStep(Step):
    """Makes the synthetic example reference frame of roman-schemas and publishes it."""

    name = "ssc.demo-reference-frame"

    def process(self, input_keys: Sequence[str], parameters: Mapping[str, Any]) -> None:
        product = ReferenceFrame.example(
            size=int(parameters["size"]), n_objects=int(parameters["n_objects"]), seed=1
        )
        self.publish(product, DEMO_KEY, parameters)


def run_demo(ctx: Context, echo: Any = print) -> list[StepResult]:
    """Run the demo step twice (the second run must be a no-op) and read the product back."""
    from roman_schemas.io import load_arrays
    from ssc_common.publish import open_stored_product

    echo(f"storage:  {ctx.storage.url}")
    echo(f"database: {ctx.db.url}")
    parameters = {"size": 256, "n_objects": 200}
    first = ExampleReferenceFrameStep(ctx).run([], parameters, partition="s01/f03/wfi01")
    record = first.products[0]
    echo(f"1. wrote + validated + stored + registered {record.uri}")
    echo(f"   {record.size_bytes} bytes, sha256 {record.sha256[:16]}…, task {first.task_id[:8]}")
    with open_stored_product(ctx, DEMO_KEY, ReferenceFrame) as product:
        whole = load_arrays(product, record.uri)
    keywords = whole.archive_keywords()
    echo(f"2. read back: {type(whole).__name__} {whole.data.shape}, {len(whole.objects)} objects")
    echo(
        f"   archive keywords: {len(keywords)} (season={keywords['season']}, "
        f"detector={keywords['detector']})"
    )
    second = ExampleReferenceFrameStep(ctx).run([], parameters, partition="s01/f03/wfi01")
    state = "did nothing (already done)" if second.skipped else "RAN AGAIN"
    echo(f"3. rerun with the same inputs and parameters: {state}")
    registered = ctx.db.products(uri_prefix=f"{ctx.storage.url}/demo/")
    echo(f"4. registered demo products: {len(registered)}")
    return [first, second]
