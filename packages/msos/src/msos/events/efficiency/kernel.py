"""Injection and recovery in light curves: draw synthetic events, add them to real light
curves, search those as ``msos events`` does, and match what it finds to what was injected.

Injection (medium ``lightcurve``): an event of source flux ``f_source`` and magnification
``A(t)`` adds ``f_source · (A − 1)`` to the host's total flux at every epoch — the source was
already in the reference (the host's light), only its magnification is new. The host's own
noise stays: its scatter, its errors and its flags are the real ones, which is the point of
injecting into real light curves. The photon noise of the added flux is left out unless
``electrons_per_ujy`` (detected electrons per µJy in one epoch) is given; then a Gaussian of
variance ``f_added / electrons_per_ujy`` is drawn and added to the flux and, in quadrature,
to the error. Left out (the default), it makes the bright, highly magnified peaks slightly
too significant — where detection is sure anyway; at the faint end, where the efficiency is
decided, the error of a bulge light curve is the crowded sky's and the blends', not the
source's.

Recovery: every light curve (injected or blank) goes through
:func:`msos.events.catalog.kernel.find_events` with the point-lens fit alone (model selection
changes which event class a detection gets, never whether it is an event). An injection is
detected when an event row (class in ``EVENT_CLASSES``) exists for its light curve and the
fitted ``t_0`` is within ``max(t_0_tolerance_t_E · t_E, t_0_tolerance_d)`` of the injected
one; a detection elsewhere in the season (say the host's own variability) leaves it missed.
A blank is detected (a false positive) by any event row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields

import numpy as np

from msos.events.catalog.kernel import DEFAULT_THRESHOLD, EventRow, find_events
from msos.events.catalog.step import EVENT_CLASSES
from msos.events.model.lens import magnification
from msos.events.search.kernel import SearchGrid

#: light curves injected and searched at a time (3 arrays of 8 B × epochs each: ~140 MB
#: for a 6,000-epoch season)
CHUNK_ROWS = 1000


@dataclass(frozen=True)
class InjectionSettings:
    """How injections are drawn: ``n_injections`` rows (blanks included, ``blank_fraction``
    of them), t_0 uniform over the season, u_0 uniform in [0, ``u_0_max``], log-uniform
    t_E; the source flux log-uniform as a fraction of the host's reference flux, or in µJy
    when ``source_flux_ujy`` is given; ``planet_fraction`` of the events planetary (2L1S
    with log-uniform q, s and rho, alpha uniform)."""

    n_injections: int = 500
    blank_fraction: float = 0.1
    u_0_max: float = 1.5
    t_E_d: tuple[float, float] = (1.0, 100.0)  # noqa: N815
    source_fraction: tuple[float, float] = (0.05, 1.0)
    source_flux_ujy: tuple[float, float] | None = None
    planet_fraction: float = 0.0
    q: tuple[float, float] = (1e-5, 1e-2)
    s: tuple[float, float] = (0.3, 3.0)
    rho: tuple[float, float] = (1e-4, 1e-2)

    def __post_init__(self) -> None:
        if self.n_injections < 1:
            raise ValueError(f"n_injections must be at least 1, not {self.n_injections}")
        for name in ("blank_fraction", "planet_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be within [0, 1], not {getattr(self, name)}")
        for name in ("t_E_d", "source_fraction", "source_flux_ujy", "q", "s", "rho"):
            low, high = getattr(self, name) or (1, 1)
            if not 0 < low <= high:
                raise ValueError(f"{name} must be a range 0 < low ≤ high, not {(low, high)}")


@dataclass(frozen=True)
class InjectionPlan:
    """What goes where, one entry per row: the host (index into the light curves), whether
    an event is injected (a blank if not: model "" and NaN parameters) and its parameters
    (MulensModel's names; rho, s, q and alpha NaN for a point lens)."""

    host: np.ndarray
    injected: np.ndarray
    model_type: np.ndarray
    t_0: np.ndarray
    u_0: np.ndarray
    t_E: np.ndarray  # noqa: N815
    rho: np.ndarray
    s: np.ndarray
    q: np.ndarray
    alpha: np.ndarray
    source_flux: np.ndarray

    def __len__(self) -> int:
        return int(self.host.size)

    def subset(self, rows: slice | np.ndarray) -> InjectionPlan:
        """The plan of ``rows`` only."""
        return InjectionPlan(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    @classmethod
    def joined(cls, plans: Sequence[InjectionPlan]) -> InjectionPlan:
        """One plan of ``plans``' rows, in turn (e.g. the passes of the images medium)."""
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in plans])
                      for f in fields(cls)})  # fmt: skip

    def params(self, k: int) -> dict[str, float]:
        """Row ``k``'s parameters, as :func:`msos.events.model.lens.magnification` takes them."""
        names = ("t_0", "u_0", "t_E", "rho", "s", "q", "alpha")
        return {name: float(getattr(self, name)[k]) for name in names}


@dataclass(frozen=True)
class Recovery:
    """What the search made of each row: detected (the binary class follows), the fitted
    t_0, u_0, t_E (NaN unless detected), the search's Δχ² and class of whatever row it
    reported (NaN and "" if none), and the injected event's peak S/N (its largest
    ``f_source · (A − 1) / error`` at a good epoch; 0 for a blank)."""

    detected: np.ndarray
    t_0: np.ndarray
    u_0: np.ndarray
    t_E: np.ndarray  # noqa: N815
    delta_chi2: np.ndarray
    classification: np.ndarray
    peak_snr: np.ndarray
    skipped: dict[int, str]  # rows the search left out (too few usable points), with why

    def binary_class(self, injected: np.ndarray) -> np.ndarray:
        """TP (injected, detected), FN (injected, missed), FP (blank, detected), TN."""
        return np.where(injected, np.where(self.detected, "TP", "FN"),
                        np.where(self.detected, "FP", "TN"))  # fmt: skip


def draw_injections(
    rng: np.random.Generator,
    time: np.ndarray,
    ref_flux: np.ndarray,
    settings: InjectionSettings,
) -> InjectionPlan:
    """Hosts and event parameters for ``settings.n_injections`` rows over the season of
    ``time``; hosts are used in turn (blanks first, on distinct hosts) so each serves as
    evenly as the count allows. Hosts without a positive reference flux cannot host a
    fraction of it and are passed over unless the source flux is given in µJy."""
    n = settings.n_injections
    ref = np.asarray(ref_flux, dtype=np.float64)
    usable = np.arange(ref.size)
    if settings.source_flux_ujy is None:
        usable = np.flatnonzero(np.isfinite(ref) & (ref > 0))
    if usable.size == 0:
        raise ValueError("no host with a positive reference flux to inject a fraction of")
    cycles = -(-n // usable.size)
    host = np.concatenate([rng.permutation(usable) for _ in range(cycles)])[:n]
    injected = np.arange(n) >= round(settings.blank_fraction * n)
    planet = injected & (rng.random(n) < settings.planet_fraction)

    def log_uniform(bounds: tuple[float, float]) -> np.ndarray:
        return np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]), n))

    t = np.asarray(time, dtype=np.float64)
    t_0 = rng.uniform(np.nanmin(t), np.nanmax(t), n)
    u_0 = rng.uniform(0.0, settings.u_0_max, n)
    t_e = log_uniform(settings.t_E_d)
    if settings.source_flux_ujy is None:
        source = log_uniform(settings.source_fraction) * ref[host]
    else:
        source = log_uniform(settings.source_flux_ujy)
    rho, s, q = log_uniform(settings.rho), log_uniform(settings.s), log_uniform(settings.q)
    alpha = rng.uniform(0.0, 360.0, n)

    def events_only(values: np.ndarray, where: np.ndarray = injected) -> np.ndarray:
        return np.where(where, values, np.nan)

    return InjectionPlan(
        host=host,
        injected=injected,
        model_type=np.where(planet, "2L1S", np.where(injected, "PSPL", "")),
        t_0=events_only(t_0), u_0=events_only(u_0), t_E=events_only(t_e),
        rho=events_only(rho, planet), s=events_only(s, planet), q=events_only(q, planet),
        alpha=events_only(alpha, planet), source_flux=events_only(source),
    )  # fmt: skip


def added_flux(time: np.ndarray, plan: InjectionPlan) -> np.ndarray:
    """``f_source · (A(t) − 1)`` of every row (rows × epochs; zero for a blank): the flux an
    event adds to its host's total flux."""
    added = np.zeros((len(plan), np.asarray(time).size))
    for k in np.flatnonzero(plan.injected):
        a = magnification(str(plan.model_type[k]), time, plan.params(k))
        added[k] = plan.source_flux[k] * (a - 1.0)
    return added


def inject(
    time: np.ndarray,
    flux: np.ndarray,
    flux_err: np.ndarray,
    plan: InjectionPlan,
    electrons_per_ujy: float | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows' light curves (rows × epochs): each host's total ``flux`` plus its event's
    :func:`added_flux` (returned third), its error kept — or, with ``electrons_per_ujy``,
    the added flux's photon noise drawn from ``rng`` and added (module docstring)."""
    added = added_flux(time, plan)
    host = plan.host
    out = np.asarray(flux, dtype=np.float64)[host] + added
    err = np.array(flux_err, dtype=np.float64)[host]
    if electrons_per_ujy is not None:
        noise, variance = photon_noise(added, electrons_per_ujy, rng, "electrons_per_ujy")
        out += noise
        err = np.sqrt(err**2 + variance)
    return out, err, added


def photon_noise(
    added: np.ndarray, electrons_per_unit: float, rng: np.random.Generator | None, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """A draw of the Poisson noise of ``added`` (as a Gaussian, in its unit) and its variance
    ``added / electrons_per_unit``; ``name`` names the parameter in the errors."""
    if not electrons_per_unit > 0:
        raise ValueError(f"{name} must be positive, not {electrons_per_unit}")
    if rng is None:
        raise ValueError("photon noise of the added flux needs a random generator")
    variance = np.maximum(added, 0.0) / electrons_per_unit
    return rng.normal(0.0, np.sqrt(variance)), variance


def recover(
    time: np.ndarray,
    flux: np.ndarray,
    flux_err: np.ndarray,
    flags: np.ndarray | None,
    plan: InjectionPlan,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    grid: SearchGrid | None = None,
    electrons_per_ujy: float | None = None,
    rng: np.random.Generator | None = None,
    t_0_tolerance_d: float = 5.0,
    t_0_tolerance_t_E: float = 1.0,  # noqa: N803
    chunk: int = CHUNK_ROWS,
) -> Recovery:
    """Inject every row into its host (``flux``: hosts × epochs, total flux), search all
    rows as ``msos events`` does, and match the detections to the injections (module
    docstring); ``chunk`` rows at a time, so memory does not grow with the injections."""
    time = np.asarray(time, dtype=np.float64)

    def injected() -> Iterator[InjectedCurves]:
        for start in range(0, len(plan), chunk):
            part = plan.subset(slice(start, start + chunk))
            curves, err, added = inject(time, flux, flux_err, part, electrons_per_ujy, rng)
            host_flags = None if flags is None else np.asarray(flags)[part.host]
            yield InjectedCurves(start, curves, err, host_flags, added)

    return search_and_match(time, injected(), plan, threshold=threshold, grid=grid,
                            t_0_tolerance_d=t_0_tolerance_d,
                            t_0_tolerance_t_E=t_0_tolerance_t_E)  # fmt: skip


@dataclass(frozen=True)
class InjectedCurves:
    """Injected light curves of the plan's rows ``first_row`` onward (rows × epochs): total
    flux, its error, flags (None: all good) and the flux the injection added (µJy)."""

    first_row: int
    flux: np.ndarray
    flux_err: np.ndarray
    flags: np.ndarray | None
    added: np.ndarray


def search_and_match(
    time: np.ndarray,
    curves: Iterable[InjectedCurves],
    plan: InjectionPlan,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    grid: SearchGrid | None = None,
    t_0_tolerance_d: float = 5.0,
    t_0_tolerance_t_E: float = 1.0,  # noqa: N803
) -> Recovery:
    """Search injected light curves as ``msos events`` does (point-lens fit alone) and match
    the detections to the plan (module docstring); every medium recovers through this."""
    time = np.asarray(time, dtype=np.float64)
    rows: list[EventRow] = []
    skipped: dict[int, str] = {}
    snr = np.zeros(len(plan))
    for part in curves:
        n = part.flux.shape[0]
        found, left_out = find_events(
            part.first_row + np.arange(n), time, part.flux, part.flux_err, part.flags,
            threshold=threshold, grid=grid, selection=None,
        )  # fmt: skip
        rows += found
        skipped.update(left_out)
        snr[part.first_row : part.first_row + n] = peak_snr(part.added, part.flux_err, part.flags)
    return match(rows, skipped, plan, t_0_tolerance_d, t_0_tolerance_t_E, snr)


def match(
    rows: Sequence[EventRow],
    skipped: dict[int, str],
    plan: InjectionPlan,
    t_0_tolerance_d: float,
    t_0_tolerance_t_E: float,  # noqa: N803
    snr: np.ndarray,
) -> Recovery:
    """The :class:`Recovery` of the search's ``rows`` (their ``object_id``: the row number)."""
    n = len(plan)
    nan = np.full(n, np.nan)
    fitted_t_0, fitted_u_0, fitted_t_e, delta_chi2 = (nan.copy() for _ in range(4))
    kind = np.full(n, "", dtype="U16")
    detected = np.zeros(n, bool)
    tolerance = np.maximum(t_0_tolerance_t_E * plan.t_E, t_0_tolerance_d)
    for row in rows:
        k = row.object_id
        delta_chi2[k] = row.detection.delta_chi2
        kind[k] = row.classification.classification
        if kind[k] not in EVENT_CLASSES:
            continue
        if plan.injected[k] and not abs(row.fit.t_0 - plan.t_0[k]) <= tolerance[k]:
            continue
        detected[k] = True
        fitted_t_0[k], fitted_u_0[k], fitted_t_e[k] = row.fit.t_0, row.fit.u_0, row.fit.t_E
    return Recovery(detected, fitted_t_0, fitted_u_0, fitted_t_e, delta_chi2, kind, snr,
                    dict(skipped))  # fmt: skip


def peak_snr(added: np.ndarray, flux_err: np.ndarray, flags: np.ndarray | None) -> np.ndarray:
    """Each row's largest ``added / error`` over its good epochs (finite, error > 0,
    unflagged): the injected event's peak S/N (0 for a blank or no good epoch)."""
    good = np.isfinite(flux_err) & (flux_err > 0)
    if flags is not None:
        good &= np.asarray(flags) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(good, added / flux_err, 0.0)
    return np.max(ratio, axis=1, initial=0.0)


def efficiency(
    injected: np.ndarray,
    detected: np.ndarray,
    values: Sequence[np.ndarray],
    bins: Sequence[np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """The share of injected events detected in each bin of ``values`` (one array per axis,
    e.g. ``(u_0, t_E)`` or ``(peak_snr,)``, with its bin edges in ``bins``), NaN in a bin
    with none, and the number injected per bin; blanks do not count."""
    injected = np.asarray(injected, bool)
    if len(values) != len(bins):
        raise ValueError(f"{len(values)} value arrays for {len(bins)} bin edge arrays")
    sample = np.column_stack([np.asarray(v, dtype=np.float64)[injected] for v in values])
    total, _ = np.histogramdd(sample, bins=list(bins))
    found, _ = np.histogramdd(sample[np.asarray(detected, bool)[injected]], bins=list(bins))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, found / total, np.nan)
    return share, total.astype(np.int64)
