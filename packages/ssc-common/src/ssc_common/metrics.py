"""Prometheus metrics of pipeline steps: runs, durations, products and bytes written.

Steps run as short-lived pods, so metrics are pushed to a Pushgateway at the end of a command
(``SSC_PUSHGATEWAY_URL``) or written as a node-exporter text file (``SSC_METRICS_FILE``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    push_to_gateway,
)

REGISTRY = CollectorRegistry(auto_describe=True)

STEP_RUNS = Counter(
    "ssc_step_runs", "Pipeline step executions by outcome", ["step", "outcome"], registry=REGISTRY
)
STEP_SECONDS = Histogram(
    "ssc_step_duration_seconds",
    "Wall time of pipeline steps",
    ["step"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600),
    registry=REGISTRY,
)
PRODUCTS_WRITTEN = Counter(
    "ssc_products_written", "Products published", ["product_type"], registry=REGISTRY
)
BYTES_WRITTEN = Counter(
    "ssc_product_bytes_written", "Bytes of products published", ["product_type"], registry=REGISTRY
)


@contextlib.contextmanager
def timed_step(step: str) -> Iterator[dict[str, str]]:
    """Time a step and count its outcome; set ``outcome`` in the yielded dict to override."""
    state = {"outcome": "succeeded"}
    start = time.perf_counter()
    try:
        yield state
    except BaseException:
        state["outcome"] = "failed"
        raise
    finally:
        STEP_SECONDS.labels(step).observe(time.perf_counter() - start)
        STEP_RUNS.labels(step, state["outcome"]).inc()


def record_product(product_type: str, size_bytes: int) -> None:
    """Count one published product and its size."""
    PRODUCTS_WRITTEN.labels(product_type).inc()
    BYTES_WRITTEN.labels(product_type).inc(size_bytes)


def export_metrics(job: str, pushgateway_url: str | None, metrics_file: str | None) -> None:
    """Push to the Pushgateway and/or write the text file, as configured (atomic file write)."""
    if pushgateway_url:
        push_to_gateway(pushgateway_url, job=job, registry=REGISTRY, timeout=5)
    if metrics_file:
        target = Path(metrics_file)
        temporary = target.with_name(f".{target.name}.{os.getpid()}")
        temporary.write_bytes(generate_latest(REGISTRY))
        os.replace(temporary, target)
