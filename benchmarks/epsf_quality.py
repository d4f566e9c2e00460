"""How well the reference step's ePSF fits stars: phase error against the truth ePSF.

Simulates a crowded partition (``msos simulate``: 32 dithered 256² epochs, seed 11, the
science tests' field), runs the reference step (stack, catalog, ePSF built from the dithered
epochs) and, at nine places on the detector, fits a star drawn with the truth ePSF (the mean
over the epochs of ``truth_psf.asdf``, jitter included) with the built ePSF at 8×8 sub-pixel
phases. It prints the rms over phases of the fitted flux (per cent of the flux): that scatter
enters every epoch of a constant star's light curve, since each epoch sees it at another
phase. A star with S/N 300 per epoch needs it well below 0.3 % to stay at χ² ≈ 1. As a
yardstick it prints the same for one epoch's truth ePSF, and the build's time.

    ./dev run python benchmarks/epsf_quality.py [--epochs 32] [--size 256] [--seed 11]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from msos.psf.model import EPSFGrid
from msos.simulate.write import read_truth_psf

POINTS = [(0.12, 0.12), (0.5, 0.12), (0.88, 0.12), (0.12, 0.5), (0.5, 0.5), (0.88, 0.5),
          (0.12, 0.88), (0.5, 0.88), (0.88, 0.88)]  # fmt: skip


def phase_flux_error(model: EPSFGrid, truth: np.ndarray, x: float, y: float) -> float:
    """rms over 8×8 sub-pixel phases of the flux (per cent) of a star drawn with the ``truth``
    stamp and fitted with ``model`` at ``(x, y)`` (9×9 pixels, photon and sky weights)."""
    exact = EPSFGrid(truth, oversampling=model.oversampling)
    pix = np.arange(-4, 5, dtype=float)
    fluxes = []
    for fy in np.arange(8) / 8:
        for fx in np.arange(8) / 8:
            u, v = pix[None, :] - fx, pix[:, None] - fy
            m = model.evaluate(u, v, x, y)
            t = exact.evaluate(u, v)
            w = 1.0 / (t + 0.002)
            fluxes.append((w * m * t).sum() / (w * m * m).sum())
    fluxes = np.array(fluxes)
    return float(fluxes.std() / fluxes.mean() * 100)


def _crop(stamp: np.ndarray, n: int) -> np.ndarray:
    c = (stamp.shape[0] - n) // 2
    return np.asarray(stamp, dtype=float)[c : c + n, c : c + n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    from msos.partition import Partition
    from msos.reference.step import ReferenceStep
    from msos.simulate.command import TRUTH_PSF, write_partition
    from msos.simulate.partition import SimulationConfig
    from roman_schemas import read_product
    from roman_schemas.products.msos import ReferenceFrame
    from ssc_common.context import Context
    from ssc_common.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        sim, store = Path(tmp) / "sim", Path(tmp) / "store"
        sim.mkdir()
        store.mkdir()
        config = SimulationConfig(
            n_epochs=args.epochs, shape=(args.size, args.size), n_pspl=3, n_binary=0,
            periodic_fraction=0.02, seed=args.seed,
        )  # fmt: skip
        write_partition(config, sim, compression="none")
        partition = Partition("s01", config.field, config.detector)
        images = [str(p) for p in sorted(sim.glob("*_cal.asdf"))]
        ctx = Context(Settings(storage_url=store.as_uri()))
        try:
            start = time.perf_counter()
            ReferenceStep(ctx, partition).run(images, {}, partition=partition.name)
            seconds = time.perf_counter() - start
            frame = read_product(store / partition.reference_key(), ReferenceFrame)
        finally:
            ctx.close()
        built = EPSFGrid.from_gridded_psf(frame.psf, normalize=True)
        truths = [
            EPSFGrid.from_gridded_psf(read_truth_psf(sim / TRUTH_PSF, e), normalize=True)
            for e in range(args.epochs)
        ]
    n = built.stamp_shape[0]
    ours, yardstick = [], []
    for fx, fy in POINTS:
        x, y = fx * (args.size - 1), fy * (args.size - 1)
        mean_truth = np.mean([_crop(t.stamp_at(x, y), n) for t in truths], axis=0)
        ours.append(phase_flux_error(built, mean_truth, x, y))
        one = EPSFGrid(_crop(truths[0].stamp_at(x, y), n), oversampling=built.oversampling)
        yardstick.append(phase_flux_error(one, mean_truth, 0.0, 0.0))
    print(f"reference step (stack, catalog, ePSF from {args.epochs} epochs): {seconds:.1f} s")
    print(f"ePSF grid: {built.grid_y.size}×{built.grid_x.size} nodes")
    print("phase flux error (% rms) at 3×3 places: " + " ".join(f"{q:.3f}" for q in ours))
    print(f"  median {np.median(ours):.3f} %, worst {max(ours):.3f} %")
    print(f"one epoch's truth ePSF: median {np.median(yardstick):.4f} % (yardstick)")


if __name__ == "__main__":
    main()
