"""Injection into images (the detection-efficiency catalog's ``images`` medium), measured on a
simulated partition: how much of a point-lens flux added to Level-2 epochs the pipeline's
difference imaging and forced photometry give back, and what it costs per epoch.

Simulates ``--epochs`` epochs of ``--size``² pixels (``msos.simulate``), builds the reference
and catalog (the ``process-partition`` steps), then for each epoch: difference it as the
pipeline does, render each host's added flux ``f_source · (A − 1)`` with the difference
image's PSF (the reference ePSF convolved by the epoch's kernel, so a flux in the reference's
unit lands as the epoch would record it) at the host's position on the epoch's grid, and run
the epoch again (offset, kernel fit, difference, photometry) on the injected pixels — all of
that by the library (``msos.events.efficiency.images``: hosts by ``choose_hosts``, the pass
by ``injected_light_curves``). The report: the photometry's flux change at the hosts over the
injected flux, and seconds per epoch for the injected pass against the plain one.

    ./dev run python benchmarks/event_injection_images.py [--epochs 30] [--size 256]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from msos.catalog.step import CatalogStep
    from msos.context import PartitionReference
    from msos.dia.step import read_input_epoch
    from msos.epoch import process_epoch
    from msos.events.efficiency.images import choose_hosts, injected_light_curves
    from msos.events.efficiency.kernel import InjectionPlan, added_flux
    from msos.partition import Partition
    from msos.reference.step import ReferenceStep
    from msos.simulate.command import write_partition
    from msos.simulate.partition import SimulationConfig
    from ssc_common.context import Context
    from ssc_common.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--hosts", type=int, default=40)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    partition = Partition("s01", "f03", "WFI01")
    with tempfile.TemporaryDirectory(prefix="msos-inject-") as scratch:
        root = Path(scratch)
        config = SimulationConfig(n_epochs=args.epochs, shape=(args.size, args.size), n_pspl=0,
                                  n_binary=0, periodic_fraction=0.0, seed=args.seed,
                                  cadence_s=3600.0)  # fmt: skip
        (root / "level2").mkdir()
        write_partition(config, root / "level2", compression="none")
        images = [str(p) for p in sorted((root / "level2").glob("*_cal.asdf"))]
        ctx = Context(Settings(storage_url=(root / "store").as_uri()))
        began = time.perf_counter()
        ReferenceStep(ctx, partition).run(images, {}, partition=partition.name)
        CatalogStep(ctx, partition).run([partition.reference_key()], {},
                                        partition=partition.name)  # fmt: skip
        setup = time.perf_counter() - began
        reference = PartitionReference.load(ctx, partition)
        x, y = reference.xy
        rng = np.random.default_rng(args.seed)
        hosts = choose_hosts(rng, x, y, reference.shape, np.ones(x.size, bool), args.hosts,
                             spacing=12.0, edge=30.0)[0]  # one pass  # fmt: skip
        epochs = [read_input_epoch(ctx, ref, partition) for ref in images]
        times = np.array([epoch.time_mjd_tdb for epoch in epochs])
        n = hosts.size
        nan = np.full(n, np.nan)
        plan = InjectionPlan(
            host=hosts, injected=np.ones(n, bool), model_type=np.full(n, "PSPL"),
            t_0=np.full(n, times.mean()), u_0=rng.uniform(0.05, 0.5, n), t_E=np.full(n, 0.3),
            rho=nan, s=nan, q=nan, alpha=nan, source_flux=rng.uniform(5.0, 50.0, n),  # µJy
        )  # fmt: skip
        added = added_flux(times, plan)
        began = time.perf_counter()
        plain = np.column_stack([process_epoch(reference, e).flux_ujy[hosts] for e in epochs])
        plain_s = time.perf_counter() - began
        began = time.perf_counter()
        curves = injected_light_curves(reference, epochs, plan, np.zeros(n, np.int64), added)
        injected_s = time.perf_counter() - began
        ref = np.asarray(reference.catalog.objects.ref_flux_ujy, dtype=np.float64)[hosts]
        change, error = curves.flux - ref[:, None] - plain, curves.flux_err
        ctx.close()
    print(f"{args.epochs} epochs of {args.size}² pixels, {hosts.size} hosts ≥ 12 px apart; "
          f"reference + catalog {setup:.0f} s")  # fmt: skip
    print(f"per epoch: plain pass {plain_s / len(epochs):.2f} s, injected pass (difference "
          f"for the PSF, inject, run again) {injected_s / len(epochs):.2f} s")  # fmt: skip
    strong = np.isfinite(change) & (added > 3 * error)
    ratio = change[strong] / added[strong]
    print(f"recovered / injected flux at the {strong.sum()} points > 3σ: median "
          f"{np.median(ratio):.4f}, 10-90 % {np.percentile(ratio, 10):.4f}-"
          f"{np.percentile(ratio, 90):.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
