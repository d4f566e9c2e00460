"""Build the shipped WFI grism/prism instrument model from the installed public sources.

Run ``python -m gdps.instrument.build --out FILE``; needs the ``build`` extra of gdps
(roman-technical-information, CC0; pysiaf, BSD-3-Clause), never needed at run time.
"""

from __future__ import annotations

import argparse
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path

import numpy as np
import yaml

from gdps.instrument.model import DETECTORS, ELEMENTS, FORMAT_NAME, FORMAT_VERSION

RTI = "roman-technical-information"
WFI = "data/WideFieldInstrument"
SPEC = f"{WFI}/Spectroscopy"
GRISM_DISPERSION = f"{SPEC}/Dispersion/WFI_grism_dispersion.ecsv"
PRISM_DISPERSION = f"{SPEC}/Dispersion/WFI_prism_dispersion.ecsv"
GRISM_EDGES = f"{SPEC}/BandEdges/WFI_grism_edge_wavelengths.ecsv"
PRISM_EDGES = f"{SPEC}/BandEdges/WFI_prism_edge_wavelengths.ecsv"
ELEMENT_SUMMARY = f"{SPEC}/PrismGrismSummary/grism_prism_parameters.ecsv"
EFFECTIVE_AREA = f"{WFI}/Imaging/EffectiveAreas/Roman_effarea_v8_SCA{{sca:02d}}_20240301.ecsv"
SIAF = "prd_data/Roman/roman_siaf.xml"

# Effective-area columns of the per-SCA tables, per element of ours.
AREA_COLUMN = {"G150_1": "Grism_1stOrder", "G150_0": "Grism_0thOrder", "P127": "Prism"}
# Along-dispersion offsets sampled to fit the trace and the wavelength solution (arcsec).
U_SAMPLE_ARCSEC = np.linspace(-60.0, 60.0, 241)
WAVELENGTH_DEGREE = {"G150_1": 5, "P127": 11}
TRACE_DEGREE = 2


def _rti(path: str) -> dict[str, list[str]]:
    """Columns (as text) of one roman-technical-information ECSV table, read as plain CSV: in
    1.5.0 some headers are not valid ECSV (free-text meta, tab-padded names)."""
    text = (files("roman_technical_information") / path).read_text()
    rows = [
        [cell.strip() for cell in line.split(",")]
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return {name: [row[i] for row in rows[1:]] for i, name in enumerate(rows[0])}


def _floats(column: list[str]) -> np.ndarray:
    return np.array([float(v) for v in column])


def _f32(value: float) -> float:
    """The float32 value as the source table printed it (shortest round-tripping text)."""
    return float(np.format_float_positional(np.float32(value)))


def _cite(package: str, path: str, column: str) -> str:
    return f"{package} {version(package)}: {path} [{column}]"


def _siaf_line(aperture: object) -> tuple[np.ndarray, np.ndarray]:
    """Science-pixel offsets (dx, dy) from the aperture centre along the ideal-frame X axis."""
    x0, y0 = aperture.idl_to_sci(0.0, 0.0)
    x, y = aperture.idl_to_sci(U_SAMPLE_ARCSEC, np.zeros_like(U_SAMPLE_ARCSEC))
    return np.asarray(x) - x0, np.asarray(y) - y0


def _offset_arcsec(
    wavelength_nm: np.ndarray,
    dispersion_nm_per_pix: np.ndarray,
    scale_arcsec_per_pix: float,
    reference_nm: float,
) -> np.ndarray:
    """Focal-plane offset (arcsec) of each wavelength from the reference one: ∫ s0 / D dλ."""
    steps = (
        np.diff(wavelength_nm)
        * 0.5
        * (1 / dispersion_nm_per_pix[1:] + 1 / dispersion_nm_per_pix[:-1])
    )
    u = np.concatenate([[0.0], np.cumsum(steps)]) * scale_arcsec_per_pix
    return u - np.interp(reference_nm, wavelength_nm, u)


def build_model() -> dict:
    """The instrument model as the plain tree that is written to YAML."""
    import pysiaf

    siaf = pysiaf.Siaf("Roman")
    lines = {det: _siaf_line(siaf[f"{det}_FULL"]) for det in DETECTORS}
    # pixels per arcsec along the dispersion at each detector centre (derivative at u = 0)
    centre = len(U_SAMPLE_ARCSEC) // 2
    du = U_SAMPLE_ARCSEC[1] - U_SAMPLE_ARCSEC[0]
    slope = {
        det: float(np.hypot(*(np.gradient(np.array(lines[det]), du, axis=1)[:, centre])))
        for det in DETECTORS
    }
    scale = {det: 1.0 / slope[det] for det in DETECTORS}
    scale_centre = float(np.mean(list(scale.values())))

    summary_table = _rti(ELEMENT_SUMMARY)
    summary = {
        name: float(centre)
        for name, centre in zip(
            summary_table["element"], summary_table["wavelength_center"], strict=True
        )
    }
    dispersion = {
        "G150_1": (_rti(GRISM_DISPERSION), "g_mean_lam", "g_dispersion", GRISM_DISPERSION),
        "P127": (_rti(PRISM_DISPERSION), "p_mean_lam", "p_dispersion", PRISM_DISPERSION),
    }
    edges = {"G150": (_rti(GRISM_EDGES), "Grism"), "P127": (_rti(PRISM_EDGES), "Prism")}
    reference_nm = {name: 1000.0 * summary[name] for name in ("G150", "P127")}

    elements = {}
    for name, spec in ELEMENTS.items():
        grating = spec["grating"]
        entry = {
            "grating": grating,
            "order": spec["order"],
            "reference_wavelength_nm": reference_nm[grating],
            "reference_wavelength_cite": _cite(RTI, ELEMENT_SUMMARY, "wavelength_center")
            + " × 1000",
            "effective_area_column": AREA_COLUMN[name],
        }
        if name in dispersion:
            _, wcol, dcol, path = dispersion[name]
            entry["dispersion_cite"] = _cite(RTI, path, f"{wcol}, {dcol}")
        elements[name] = entry

    detectors = {}
    for sca, det in enumerate(DETECTORS, start=1):
        dx_line, dy_line = lines[det]
        area_path = EFFECTIVE_AREA.format(sca=sca)
        area = _rti(area_path)
        columns = [_floats(area[AREA_COLUMN[name]]) for name in ELEMENTS]
        lit = np.flatnonzero(np.any(np.array(columns) > 0, axis=0))
        rows = slice(max(lit[0] - 1, 0), lit[-1] + 2)
        det_entry = {
            "siaf_aperture": f"{det}_FULL",
            "pixel_scale_along_dispersion_arcsec": round(scale[det], 9),
            "pixel_scale_cite": _cite("pysiaf", SIAF, f"{det}_FULL Idl2Sci*")
            + ": |d(x,y)/dX_idl| at the aperture reference point",
            "effective_area": {
                "cite": _cite(RTI, area_path, "Wave, " + ", ".join(AREA_COLUMN.values())),
                "wavelength_um": [_f32(v) for v in _floats(area["Wave"])[rows]],
                **{
                    name: [_f32(v) for v in _floats(area[AREA_COLUMN[name]])[rows]]
                    for name in ELEMENTS
                },
            },
            "elements": {},
        }
        trace = np.polynomial.Polynomial.fit(dx_line, dy_line, TRACE_DEGREE).convert().coef
        for name, spec in ELEMENTS.items():
            grating = spec["grating"]
            table, column = edges[grating]
            i = [int(v) for v in table["SCA"]].index(sca)
            blue, red = float(table[f"{column}_blue"][i]), float(table[f"{column}_red"][i])
            element = {
                "wavelength_range_nm": [blue, red],
                "wavelength_range_cite": _cite(
                    RTI,
                    GRISM_EDGES if grating == "G150" else PRISM_EDGES,
                    f"SCA == {sca}: {column}_blue, {column}_red",
                ),
                "wavelength_poly_nm": None,
                "trace_poly_pix": None,
                "dx_range_pix": None,
            }
            if name in dispersion:
                table_d, wcol, dcol, _ = dispersion[name]
                lam = _floats(table_d[wcol])  # nm (the grism file labels it mm)
                disp = _floats(table_d[dcol])
                u = _offset_arcsec(lam, disp, scale_centre, reference_nm[grating])
                dx = np.interp(u, U_SAMPLE_ARCSEC, dx_line)
                fit = np.polynomial.Polynomial.fit(dx, lam, WAVELENGTH_DEGREE[name]).convert()
                grid = np.linspace(dx.min() - 50, dx.max() + 50, 20001)
                lo = float(grid[np.argmin(np.abs(fit(grid) - blue))])
                hi = float(grid[np.argmin(np.abs(fit(grid) - red))])
                element["wavelength_poly_nm"] = [float(c) for c in fit.coef]
                element["fit_rms_nm"] = round(float(np.std(fit(dx) - lam)), 6)
                element["trace_poly_pix"] = [float(c) for c in trace]
                element["dx_range_pix"] = [round(min(lo, hi), 3), round(max(lo, hi), 3)]
            det_entry["elements"][name] = element
        detectors[det] = det_entry

    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "description": "Roman WFI grism (G150, orders 1 and 0) and prism (P127) per-detector "
        "trace, wavelength solution, wavelength range and effective area for GDPS.",
        "sources": {
            RTI: {"version": version(RTI), "license": "CC0-1.0"},
            "pysiaf": {"version": version("pysiaf"), "license": "BSD-3-Clause"},
        },
        "conventions": {
            "dx_pix": "science-frame pixels from the source's direct-image position along the "
            "dispersion (SIAF science x, 0-based offsets); positive dx is redder",
            "wavelength_poly_nm": "λ(dx) = Σ c_k dx^k, ascending powers, nm",
            "trace_poly_pix": "dy(dx) = Σ c_k dx^k, science-frame y offset of the trace, pixels",
            "effective_area": "m² per element column, wavelength in µm, as read; sensitivity "
            "= A λ / (h c) in e-/s/Å per erg/s/cm²/Å is computed on load",
        },
        "derivation": {
            "read": "effective areas, band edges, field-centre dispersion D0(λ), element centre "
            "wavelengths (roman-technical-information); SIAF distortion (pysiaf)",
            "derived_approximation": (
                "The public sources give no per-detector trace or wavelength solution. The "
                "dispersion is assumed to run along the focal-plane ideal X axis "
                "(V3IdlYAngle frame) for every detector; the trace is that line mapped into "
                "each detector's science pixels by the SIAF Idl2Sci polynomials (degree-2 fit). "
                "The angular dispersion is D0(λ) / s0 with s0 the mean along-dispersion pixel "
                f"scale of the 18 detectors ({scale_centre:.6f} arcsec/pix); offsets "
                "u(λ) = ∫ s0 / D0 dλ from the element's centre wavelength (which is placed at "
                "the direct-image position, dx = 0) are mapped to pixels the same way and fitted "
                "by a polynomial λ(dx). The grism zeroth order has no public position or "
                "dispersion: only its range and effective area are given. Field dependence "
                "within a detector (Bray et al. 2024) is not modelled."
            ),
            "source_notes": "WFI_grism_dispersion.ecsv labels g_mean_lam in mm; its values are "
            "nm (1000–1923) and are read as nm. Prism dispersion above 1600 nm is flagged "
            "by the source as not fully calibrated.",
        },
        "pixel_scale_centre_arcsec": round(scale_centre, 9),
        "elements": elements,
        "detectors": detectors,
    }


class _Dumper(yaml.SafeDumper):
    """Numbers lists inline (one line per curve) so the file stays small and diffable."""


def _list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(isinstance(v, int | float) or v is None for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _list)


def write_model(out: Path) -> Path:
    """Build the model and write it to ``out`` (YAML); returns the path."""
    text = yaml.dump(build_model(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# GDPS instrument model: written by python -m gdps.instrument.build\n" + text)
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m gdps.instrument.build --out FILE``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="YAML file to write")
    args = parser.parse_args(argv)
    print(write_model(args.out))


if __name__ == "__main__":
    main()
