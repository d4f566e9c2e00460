"""Injection into images (medium ``images``): synthetic events added to a partition's Level-2
epochs as pixels, measured by the pipeline's own difference imaging and forced photometry, so
the efficiency includes what the photometry does to an event (kernel fit, blends, defects).

An event at a host adds ``f_source · (A(t) − 1)`` (µJy) at the host's position; in an epoch
it is rendered with that epoch's difference-image PSF (the reference ePSF convolved by the
epoch's DIA kernel, fitted on the plain epoch first) on the epoch's grid, converted with the
epoch's µJy per DN/s — so a flux in the reference's unit lands as the epoch would record it
— and the injected epoch goes through offset, kernel fit, difference and photometry again.
What it measures is then searched and matched as in the ``lightcurve`` medium
(:func:`msos.events.efficiency.kernel.search_and_match`).

The reference is the partition's, built from the real (un-injected) epochs: the injected
source is assumed unmagnified there, as a real event's would be when it falls outside the
reference's epochs (an event during them brightens the reference; not modelled).

Hosts: in one pass over the epochs every host — injected or blank — is at least
``spacing`` pixels from every other and ``edge`` pixels inside the image, so no injection
adds light to another's host or to a blank; more rows than one pass holds take more passes
(each a full rerun of the epochs' photometry). Blanks are un-injected objects of the same
passes, measured on the injected images.

Photon noise of the added flux: the Level-2 epoch does not carry the detector gain (it lives
in the calibration reference files), so it is a parameter. Given ``gain_e_per_dn``, each
added pixel gets a Gaussian of variance ``pixels / (gain · exposure_time_s)`` (DN/s)² and its
variance grows by as much; not given, the added flux is noiseless and the pixel variances
are the real epoch's — bright peaks come out slightly too significant, where detection is
sure anyway. Saturation by the added flux is not modelled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from msos.context import PartitionReference
from msos.epoch import difference_epoch, difference_psf, process_epoch
from msos.errors import EpochRejected
from msos.events.efficiency.kernel import (
    InjectedCurves,
    InjectionPlan,
    InjectionSettings,
    draw_injections,
    photon_noise,
)
from msos.inputs import Epoch
from msos.psf.model import EPSFGrid, render_stars
from roman_schemas.products.msos.flags import PhotometryFlag

#: pixels between any two hosts of a pass: beyond the ePSF core and the DIA kernel's reach
HOST_SPACING_PIX = 12.0
#: pixels a host keeps from the image edge (its rendered PSF and photometry stamp fit)
HOST_EDGE_PIX = 16.0


def choose_hosts(
    rng: np.random.Generator,
    x: np.ndarray,
    y: np.ndarray,
    shape: tuple[int, int],
    usable: np.ndarray,
    n: int,
    *,
    spacing: float = HOST_SPACING_PIX,
    edge: float = HOST_EDGE_PIX,
) -> list[np.ndarray]:
    """Hosts (catalog rows) of ``n`` injections, one array per pass: within a pass ``spacing``
    px apart and ``edge`` px inside ``shape`` (ny, nx); objects not yet used come first."""
    ny, nx = shape
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    inside = np.asarray(usable, bool) & (x >= edge) & (x <= nx - 1 - edge)
    inside &= (y >= edge) & (y <= ny - 1 - edge)
    candidates = np.flatnonzero(inside)
    if candidates.size == 0:
        raise ValueError(f"no usable host {edge:g} px inside the {nx}×{ny} image")
    used = np.zeros(x.size, bool)
    passes: list[np.ndarray] = []
    left = n
    while left > 0:
        fresh = candidates[~used[candidates]]
        again = candidates[used[candidates]]
        order = np.concatenate([rng.permutation(fresh), rng.permutation(again)])
        chosen = _spaced(x, y, order, left, spacing)
        used[chosen] = True
        passes.append(chosen)
        left -= chosen.size
    return passes


def _spaced(x: np.ndarray, y: np.ndarray, order: np.ndarray, n: int, spacing: float) -> np.ndarray:
    """Up to ``n`` of ``order``, taken in turn when ``spacing`` px from all taken before (a
    grid of ``spacing``-sized cells: only the 3×3 cells around a candidate are compared)."""
    cells: dict[tuple[int, int], list[int]] = {}
    chosen: list[int] = []
    for k in order:
        cx, cy = int(x[k] // spacing), int(y[k] // spacing)
        near = (h for i in (-1, 0, 1) for j in (-1, 0, 1) for h in cells.get((cx + i, cy + j), ()))
        if any(np.hypot(x[k] - x[h], y[k] - y[h]) < spacing for h in near):
            continue
        cells.setdefault((cx, cy), []).append(int(k))
        chosen.append(int(k))
        if len(chosen) == n:
            break
    return np.array(chosen, dtype=np.int64)


def draw_image_injections(
    rng: np.random.Generator,
    time: np.ndarray,
    reference: PartitionReference,
    settings: InjectionSettings,
    *,
    spacing: float = HOST_SPACING_PIX,
    edge: float = HOST_EDGE_PIX,
) -> tuple[InjectionPlan, np.ndarray]:
    """The plan (hosts: catalog rows) and each row's pass: hosts by :func:`choose_hosts`,
    events drawn per pass as :func:`draw_injections` draws them (blanks first in each)."""
    ref = np.asarray(reference.catalog.objects.ref_flux_ujy, dtype=np.float64)
    usable = np.ones(ref.size, bool)
    if settings.source_flux_ujy is None:
        usable = np.isfinite(ref) & (ref > 0)
    x, y = reference.xy
    passes = choose_hosts(rng, x, y, reference.shape, usable, settings.n_injections,
                          spacing=spacing, edge=edge)  # fmt: skip
    plans = []
    for hosts in passes:
        part = dataclasses.replace(settings, n_injections=hosts.size)
        plan = draw_injections(rng, time, ref[hosts], part)
        plans.append(dataclasses.replace(plan, host=hosts[plan.host]))
    pass_of_row = np.repeat(np.arange(len(passes)), [h.size for h in passes])
    return InjectionPlan.joined(plans), pass_of_row


def inject_epoch(
    epoch: Epoch,
    x: np.ndarray,
    y: np.ndarray,
    added_ujy: np.ndarray,
    psf: EPSFGrid,
    *,
    electrons_per_dn_s: float | None = None,
    rng: np.random.Generator | None = None,
) -> Epoch:
    """The epoch with ``added_ujy`` rendered with ``psf`` at ``(x, y)`` (the epoch's pixels);
    with ``electrons_per_dn_s`` (gain × exposure time) the added flux's photon noise too."""
    flux = (np.asarray(added_ujy, dtype=np.float64) / epoch.ujy_per_dn_s).astype(np.float32)
    pixels = render_stars(epoch.shape, x, y, flux, psf)
    data, variance = epoch.data + pixels, epoch.variance
    if electrons_per_dn_s is not None:
        noise, extra = photon_noise(pixels, electrons_per_dn_s, rng, "electrons per DN/s")
        data, variance = data + noise, variance + extra
    return dataclasses.replace(epoch, data=data.astype(np.float32),
                               variance=variance.astype(np.float32))  # fmt: skip


@dataclass
class ImageCurves:
    """The injected pass's light curves (rows × epochs, µJy): total flux (difference flux +
    the host's reference flux), its error and photometry flags; the epochs left out (no
    difference image, flagged EPOCH_REJECTED in every row) with why."""

    flux: np.ndarray
    flux_err: np.ndarray
    flags: np.ndarray
    rejected: list[EpochRejected]

    def as_injected(self, added: np.ndarray) -> InjectedCurves:
        """The curves as :func:`msos.events.efficiency.kernel.search_and_match` takes them."""
        return InjectedCurves(0, self.flux, self.flux_err, self.flags, added)


def injected_light_curves(
    reference: PartitionReference,
    epochs: Iterable[Epoch],
    plan: InjectionPlan,
    pass_of_row: np.ndarray,
    added: np.ndarray,
    *,
    gain_e_per_dn: float | None = None,
    rng: np.random.Generator | None = None,
) -> ImageCurves:
    """Every row's light curve from the injected images: for each epoch (in the order of
    ``added``'s columns, µJy), its difference PSF from the plain epoch, then per pass the
    pass's events injected (:func:`inject_epoch`) and the epoch's photometry rerun."""
    n_rows, n_epochs = added.shape
    ref = np.asarray(reference.catalog.objects.ref_flux_ujy, dtype=np.float64)[plan.host]
    x, y = reference.xy
    flux = np.full((n_rows, n_epochs), np.nan)
    err = np.full((n_rows, n_epochs), np.nan)
    flags = np.full((n_rows, n_epochs), np.uint16(PhotometryFlag.EPOCH_REJECTED), np.uint16)
    rejected: list[EpochRejected] = []
    passes = [np.flatnonzero(pass_of_row == p) for p in np.unique(pass_of_row)]
    for j, epoch in zip(range(n_epochs), epochs, strict=True):  # one epoch per column
        try:
            shift, _, _, solution = difference_epoch(reference, epoch)
        except EpochRejected as rejection:
            rejected.append(rejection)
            continue
        psf = difference_psf(reference, solution, shift)
        electrons = None if gain_e_per_dn is None else gain_e_per_dn * epoch.exposure_time_s
        for rows in passes:
            events = rows[plan.injected[rows]]
            hosts = plan.host[events]
            injected = inject_epoch(epoch, x[hosts] + shift[0], y[hosts] + shift[1],
                                    added[events, j], psf, electrons_per_dn_s=electrons,
                                    rng=rng)  # fmt: skip
            try:
                result = process_epoch(reference, injected)
            except EpochRejected as rejection:
                rejected.append(rejection)
                continue
            host = plan.host[rows]
            flux[rows, j] = result.flux_ujy[host] + ref[rows]
            err[rows, j] = result.flux_err_ujy[host]
            flags[rows, j] = result.flags[host]
    return ImageCurves(flux, err, flags, rejected)
