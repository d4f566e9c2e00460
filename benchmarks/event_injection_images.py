"""Injection into images (the detection-efficiency catalog's ``images`` medium), measured on a
simulated partition: how much of a point-lens flux added to Level-2 epochs the pipeline's
difference imaging and forced photometry give back, and what it costs per epoch.

Simulates ``--epochs`` epochs of ``--size``² pixels (``msos.simulate``), builds the reference
and catalog (the ``process-partition`` steps), then for each epoch: difference it as the
pipeline does, render each host's added flux ``f_source · (A − 1)`` with the difference
image's PSF (the reference ePSF convolved by the epoch's kernel, so a flux in the reference's
unit lands as the epoch would record it) at the host's position on the epoch's grid, and run
the epoch again (offset, kernel fit, difference, photometry) on the injected pixels. The
report: the photometry's flux change at the hosts over the injected flux, and seconds per
epoch for the injected pass against the plain one.

    ./dev run python benchmarks/event_injection_images.py [--epochs 30] [--size 256]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from msos.catalog.step import CatalogStep
    from msos.context import PartitionReference
    from msos.dia.step import read_input_epoch
    from msos.epoch import difference_epoch, difference_psf, process_epoch
    from msos.events.model.lens import magnification
    from msos.partition import Partition
    from msos.psf.model import render_stars
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
        hosts = _isolated(rng, x, y, reference.shape, args.hosts, spacing=12.0, edge=30.0)
        epochs = [read_input_epoch(ctx, ref, partition) for ref in images]
        times = np.array([epoch.time_mjd_tdb for epoch in epochs])
        u_0 = rng.uniform(0.05, 0.5, hosts.size)
        params = [{"t_0": times.mean(), "u_0": u, "t_E": 0.3} for u in u_0]
        source = rng.uniform(5.0, 50.0, hosts.size)  # µJy
        added = source[:, None] * np.array([magnification("PSPL", times, p) - 1 for p in params])
        change, error = np.zeros_like(added), np.zeros_like(added)
        plain_s = injected_s = 0.0
        for j, epoch in enumerate(epochs):
            began = time.perf_counter()
            plain = process_epoch(reference, epoch)
            plain_s += time.perf_counter() - began
            began = time.perf_counter()
            shift, _, _, solution = difference_epoch(reference, epoch)
            psf = difference_psf(reference, solution, shift)
            flux = (added[:, j] / epoch.ujy_per_dn_s).astype(np.float32)
            pixels = render_stars(epoch.shape, x[hosts] + shift[0], y[hosts] + shift[1], flux, psf)
            result = process_epoch(reference, dataclasses.replace(epoch, data=epoch.data + pixels))
            injected_s += time.perf_counter() - began
            change[:, j] = result.flux_ujy[hosts] - plain.flux_ujy[hosts]
            error[:, j] = result.flux_err_ujy[hosts]
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


def _isolated(
    rng: np.random.Generator, x: np.ndarray, y: np.ndarray, shape: tuple[int, int], n: int,
    spacing: float, edge: float,
) -> np.ndarray:  # fmt: skip
    """Up to ``n`` random objects ``edge`` px inside the image and ``spacing`` px apart."""
    ny, nx = shape
    inside = np.flatnonzero((x > edge) & (x < nx - edge) & (y > edge) & (y < ny - edge))
    chosen: list[int] = []
    for k in rng.permutation(inside):
        if all(np.hypot(x[k] - x[h], y[k] - y[h]) > spacing for h in chosen):
            chosen.append(int(k))
        if len(chosen) == n:
            break
    return np.array(chosen, dtype=np.int64)


if __name__ == "__main__":
    main()
