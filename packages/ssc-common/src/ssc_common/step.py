"""The step pattern: idempotent, recorded, timed execution of one pipeline step.

A subclass names the step and implements :meth:`Step.process` (read inputs, call the kernel,
build products, publish them with :meth:`Step.publish`). :meth:`Step.run` first looks for a
finished task with the same input checksums and parameters whose products are all still in
storage: if there is one, it does nothing and returns those products.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from roman_schemas import Product
from ssc_common.context import Context
from ssc_common.errors import InputError
from ssc_common.metrics import timed_step
from ssc_common.provenance import InputRef, digest_inputs, digest_parameters
from ssc_common.publish import publish_product, software_versions

if TYPE_CHECKING:
    from ssc_common.db import ProductRecord, TaskRecord

log = logging.getLogger(__name__)


@dataclass
class StepResult:
    """What a run of a step produced (or found already produced)."""

    step: str
    task_id: str
    skipped: bool
    products: list[ProductRecord] = field(default_factory=list)


class Step(ABC):
    """Base of every pipeline step (see the module docstring)."""

    #: e.g. "msos.reference"; the processing database's task name
    name: ClassVar[str]
    #: our distributions whose versions go into every product of this step
    distributions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._task_id: str | None = None
        self._inputs: list[InputRef] = []

    def input_refs(self, keys: Sequence[str]) -> list[InputRef]:
        """Inputs (keys, paths or URIs) pinned by content: the sha256 the database recorded,
        else the one storage reports."""
        refs = []
        for ref in keys:
            storage, key = self.ctx.locate(ref)
            uri = storage.uri(key)
            known = self.ctx.db.product(uri)
            sha = known.sha256 if known else storage.info(key).sha256
            refs.append(InputRef(uri=uri, sha256=sha))
        return refs

    def _finished_and_intact(
        self, inputs: list[InputRef], parameters: Mapping[str, Any]
    ) -> tuple[TaskRecord, list[ProductRecord]] | None:
        task = self.ctx.db.find_finished_task(
            self.name, digest_inputs(inputs), digest_parameters(parameters)
        )
        if task is None:
            return None
        products = self.ctx.db.task_products(task.id)
        for record in products:
            key = self.ctx.storage.key_of(record.uri)
            if (
                not self.ctx.storage.exists(key)
                or self.ctx.storage.info(key).sha256 != record.sha256
            ):
                log.warning(
                    "product of a finished task changed or vanished: rerunning",
                    extra={"uri": record.uri, "step": self.name},
                )
                return None
        return task, products

    def run(
        self,
        input_keys: Sequence[str],
        parameters: Mapping[str, Any],
        *,
        partition: str | None = None,
        run_id: str | None = None,
    ) -> StepResult:
        """Run the step unless an identical run already finished; record everything."""
        inputs = self.input_refs(input_keys)
        parameters = dict(parameters)
        with timed_step(self.name) as outcome:
            done = self._finished_and_intact(inputs, parameters)
            if done is not None:
                task, products = done
                outcome["outcome"] = "skipped"
                log.info("already done: nothing to do", extra={"step": self.name, "task": task.id})
                return StepResult(self.name, task.id, True, products)
            task = self.ctx.db.start_task(
                self.name, partition=partition, inputs=inputs, parameters=parameters, run_id=run_id
            )
            self._task_id, self._inputs = task.id, inputs
            log.info("started", extra={"step": self.name, "task": task.id, "partition": partition})
            try:
                self.process(input_keys, parameters)
            except InputError as exc:
                # The input is unusable (corrupt, wrong type, wrong partition…): recorded as
                # rejected with the reason, which a rerun with the same input would repeat.
                outcome["outcome"] = "rejected"
                self.ctx.db.finish_task(task.id, "rejected", error=str(exc)[:2000])
                log.warning("rejected: %s", exc, extra={"step": self.name, "task": task.id})
                raise
            except BaseException as exc:
                self.ctx.db.finish_task(task.id, "failed", error=" ".join(str(exc).split())[:2000])
                raise
            self.ctx.db.finish_task(task.id, "succeeded")
            products = self.ctx.db.task_products(task.id)
            log.info(
                "finished", extra={"step": self.name, "task": task.id, "products": len(products)}
            )
            return StepResult(self.name, task.id, False, products)

    def publish(self, product: Product, key: str, parameters: Mapping[str, Any]) -> ProductRecord:
        """Publish a product of this task (validated, atomic, registered with provenance)."""
        if self._task_id is None:
            raise RuntimeError("publish() is only valid inside process()")
        product.meta.software_versions = {
            **product.meta.software_versions,
            **software_versions(*self.distributions),
        }
        product.meta.provenance.step = self.name
        product.meta.provenance.parameters = dict(parameters)
        product.meta.processing_id = self.ctx.settings.processing_id
        return publish_product(self.ctx, product, key, task_id=self._task_id, inputs=self._inputs)

    @abstractmethod
    def process(self, input_keys: Sequence[str], parameters: Mapping[str, Any]) -> None:
        """Read the inputs, run the kernel, and :meth:`publish` every product."""
