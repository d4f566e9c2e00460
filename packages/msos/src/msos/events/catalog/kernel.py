"""From light curves to catalog rows: search each object, fit a point lens to what clears the
threshold, classify it, and model what is a microlensing event.

An object may have several datasets (telescopes or bands, each on its own flux scale): the
search, point-lens fit and classification run on its primary one (listed first), model
selection on all of them, so the catalog's source and blend fluxes are on the primary's scale.

Runs on the objects the trigger picked (or any list of them); each light curve is cleaned the
way outside tables are (:func:`msos.events.inputs.clean`), so flagged, NaN and repeated
epochs never reach a fit. Events (single lenses and candidates) then go through model
selection (:func:`msos.events.model.select.select_model`: finite source, parallax, binary
lens); a binary lens makes the event ``planetary`` (q < 0.03) or ``binary_lens``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from msos.events.classify.kernel import Classification, ClassifierSettings, classify
from msos.events.inputs import clean
from msos.events.model.fit import Dataset, ModelFit
from msos.events.model.lens import Sky
from msos.events.model.pspl import PSPLFit, fit_detection, magnification
from msos.events.model.select import SelectionSettings, select_model
from msos.events.search.kernel import Detection, SearchGrid, search

#: Δχ² of the grid search a light curve must reach to be modelled (noise-only light curves
#: of a season reach ~20; Kim et al. 2018 use a few hundred for KMTNet's noisier data)
DEFAULT_THRESHOLD = 500.0
#: our light curves' times are MJD: add this for a Julian date
MJD_OFFSET = 2400000.5
#: the largest mass ratio called a planet (a brown dwarf around an M dwarf reaches ~0.03)
PLANET_MAX_Q = 0.03
#: classes the model step takes on (the point-lens ones)
MODELLED_CLASSES = ("single_lens", "candidate")
DEFAULT_SELECTION = SelectionSettings()


@dataclass(frozen=True)
class EventRow:
    """One detection: the object, its search result, PSPL fit, classification and (for
    events) the selected model."""

    object_id: int
    detection: Detection
    fit: PSPLFit
    classification: Classification
    peak_snr: float  # the largest (model − baseline) / error at an epoch
    n_points_magnified: int  # epochs 3σ above the baseline
    model: ModelFit | None = None  # the selected model (None: not an event, or not modelled)
    data: tuple[Dataset, ...] | None = None  # the datasets the model was fitted to, in its order


def find_events(
    object_id: np.ndarray,
    time: np.ndarray,
    flux: np.ndarray,
    flux_err: np.ndarray,
    flags: np.ndarray | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    grid: SearchGrid | None = None,
    *,
    positions: np.ndarray | None = None,
    jd_offset: float = MJD_OFFSET,
    selection: SelectionSettings | None = DEFAULT_SELECTION,
) -> tuple[list[EventRow], dict[int, str]]:
    """Rows for every object (``flux``: objects × epochs, total flux) whose search clears
    ``threshold``, and the objects left out with the reason (too few usable points).

    ``positions`` (objects × (ra, dec), degrees) and ``jd_offset`` let parallax be fitted;
    ``selection=None`` keeps the compiled point-lens fit only (no model selection).
    """
    rows, skipped = [], {}
    for k, oid in enumerate(np.asarray(object_id)):
        good = np.ones(time.size, bool) if flags is None else np.asarray(flags[k]) == 0
        curve = clean(np.full(int(good.sum()), oid), time[good], flux[k][good],
                      flux_err[k][good])  # fmt: skip
        if len(curve) == 0:
            skipped[int(oid)] = curve.rejected.get(int(oid), "no usable points")
            continue
        sky = None
        if positions is not None:
            sky = (float(positions[k][0]), float(positions[k][1]), jd_offset)
        row = event_row(int(oid), Dataset(*curve.of(0), str(oid)), threshold, grid, sky,
                        selection, skipped)  # fmt: skip
        if row is not None:
            rows.append(row)
    return rows, skipped


def event_row(
    object_id: int,
    data: Dataset | Sequence[Dataset],
    threshold: float = DEFAULT_THRESHOLD,
    grid: SearchGrid | None = None,
    position: tuple[float, float, float] | None = None,
    selection: SelectionSettings | None = DEFAULT_SELECTION,
    skipped: dict[int, str] | None = None,
) -> EventRow | None:
    """One object's row from its cleaned datasets, the primary first (None: nothing clears
    ``threshold``); ``position`` is (ra, dec, jd_offset) for parallax; a reason it could not
    be modelled goes to ``skipped``."""
    data = (data,) if isinstance(data, Dataset) else tuple(data)
    t, f, e, oid = data[0].time, data[0].flux, data[0].flux_err, object_id
    skipped = {} if skipped is None else skipped
    detection = search(t, f, e, grid)
    if detection.delta_chi2 < threshold:
        return None
    try:
        fit = fit_detection(t, f, e, detection.t_0, detection.t_eff)
    except (ValueError, np.linalg.LinAlgError) as exc:
        skipped[oid] = f"no point-lens fit ({exc})"
        return None
    kind = classify(t, f, e, fit)
    excess = fit.f_source * (magnification(t, fit.t_0, fit.u_0, fit.t_E) - 1) / e
    row = EventRow(oid, detection, fit, kind, float(np.max(excess)), int(np.sum(excess > 3)))
    if selection is not None and kind.classification in MODELLED_CLASSES:
        sky = None if position is None else Sky(*position, t_0_par=fit.t_0)
        try:
            row = model_event(row, data, sky, selection)
        except (ValueError, np.linalg.LinAlgError) as exc:
            skipped[oid] = f"model selection failed ({exc}); point lens kept"
    return row


def model_event(
    row: EventRow, data: Dataset | Sequence[Dataset], sky: Sky | None, settings: SelectionSettings
) -> EventRow:
    """``row`` with its selected model and the class it implies: a binary lens makes it
    planetary or binary_lens, a candidate the higher-order model fits well a single lens, and
    one that outburst profiles describe better than any lens a variable star (``data``: the
    object's datasets, the primary, which ``row`` was classified on, first)."""
    fit = row.fit
    data = (data,) if isinstance(data, Dataset) else tuple(data)
    selection = select_model(data, {"t_0": fit.t_0, "u_0": fit.u_0, "t_E": fit.t_E}, sky,
                             settings)  # fmt: skip
    chosen = selection.best
    kind = row.classification
    # the outburst profiles were fitted to the primary alone: the lens is weighed on it too
    primary = data[0].usable()
    chi2 = float(np.sum(((primary.flux - chosen.model_flux(primary.time)) / primary.flux_err) ** 2))
    lens_bic = chi2 + (len(chosen.params) + 2) * np.log(primary.time.size)
    if kind.outbursts_bic < lens_bic:  # even the best lens loses to outbursts: a dwarf nova
        score = float(1.0 - np.exp((kind.outbursts_bic - lens_bic) / 20.0))
        kind = replace(kind, classification="variable_star", score=score)
    elif chosen.model.startswith("2L1S"):
        label = "planetary" if chosen.params["q"] < PLANET_MAX_Q else "binary_lens"
        single = selection.best_of("PSPL") or chosen  # fitted to the datasets the binary was
        gain = single.chi2 - chosen.chi2  # over the point lens: how surely a binary
        score = 1.0 - np.exp(-gain / settings.binary_delta_chi2)
        kind = replace(kind, classification=label, score=float(score))
    elif kind.classification == "candidate" and chosen.chi2 <= _good_fit(chosen.dof):
        kind = replace(kind, classification="single_lens")
    return replace(row, classification=kind, model=chosen, data=data)


def _good_fit(dof: int) -> float:
    """The χ² a model reaching the classifier's reduced-χ² bar may have."""
    return ClassifierSettings().max_reduced_chi2 * max(dof, 1)
