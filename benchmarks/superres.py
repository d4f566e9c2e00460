"""Super-resolved reference: msos.reference.superres against shifting one frame by cubic splines.

Renders a crowded field (``msos.catalog.synthetic``: undersampled double-Gaussian ePSF, FWHM
≈ 1.3 pix, 1 star / 15 pix²) in ``--frames`` randomly dithered exposures with sky and Poisson
noise, reconstructs the 2× super-resolved frame from them, and predicts the field at new
sub-pixel phases. The usual tool, ``scipy.ndimage.shift`` (cubic spline) of one noiseless
exposure, does the same. Prints the reconstruction's time and throughput, the time of one
prediction for both (and their ratio), and both predictions' rms error in units of the pixel
noise: the number that decides whether a difference image keeps constant stars flat.

    ./dev run python benchmarks/superres.py [--size 256] [--frames 24] [--iterations 60]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage

from msos.catalog.synthetic import power_law, truth_psf
from msos.psf.model import render_stars
from msos.reference.superres import Tiling, frame_weights, predict, reconstruct

SKY_VARIANCE = 25.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    size = args.size
    psf = truth_psf(size, n=1)
    n = size * size // 15
    x, y = rng.uniform(-2, size + 1, (2, n))
    flux = power_law(rng, n, 20.0, 2e5)

    def scene(shift):
        return render_stars((size, size), x + shift[0], y + shift[1], flux, psf).astype(float)

    frames = []
    for k in range(args.frames):
        shift = (0.0, 0.0) if k == 0 else tuple(rng.uniform(-0.5, 0.5, 2))
        truth = scene(shift)
        var = SKY_VARIANCE + np.clip(truth, 0, None)
        data = truth + rng.normal(size=truth.shape) * np.sqrt(var)
        frames.append((data, frame_weights(var, np.zeros(var.shape, bool)), shift))
    start = time.perf_counter()
    image = reconstruct(frames, iterations=args.iterations)
    build = time.perf_counter() - start
    base = scene((0.0, 0.0))
    ours_err, cubic_err, ours_t, cubic_t = [], [], [], []
    inner = (slice(8, size - 8), slice(8, size - 8))
    for shift in ((0.5, 0.5), (-0.3, 0.2), (0.25, -0.45)):
        truth = scene(shift)
        sigma = np.sqrt(SKY_VARIANCE + np.clip(truth, 0, None))
        t0 = time.perf_counter()
        ours = predict(image, shift)[0]
        t1 = time.perf_counter()
        cubic = ndimage.shift(base, (shift[1], shift[0]), order=3, mode="nearest")
        t2 = time.perf_counter()
        ours_t.append(t1 - t0)
        cubic_t.append(t2 - t1)
        ours_err.append(np.sqrt(np.mean((((ours - truth) / sigma)[inner]) ** 2)))
        cubic_err.append(np.sqrt(np.mean((((cubic - truth) / sigma)[inner]) ** 2)))
    pix_iter = args.frames * size * size * image.iterations
    print(f"{args.frames} frames of {size}², {n} stars, 2× grid")
    print(
        f"reconstruction: {build:.1f} s, {image.iterations} iterations (residual "
        f"{image.residual:.1e}), {pix_iter / build / 1e6:.2f} M frame-pixel-iterations/s"
    )
    tiling = Tiling()
    region = tiling.tile + 2 * tiling.margin
    per_tile = build * (region / size) ** 2 * 32 / args.frames
    tiles = len(tiling.tiles((4088, 4088)))
    print(
        f"a 4088² detector from 32 epochs: {tiles} tiles of {region}² at ~{per_tile:.0f} s "
        f"each (scaled by area from this run) = ~{tiles * per_tile / 3600:.1f} h on one core"
    )
    ratio = np.median(ours_t) / np.median(cubic_t)
    print(
        f"one prediction: ours {np.median(ours_t) * 1e3:.1f} ms, cubic shift "
        f"{np.median(cubic_t) * 1e3:.1f} ms (ours/cubic time {ratio:.1f}×)"
    )
    print(
        f"rms error / pixel noise at new phases: ours {np.mean(ours_err):.3f}, "
        f"cubic shift of a noiseless frame {np.mean(cubic_err):.3f} "
        f"(ours {np.mean(cubic_err) / np.mean(ours_err):.0f}× smaller)"
    )


if __name__ == "__main__":
    main()
