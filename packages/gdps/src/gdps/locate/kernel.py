"""The location kernel: for every source at its direct-image position on a dispersed
exposure, the trace of its spectrum, the pixels each wavelength lands on, and the bounding
box of the whole band (clipped to the detector), vectorised over sources.

A source's light at wavelength λ lands ``dx(λ)`` pixels along the dispersion from its
direct-image position and ``dy(dx)`` across it (:class:`gdps.instrument.Element`); the box
adds the source's half-size on every side, so a neighbour's box overlapping it is where the
two spectra contaminate each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gdps.instrument import Element

#: WFI detector size (pixels), the science area of a 4096² H4RG without its reference border
DETECTOR_PIX = (4088, 4088)
#: samples of the band along which a trace's extent is measured
TRACE_SAMPLES = 64


@dataclass(frozen=True)
class Locations:
    """Per source: the bounding box of its spectrum on the detector (inclusive pixel
    indices, clipped) and how much of the band's trace lies on the detector."""

    x_ref: np.ndarray  # direct-image position on this exposure (pixels)
    y_ref: np.ndarray
    x_min: np.ndarray  # int64 box, clipped to the detector
    x_max: np.ndarray
    y_min: np.ndarray
    y_max: np.ndarray
    on_detector: np.ndarray  # fraction of the band's trace samples on the detector

    @property
    def visible(self) -> np.ndarray:
        """Sources with any of their spectrum on the detector."""
        return self.on_detector > 0


def trace_pixels(
    element: Element, x_ref: np.ndarray, y_ref: np.ndarray, wavelength_nm: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel positions (x, y), shape (sources, wavelengths), where each source's trace
    centre falls at each wavelength."""
    dx = element.dx_pix(np.asarray(wavelength_nm, float))
    dy = element.trace_dy_pix(dx)
    x = np.asarray(x_ref, float)[:, None] + dx[None, :]
    y = np.asarray(y_ref, float)[:, None] + dy[None, :]
    return x, y


def locate(
    element: Element,
    x_ref: np.ndarray,
    y_ref: np.ndarray,
    half_size_pix: np.ndarray | float,
    shape: tuple[int, int] = DETECTOR_PIX,
) -> Locations:
    """The location of every source's spectrum (``element``'s whole band) on a detector of
    ``shape`` (rows, columns); ``half_size_pix`` is each source's half-extent on the sky."""
    x_ref, y_ref = np.asarray(x_ref, float), np.asarray(y_ref, float)
    if x_ref.shape != y_ref.shape or x_ref.ndim != 1:
        raise ValueError("x_ref and y_ref must be 1-D arrays of the same length")
    if not (np.all(np.isfinite(x_ref)) and np.all(np.isfinite(y_ref))):
        raise ValueError("source positions must be finite")
    half = np.broadcast_to(np.asarray(half_size_pix, float), x_ref.shape)
    if np.any(~np.isfinite(half) | (half < 0)):
        raise ValueError("source half-sizes must be finite and not negative")
    lam = np.linspace(element.wavelength_min_nm, element.wavelength_max_nm, TRACE_SAMPLES)
    x, y = trace_pixels(element, x_ref, y_ref, lam)
    rows, cols = shape
    inside = (x >= -0.5) & (x <= cols - 0.5) & (y >= -0.5) & (y <= rows - 0.5)
    x_lo = np.floor(x.min(axis=1) - half + 0.5)
    x_hi = np.floor(x.max(axis=1) + half + 0.5)
    y_lo = np.floor(y.min(axis=1) - half + 0.5)
    y_hi = np.floor(y.max(axis=1) + half + 0.5)
    return Locations(
        x_ref=x_ref, y_ref=y_ref,
        x_min=np.clip(x_lo, 0, cols - 1).astype(np.int64),
        x_max=np.clip(x_hi, 0, cols - 1).astype(np.int64),
        y_min=np.clip(y_lo, 0, rows - 1).astype(np.int64),
        y_max=np.clip(y_hi, 0, rows - 1).astype(np.int64),
        on_detector=inside.mean(axis=1),
    )  # fmt: skip


def overlaps(locations: Locations) -> np.ndarray:
    """Pairs (i, j), i < j, of visible sources whose boxes overlap, shape (n, 2), sorted:
    where spectra contaminate each other (each box tested only against the boxes that start
    within its x extent, in sorted order)."""
    index = np.flatnonzero(locations.visible)
    order = index[np.argsort(locations.x_min[index], kind="stable")]
    starts = locations.x_min[order]
    stop = np.searchsorted(starts, locations.x_max[order], side="right")
    pairs = []
    for k, i in enumerate(order):
        later = order[k + 1 : stop[k]]  # start at or after i's start, before its end
        hit = (locations.y_min[later] <= locations.y_max[i]) & (
            locations.y_min[i] <= locations.y_max[later]
        )
        for j in later[hit]:
            pairs.append((min(i, j), max(i, j)))
    out = np.array(sorted(pairs), dtype=np.int64)
    return out.reshape(-1, 2)
