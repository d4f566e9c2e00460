"""From light curves to catalog rows: search each object, fit a point lens to what clears the
threshold, and classify it.

Runs on the objects the trigger picked (or any list of them); each light curve is cleaned the
way outside tables are (:func:`msos.events.inputs.clean`), so flagged, NaN and repeated
epochs never reach a fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from msos.events.classify.kernel import Classification, classify
from msos.events.inputs import clean
from msos.events.model.pspl import PSPLFit, fit_detection, magnification
from msos.events.search.kernel import Detection, SearchGrid, search

#: Δχ² of the grid search a light curve must reach to be modelled (noise-only light curves
#: of a season reach ~20; Kim et al. 2018 use a few hundred for KMTNet's noisier data)
DEFAULT_THRESHOLD = 500.0


@dataclass(frozen=True)
class EventRow:
    """One detection: the object, its search result, PSPL fit and classification."""

    object_id: int
    detection: Detection
    fit: PSPLFit
    classification: Classification
    peak_snr: float  # the largest (model − baseline) / error at an epoch
    n_points_magnified: int  # epochs 3σ above the baseline


def find_events(
    object_id: np.ndarray,
    time: np.ndarray,
    flux: np.ndarray,
    flux_err: np.ndarray,
    flags: np.ndarray | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    grid: SearchGrid | None = None,
) -> tuple[list[EventRow], dict[int, str]]:
    """Rows for every object (``flux``: objects × epochs, total flux) whose search clears
    ``threshold``, and the objects left out with the reason (too few usable points)."""
    rows, skipped = [], {}
    for k, oid in enumerate(np.asarray(object_id)):
        good = np.ones(time.size, bool) if flags is None else np.asarray(flags[k]) == 0
        curve = clean(np.full(int(good.sum()), oid), time[good], flux[k][good],
                      flux_err[k][good])  # fmt: skip
        if len(curve) == 0:
            skipped[int(oid)] = curve.rejected.get(int(oid), "no usable points")
            continue
        t, f, e = curve.of(0)
        detection = search(t, f, e, grid)
        if detection.delta_chi2 < threshold:
            continue
        try:
            fit = fit_detection(t, f, e, detection.t_0, detection.t_eff)
        except (ValueError, np.linalg.LinAlgError) as exc:
            skipped[int(oid)] = f"no point-lens fit ({exc})"
            continue
        kind = classify(t, f, e, fit)
        excess = fit.f_source * (magnification(t, fit.t_0, fit.u_0, fit.t_E) - 1) / e
        rows.append(EventRow(int(oid), detection, fit, kind, float(np.max(excess)),
                             int(np.sum(excess > 3))))  # fmt: skip
    return rows, skipped
