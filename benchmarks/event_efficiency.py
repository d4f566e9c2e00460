"""Detection-efficiency report: events injected into simulated season light curves and searched
as ``msos events`` searches (``msos.events.efficiency``), efficiency by (u_0, t_E) and by peak
S/N, false positives among blanks, and the time per light curve.

The season: ``--days`` at ``--cadence-min``; hosts of reference flux log-uniform in 1–100 µJy
with a photometric error ``√(σ_bg² + F_ref / e)`` (σ_bg = ``--floor-ujy`` for the crowded
background, ``e`` = ``--electrons-per-ujy`` detected electrons per µJy in one exposure, also
the photon noise of the injected flux), ``--variables`` of them sinusoidal variables. Events:
the step's defaults (u_0 ≤ 1.5, t_E 1–100 d, source 5–100 % of the host's flux).

    ./dev run python benchmarks/event_efficiency.py [--injections 300] [--hosts 100]
"""

from __future__ import annotations

import argparse
import time
from itertools import pairwise

import numpy as np

from msos.events.efficiency.kernel import InjectionSettings, draw_injections, efficiency, recover


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--injections", type=int, default=300)
    parser.add_argument("--blank-fraction", type=float, default=0.15)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--variables", type=float, default=0.1, help="share of hosts")
    parser.add_argument("--days", type=float, default=62.0)
    parser.add_argument("--cadence-min", type=float, default=15.0)
    parser.add_argument("--floor-ujy", type=float, default=0.5)
    parser.add_argument("--electrons-per-ujy", type=float, default=1300.0)
    parser.add_argument("--threshold", type=float, default=500.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    t = 61400 + np.arange(0, args.days, args.cadence_min / 1440)
    ref = np.exp(rng.uniform(np.log(1.0), np.log(100.0), args.hosts))
    err = np.sqrt(args.floor_ujy**2 + ref / args.electrons_per_ujy)[:, None] * np.ones(t.size)
    flux = ref[:, None] + rng.normal(0.0, err)
    variable = rng.random(args.hosts) < args.variables
    for k in np.flatnonzero(variable):
        amplitude = rng.uniform(5, 30) * err[k, 0]
        flux[k] += amplitude * np.sin(2 * np.pi * t / rng.uniform(0.3, 10) + rng.uniform(0, 6))
    settings = InjectionSettings(n_injections=args.injections, blank_fraction=args.blank_fraction)
    plan = draw_injections(rng, t, ref, settings)
    began = time.perf_counter()
    recovery = recover(t, flux, err, None, plan, threshold=args.threshold,
                       electrons_per_ujy=args.electrons_per_ujy, rng=rng)  # fmt: skip
    elapsed = time.perf_counter() - began
    classes = recovery.binary_class(plan.injected)
    counts = {name: int(np.count_nonzero(classes == name)) for name in ("TP", "FN", "FP", "TN")}
    print(f"{len(plan)} light curves of {t.size} epochs ({args.cadence_min:g}-min cadence, "
          f"{args.days:g} d): {elapsed / len(plan) * 1e3:.0f} ms each; {counts}")  # fmt: skip
    events = counts["TP"] + counts["FN"]
    print(f"efficiency {counts['TP']}/{events} = {counts['TP'] / max(events, 1):.1%}; blanks "
          f"detected {counts['FP']}/{counts['FP'] + counts['TN']} (variable hosts among blanks: "
          f"{int(np.count_nonzero(variable[plan.host] & ~plan.injected))})")  # fmt: skip
    u_edges, t_edges = np.array([0, 0.1, 0.3, 0.6, 1.0, 1.5]), np.array([1, 3, 10, 30, 100])
    share, total = efficiency(plan.injected, recovery.detected, (plan.u_0, plan.t_E),
                              (u_edges, t_edges))  # fmt: skip
    print("efficiency by u_0 (rows) and t_E (columns, d), (injected):")
    heads = (f"{a:g}-{b:g}" for a, b in pairwise(t_edges))
    print("u_0 \\ t_E   " + "".join(f"{head:>14}" for head in heads))
    for i in range(u_edges.size - 1):
        cells = "".join(f"{share[i, j]:>8.0%} ({total[i, j]:>3})" for j in range(t_edges.size - 1))
        print(f"{u_edges[i]:.1f}-{u_edges[i + 1]:.1f}".ljust(12) + cells)
    snr_edges = np.array([0, 1, 3, 10, 30, 100, np.inf])
    share, total = efficiency(plan.injected, recovery.detected, (recovery.peak_snr,),
                              (snr_edges,))  # fmt: skip
    print("efficiency by injected peak S/N:")
    for i in range(snr_edges.size - 1):
        print(f"  {snr_edges[i]:g}-{snr_edges[i + 1]:g}".ljust(12)
              + f"{share[i]:>8.0%} ({total[i]})")  # fmt: skip
    missed = plan.injected & ~recovery.detected & (recovery.peak_snr > 30)
    kinds, n = np.unique(recovery.classification[missed], return_counts=True)
    print("missed with peak S/N > 30, as the search classed them: "
          + (", ".join(f"{k or 'below threshold'} {c}" for k, c in zip(kinds, n, strict=True))
             or "none"))  # fmt: skip


if __name__ == "__main__":
    main()
