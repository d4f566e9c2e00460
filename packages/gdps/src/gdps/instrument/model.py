"""The WFI grism/prism instrument model: per detector and element, trace, wavelength solution,
wavelength range and sensitivity, read from our versioned YAML file (see data/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from gdps.errors import InstrumentModelError

FORMAT_NAME = "gdps-instrument-model"
FORMAT_VERSION = "1.0.0"
DETECTORS = tuple(f"WFI{n:02d}" for n in range(1, 19))
ELEMENTS = {
    "G150_1": {"grating": "G150", "order": 1},
    "G150_0": {"grating": "G150", "order": 0},
    "P127": {"grating": "P127", "order": 1},
}
SHIPPED = "instrument_model.yaml"
# h c in erg Å: photons per erg at wavelength λ are λ / (h c)
HC_ERG_ANGSTROM = 6.62607015e-27 * 2.99792458e18


class _Strict(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class _ElementEntry(_Strict):
    wavelength_range_nm: tuple[float, float]
    wavelength_poly_nm: list[float] | None
    trace_poly_pix: list[float] | None
    dx_range_pix: tuple[float, float] | None

    @model_validator(mode="after")
    def _consistent(self) -> _ElementEntry:
        lo, hi = self.wavelength_range_nm
        if not 0 < lo < hi:
            raise ValueError(f"wavelength_range_nm {lo}–{hi} is not increasing and positive")
        present = [
            v is not None for v in (self.wavelength_poly_nm, self.trace_poly_pix, self.dx_range_pix)
        ]
        if any(present) and not all(present):
            raise ValueError("wavelength_poly_nm, trace_poly_pix, dx_range_pix: all or none")
        return self


class _EffectiveArea(_Strict):
    wavelength_um: list[float]

    @model_validator(mode="after")
    def _columns(self) -> _EffectiveArea:
        w = np.asarray(self.wavelength_um)
        if w.size < 2 or np.any(np.diff(w) <= 0):
            raise ValueError("wavelength_um is not strictly increasing")
        for name in ELEMENTS:
            values = (self.model_extra or {}).get(name)
            if not isinstance(values, list) or len(values) != w.size:
                raise ValueError(f"column {name} missing or not as long as wavelength_um")
            if any(not isinstance(v, int | float) or v < 0 for v in values):
                raise ValueError(f"column {name} has a negative or non-numeric area")
        return self


class _DetectorEntry(_Strict):
    effective_area: _EffectiveArea
    elements: dict[str, _ElementEntry]


class _ModelFile(_Strict):
    format: str
    format_version: str
    sources: dict[str, dict]
    detectors: dict[str, _DetectorEntry]

    @model_validator(mode="after")
    def _complete(self) -> _ModelFile:
        if self.format != FORMAT_NAME:
            raise ValueError(f"format is {self.format!r}, expected {FORMAT_NAME!r}")
        if self.format_version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
            raise ValueError(f"format_version {self.format_version} unsupported ({FORMAT_VERSION})")
        missing = [d for d in DETECTORS if d not in self.detectors]
        if missing:
            raise ValueError(f"detectors missing: {', '.join(missing)}")
        for det, entry in self.detectors.items():
            absent = [e for e in ELEMENTS if e not in entry.elements]
            if absent:
                raise ValueError(f"{det}: elements missing: {', '.join(absent)}")
        return self


@dataclass(frozen=True)
class Element:
    """One dispersing element (and order) on one detector: geometry, wavelengths, sensitivity."""

    detector: str
    name: str
    grating: str
    order: int
    wavelength_min_nm: float
    wavelength_max_nm: float
    wavelength_poly_nm: np.ndarray | None
    trace_poly_pix: np.ndarray | None
    dx_range_pix: tuple[float, float] | None
    area_wavelength_nm: np.ndarray = field(repr=False)
    area_cm2: np.ndarray = field(repr=False)

    @property
    def has_geometry(self) -> bool:
        """Whether the public sources place this order on the detector (not the zeroth order)."""
        return self.wavelength_poly_nm is not None

    def _geometry(self) -> tuple[np.ndarray, np.ndarray]:
        if self.wavelength_poly_nm is None or self.trace_poly_pix is None:
            raise InstrumentModelError(
                f"{self.detector} {self.name}", "no public trace or wavelength solution"
            )
        return self.wavelength_poly_nm, self.trace_poly_pix

    def wavelength_nm(self, dx_pix: np.ndarray | float) -> np.ndarray:
        """Wavelength (nm) at offset dx (pixels) along the dispersion from the source position."""
        return np.polynomial.polynomial.polyval(np.asarray(dx_pix, float), self._geometry()[0])

    def dx_pix(self, wavelength_nm: np.ndarray | float) -> np.ndarray:
        """Inverse of ``wavelength_nm``: the dispersion offset (pixels) of each wavelength."""
        coeffs = self._geometry()[0]
        lo, hi = self.dx_range_pix
        grid = np.linspace(lo - 20.0, hi + 20.0, 4001)
        lam_grid = np.polynomial.polynomial.polyval(grid, coeffs)
        order = np.argsort(lam_grid)
        lam = np.asarray(wavelength_nm, float)
        dx = np.interp(lam, lam_grid[order], grid[order])
        derivative = np.polynomial.polynomial.polyder(coeffs)
        for _ in range(4):  # Newton polish of the tabulated guess
            dx = dx - (np.polynomial.polynomial.polyval(dx, coeffs) - lam) / (
                np.polynomial.polynomial.polyval(dx, derivative)
            )
        return dx

    def trace_dy_pix(self, dx_pix: np.ndarray | float) -> np.ndarray:
        """Cross-dispersion offset (pixels) of the trace centre at dispersion offset dx."""
        return np.polynomial.polynomial.polyval(np.asarray(dx_pix, float), self._geometry()[1])

    def dispersion_nm_per_pix(self, wavelength_nm: np.ndarray | float) -> np.ndarray:
        """|dλ/dx| (nm per pixel) at each wavelength."""
        derivative = np.polynomial.polynomial.polyder(self._geometry()[0])
        return np.abs(np.polynomial.polynomial.polyval(self.dx_pix(wavelength_nm), derivative))

    def resolution(self, wavelength_nm: np.ndarray | float) -> np.ndarray:
        """Two-pixel resolving power λ / (2 |dλ/dx|), the convention of the published R."""
        return np.asarray(wavelength_nm, float) / (2.0 * self.dispersion_nm_per_pix(wavelength_nm))

    def in_range(self, wavelength_nm: np.ndarray | float) -> np.ndarray:
        """Whether each wavelength lies inside the element's band on this detector."""
        lam = np.asarray(wavelength_nm, float)
        return (lam >= self.wavelength_min_nm) & (lam <= self.wavelength_max_nm)

    def sensitivity(self, wavelength_nm: np.ndarray | float) -> np.ndarray:
        """e-/s per Å of spectrum per unit f_λ (erg/s/cm²/Å): A λ / (h c); zero outside the band."""
        lam = np.asarray(wavelength_nm, float)
        area = np.interp(lam, self.area_wavelength_nm, self.area_cm2, left=0.0, right=0.0)
        return np.where(self.in_range(lam), area * lam * 10.0 / HC_ERG_ANGSTROM, 0.0)


@dataclass(frozen=True)
class Instrument:
    """The whole model: one ``Element`` per (detector, element name), plus the file's provenance."""

    path: str
    format_version: str
    sources: dict[str, dict]
    elements: dict[tuple[str, str], Element]

    def element(self, detector: str, name: str) -> Element:
        """The element ``name`` (G150_1, G150_0, P127) on ``detector`` (WFI01–WFI18)."""
        try:
            return self.elements[(detector, name)]
        except KeyError:
            raise InstrumentModelError(
                self.path, f"no element {name!r} on detector {detector!r}"
            ) from None


def shipped_model_path() -> Path:
    """The instrument model file that ships with gdps."""
    return Path(str(files("gdps.instrument") / "data" / SHIPPED))


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"


def load_instrument(path: str | Path | None = None) -> Instrument:
    """Read and validate an instrument model file (the shipped one by default)."""
    source = Path(path) if path is not None else shipped_model_path()
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InstrumentModelError(str(source), "instrument model file not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())
        raise InstrumentModelError(str(source), f"not a readable YAML file ({reason})") from None
    if not isinstance(raw, dict):
        raise InstrumentModelError(str(source), "not an instrument model (top level not a map)")
    try:
        parsed = _ModelFile.model_validate(raw)
    except ValidationError as exc:
        raise InstrumentModelError(str(source), _one_line(exc)) from None

    elements = {}
    for det in DETECTORS:
        entry = parsed.detectors[det]
        area = entry.effective_area
        wavelength_nm = np.asarray(area.wavelength_um, float) * 1000.0
        for name, spec in ELEMENTS.items():
            e = entry.elements[name]
            elements[(det, name)] = Element(
                detector=det,
                name=name,
                grating=spec["grating"],
                order=spec["order"],
                wavelength_min_nm=e.wavelength_range_nm[0],
                wavelength_max_nm=e.wavelength_range_nm[1],
                wavelength_poly_nm=None
                if e.wavelength_poly_nm is None
                else np.asarray(e.wavelength_poly_nm, float),
                trace_poly_pix=None
                if e.trace_poly_pix is None
                else np.asarray(e.trace_poly_pix, float),
                dx_range_pix=e.dx_range_pix,
                area_wavelength_nm=wavelength_nm,
                area_cm2=np.asarray(area.model_extra[name], float) * 1.0e4,
            )
    return Instrument(
        path=str(source),
        format_version=parsed.format_version,
        sources=parsed.sources,
        elements=elements,
    )
