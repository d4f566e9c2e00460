"""The data-quality report of one microlensing event: how its best fit holds up against its
data (χ²/dof, 5σ outliers, normalised residuals binned in time), the plot that shows it, and
their publication side by side.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from msos.events.model.fit import Dataset, ModelFit
from msos.partition import Partition
from roman_schemas.products.msos import DqaEventsLevel4, MsosDqaMeta
from roman_schemas.products.msos.dqa import ResidualsByTime
from ssc_common.publish import software_versions

if TYPE_CHECKING:
    from msos.partition_step import PartitionStep
    from ssc_common.db import ProductRecord

#: an epoch this many errors from the model is an outlier (the product's definition)
OUTLIER_SIGMA = 5.0
#: the plot: 8 × 6 inches at 100 dpi, i.e. 800 × 600 pixels
PLOT_SIZE_IN = (8.0, 6.0)
PLOT_DPI = 100
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def checked_epochs(
    time: np.ndarray, flux: np.ndarray, flux_err: np.ndarray, subject: str = "data"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``time``, ``flux``, ``flux_err`` as float arrays, refused unless they are what a fit
    uses: 1-D, one length, not empty, finite, with positive errors."""
    t, f, e = (np.asarray(a, dtype=np.float64) for a in (time, flux, flux_err))
    if any(a.ndim != 1 for a in (t, f, e)) or not t.size == f.size == e.size:
        raise ValueError(f"{subject}: time, flux and flux_err must be 1-D of one length "
                         f"(shapes {t.shape}, {f.shape}, {e.shape})")  # fmt: skip
    if t.size == 0:
        raise ValueError(f"{subject}: no epochs (an event DQA needs the data of its fit)")
    bad = ~(np.isfinite(t) & np.isfinite(f) & np.isfinite(e))
    if bad.any():
        raise ValueError(
            f"{subject}: {int(bad.sum())} epochs have a NaN or infinite time, flux or error; "
            "pass only the epochs the fit used (Dataset.usable())"
        )
    if np.any(e <= 0):
        raise ValueError(f"{subject}: {int(np.sum(e <= 0))} epochs have errors ≤ 0; pass only "
                         "the epochs the fit used (Dataset.usable())")  # fmt: skip
    return t, f, e


def normalised_residuals(
    time: np.ndarray, flux: np.ndarray, flux_err: np.ndarray, model_flux: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The epochs' times and (flux − model) / error (inputs checked by :func:`checked_epochs`;
    the model must be finite at every epoch)."""
    t, f, e = checked_epochs(time, flux, flux_err)
    m = np.asarray(model_flux, dtype=np.float64)
    if m.shape != t.shape:
        raise ValueError(f"model_flux has shape {m.shape}, the epochs {t.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError(f"the model is NaN or infinite at {int(np.sum(~np.isfinite(m)))} epochs")
    return t, (f - m) / e


def residuals_by_time(
    time: np.ndarray,
    flux: np.ndarray,
    flux_err: np.ndarray,
    model_flux: np.ndarray,
    n_bins: int = 60,
) -> ResidualsByTime:
    """Mean and rms of (flux − model) / error in ``n_bins`` equal time bins spanning the epochs
    (empty bins dropped): a fit that fails somewhere shows as bins whose mean leaves zero."""
    if n_bins < 1:
        raise ValueError(f"n_bins is {n_bins}: at least one time bin is needed")
    t, r = normalised_residuals(time, flux, flux_err, model_flux)
    start, width = float(t.min()), float(t.max() - t.min()) / n_bins
    if width > 0:
        # the last epoch sits on the last bin's upper edge: it belongs to that bin
        k = np.minimum(((t - start) / width).astype(np.int64), n_bins - 1)
    else:
        k = np.zeros(t.size, dtype=np.int64)
    count = np.bincount(k, minlength=n_bins)
    total = np.bincount(k, weights=r, minlength=n_bins)
    squares = np.bincount(k, weights=r * r, minlength=n_bins)
    kept = np.flatnonzero(count)
    n = count[kept]
    return ResidualsByTime(
        time_mjd_tdb=start + (kept + 0.5) * width,
        n_points=n.astype(np.uint32),
        mean_residual_sigma=(total[kept] / n).astype(np.float32),
        rms_residual_sigma=np.sqrt(squares[kept] / n).astype(np.float32),
    )


def _datasets(data: Dataset | Sequence[Dataset], fit: ModelFit) -> list[Dataset]:
    """``data`` as a list, checked to be the datasets ``fit`` was made from (one flux pair each)."""
    data = [data] if isinstance(data, Dataset) else list(data)
    if len(data) != len(fit.f_source):
        raise ValueError(
            f"{len(data)} datasets given, but the {fit.model} fit has fluxes for "
            f"{len(fit.f_source)}: pass the datasets the fit was made from, in its order"
        )
    return data


def _all_epochs(
    data: list[Dataset], fit: ModelFit
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Time, flux, error and model flux of every epoch of every dataset (each on its scale)."""
    columns = []
    for k, d in enumerate(data):
        t, f, e = checked_epochs(d.time, d.flux, d.flux_err, f"dataset {d.name or k + 1}")
        columns.append((t, f, e, fit.model_flux(t, k)))
    time, flux, flux_err, model = (np.concatenate(c) for c in zip(*columns, strict=True))
    return time, flux, flux_err, model


def event_dqa(
    event_id: str,
    object_id: int | str,
    classification: str,
    ra_deg: float,
    dec_deg: float,
    partition: Partition,
    data: Dataset | Sequence[Dataset],
    fit: ModelFit,
    *,
    program: int | None = None,
    optical_element: str = "F146",
    n_bins: int = 60,
) -> DqaEventsLevel4:
    """The DQA report of one event from its data and best fit: χ²/dof, epochs beyond 5σ,
    convergence and the binned residuals (``data``: the datasets of ``fit``, in its order)."""
    data = _datasets(data, fit)
    if fit.dof <= 0:
        raise ValueError(f"the {fit.model} fit has {fit.dof} degrees of freedom: no χ²/dof")
    time, flux, flux_err, model = _all_epochs(data, fit)
    _, r = normalised_residuals(time, flux, flux_err, model)
    meta = MsosDqaMeta(
        **DqaEventsLevel4.new_meta(
            file_name=f"{DqaEventsLevel4.product_type}.asdf",
            program=program,
            dqa_workflow="events",
            dqa_artifact_type="report",
            season=partition.season,
            field=partition.field,
            detector=partition.detector.lower(),
            optical_element=optical_element.lower(),
            object_id=str(object_id),
            roman_name=event_id,
            classification=classification,
            ra_deg=float(ra_deg),
            dec_deg=float(dec_deg),
            provenance={"step": "msos.events", "inputs": [], "parameters": {}},
            software_versions=software_versions("msos"),
        )
    )
    return DqaEventsLevel4(
        meta=meta,
        event_id=event_id,
        model_type=fit.model,
        chi2_dof=float(fit.chi2 / fit.dof),
        n_outliers=int(np.sum(np.abs(r) > OUTLIER_SIGMA)),
        fit_converged=bool(fit.converged),
        residuals=residuals_by_time(time, flux, flux_err, model, n_bins),
    )


def plot_event(
    event_id: str,
    data: Dataset | Sequence[Dataset],
    fit: ModelFit,
    *,
    n_grid: int = 2000,
    flux_unit: str = "µJy",
) -> bytes:
    """A PNG (800 × 600) of the event: every dataset on the first one's flux scale with the
    model through it, and the normalised residuals below, for a reviewer to judge the fit."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data = _datasets(data, fit)
    time, flux, flux_err, model = _all_epochs(data, fit)
    normalised_residuals(time, flux, flux_err, model)  # refuses unusable epochs
    if not all(np.isfinite(fs) and fs != 0 for fs in fit.f_source):
        raise ValueError(f"source fluxes {fit.f_source}: a dataset with no source flux "
                         "cannot be put on the first dataset's scale")  # fmt: skip
    grid = np.linspace(time.min(), time.max(), n_grid)

    figure = Figure(figsize=PLOT_SIZE_IN, dpi=PLOT_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    for k, d in enumerate(data):
        t, f, e = checked_epochs(d.time, d.flux, d.flux_err)
        scale = fit.f_source[0] / fit.f_source[k]  # magnification is what datasets share
        label = d.name or f"dataset {k + 1}"
        top.errorbar(t, (f - fit.f_blend[k]) * scale + fit.f_blend[0], abs(scale) * e, fmt=".",
                     ms=3, elinewidth=0.5, color=f"C{k}", label=label, zorder=1)  # fmt: skip
        residual = (f - fit.model_flux(t, k)) / e
        bottom.plot(t, residual, ".", ms=3, color=f"C{k}")
    top.plot(grid, fit.model_flux(grid, 0), "-", color="black", lw=1, label=fit.model, zorder=2)
    top.set_ylabel(f"flux ({flux_unit})")
    top.legend(loc="upper right", fontsize="small")
    chi2_dof = fit.chi2 / fit.dof if fit.dof > 0 else float("nan")
    top.set_title(f"{event_id}: {fit.model}, χ²/dof = {chi2_dof:.2f}")
    bottom.axhline(0.0, color="black", lw=1)
    for limit in (-OUTLIER_SIGMA, OUTLIER_SIGMA):
        bottom.axhline(limit, color="grey", lw=0.5, ls="--")
    bottom.set_ylabel("(data − model) / σ")
    bottom.set_xlabel("time (MJD TDB)")
    buffer = io.BytesIO()
    # no "Software" text chunk (and Agg writes no timestamp): the same event gives the same bytes
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def event_plot_key(report_key: str) -> str:
    """Where an event's plot goes: beside its DQA report, same name, ``.png``."""
    return report_key.removesuffix(".asdf") + ".png"


def publish_event_dqa(
    step: PartitionStep,
    report: DqaEventsLevel4,
    png: bytes,
    parameters: Mapping[str, Any],
) -> ProductRecord:
    """Store the event's plot, then publish its DQA report beside it through ``step`` (inside
    its ``process``); if the report cannot be published the plot is taken back."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError(f"the plot of {report.event_id} is not a PNG (see plot_event)")
    key = step.partition.dqa_event_key(report.event_id)
    plot_key = event_plot_key(key)
    step.ctx.storage.put_bytes(plot_key, png)
    try:
        return step.publish(report, key, parameters)
    except BaseException:
        step.ctx.storage.delete(plot_key)
        raise
