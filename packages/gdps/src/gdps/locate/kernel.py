"""The location kernel: for every source at its direct-image position on a dispersed
exposure, the trace of its spectrum, the pixels each wavelength lands on, and the bounding
box of the whole band (clipped to the detector), vectorised over sources.

A source's light at wavelength λ lands ``dx(λ)`` pixels along the dispersion from its
direct-image position and ``dy(dx)`` across it (:class:`gdps.instrument.Element`); the box
adds the source's half-size on every side, so a neighbour's box overlapping it is where the
two spectra contaminate each other. Boxes are kept whole, as the location table stores them
(``roman_schemas.products.gdps.SpectraLocationTable``), and cut to the detector to be read.
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
    """Per source, as the location table (``SpectraLocationTable``) stores it: the bounding
    box of its whole spectrum (inclusive pixels, not clipped: it may reach off the detector),
    the fraction of the trace's length on the detector and the band seen there."""

    x_ref: np.ndarray  # direct-image position on this exposure (pixels)
    y_ref: np.ndarray
    x_min: np.ndarray  # int64 box of the whole band with the source's size
    x_max: np.ndarray
    y_min: np.ndarray
    y_max: np.ndarray
    on_detector: np.ndarray  # fraction of the trace's length on the detector
    wavelength_min_nm: np.ndarray  # band on the detector (NaN: none of it)
    wavelength_max_nm: np.ndarray
    shape: tuple[int, int] = DETECTOR_PIX

    @property
    def visible(self) -> np.ndarray:
        """Sources with any of their spectrum on the detector."""
        return self.on_detector > 0

    def clipped(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The boxes cut to the detector (x_min, x_max, y_min, y_max): the pixels to read."""
        rows, cols = self.shape
        return (np.clip(self.x_min, 0, cols - 1), np.clip(self.x_max, 0, cols - 1),
                np.clip(self.y_min, 0, rows - 1), np.clip(self.y_max, 0, rows - 1))  # fmt: skip


def trace_pixels(
    element: Element, x_ref: np.ndarray, y_ref: np.ndarray, wavelength_nm: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel positions (x, y), shape (sources, wavelengths), where each source's trace
    centre falls at each wavelength."""
    return _along(element, x_ref, y_ref, element.dx_pix(np.asarray(wavelength_nm, float)))


def _along(
    element: Element, x_ref: np.ndarray, y_ref: np.ndarray, dx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The trace centre (x, y) of every source at dispersion offsets ``dx``."""
    x = np.asarray(x_ref, float)[:, None] + dx[None, :]
    y = np.asarray(y_ref, float)[:, None] + element.trace_dy_pix(dx)[None, :]
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
    # sampled evenly along the trace, so the fraction on the detector is one of length
    ends = element.dx_pix(np.array([element.wavelength_min_nm, element.wavelength_max_nm]))
    dx = np.linspace(ends.min(), ends.max(), TRACE_SAMPLES)
    lam = element.wavelength_nm(dx)
    x, y = _along(element, x_ref, y_ref, dx)
    rows, cols = shape
    inside = (x >= -0.5) & (x <= cols - 0.5) & (y >= -0.5) & (y <= rows - 0.5)
    any_inside = inside.any(axis=1)
    lam_min = np.where(any_inside, np.where(inside, lam, np.inf).min(axis=1), np.nan)
    lam_max = np.where(any_inside, np.where(inside, lam, -np.inf).max(axis=1), np.nan)
    return Locations(
        x_ref=x_ref, y_ref=y_ref,
        x_min=np.floor(x.min(axis=1) - half + 0.5).astype(np.int64),
        x_max=np.floor(x.max(axis=1) + half + 0.5).astype(np.int64),
        y_min=np.floor(y.min(axis=1) - half + 0.5).astype(np.int64),
        y_max=np.floor(y.max(axis=1) + half + 0.5).astype(np.int64),
        on_detector=inside.mean(axis=1), wavelength_min_nm=lam_min, wavelength_max_nm=lam_max,
        shape=shape,
    )  # fmt: skip


def overlaps(locations: Locations) -> np.ndarray:
    """Pairs (i, j), i < j, of visible sources whose boxes overlap on the detector, shape
    (n, 2), sorted: where spectra contaminate each other (each box is tested only against
    the boxes that start within its x extent, in sorted order)."""
    x_min, x_max, y_min, y_max = locations.clipped()  # off the detector nothing mixes
    index = np.flatnonzero(locations.visible)
    order = index[np.argsort(x_min[index], kind="stable")]
    starts = x_min[order]
    stop = np.searchsorted(starts, x_max[order], side="right")
    pairs = []
    for k, i in enumerate(order):
        later = order[k + 1 : stop[k]]  # start at or after i's start, before its end
        hit = (y_min[later] <= y_max[i]) & (y_min[i] <= y_max[later])
        for j in later[hit]:
            pairs.append((min(i, j), max(i, j)))
    out = np.array(sorted(pairs), dtype=np.int64)
    return out.reshape(-1, 2)
