"""GDPS products: grism and prism spectra, their locations, redshifts and quality reports.

GDPS turns Level-2 WFI dispersed exposures (GRISM: R≈460, 1.00–1.93 µm; PRISM: R≈80–180,
0.75–1.80 µm), taken at several roll angles, plus a direct-image source catalog into:

- per exposure (one detector): a spectra location table, decontaminated 2D cutouts,
  individual 1D spectra and a 2D data-quality report;
- per source set (a sky tile): combined 1D spectra, a redshift catalog and its quality report.

Ragged layout. Cutouts and native-sampling spectra differ in size from source to source, so
they are stored as *flat* arrays (every source's block one after the other, in the row order
of an index table) plus an index table giving each block's offset and shape. Blocks tile the
flat arrays exactly: the first starts at 0, each next one where the previous ends, the last
ends at the array's end. Reading one source is a slice, also on lazily opened files::

    row = product.row(source_id)                      # or product.cutout(source_id)
    start = product.cutouts.pixel_offset[row]
    ny, nx = product.cutouts.ny[row], product.cutouts.nx[row]
    science = product.science_dn_s[start : start + ny * nx].reshape(ny, nx)

Validators that read whole pixel arrays run on in-memory arrays (when a product is made or
written); checks on index tables and grids also run when a file is opened lazily.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar, Literal, NamedTuple, Self

import numpy as np
from pydantic import Field, field_validator, model_validator

from roman_schemas.arrays import NDArray
from roman_schemas.meta import MetaModel, ProductMeta, archive
from roman_schemas.product import Product
from roman_schemas.tables import Table
from roman_schemas.wfi import Detector

RAD_GDPS = "asdf://stsci.edu/datamodels/roman/schemas/SSC/GDPS"

# Units (astropy strings) shared by declarations and archive keywords.
UM = "um"
FLAM = "erg / (s cm2 Angstrom)"  # f_λ flux density
LINE_FLUX = "erg / (s cm2)"
DN_S = "DN / s"  # L2 spectroscopic images stay in DN/s (romancal applies no flux step)
PIX = "pix"
DEG = "deg"
AB_MAG = "mag(AB)"
ANGSTROM = "Angstrom"

Disperser = Literal["GRISM", "PRISM"]
ImagingFilter = Literal["F062", "F087", "F106", "F129", "F146", "F158", "F184", "F213"]

#: nominal bandpass of each disperser (µm)
BANDPASS_UM: dict[str, tuple[float, float]] = {"GRISM": (1.00, 1.93), "PRISM": (0.75, 1.80)}
#: extracted wavelengths may run this far past the nominal bandpass (low-throughput wings)
BANDPASS_MARGIN_UM = 0.05
#: a WFI detector is 4088 × 4088 pixels, the outer 4 on each side reference pixels
DETECTOR_PIXELS = 4088
#: p(z) must integrate (trapezoid rule on the z grid) to 1 within this
PZ_NORM_TOLERANCE = 1e-3


# -- flag vocabularies (part of the product contract) -------------------------------------
class SpectrumDQ(enum.IntFlag):
    """Bits of the ``dq`` of 1D spectra (one value per wavelength sample)."""

    NONE = 0
    DO_NOT_USE = 1 << 0  # the sample carries no usable flux
    BAD_PIXEL = 1 << 1  # an L2 pixel flagged DO_NOT_USE lies in the extraction aperture
    CONTAMINATED = 1 << 2  # the subtracted contamination exceeds the source flux
    DETECTOR_EDGE = 1 << 3  # the aperture runs off the detector's science pixels
    NO_COVERAGE = 1 << 4  # no individual spectrum covers the sample (combined spectra)
    LOW_THROUGHPUT = 1 << 5  # disperser throughput below 10 % of its peak
    OUTLIER = 1 << 6  # a contributing sample was rejected as an outlier


class RedshiftFlag(enum.IntFlag):
    """Bits of a redshift measurement's ``flags``."""

    NONE = 0
    NO_FIT = 1 << 0  # no redshift: z is NaN and p(z) is zero
    SINGLE_LINE = 1 << 1  # one line detected: the identification may be wrong
    MULTIPLE_PEAKS = 1 << 2  # p(z) has more than one significant peak
    CONTAMINATED = 1 << 3  # contamination dominates part of the spectrum
    LINE_AT_EDGE = 1 << 4  # the strongest line falls within 0.02 µm of the bandpass edge
    LOW_SNR = 1 << 5  # continuum S/N below 2 over the global S/N range
    STAR = 1 << 6  # the spectrum fits a stellar template better than any galaxy


def _bits(flag_type: type[enum.IntFlag]) -> str:
    """``1=DO_NOT_USE, 2=BAD_PIXEL, …``: the text every flag field's description carries."""
    return ", ".join(f"{int(f)}={f.name}" for f in flag_type if f.value)


# -- metadata -------------------------------------------------------------------------------
class ObservationSpan(MetaModel):
    """When the data of a product were taken (rad's visit start and end keywords)."""

    start_mjd_utc: float = archive(
        "visit_start_time_mjd", description="start of the first L2 exposure used (MJD UTC)"
    )
    end_mjd_utc: float = archive(
        "visit_end_time_mjd", description="end of the last L2 exposure used (MJD UTC)"
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end_mjd_utc < self.start_mjd_utc:
            raise ValueError("end_mjd_utc is before start_mjd_utc")
        return self


class EmissionLine(MetaModel):
    """One line of a catalog's line list (the second axis of its line columns)."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9_+]{1,16}$", description="line id, e.g. Ha_6565 or Hb+OIII"
    )
    rest_wavelength_um: float = Field(
        gt=0, description="vacuum rest wavelength (µm; flux-weighted mean for a blend)"
    )


class RedshiftGrid(MetaModel):
    """Definition of the z grid of p(z): ``z_min`` to ``z_max`` in ``n_z`` steps."""

    z_min: float = Field(ge=0, description="first grid redshift")
    z_max: float = Field(gt=0, description="last grid redshift")
    n_z: int = Field(ge=2, description="number of grid points")
    spacing: Literal["linear", "log1p"] = Field(
        description="linear in z, or uniform in ln(1+z) (constant Δz/(1+z))"
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.z_max <= self.z_min:
            raise ValueError("z_max must exceed z_min")
        return self

    def values(self) -> np.ndarray:
        """The grid redshifts (float64, strictly increasing)."""
        if self.spacing == "linear":
            return np.linspace(self.z_min, self.z_max, self.n_z)
        return np.expm1(np.linspace(np.log1p(self.z_min), np.log1p(self.z_max), self.n_z))


class GdpsMeta(ProductMeta):
    """Metadata of every GDPS product: program, disperser, footprint and time span."""

    # rad's GDPS keyword sets, unlike MSOS's, carry no product_type/model_type: kept here,
    # not emitted as archive keywords.
    product_type: str = Field(description="product type (rad SSC name)")
    model_type: str = Field(description="roman-schemas class of the product")
    instrument: Literal["WFI"] = archive("instrument", default="WFI")
    optical_element: Disperser = archive(
        "optical_element",
        description="disperser: GRISM (R≈460, 1.00–1.93 µm) or PRISM (R≈80–180, 0.75–1.80 µm)",
    )
    program: int = archive("program", ge=1, le=18445, description="observing program")
    program_complete: bool = archive(
        "program_complete", description="the observing program has finished"
    )
    data_release_id: str = archive(
        "data_release_id",
        default="",
        pattern=r"^[A-Za-z0-9]{0,3}$",
        description="data-release label; empty outside a data release (rad requires the key)",
    )
    s_region: str = archive(
        "s_region", min_length=1, description="footprint: POLYGON ICRS ra dec … (deg)"
    )
    span: ObservationSpan

    @model_validator(mode="after")
    def _exposure_in_program(self) -> Self:
        exposure = getattr(self, "exposure", None)
        if isinstance(exposure, L2Exposure) and int(exposure.observation_id[:5]) != self.program:
            raise ValueError(
                f"exposure observation_id {exposure.observation_id} is not in program "
                f"{self.program}"
            )
        return self


class L2Exposure(MetaModel):
    """The Level-2 dispersed exposure (one detector) a per-exposure product is made from."""

    observation_id: str = archive(
        "observation_id",
        max_length=28,
        pattern=r"^[0-9]{19}([0-9]{9})?$",
        description="PPPPPCCAAASSSOOOVVV (visit id), optionally followed by ggsaaeeee",
    )
    segment: int = archive("segment", ge=1, le=999, description="segment number (SSS)")
    visit: int = archive("visit", ge=1, le=999, description="visit number (VVV)")
    exposure: int = Field(ge=1, le=9999, description="exposure number within the visit")
    detector: Detector = Field(description="WFI detector of the L2 file")
    exptime_s: float = archive("exptime", gt=0, description="exposure time (s)")
    dither: int = Field(ge=0, description="dither position id within the visit's pattern")
    pa_v3_deg: float = Field(
        ge=0, lt=360, description="roll: position angle of V3 on the sky, N through E (deg)"
    )
    v3yangle_deg: float = Field(
        ge=-180, le=180, description="angle from V3 to the detector's ideal Y axis (SIAF, deg)"
    )

    @model_validator(mode="after")
    def _id_matches(self) -> Self:
        oid = self.observation_id
        if int(oid[10:13]) != self.segment or int(oid[16:19]) != self.visit:
            raise ValueError(
                f"observation_id {oid} names segment {oid[10:13]} visit {oid[16:19]}, "
                f"not segment {self.segment} visit {self.visit}"
            )
        return self


class FieldCenter(MetaModel):
    """Centre of the field the spectra belong to (rad's GDPS pointing keywords)."""

    ra_deg: float = archive("wcs_field_center_ra", ge=0, lt=360, description="RA (ICRS, deg)")
    dec_deg: float = archive("wcs_field_center_dec", ge=-90, le=90, description="Dec (ICRS, deg)")


class SpectralSetup(MetaModel):
    """Wavelength conventions of a spectral product (rad's GDPS wavelength keywords)."""

    reference_wavelength_um: float = archive(
        "wl_reference",
        gt=0,
        description="wavelength the optical model places at a source's reference pixel (µm)",
    )
    contamination_min_um: float = Field(gt=0, description="contamination estimated from (µm)")
    contamination_max_um: float = Field(gt=0, description="contamination estimated to (µm)")
    snr_min_um: float = Field(gt=0, description="global S/N measured from (µm)")
    snr_max_um: float = Field(gt=0, description="global S/N measured to (µm)")
    mag_cut_filter: ImagingFilter = archive(
        "phot_filter_cut_off", description="direct-image filter of the extraction magnitude cut"
    )
    mag_cut_ab: float = Field(description="faintest direct-image AB magnitude extracted")

    @model_validator(mode="after")
    def _ranges_ordered(self) -> Self:
        if self.contamination_max_um <= self.contamination_min_um:
            raise ValueError("contamination_max_um must exceed contamination_min_um")
        if self.snr_max_um <= self.snr_min_um:
            raise ValueError("snr_max_um must exceed snr_min_um")
        return self


class G2dpMeta(GdpsMeta):
    """Metadata of products of one G2DP run (locations, 2D and 1D spectra, 2D quality)."""

    run_id: str = archive(
        "g2dp_run_id", min_length=1, max_length=128, description="G2DP run that made the file"
    )


class LocationTableMeta(G2dpMeta):
    """Metadata of a spectra location table: the exposure and the optical model used."""

    exposure: L2Exposure
    optical_model: str = archive(
        "optical_model",
        min_length=1,
        max_length=1024,
        description="optical-model file, e.g. roman_gdps_grism_optmodel_ctx00002.yaml",
    )


class CalibratedMeta(G2dpMeta):
    """G2DP metadata with the calibration context and the field centre."""

    cdp_context: int = archive("cdp_ctx", ge=0, description="calibration data product context")
    pointing: FieldCenter


class SpectraMeta(CalibratedMeta):
    """Metadata of spectral products (2D cutouts, individual and combined 1D spectra)."""

    spectral: SpectralSetup

    @model_validator(mode="after")
    def _setup_in_band(self) -> Self:
        lo, hi = BANDPASS_UM[self.optical_element]
        s = self.spectral
        for name, value in (
            ("reference_wavelength_um", s.reference_wavelength_um),
            ("contamination_min_um", s.contamination_min_um),
            ("contamination_max_um", s.contamination_max_um),
            ("snr_min_um", s.snr_min_um),
            ("snr_max_um", s.snr_max_um),
        ):
            if not lo <= value <= hi:
                raise ValueError(f"spectral.{name} {value} µm is outside the {lo}–{hi} µm band")
        return self


class ExposureSpectraMeta(SpectraMeta):
    """Metadata of spectra extracted from one L2 exposure."""

    exposure: L2Exposure


class CombinedSpectraMeta(SpectraMeta):
    """Metadata of spectra combined over the exposures and rolls of a sky tile."""

    tile_id: str = Field(min_length=1, max_length=64, description="sky tile of the sources")
    n_exposures: int = Field(ge=1, description="L2 exposures offered to the combination")
    pa_v3_deg: list[float] = Field(
        min_length=1, description="distinct roll angles (V3 position angles, deg) of those"
    )


class Dqa2dMeta(CalibratedMeta):
    """Metadata of the 2D data-quality report of one exposure."""

    exposure: L2Exposure


class CatalogMeta(GdpsMeta):
    """Metadata of catalog products: the catalog's identity and its emission-line list."""

    catalog_id: int = archive("catalog_id", ge=1, description="unique id of this catalog")
    file_number: int = archive("file_number", ge=1, description="file of the catalog, from 1")
    tile_id: str = Field(min_length=1, max_length=64, description="sky tile of the sources")
    lines: list[EmissionLine] = Field(
        min_length=1, description="line list: the second axis of every line_* column"
    )

    @field_validator("lines")
    @classmethod
    def _unique_lines(cls, lines: list[EmissionLine]) -> list[EmissionLine]:
        names = [line.name for line in lines]
        if len(set(names)) != len(names):
            raise ValueError(f"line names repeat: {names}")
        return lines


class RedshiftCatalogMeta(CatalogMeta):
    """Catalog metadata with the definition of the p(z) grid."""

    redshift_grid: RedshiftGrid


def gdps_version(meta: ProductMeta) -> str:
    """The G2DP software version a product was made with ("unknown" for hand-made ones)."""
    return meta.software_versions.get("gdps", "unknown")


def _range_text(low: float, high: float) -> str:
    """A wavelength range as rad's string keywords hold it: ``[1.4, 1.6]`` (µm)."""
    return f"[{low:g}, {high:g}]"


# -- products: bases ------------------------------------------------------------------------
class GdpsProduct(Product):
    """Base of every GDPS product."""

    system: ClassVar[str] = "gdps"


class G2dpProduct(GdpsProduct):
    """Base of products of a G2DP run: they carry the G2DP software version keyword."""

    def extra_archive_keywords(self) -> dict[str, Any]:
        return {
            **super().extra_archive_keywords(),
            "version_g2dp_software": gdps_version(self.meta),
        }


class SpectralProduct(G2dpProduct):
    """Base of spectral products: the unit and wavelength-range keywords come from the model."""

    #: the unit of the product's flux arrays (rad's ``unit_flux``)
    flux_unit: ClassVar[str]

    def extra_archive_keywords(self) -> dict[str, Any]:
        setup = self.meta.spectral
        return {
            **super().extra_archive_keywords(),
            "unit_flux": self.flux_unit,
            "unit_wl": UM,
            "wl_contamination_range": _range_text(
                setup.contamination_min_um, setup.contamination_max_um
            ),
            "wl_snr_global_range": _range_text(setup.snr_min_um, setup.snr_max_um),
        }


# -- shared checks --------------------------------------------------------------------------
def _in_memory(*arrays: Any) -> bool:
    """True when every array is loaded; pixel-level checks skip lazily opened or memory-
    mapped files (reading a whole file-backed array would defeat the lazy open)."""
    return all(isinstance(a, np.ndarray) and not isinstance(a, np.memmap) for a in arrays)


def _check_increasing(values: Any, what: str) -> None:
    v = np.asarray(values)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{what} must be finite")
    if np.any(np.diff(v) <= 0):
        raise ValueError(f"{what} must be strictly increasing")


def _check_band(values: Any, disperser: str, what: str) -> None:
    v = np.asarray(values)
    if v.size == 0:
        return
    lo, hi = BANDPASS_UM[disperser]
    if v.min() < lo - BANDPASS_MARGIN_UM or v.max() > hi + BANDPASS_MARGIN_UM:
        raise ValueError(
            f"{what} spans {v.min():.3f}–{v.max():.3f} µm, outside the {disperser} band "
            f"{lo}–{hi} µm (± {BANDPASS_MARGIN_UM})"
        )


def _check_fraction(values: Any, what: str) -> None:
    v = np.asarray(values)
    finite = v[np.isfinite(v)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise ValueError(f"{what} must lie in [0, 1]")


def _check_unique_rows(source_id: Any, order: Any, what: str) -> None:
    keys = np.stack([np.asarray(source_id, dtype="int64"), np.asarray(order, dtype="int64")])
    if keys.shape[1] and np.unique(keys, axis=1).shape[1] != keys.shape[1]:
        raise ValueError(f"{what}: a (source_id, order) pair appears twice")


def _check_tiling(offsets: Any, sizes: Any, total: int, what: str) -> None:
    """Blocks ``[offset, offset + size)`` must tile ``[0, total)`` in row order."""
    offsets = np.asarray(offsets, dtype="int64")
    sizes = np.asarray(sizes, dtype="int64")
    if np.any(sizes < 1):
        raise ValueError(f"{what}: every block needs at least one element")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if sizes.size else sizes
    wrong = np.flatnonzero(offsets != starts)
    if wrong.size:
        row = int(wrong[0])
        raise ValueError(
            f"{what}: row {row} starts at {offsets[row]}, expected {starts[row]} "
            "(blocks tile the flat arrays in row order, without gaps or overlaps)"
        )
    if int(sizes.sum()) != total:
        raise ValueError(f"{what}: blocks cover {int(sizes.sum())} elements, flat arrays {total}")


def _check_increasing_in_blocks(values: Any, offsets: Any, what: str) -> None:
    v = np.asarray(values)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{what} must be finite")
    if v.size < 2:
        return
    rising = np.diff(v) > 0
    block_starts = np.asarray(offsets, dtype="int64")[1:]
    rising[block_starts - 1] = True  # the step into a new block is not a step
    if not rising.all():
        raise ValueError(f"{what} must increase strictly within every source's block")


def _check_same_length(arrays: dict[str, Any], what: str) -> int:
    lengths = {name: a.shape for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{what} differ in shape: {lengths}")
    return next(iter(lengths.values()))[0]


def _row_of(source_ids: Any, orders: Any, source_id: int, order: int) -> int:
    rows = np.flatnonzero((np.asarray(source_ids) == source_id) & (np.asarray(orders) == order))
    if rows.size == 0:
        raise KeyError(f"no source {source_id} order {order}")
    return int(rows[0])


# -- spectra location table -----------------------------------------------------------------
class SpectrumLocations(Table):
    """Where each source's spectrum falls on the exposure: one row per (source, order)."""

    key_column: ClassVar[str] = "source_id"

    source_id: NDArray("int64", 1) = Field(description="direct-image catalog source id")
    order: NDArray("int8", 1) = Field(description="spectral order (1: the science order)")
    ra_deg: NDArray("float64", 1, unit=DEG) = Field(description="direct-image RA (ICRS)")
    dec_deg: NDArray("float64", 1, unit=DEG) = Field(description="direct-image Dec (ICRS)")
    mag_ab: NDArray("float32", 1, unit=AB_MAG) = Field(
        description="direct-image magnitude in the catalog's detection filter"
    )
    x_direct_pix: NDArray("float64", 1, unit=PIX) = Field(
        description="reference position: direct-image position mapped to this detector, x "
        "(0-based; may lie off the detector when only the trace falls on it)"
    )
    y_direct_pix: NDArray("float64", 1, unit=PIX) = Field(description="reference position, y")
    trace_x_pix: NDArray("float64", 2, unit=PIX) = Field(
        description="trace centre x at each of trace_wavelengths_um: (rows, n_wavelengths)"
    )
    trace_y_pix: NDArray("float64", 2, unit=PIX) = Field(
        description="trace centre y at each of trace_wavelengths_um: (rows, n_wavelengths)"
    )
    bbox_x_min_pix: NDArray("int32", 1, unit=PIX) = Field(
        description="bounding box of the whole trace (unclipped, inclusive): first column"
    )
    bbox_x_max_pix: NDArray("int32", 1, unit=PIX) = Field(description="bbox last column")
    bbox_y_min_pix: NDArray("int32", 1, unit=PIX) = Field(description="bbox first row")
    bbox_y_max_pix: NDArray("int32", 1, unit=PIX) = Field(description="bbox last row")
    on_detector: NDArray("bool", 1) = Field(description="some of the trace falls on the detector")
    fraction_on_detector: NDArray("float32", 1) = Field(
        description="fraction of the trace's length on the detector's science pixels"
    )
    wavelength_min_um: NDArray("float32", 1, unit=UM) = Field(
        description="shortest wavelength of the trace on the detector (NaN when off)"
    )
    wavelength_max_um: NDArray("float32", 1, unit=UM) = Field(
        description="longest wavelength of the trace on the detector (NaN when off)"
    )
    contamination_fraction: NDArray("float32", 1) = Field(
        description="predicted fraction of the flux in the trace's aperture from neighbours"
    )
    n_contaminants: NDArray("int16", 1) = Field(
        description="neighbours whose traces overlap this trace's aperture"
    )


class SpectraLocationTable(G2dpProduct):
    """Where every catalog source's spectrum falls on one L2 dispersed exposure.

    The trace is sampled at fixed wavelengths (``trace_wavelengths_um``, stored once) rather
    than given as polynomial coefficients, so GRISM and PRISM (strongly non-linear
    dispersion) share one convention; interpolate between samples for other wavelengths.
    """

    product_type: ClassVar[str] = "wfi_spec_location_table_level_4"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = f"{RAD_GDPS}/wfi_spec_location_table_level_4-1.0.0"
    export_table: ClassVar[str] = "locations"

    meta: LocationTableMeta
    trace_wavelengths_um: NDArray("float64", 1, unit=UM) = Field(
        description="wavelengths at which every trace is sampled (strictly increasing)"
    )
    locations: SpectrumLocations

    def extra_archive_keywords(self) -> dict[str, Any]:
        exposure = self.meta.exposure
        return {
            **super().extra_archive_keywords(),
            "detector": exposure.detector,
            "dither": float(exposure.dither),  # rad types the dither id as a number
            "v3yangle": exposure.v3yangle_deg,
            "num_src": int(np.unique(np.asarray(self.locations.source_id)).size),
        }

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        grid = self.trace_wavelengths_um
        _check_increasing(grid, "trace_wavelengths_um")
        _check_band(grid, self.meta.optical_element, "trace_wavelengths_um")
        loc = self.locations
        for name in ("trace_x_pix", "trace_y_pix"):
            if getattr(loc, name).shape[1:] != grid.shape:
                raise ValueError(
                    f"locations.{name} has {getattr(loc, name).shape[1:]} samples per row, "
                    f"trace_wavelengths_um {grid.shape}"
                )
        _check_unique_rows(loc.source_id, loc.order, "locations")
        fraction = np.asarray(loc.fraction_on_detector)
        _check_fraction(fraction, "locations.fraction_on_detector")
        _check_fraction(loc.contamination_fraction, "locations.contamination_fraction")
        if np.any(np.asarray(loc.on_detector) != (fraction > 0)):
            raise ValueError("locations.on_detector must be fraction_on_detector > 0")
        if np.any(np.asarray(loc.bbox_x_min_pix) > np.asarray(loc.bbox_x_max_pix)) or np.any(
            np.asarray(loc.bbox_y_min_pix) > np.asarray(loc.bbox_y_max_pix)
        ):
            raise ValueError("locations: a bounding box has min > max")
        wmin, wmax = np.asarray(loc.wavelength_min_um), np.asarray(loc.wavelength_max_um)
        on = fraction > 0
        if np.any(~np.isfinite(wmin[on])) or np.any(wmin[on] > wmax[on]):
            raise ValueError("locations: an on-detector trace needs wavelength_min ≤ max")
        _check_band(np.concatenate([wmin[on], wmax[on]]), self.meta.optical_element, "traces")
        return self

    @classmethod
    def example(cls, n_sources: int = 10, disperser: Disperser = "GRISM", seed: int = 3) -> Self:
        """The traces of ``n_sources`` catalog sources on one exposure: one truncated by the
        detector edge, one whose source lies off the detector, one that misses it entirely."""
        scene = _example_scene(n_sources, disperser, seed)
        grid = np.linspace(*BANDPASS_UM[disperser], 12)
        trace_x = np.array([scene.x_at(i, grid) for i in range(n_sources)])
        trace_y = scene.y_at(np.arange(n_sources)[:, None], trace_x)
        bbox = np.array([scene.bbox(i) for i in range(n_sources)], dtype="int32")
        coverage = [scene.columns(i)[1] for i in range(n_sources)]
        fraction = np.array([c.size / scene.wavelength_um.size for c in coverage], dtype="float32")
        wmin = np.array([c.min() if c.size else np.nan for c in coverage], dtype="float32")
        wmax = np.array([c.max() if c.size else np.nan for c in coverage], dtype="float32")
        meta = LocationTableMeta(
            **_example_meta(cls, disperser, exposure=_example_exposure()),
            optical_model=f"roman_gdps_{disperser.lower()}_optmodel_ctx00002.yaml",
        )
        return cls(
            meta=meta,
            trace_wavelengths_um=grid,
            locations=SpectrumLocations(
                source_id=scene.source_id,
                order=np.ones(n_sources, dtype="int8"),
                ra_deg=scene.ra_deg,
                dec_deg=scene.dec_deg,
                mag_ab=scene.mag_ab,
                x_direct_pix=scene.x_direct,
                y_direct_pix=scene.y_direct,
                trace_x_pix=trace_x,
                trace_y_pix=trace_y,
                bbox_x_min_pix=bbox[:, 0],
                bbox_x_max_pix=bbox[:, 1],
                bbox_y_min_pix=bbox[:, 2],
                bbox_y_max_pix=bbox[:, 3],
                on_detector=fraction > 0,
                fraction_on_detector=fraction,
                wavelength_min_um=wmin,
                wavelength_max_um=wmax,
                contamination_fraction=scene.contamination_fraction,
                n_contaminants=scene.n_contaminants,
            ),
        )


# -- decontaminated 2D cutouts --------------------------------------------------------------
class CutoutIndex(Table):
    """One row per cutout: where its pixels and columns sit in the flat arrays."""

    key_column: ClassVar[str] = "source_id"

    source_id: NDArray("int64", 1) = Field(description="direct-image catalog source id")
    order: NDArray("int8", 1) = Field(description="spectral order of the cutout")
    x0_pix: NDArray("int32", 1, unit=PIX) = Field(
        description="detector x of cutout pixel [0, 0] (0-based)"
    )
    y0_pix: NDArray("int32", 1, unit=PIX) = Field(
        description="detector y of cutout pixel [0, 0] (0-based)"
    )
    ny: NDArray("int32", 1) = Field(description="cutout rows (cross-dispersion)")
    nx: NDArray("int32", 1) = Field(description="cutout columns (dispersion)")
    pixel_offset: NDArray("int64", 1) = Field(
        description="first element of the cutout in the flat pixel arrays; the cutout is "
        "flat[pixel_offset : pixel_offset + ny*nx].reshape(ny, nx)"
    )
    column_offset: NDArray("int64", 1) = Field(
        description="first element of the cutout in the flat per-column arrays; its columns "
        "are column_*[column_offset : column_offset + nx]"
    )
    contamination_fraction: NDArray("float32", 1) = Field(
        description="fraction of the cutout's modelled flux from neighbours (subtracted)"
    )
    n_contaminants: NDArray("int16", 1) = Field(description="neighbours whose model was subtracted")


class Cutout(NamedTuple):
    """One source's decontaminated cutout as 2D arrays (rows: cross-dispersion)."""

    source_id: int
    order: int
    x0_pix: int
    y0_pix: int
    science_dn_s: np.ndarray
    error_dn_s: np.ndarray
    contamination_dn_s: np.ndarray
    dq: np.ndarray
    wavelength_um: np.ndarray
    trace_y_pix: np.ndarray


class Decontaminated2d(SpectralProduct):
    """Decontaminated 2D cutouts of every source on one L2 dispersed exposure.

    Cutouts differ in size, so their pixels are concatenated into flat arrays in the row
    order of ``cutouts`` (each cutout row-major, ``ny × nx``), and their per-column arrays
    likewise (``nx`` each); ``cutouts`` holds each one's offsets and shape. Cutouts are
    unresampled detector pixels with the dispersion along the cutout's columns: when the
    disperser disperses along detector y (``dispersion_axis``), cutout[j, i] is detector
    pixel (x0 + j, y0 + i), otherwise (x0 + i, y0 + j).
    """

    product_type: ClassVar[str] = "wfi_spec_decontam_2d_level_4"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = f"{RAD_GDPS}/wfi_spec_decontam_2d_level_4-1.0.0"
    flux_unit: ClassVar[str] = DN_S

    meta: ExposureSpectraMeta
    dispersion_axis: Literal["x", "y"] = Field(
        description="detector axis along which wavelength increases"
    )
    science_dn_s: NDArray("float32", 1, unit=DN_S) = Field(
        description="flat pixels of every cutout after subtracting the neighbours' model"
    )
    error_dn_s: NDArray("float32", 1, unit=DN_S) = Field(
        description="flat 1-sigma error of science_dn_s (contamination-model error included)"
    )
    contamination_dn_s: NDArray("float32", 1, unit=DN_S) = Field(
        description="flat model of the neighbours' light that was subtracted"
    )
    dq: NDArray("uint32", 1) = Field(description="flat L2 pixel dq (romancal bits)")
    column_wavelength_um: NDArray("float64", 1, unit=UM) = Field(
        description="per cutout column: wavelength at the trace centre (increasing per cutout)"
    )
    column_trace_y_pix: NDArray("float32", 1, unit=PIX) = Field(
        description="per cutout column: trace-centre row within the cutout (0-based)"
    )
    cutouts: CutoutIndex

    @model_validator(mode="after")
    def _layout(self) -> Self:
        n_pix = _check_same_length(
            {
                n: getattr(self, n)
                for n in ("science_dn_s", "error_dn_s", "contamination_dn_s", "dq")
            },
            "flat pixel arrays",
        )
        n_col = _check_same_length(
            {n: getattr(self, n) for n in ("column_wavelength_um", "column_trace_y_pix")},
            "flat column arrays",
        )
        c = self.cutouts
        ny, nx = np.asarray(c.ny, dtype="int64"), np.asarray(c.nx, dtype="int64")
        _check_tiling(c.pixel_offset, ny * nx, n_pix, "cutouts.pixel_offset")
        _check_tiling(c.column_offset, nx, n_col, "cutouts.column_offset")
        _check_unique_rows(c.source_id, c.order, "cutouts")
        _check_fraction(c.contamination_fraction, "cutouts.contamination_fraction")
        x0, y0 = np.asarray(c.x0_pix), np.asarray(c.y0_pix)
        nx_det, ny_det = (ny, nx) if self.dispersion_axis == "y" else (nx, ny)
        if x0.size and (
            x0.min() < 0
            or y0.min() < 0
            or (x0 + nx_det).max() > DETECTOR_PIXELS
            or (y0 + ny_det).max() > DETECTOR_PIXELS
        ):
            raise ValueError("a cutout extends beyond the detector")
        if _in_memory(self.column_wavelength_um):
            _check_increasing_in_blocks(
                self.column_wavelength_um, c.column_offset, "column_wavelength_um"
            )
            _check_band(self.column_wavelength_um, self.meta.optical_element, "columns")
        if _in_memory(self.column_trace_y_pix):
            rows = np.repeat(ny, nx)
            trace = np.asarray(self.column_trace_y_pix)
            if np.any((trace < -0.5) | (trace > rows - 0.5)):
                raise ValueError("column_trace_y_pix must lie inside its cutout's rows")
        return self

    def row(self, source_id: int, order: int = 1) -> int:
        """The ``cutouts`` row of a source's cutout (KeyError when absent)."""
        return _row_of(self.cutouts.source_id, self.cutouts.order, source_id, order)

    def cutout(self, source_id: int, order: int = 1) -> Cutout:
        """One source's cutout as 2D arrays (reads only its slice of a lazy file)."""
        c = self.cutouts
        i = self.row(source_id, order)
        ny, nx = int(c.ny[i]), int(c.nx[i])
        pixels = slice(int(c.pixel_offset[i]), int(c.pixel_offset[i]) + ny * nx)
        columns = slice(int(c.column_offset[i]), int(c.column_offset[i]) + nx)

        def image(flat: Any) -> np.ndarray:
            return np.asarray(flat[pixels]).reshape(ny, nx)

        return Cutout(
            source_id=int(source_id),
            order=int(order),
            x0_pix=int(c.x0_pix[i]),
            y0_pix=int(c.y0_pix[i]),
            science_dn_s=image(self.science_dn_s),
            error_dn_s=image(self.error_dn_s),
            contamination_dn_s=image(self.contamination_dn_s),
            dq=image(self.dq),
            wavelength_um=np.asarray(self.column_wavelength_um[columns]),
            trace_y_pix=np.asarray(self.column_trace_y_pix[columns]),
        )

    @classmethod
    def example(cls, n_sources: int = 3, disperser: Disperser = "GRISM", seed: int = 3) -> Self:
        """Cutouts of ``n_sources`` sources of one exposure (one truncated by the detector
        edge, one partly from a source off the detector, so the sizes differ)."""
        rng = np.random.default_rng(seed + 1)
        scene = _example_scene(n_sources + 1, disperser, seed)
        chosen = scene.on_detector()[:n_sources]
        noise = 0.03  # DN/s per pixel: background and read noise of a ~300 s exposure
        pieces: dict[str, list[np.ndarray]] = {
            k: [] for k in ("sci", "err", "con", "dq", "wl", "ty")
        }
        index: dict[str, list[int | float]] = {
            k: [] for k in ("x0", "y0", "ny", "nx", "po", "co", "cf", "nc")
        }
        n_pix = n_col = 0
        for i in chosen:
            columns, wavelength = scene.columns(i)
            half = int(np.ceil(scene.fwhm_pix[i]))  # rows each side of the trace centre
            centre = scene.y_at(i, columns.astype("float64"))
            y0 = int(np.floor(centre.min())) - half
            height = int(np.ceil(centre.max())) + half + 1 - y0
            rows = np.arange(height)[:, None] + y0
            profile = _gauss(rows, centre[None, :], scene.fwhm_pix[i] / 2.355)
            signal = (scene.flam(i, wavelength) * _sensitivity(disperser, wavelength))[None, :]
            model = (signal * profile).astype("float32")
            contamination = np.zeros_like(model)
            if scene.contamination_fraction[i] > 0:
                level = scene.contamination_fraction[i] * np.median(signal) / height
                contamination += (level * np.exp(-((rows - y0) / height))).astype("float32")
            science = model + rng.normal(0, noise, model.shape).astype("float32")
            dq = np.zeros(model.shape, dtype="uint32")
            dq.flat[rng.choice(dq.size, 3, replace=False)] = 2**11  # romancal HOT
            pieces["sci"].append(science.ravel())
            pieces["err"].append(np.full(model.size, noise, dtype="float32"))
            pieces["con"].append(contamination.ravel())
            pieces["dq"].append(dq.ravel())
            pieces["wl"].append(wavelength)
            pieces["ty"].append((centre - y0).astype("float32"))
            for key, value in (
                ("x0", int(columns[0])),
                ("y0", y0),
                ("ny", height),
                ("nx", columns.size),
                ("po", n_pix),
                ("co", n_col),
                ("cf", scene.contamination_fraction[i]),
                ("nc", scene.n_contaminants[i]),
            ):
                index[key].append(value)
            n_pix += model.size
            n_col += columns.size
        meta = ExposureSpectraMeta(
            **_example_meta(cls, disperser, exposure=_example_exposure()),
            **_example_spectral(disperser),
        )
        return cls(
            meta=meta,
            dispersion_axis="x",
            science_dn_s=np.concatenate(pieces["sci"]),
            error_dn_s=np.concatenate(pieces["err"]),
            contamination_dn_s=np.concatenate(pieces["con"]),
            dq=np.concatenate(pieces["dq"]),
            column_wavelength_um=np.concatenate(pieces["wl"]),
            column_trace_y_pix=np.concatenate(pieces["ty"]),
            cutouts=CutoutIndex(
                source_id=scene.source_id[chosen],
                order=np.ones(len(chosen), dtype="int8"),
                x0_pix=np.array(index["x0"], dtype="int32"),
                y0_pix=np.array(index["y0"], dtype="int32"),
                ny=np.array(index["ny"], dtype="int32"),
                nx=np.array(index["nx"], dtype="int32"),
                pixel_offset=np.array(index["po"], dtype="int64"),
                column_offset=np.array(index["co"], dtype="int64"),
                contamination_fraction=np.array(index["cf"], dtype="float32"),
                n_contaminants=np.array(index["nc"], dtype="int16"),
            ),
        )


# -- individual 1D spectra ------------------------------------------------------------------
class SpectrumIndex(Table):
    """One row per extracted spectrum: its block in the flat arrays and its source."""

    key_column: ClassVar[str] = "source_id"

    source_id: NDArray("int64", 1) = Field(description="direct-image catalog source id")
    order: NDArray("int8", 1) = Field(description="spectral order")
    offset: NDArray("int64", 1) = Field(
        description="first sample of the spectrum in the flat arrays; the spectrum is "
        "flat[offset : offset + n_samples]"
    )
    n_samples: NDArray("int32", 1) = Field(description="samples (detector columns) extracted")
    ra_deg: NDArray("float64", 1, unit=DEG) = Field(description="direct-image RA (ICRS)")
    dec_deg: NDArray("float64", 1, unit=DEG) = Field(description="direct-image Dec (ICRS)")
    mag_ab: NDArray("float32", 1, unit=AB_MAG) = Field(
        description="direct-image magnitude in the cut filter (meta.spectral.mag_cut_filter)"
    )
    x_direct_pix: NDArray("float64", 1, unit=PIX) = Field(description="reference position x")
    y_direct_pix: NDArray("float64", 1, unit=PIX) = Field(description="reference position y")
    profile_fwhm_pix: NDArray("float32", 1, unit=PIX) = Field(
        description="FWHM of the cross-dispersion profile used as optimal-extraction weights"
    )
    contamination_fraction: NDArray("float32", 1) = Field(
        description="fraction of the extracted flux that was contamination (subtracted)"
    )
    snr_global: NDArray("float32", 1) = Field(
        description="median S/N per sample over meta.spectral.snr_min_um–snr_max_um"
    )


class Spectrum1d(NamedTuple):
    """One source's 1D spectrum as arrays of one length."""

    source_id: int
    order: int
    wavelength_um: np.ndarray
    flux_flam: np.ndarray
    flux_err_flam: np.ndarray
    contamination_flam: np.ndarray
    dq: np.ndarray


class Individual1d(SpectralProduct):
    """Optimally extracted 1D spectra of every source on one L2 dispersed exposure.

    Spectra keep their native sampling (one sample per detector column of the trace): a
    common grid would resample, correlating the noise of neighbouring samples and smearing
    the line-spread function, and would pad traces that the detector edge truncates. The
    samples of all spectra are concatenated into flat arrays in the row order of
    ``spectra``, which holds each one's offset and length (the combined product puts the
    spectra on a common grid).
    """

    product_type: ClassVar[str] = "wfi_spec_individual_1d_level_4"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = f"{RAD_GDPS}/wfi_spec_individual_1d_level_4-1.0.0"
    flux_unit: ClassVar[str] = FLAM

    meta: ExposureSpectraMeta
    wavelength_um: NDArray("float64", 1, unit=UM) = Field(
        description="flat wavelengths of every spectrum (increasing within each)"
    )
    flux_flam: NDArray("float32", 1, unit=FLAM) = Field(
        description="flat f_λ after subtracting the contamination"
    )
    flux_err_flam: NDArray("float32", 1, unit=FLAM) = Field(description="1-sigma error of flux")
    contamination_flam: NDArray("float32", 1, unit=FLAM) = Field(
        description="flat f_λ of the subtracted contamination model"
    )
    dq: NDArray("uint32", 1) = Field(description=f"flat quality bits: {_bits(SpectrumDQ)}")
    spectra: SpectrumIndex

    @model_validator(mode="after")
    def _layout(self) -> Self:
        n = _check_same_length(
            {
                n: getattr(self, n)
                for n in ("wavelength_um", "flux_flam", "flux_err_flam", "contamination_flam", "dq")
            },
            "flat spectrum arrays",
        )
        s = self.spectra
        _check_tiling(s.offset, s.n_samples, n, "spectra.offset")
        _check_unique_rows(s.source_id, s.order, "spectra")
        _check_fraction(s.contamination_fraction, "spectra.contamination_fraction")
        if _in_memory(self.wavelength_um):
            _check_increasing_in_blocks(self.wavelength_um, s.offset, "wavelength_um")
            _check_band(self.wavelength_um, self.meta.optical_element, "wavelength_um")
        if _in_memory(self.flux_err_flam) and np.any(np.asarray(self.flux_err_flam) < 0):
            raise ValueError("flux_err_flam must not be negative")
        return self

    def row(self, source_id: int, order: int = 1) -> int:
        """The ``spectra`` row of a source's spectrum (KeyError when absent)."""
        return _row_of(self.spectra.source_id, self.spectra.order, source_id, order)

    def spectrum(self, source_id: int, order: int = 1) -> Spectrum1d:
        """One source's spectrum (reads only its slice of a lazy file)."""
        i = self.row(source_id, order)
        start = int(self.spectra.offset[i])
        part = slice(start, start + int(self.spectra.n_samples[i]))
        return Spectrum1d(
            source_id=int(source_id),
            order=int(order),
            wavelength_um=np.asarray(self.wavelength_um[part]),
            flux_flam=np.asarray(self.flux_flam[part]),
            flux_err_flam=np.asarray(self.flux_err_flam[part]),
            contamination_flam=np.asarray(self.contamination_flam[part]),
            dq=np.asarray(self.dq[part]),
        )

    @classmethod
    def example(cls, n_sources: int = 6, disperser: Disperser = "GRISM", seed: int = 3) -> Self:
        """Spectra of ``n_sources`` sources of one exposure (the traces of the 2D example)."""
        rng = np.random.default_rng(seed + 2)
        scene = _example_scene(n_sources + 1, disperser, seed)
        chosen = scene.on_detector()[:n_sources]
        setup = _example_spectral(disperser)["spectral"]
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("wl", "f", "e", "c", "dq")}
        snr, n_samples = [], []
        for i in chosen:
            columns, wavelength = scene.columns(i)
            model, err = scene.flam(i, wavelength), scene.flam_error(i, wavelength)
            contamination = scene.contamination_fraction[i] * scene.continuum(i, wavelength)
            dq = _throughput_dq(disperser, wavelength)
            dq[(columns < 8) | (columns > DETECTOR_PIXELS - 9)] |= int(SpectrumDQ.DETECTOR_EDGE)
            flux = model + rng.normal(0, err)
            window = (wavelength >= setup.snr_min_um) & (wavelength <= setup.snr_max_um)
            snr.append(np.median(flux[window] / err[window]) if window.any() else np.nan)
            n_samples.append(columns.size)
            parts["wl"].append(wavelength)
            parts["f"].append(flux.astype("float32"))
            parts["e"].append(err.astype("float32"))
            parts["c"].append(contamination.astype("float32"))
            parts["dq"].append(dq)
        lengths = np.array(n_samples, dtype="int32")
        meta = ExposureSpectraMeta(
            **_example_meta(cls, disperser, exposure=_example_exposure()),
            **_example_spectral(disperser),
        )
        return cls(
            meta=meta,
            wavelength_um=np.concatenate(parts["wl"]),
            flux_flam=np.concatenate(parts["f"]),
            flux_err_flam=np.concatenate(parts["e"]),
            contamination_flam=np.concatenate(parts["c"]),
            dq=np.concatenate(parts["dq"]),
            spectra=SpectrumIndex(
                source_id=scene.source_id[chosen],
                order=np.ones(len(chosen), dtype="int8"),
                offset=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype("int64"),
                n_samples=lengths,
                ra_deg=scene.ra_deg[chosen],
                dec_deg=scene.dec_deg[chosen],
                mag_ab=scene.mag_ab[chosen],
                x_direct_pix=scene.x_direct[chosen],
                y_direct_pix=scene.y_direct[chosen],
                profile_fwhm_pix=scene.fwhm_pix[chosen].astype("float32"),
                contamination_fraction=scene.contamination_fraction[chosen],
                snr_global=np.array(snr, dtype="float32"),
            ),
        )


# -- combined 1D spectra --------------------------------------------------------------------
class CombinedSpectra(Table):
    """One row per source: its spectrum combined over exposures and rolls on the common grid."""

    key_column: ClassVar[str] = "source_id"

    source_id: NDArray("int64", 1) = Field(description="direct-image catalog source id")
    ra_deg: NDArray("float64", 1, unit=DEG) = Field(description="direct-image RA (ICRS)")
    dec_deg: NDArray("float64", 1, unit=DEG) = Field(description="direct-image Dec (ICRS)")
    mag_ab: NDArray("float32", 1, unit=AB_MAG) = Field(
        description="direct-image magnitude in the cut filter (meta.spectral.mag_cut_filter)"
    )
    n_spectra: NDArray("int16", 1) = Field(
        description="individual spectra (exposures) combined for the source"
    )
    n_rolls: NDArray("int16", 1) = Field(description="distinct roll angles among those")
    flux_flam: NDArray("float32", 2, unit=FLAM) = Field(
        description="combined f_λ: (sources, wavelengths); NaN where coverage is 0"
    )
    flux_err_flam: NDArray("float32", 2, unit=FLAM) = Field(description="1-sigma error of flux")
    contamination_flam: NDArray("float32", 2, unit=FLAM) = Field(
        description="combined f_λ of the subtracted contamination"
    )
    dq: NDArray("uint32", 2) = Field(description=f"quality bits per sample: {_bits(SpectrumDQ)}")
    coverage: NDArray("uint16", 2) = Field(
        description="individual spectra contributing to each sample (≤ n_spectra)"
    )
    snr_global: NDArray("float32", 1) = Field(
        description="median S/N per sample over meta.spectral.snr_min_um–snr_max_um"
    )


class Combined1d(SpectralProduct):
    """1D spectra of the sources of a sky tile, combined over exposures and roll angles.

    All spectra share the wavelength grid ``wavelength_um`` (stored once), so the spectral
    columns are 2D: (sources, wavelengths); ``coverage`` counts the spectra behind each sample.
    """

    product_type: ClassVar[str] = "wfi_spec_combined_1d_level_4"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = f"{RAD_GDPS}/wfi_spec_combined_1d_level_4-1.0.0"
    flux_unit: ClassVar[str] = FLAM

    meta: CombinedSpectraMeta
    wavelength_um: NDArray("float64", 1, unit=UM) = Field(
        description="common wavelength grid of every combined spectrum (strictly increasing)"
    )
    spectra: CombinedSpectra

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        grid = self.wavelength_um
        _check_increasing(grid, "wavelength_um")
        _check_band(grid, self.meta.optical_element, "wavelength_um")
        s = self.spectra
        for name in ("flux_flam", "flux_err_flam", "contamination_flam", "dq", "coverage"):
            if getattr(s, name).shape[1:] != grid.shape:
                raise ValueError(
                    f"spectra.{name} has {getattr(s, name).shape[1:]} samples per row, "
                    f"wavelength_um {grid.shape}"
                )
        if np.unique(np.asarray(s.source_id)).size != len(s):
            raise ValueError("spectra: a source_id appears twice")
        n_spectra, n_rolls = np.asarray(s.n_spectra), np.asarray(s.n_rolls)
        if np.any(n_spectra < 1) or np.any(n_rolls < 1) or np.any(n_rolls > n_spectra):
            raise ValueError("spectra: need 1 ≤ n_rolls ≤ n_spectra")
        if np.any(n_spectra > self.meta.n_exposures):
            raise ValueError("spectra: n_spectra exceeds meta.n_exposures")
        if np.any(n_rolls > len(self.meta.pa_v3_deg)):
            raise ValueError("spectra: n_rolls exceeds the roll angles in meta.pa_v3_deg")
        if _in_memory(s.coverage, s.flux_flam, s.dq):
            coverage = np.asarray(s.coverage)
            if np.any(coverage > n_spectra[:, None]):
                raise ValueError("spectra.coverage exceeds the source's n_spectra")
            empty = coverage == 0
            if np.any(np.isfinite(np.asarray(s.flux_flam)[empty])):
                raise ValueError("spectra.flux_flam must be NaN where coverage is 0")
            if np.any((np.asarray(s.dq)[empty] & int(SpectrumDQ.NO_COVERAGE)) == 0):
                raise ValueError("spectra.dq needs NO_COVERAGE where coverage is 0")
        return self

    @classmethod
    def example(cls, n_sources: int = 6, disperser: Disperser = "GRISM", seed: int = 3) -> Self:
        """``n_sources`` sources of a tile seen in 4–8 exposures at up to 4 rolls; exposures
        whose trace the detector edge cut cover fewer samples at the band's ends."""
        rng = np.random.default_rng(seed + 3)
        scene = _example_scene(n_sources, disperser, seed)
        grid = scene.wavelength_um[::2]  # Nyquist-sampled common grid
        rolls = [15.0, 105.0, 195.0, 285.0]
        n_spectra = rng.integers(4, 9, n_sources).astype("int16")
        n_rolls = np.minimum(n_spectra, rng.integers(2, 5, n_sources)).astype("int16")
        coverage = np.repeat(n_spectra[:, None], grid.size, axis=1).astype("uint16")
        for i in range(n_sources):  # some exposures lose the blue or red end
            lost_blue, lost_red = rng.integers(0, 3, 2)
            coverage[i, : rng.integers(20, 80)] -= int(lost_blue)
            coverage[i, grid.size - rng.integers(20, 80) :] -= int(lost_red)
        coverage[0, :10] = 0  # the bluest samples of source 0 were never observed
        flux = np.array([scene.flam(i, grid) for i in range(n_sources)])
        err = np.array([scene.flam_error(i, grid) for i in range(n_sources)])
        with np.errstate(divide="ignore"):
            err = err / np.sqrt(coverage)
        flux = flux + rng.normal(0, np.where(np.isfinite(err), err, 0))
        contamination = scene.contamination_fraction[:, None] * np.array(
            [scene.continuum(i, grid) for i in range(n_sources)]
        )
        dq = np.repeat(_throughput_dq(disperser, grid)[None], n_sources, axis=0)
        empty = coverage == 0
        flux[empty] = err[empty] = contamination[empty] = np.nan
        dq[empty] |= int(SpectrumDQ.NO_COVERAGE | SpectrumDQ.DO_NOT_USE)
        setup = _example_spectral(disperser)["spectral"]
        window = (grid >= setup.snr_min_um) & (grid <= setup.snr_max_um)
        snr = np.nanmedian(flux[:, window] / err[:, window], axis=1)
        meta = CombinedSpectraMeta(
            **_example_meta(
                cls, disperser, span=ObservationSpan(start_mjd_utc=62110.2, end_mjd_utc=62290.7)
            ),
            **_example_spectral(disperser),
            tile_id="hlwas_t0412",
            n_exposures=8,
            pa_v3_deg=rolls,
        )
        return cls(
            meta=meta,
            wavelength_um=grid,
            spectra=CombinedSpectra(
                source_id=scene.source_id,
                ra_deg=scene.ra_deg,
                dec_deg=scene.dec_deg,
                mag_ab=scene.mag_ab,
                n_spectra=n_spectra,
                n_rolls=n_rolls,
                flux_flam=flux.astype("float32"),
                flux_err_flam=err.astype("float32"),
                contamination_flam=contamination.astype("float32"),
                dq=dq,
                coverage=coverage,
                snr_global=snr.astype("float32"),
            ),
        )


# -- redshift catalog -----------------------------------------------------------------------
class RedshiftCatalogSources(Table):
    """One row per source: redshift, p(z), emission-line measurements and flags.

    ``pz`` rows follow the product's ``z_grid``; ``line_*`` columns follow ``meta.lines``
    (NaN where a line falls outside the band at the source's redshift).
    """

    key_column: ClassVar[str] = "source_id"

    source_id: NDArray("int64", 1) = Field(description="direct-image catalog source id")
    ra_deg: NDArray("float64", 1, unit=DEG) = Field(description="direct-image RA (ICRS)")
    dec_deg: NDArray("float64", 1, unit=DEG) = Field(description="direct-image Dec (ICRS)")
    mag_ab: NDArray("float32", 1, unit=AB_MAG) = Field(description="direct-image magnitude")
    z: NDArray("float32", 1) = Field(description="best redshift (NaN when NO_FIT)")
    z_lo: NDArray("float32", 1) = Field(description="16th percentile of p(z)")
    z_hi: NDArray("float32", 1) = Field(description="84th percentile of p(z)")
    z_odds: NDArray("float32", 1) = Field(
        description="probability within ±0.01(1+z) of z: the confidence in the peak"
    )
    pz: NDArray("float32", 2) = Field(
        description="p(z) on the product's z_grid: (sources, n_z), ∫p dz = 1 (zero if NO_FIT)"
    )
    line_flux: NDArray("float32", 2, unit=LINE_FLUX) = Field(
        description="line flux: (sources, lines in meta.lines)"
    )
    line_flux_err: NDArray("float32", 2, unit=LINE_FLUX) = Field(
        description="1-sigma error of line_flux"
    )
    line_ew_rest: NDArray("float32", 2, unit=ANGSTROM) = Field(
        description="rest-frame equivalent width (emission positive)"
    )
    line_snr: NDArray("float32", 2) = Field(description="line detection S/N")
    n_lines_detected: NDArray("int16", 1) = Field(description="lines with line_snr ≥ 3")
    n_spectra: NDArray("int16", 1) = Field(description="individual spectra used in the fit")
    n_rolls: NDArray("int16", 1) = Field(description="distinct roll angles among those")
    flags: NDArray("uint32", 1) = Field(description=f"redshift flags: {_bits(RedshiftFlag)}")


class RedshiftCatalog(GdpsProduct):
    """Spectroscopic redshifts of the sources of a sky tile, with p(z) and emission lines.

    The p(z) grid is defined once in ``meta.redshift_grid`` (so Parquet/ECSV exports, which
    carry the metadata, keep it) and materialised as ``z_grid``; the line list is
    ``meta.lines``. The line list follows the disperser: PRISM blends lines GRISM resolves.
    """

    product_type: ClassVar[str] = "wfi_spec_catalog_level_4"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = f"{RAD_GDPS}/wfi_spec_catalog_level_4-1.0.0"
    export_table: ClassVar[str] = "sources"

    meta: RedshiftCatalogMeta
    z_grid: NDArray("float64", 1) = Field(
        description="redshifts of the p(z) samples: meta.redshift_grid.values()"
    )
    sources: RedshiftCatalogSources

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        grid = np.asarray(self.z_grid)
        _check_increasing(grid, "z_grid")
        spec = self.meta.redshift_grid
        if grid.shape != (spec.n_z,) or not np.allclose(grid, spec.values(), rtol=0, atol=1e-9):
            raise ValueError("z_grid differs from meta.redshift_grid.values()")
        s = self.sources
        if s.pz.shape[1:] != grid.shape:
            raise ValueError(
                f"sources.pz has {s.pz.shape[1:]} samples per row, z_grid {grid.shape}"
            )
        n_lines = len(self.meta.lines)
        for name in ("line_flux", "line_flux_err", "line_ew_rest", "line_snr"):
            if getattr(s, name).shape[1:] != (n_lines,):
                raise ValueError(f"sources.{name} needs one column per line of meta.lines")
        if np.unique(np.asarray(s.source_id)).size != len(s):
            raise ValueError("sources: a source_id appears twice")
        n_spectra, n_rolls = np.asarray(s.n_spectra), np.asarray(s.n_rolls)
        if np.any(n_rolls > n_spectra) or np.any(n_rolls < 0):
            raise ValueError("sources: need 0 ≤ n_rolls ≤ n_spectra")
        z = np.asarray(s.z)
        no_fit = (np.asarray(s.flags) & int(RedshiftFlag.NO_FIT)) != 0
        if np.any(np.isfinite(z) == no_fit):
            raise ValueError("sources: z must be NaN exactly where flags has NO_FIT")
        fit = ~no_fit
        lo, hi = np.asarray(s.z_lo)[fit], np.asarray(s.z_hi)[fit]
        if np.any(z[fit] < grid[0]) or np.any(z[fit] > grid[-1]):
            raise ValueError("sources.z lies outside z_grid")
        if np.any(~(lo <= z[fit] + 1e-6)) or np.any(~(z[fit] <= hi + 1e-6)):
            raise ValueError("sources: need z_lo ≤ z ≤ z_hi")
        _check_fraction(s.z_odds, "sources.z_odds")
        if _in_memory(s.pz):
            pz = np.asarray(s.pz, dtype="float64")
            if np.any(pz < 0) or not np.all(np.isfinite(pz)):
                raise ValueError("sources.pz must be finite and non-negative")
            norm = np.trapezoid(pz, grid, axis=1)
            if np.any(np.abs(norm[fit] - 1) > PZ_NORM_TOLERANCE):
                raise ValueError("sources.pz must integrate to 1 over z_grid")
            if np.any(pz[no_fit] != 0):
                raise ValueError("sources.pz must be zero for NO_FIT sources")
        return self

    @classmethod
    def example(cls, n_sources: int = 12, disperser: Disperser = "GRISM", seed: int = 3) -> Self:
        """Redshifts of ``n_sources`` sources: Hα emitters, one with an Hα/[OIII] ambiguity
        (two p(z) peaks) and one without a fit."""
        rng = np.random.default_rng(seed + 4)
        scene = _example_scene(n_sources, disperser, seed)
        lines = GRISM_LINES if disperser == "GRISM" else PRISM_LINES
        zspec = RedshiftGrid(z_min=0.0, z_max=4.0, n_z=1500, spacing="log1p")
        grid = zspec.values()
        lo_um, hi_um = BANDPASS_UM[disperser]
        n_lines = len(lines)
        z = scene.z.astype("float64").copy()
        flags = np.zeros(n_sources, dtype="uint32")
        pz = np.zeros((n_sources, grid.size))
        line_flux = np.full((n_sources, n_lines), np.nan)
        line_err = np.full((n_sources, n_lines), np.nan)
        line_ew = np.full((n_sources, n_lines), np.nan)
        no_fit, ambiguous = 4 % n_sources, 5 % n_sources
        for i in range(n_sources):
            if i == no_fit:
                z[i] = np.nan
                flags[i] = RedshiftFlag.NO_FIT | RedshiftFlag.LOW_SNR
                continue
            sigma = (0.0015 if disperser == "GRISM" else 0.01) * (1 + z[i])
            pz[i] = _gauss(grid, z[i], sigma)
            if i == ambiguous:  # Hα at z, or [OIII] 5008 at the same observed wavelength
                alias = (1 + z[i]) * 0.65646 / 0.50082 - 1
                pz[i] += 0.35 * _gauss(grid, alias, sigma)
                flags[i] = RedshiftFlag.SINGLE_LINE | RedshiftFlag.MULTIPLE_PEAKS
            pz[i] /= np.trapezoid(pz[i], grid)
            for j, line in enumerate(lines):
                observed = line.rest_wavelength_um * (1 + z[i])
                if lo_um <= observed <= hi_um:
                    flux = scene.ha_flux[i] * _LINE_RATIOS.get(line.name, 0.1)
                    line_flux[i, j] = flux + rng.normal(0, 1.5e-17)
                    line_err[i, j] = 1.5e-17
                    continuum = scene.continuum(i, np.array([observed]))[0]  # per Å
                    line_ew[i, j] = line_flux[i, j] / continuum / (1 + z[i])
            if scene.mag_ab[i] > 23.0:
                flags[i] |= RedshiftFlag.LOW_SNR
            if scene.contamination_fraction[i] > 0.2:
                flags[i] |= RedshiftFlag.CONTAMINATED
        cdf = np.array([_cumulative(p, grid) for p in pz])
        z_lo = np.array([np.interp(0.16, c, grid) if c[-1] > 0 else np.nan for c in cdf])
        z_hi = np.array([np.interp(0.84, c, grid) if c[-1] > 0 else np.nan for c in cdf])
        z_lo, z_hi = np.fmin(z_lo, z), np.fmax(z_hi, z)
        window = np.abs(grid[None, :] - z[:, None]) <= 0.01 * (1 + z[:, None])
        odds = np.array(
            [np.trapezoid(np.where(w, p, 0), grid) for w, p in zip(window, pz, strict=True)]
        )
        odds[~np.isfinite(z)] = np.nan
        snr = line_flux / line_err
        n_spectra = rng.integers(3, 9, n_sources).astype("int16")
        meta = RedshiftCatalogMeta(
            **_example_meta(
                cls, disperser, span=ObservationSpan(start_mjd_utc=62110.2, end_mjd_utc=62290.7)
            ),
            catalog_id=412,
            file_number=1,
            tile_id="hlwas_t0412",
            lines=[line.model_copy() for line in lines],
            redshift_grid=zspec,
        )
        return cls(
            meta=meta,
            z_grid=grid,
            sources=RedshiftCatalogSources(
                source_id=scene.source_id,
                ra_deg=scene.ra_deg,
                dec_deg=scene.dec_deg,
                mag_ab=scene.mag_ab,
                z=z.astype("float32"),
                z_lo=z_lo.astype("float32"),
                z_hi=z_hi.astype("float32"),
                z_odds=np.clip(odds, 0, 1).astype("float32"),
                pz=pz.astype("float32"),
                line_flux=line_flux.astype("float32"),
                line_flux_err=line_err.astype("float32"),
                line_ew_rest=line_ew.astype("float32"),
                line_snr=snr.astype("float32"),
                n_lines_detected=np.sum(np.nan_to_num(snr) >= 3, axis=1).astype("int16"),
                n_spectra=n_spectra,
                n_rolls=np.minimum(n_spectra, 4).astype("int16"),
                flags=flags,
            ),
        )


# -- 2D data-quality report -----------------------------------------------------------------
class Decontamination2dSummary(MetaModel):
    """Exposure-wide measures of how well the 2D decontamination worked."""

    n_sources: int = Field(ge=0, description="sources whose trace falls on the detector")
    n_cutouts: int = Field(ge=0, description="cutouts written to the 2D product")
    contamination_threshold: float = Field(
        ge=0, le=1, description="contamination_fraction above which a source counts as contaminated"
    )
    fraction_contaminated: float = Field(
        ge=0, le=1, description="fraction of cutouts above contamination_threshold"
    )
    background_median_dn_s: float = Field(description="median dispersed background (DN/s)")
    background_rms_dn_s: float = Field(ge=0, description="pixel rms about the background (DN/s)")
    residual_mean_sigma: float = Field(
        description="mean of (science − model)/error over unmasked cutout pixels (ideally 0)"
    )
    residual_std_sigma: float = Field(
        ge=0, description="standard deviation of the normalised residuals (ideally 1)"
    )
    fraction_pixels_flagged: float = Field(
        ge=0, le=1, description="fraction of cutout pixels with a dq bit set"
    )

    @model_validator(mode="after")
    def _counts(self) -> Self:
        if self.n_cutouts > self.n_sources:
            raise ValueError("n_cutouts exceeds n_sources")
        return self


class SourceQuality2d(Table):
    """One row per cutout: how clean its decontaminated spectrum is."""

    key_column: ClassVar[str] = "source_id"

    source_id: NDArray("int64", 1) = Field(description="direct-image catalog source id")
    order: NDArray("int8", 1) = Field(description="spectral order")
    contamination_fraction: NDArray("float32", 1) = Field(
        description="fraction of the cutout's modelled flux from neighbours"
    )
    residual_rms_sigma: NDArray("float32", 1) = Field(
        description="rms of (science − model)/error in the cutout (ideally 1)"
    )
    background_dn_s: NDArray("float32", 1, unit=DN_S) = Field(
        description="local background around the cutout"
    )
    fraction_flagged: NDArray("float32", 1) = Field(description="cutout pixels with dq set")
    snr_global: NDArray("float32", 1) = Field(
        description="median S/N per column of the extracted spectrum"
    )
    flags: NDArray("uint32", 1) = Field(
        description=f"quality bits OR-ed over the spectrum: {_bits(SpectrumDQ)}"
    )


class Dqa2d(G2dpProduct):
    """Data-quality assessment of one exposure's 2D decontamination.

    Maps are binned over the detector (``map_binning_pix`` square bins from pixel 0, the last
    bin partial); the histogram is of (science − model)/error over unmasked cutout pixels.
    """

    product_type: ClassVar[str] = "wfi_spec_dqa_2d_level_4"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = f"{RAD_GDPS}/wfi_spec_dqa_2d_level_4-1.0.0"
    export_table: ClassVar[str] = "sources"

    meta: Dqa2dMeta
    summary: Decontamination2dSummary
    map_binning_pix: int = Field(ge=1, le=DETECTOR_PIXELS, description="side of a map bin (pix)")
    background_map_dn_s: NDArray("float32", 2, unit=DN_S) = Field(
        description="median dispersed background per bin (y, x)"
    )
    residual_rms_map_sigma: NDArray("float32", 2) = Field(
        description="rms of normalised residuals per bin (y, x); NaN where no cutout"
    )
    residual_bin_edges_sigma: NDArray("float64", 1) = Field(
        description="edges of the normalised-residual histogram (strictly increasing)"
    )
    residual_counts: NDArray("int64", 1) = Field(description="pixels per histogram bin")
    sources: SourceQuality2d

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        side = -(-DETECTOR_PIXELS // self.map_binning_pix)
        for name in ("background_map_dn_s", "residual_rms_map_sigma"):
            if getattr(self, name).shape != (side, side):
                raise ValueError(
                    f"{name} is {getattr(self, name).shape}; {self.map_binning_pix}-pixel bins "
                    f"make ({side}, {side})"
                )
        edges = self.residual_bin_edges_sigma
        _check_increasing(edges, "residual_bin_edges_sigma")
        if self.residual_counts.shape != (edges.shape[0] - 1,):
            raise ValueError("residual_counts needs one value per pair of bin edges")
        if np.any(np.asarray(self.residual_counts) < 0):
            raise ValueError("residual_counts must not be negative")
        s = self.sources
        _check_unique_rows(s.source_id, s.order, "sources")
        if len(s) != self.summary.n_cutouts:
            raise ValueError(f"{len(s)} source rows but summary.n_cutouts {self.summary.n_cutouts}")
        _check_fraction(s.contamination_fraction, "sources.contamination_fraction")
        _check_fraction(s.fraction_flagged, "sources.fraction_flagged")
        return self

    @classmethod
    def example(cls, n_sources: int = 10, disperser: Disperser = "GRISM", seed: int = 3) -> Self:
        """The quality report of the example exposure (its on-detector sources)."""
        rng = np.random.default_rng(seed + 5)
        scene = _example_scene(n_sources, disperser, seed)
        chosen = scene.on_detector()
        binning = 128
        side = -(-DETECTOR_PIXELS // binning)
        yy, xx = np.mgrid[0:side, 0:side] / side
        background = (0.55 + 0.06 * xx - 0.03 * yy + rng.normal(0, 0.004, (side, side))).astype(
            "float32"
        )
        residual_map = np.full((side, side), np.nan, dtype="float32")
        for i in chosen:
            columns, _ = scene.columns(i)
            by = min(int(scene.y_direct[i]) // binning, side - 1)
            residual_map[by, columns[0] // binning : columns[-1] // binning + 1] = rng.normal(
                1.03, 0.04
            )
        residuals = rng.standard_normal(20000) * 1.04 + 0.01
        edges = np.linspace(-5, 5, 41)
        counts, _ = np.histogram(residuals, edges)
        contamination = scene.contamination_fraction[chosen]
        threshold = 0.1
        meta = Dqa2dMeta(
            **_example_meta(cls, disperser, exposure=_example_exposure()),
            cdp_context=2,
            pointing=_EXAMPLE_FIELD.model_copy(),
        )
        n = len(chosen)
        return cls(
            meta=meta,
            summary=Decontamination2dSummary(
                n_sources=n,
                n_cutouts=n,
                contamination_threshold=threshold,
                fraction_contaminated=float(np.mean(contamination > threshold)) if n else 0.0,
                background_median_dn_s=float(np.median(background)),
                background_rms_dn_s=0.031,
                residual_mean_sigma=float(residuals.mean()),
                residual_std_sigma=float(residuals.std()),
                fraction_pixels_flagged=0.004,
            ),
            map_binning_pix=binning,
            background_map_dn_s=background,
            residual_rms_map_sigma=residual_map,
            residual_bin_edges_sigma=edges,
            residual_counts=counts.astype("int64"),
            sources=SourceQuality2d(
                source_id=scene.source_id[chosen],
                order=np.ones(n, dtype="int8"),
                contamination_fraction=contamination,
                residual_rms_sigma=rng.normal(1.03, 0.05, n).astype("float32"),
                background_dn_s=rng.normal(0.55, 0.02, n).astype("float32"),
                fraction_flagged=rng.uniform(0, 0.01, n).astype("float32"),
                snr_global=(10 ** (0.4 * (24.5 - scene.mag_ab[chosen]))).astype("float32"),
                flags=np.where(contamination > threshold, int(SpectrumDQ.CONTAMINATED), 0).astype(
                    "uint32"
                ),
            ),
        )


# -- catalog data-quality report ------------------------------------------------------------
class CatalogSummary(MetaModel):
    """Catalog-wide redshift success."""

    n_sources: int = Field(ge=0, description="sources in the catalog")
    n_redshift: int = Field(ge=0, description="sources with a redshift (no NO_FIT flag)")
    n_secure: int = Field(ge=0, description="redshifts with ≥ 2 lines detected and z_odds ≥ 0.9")
    success_rate: float = Field(ge=0, le=1, description="n_redshift / n_sources")
    z_median: float | None = Field(None, ge=0, description="median redshift (None if none)")

    @model_validator(mode="after")
    def _counts(self) -> Self:
        if not self.n_secure <= self.n_redshift <= self.n_sources:
            raise ValueError("need n_secure ≤ n_redshift ≤ n_sources")
        expected = self.n_redshift / self.n_sources if self.n_sources else 0.0
        if abs(self.success_rate - expected) > 1e-6:
            raise ValueError(f"success_rate {self.success_rate} is not n_redshift/n_sources")
        return self


class PhotozComparison(MetaModel):
    """Spectroscopic against photometric redshifts of the sources that have both."""

    photoz_catalog: str = Field(min_length=1, description="photometric-redshift catalog used")
    n_matched: int = Field(ge=0, description="sources with both redshifts")
    bias: float = Field(description="median of (z − z_phot)/(1 + z)")
    nmad: float = Field(ge=0, description="1.48 × median |Δz − median Δz|/(1 + z)")
    outlier_threshold: float = Field(gt=0, description="|Δz|/(1 + z) above which: outlier")
    outlier_fraction: float = Field(ge=0, le=1, description="fraction of outliers")


class SuccessByMagnitude(Table):
    """Redshift success per direct-image magnitude bin."""

    mag_lo: NDArray("float32", 1, unit=AB_MAG) = Field(description="bin's bright edge")
    mag_hi: NDArray("float32", 1, unit=AB_MAG) = Field(description="bin's faint edge")
    n_sources: NDArray("int64", 1) = Field(description="sources in the bin")
    n_redshift: NDArray("int64", 1) = Field(description="of those, with a redshift")
    success_rate: NDArray("float32", 1) = Field(description="n_redshift/n_sources (NaN if 0)")


class FlagCounts(Table):
    """How many sources carry each redshift flag."""

    flag: NDArray("U16", 1) = Field(description="RedshiftFlag name")
    bit: NDArray("uint32", 1) = Field(description="the flag's value")
    n_sources: NDArray("int64", 1) = Field(description="sources with the flag set")


class CatalogDqa(GdpsProduct):
    """Data-quality assessment of a redshift catalog: success rate, z and line-S/N histograms.

    It also counts the sources carrying each redshift flag and, when photometric redshifts
    exist for the tile, compares the spectroscopic redshifts with them.
    """

    product_type: ClassVar[str] = "wfi_spec_catalog_dqa_level_4"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = f"{RAD_GDPS}/wfi_spec_catalog_dqa_level_4-1.0.0"
    export_table: ClassVar[str] = "success_by_magnitude"

    meta: CatalogMeta
    summary: CatalogSummary
    z_bin_edges: NDArray("float64", 1) = Field(description="edges of the z histogram")
    z_counts: NDArray("int64", 1) = Field(description="redshifts per z bin")
    snr_bin_edges: NDArray("float64", 1) = Field(description="edges of the line-S/N histograms")
    line_snr_counts: NDArray("int64", 2) = Field(
        description="measured lines per S/N bin: (lines in meta.lines, S/N bins)"
    )
    success_by_magnitude: SuccessByMagnitude
    flag_counts: FlagCounts
    photoz: PhotozComparison | None = Field(None, description="absent without photo-z")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for edges, counts, name in (
            (self.z_bin_edges, self.z_counts, "z"),
            (self.snr_bin_edges, self.line_snr_counts, "line_snr"),
        ):
            _check_increasing(edges, f"{name} bin edges")
            if counts.shape[-1] != edges.shape[0] - 1:
                raise ValueError(f"{name} counts need one value per pair of bin edges")
            if np.any(np.asarray(counts) < 0):
                raise ValueError(f"{name} counts must not be negative")
        if self.line_snr_counts.shape[0] != len(self.meta.lines):
            raise ValueError("line_snr_counts needs one row per line of meta.lines")
        if int(np.sum(self.z_counts)) > self.summary.n_redshift:
            raise ValueError("z_counts hold more redshifts than summary.n_redshift")
        mags = self.success_by_magnitude
        n, n_z = np.asarray(mags.n_sources), np.asarray(mags.n_redshift)
        if np.any(np.asarray(mags.mag_lo) >= np.asarray(mags.mag_hi)):
            raise ValueError("success_by_magnitude: need mag_lo < mag_hi")
        if np.any(n_z > n) or n.sum() > self.summary.n_sources:
            raise ValueError("success_by_magnitude counts exceed the sources")
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(n > 0, n_z / n, np.nan)
        if not np.allclose(np.asarray(mags.success_rate), rate, atol=1e-6, equal_nan=True):
            raise ValueError("success_by_magnitude.success_rate is not n_redshift/n_sources")
        flags = self.flag_counts
        for name, bit in zip(np.asarray(flags.flag), np.asarray(flags.bit), strict=True):
            if name not in RedshiftFlag.__members__ or int(RedshiftFlag[name]) != int(bit):
                raise ValueError(f"flag_counts: {name}={bit} is not a RedshiftFlag")
        if np.any(np.asarray(flags.n_sources) > self.summary.n_sources):
            raise ValueError("flag_counts exceed summary.n_sources")
        if self.photoz is not None and self.photoz.n_matched > self.summary.n_redshift:
            raise ValueError("photoz.n_matched exceeds summary.n_redshift")
        return self

    @classmethod
    def example(cls, n_sources: int = 2400, disperser: Disperser = "GRISM", seed: int = 3) -> Self:
        """The report of a simulated tile catalog: success falls with magnitude."""
        rng = np.random.default_rng(seed + 6)
        lines = GRISM_LINES if disperser == "GRISM" else PRISM_LINES
        mag = rng.uniform(19.5, 24.0, n_sources)
        has_z = rng.random(n_sources) < 1 / (1 + np.exp(2.2 * (mag - 23.0)))
        z = rng.uniform(0.55, 1.85, n_sources)
        n_z = int(has_z.sum())
        z_edges = np.round(np.arange(0.0, 3.05, 0.1), 2)
        z_counts, _ = np.histogram(z[has_z], z_edges)
        snr_edges = np.array([0, 1, 2, 3, 5, 7, 10, 20, 50, 100, 1000], dtype="float64")
        snr_counts = np.array(
            [
                np.histogram(rng.lognormal(1.2 - 0.1 * j, 0.9, n_z), snr_edges)[0]
                for j in range(len(lines))
            ]
        )
        mag_edges = np.arange(19.5, 24.01, 0.5)
        n_bin = np.histogram(mag, mag_edges)[0]
        n_z_bin = np.histogram(mag[has_z], mag_edges)[0]
        flags = np.where(has_z, 0, int(RedshiftFlag.NO_FIT | RedshiftFlag.LOW_SNR))
        flags |= np.where(rng.random(n_sources) < 0.08, int(RedshiftFlag.SINGLE_LINE), 0)
        flags |= np.where(rng.random(n_sources) < 0.05, int(RedshiftFlag.CONTAMINATED), 0)
        members = [f for f in RedshiftFlag if f.value]
        z_phot = z + rng.normal(0, 0.04, n_sources) * (1 + z)
        outlier = rng.random(n_sources) < 0.04
        z_phot[outlier] = rng.uniform(0.1, 3.0, outlier.sum())
        dz = ((z - z_phot) / (1 + z))[has_z]
        meta = CatalogMeta(
            **_example_meta(
                cls, disperser, span=ObservationSpan(start_mjd_utc=62110.2, end_mjd_utc=62290.7)
            ),
            catalog_id=412,
            file_number=1,
            tile_id="hlwas_t0412",
            lines=[line.model_copy() for line in lines],
        )
        return cls(
            meta=meta,
            summary=CatalogSummary(
                n_sources=n_sources,
                n_redshift=n_z,
                n_secure=int(0.7 * n_z),
                success_rate=n_z / n_sources,
                z_median=float(np.median(z[has_z])),
            ),
            z_bin_edges=z_edges,
            z_counts=z_counts.astype("int64"),
            snr_bin_edges=snr_edges,
            line_snr_counts=snr_counts.astype("int64"),
            success_by_magnitude=SuccessByMagnitude(
                mag_lo=mag_edges[:-1].astype("float32"),
                mag_hi=mag_edges[1:].astype("float32"),
                n_sources=n_bin.astype("int64"),
                n_redshift=n_z_bin.astype("int64"),
                success_rate=(n_z_bin / n_bin).astype("float32"),
            ),
            flag_counts=FlagCounts(
                flag=np.array([f.name for f in members]),
                bit=np.array([int(f) for f in members], dtype="uint32"),
                n_sources=np.array([np.sum((flags & f) != 0) for f in members], dtype="int64"),
            ),
            photoz=PhotozComparison(
                photoz_catalog="hlwas_t0412_photoz_v1",
                n_matched=n_z,
                bias=float(np.median(dz)),
                nmad=float(1.4826 * np.median(np.abs(dz - np.median(dz)))),
                outlier_threshold=0.15,
                outlier_fraction=float(np.mean(np.abs(dz) > 0.15)),
            ),
        )


# -- line lists -----------------------------------------------------------------------------
#: lines the grism resolves (vacuum rest wavelengths; doublets by their flux-weighted mean)
GRISM_LINES = [
    EmissionLine(name="OII_3728", rest_wavelength_um=0.37285),
    EmissionLine(name="Hb_4863", rest_wavelength_um=0.48627),
    EmissionLine(name="OIII_5008", rest_wavelength_um=0.50082),
    EmissionLine(name="Ha_6565", rest_wavelength_um=0.65646),
    EmissionLine(name="SII_6725", rest_wavelength_um=0.67255),
    EmissionLine(name="SIII_9533", rest_wavelength_um=0.95332),
    EmissionLine(name="HeI_10833", rest_wavelength_um=1.08333),
    EmissionLine(name="PaB_12822", rest_wavelength_um=1.28216),
]
#: lines (and blends) the prism measures
PRISM_LINES = [
    EmissionLine(name="OII_3728", rest_wavelength_um=0.37285),
    EmissionLine(name="Hb+OIII", rest_wavelength_um=0.49755),
    EmissionLine(name="Ha+NII", rest_wavelength_um=0.65741),
    EmissionLine(name="SIII_9533", rest_wavelength_um=0.95332),
    EmissionLine(name="PaB_12822", rest_wavelength_um=1.28216),
]


# -- the synthetic exposure behind the examples ---------------------------------------------
_EXAMPLE_FIELD = FieldCenter(ra_deg=9.82, dec_deg=-44.15)
_REFERENCE_UM = {"GRISM": 1.55, "PRISM": 1.15}
_GRISM_DISPERSION_UM = 0.00108  # µm per pixel: R = 461 λ/µm over a 2-pixel element
_PIXEL_DEG = 0.11 / 3600
_LINE_RATIOS = {  # line flux / Hα flux in the examples
    "OII_3728": 0.5,
    "Hb_4863": 0.35,
    "OIII_5008": 0.6,
    "Ha_6565": 1.0,
    "SII_6725": 0.2,
    "SIII_9533": 0.1,
    "HeI_10833": 0.05,
    "PaB_12822": 0.06,
    "Hb+OIII": 1.1,
    "Ha+NII": 1.3,
}


def _gauss(x: Any, mu: Any, sigma: Any) -> np.ndarray:
    """A unit-area Gaussian."""
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))


def _cumulative(p: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The trapezoid-rule cumulative integral of ``p`` over ``grid``, starting at 0."""
    return np.concatenate([[0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(grid))])


def _native_wavelengths(disperser: str) -> np.ndarray:
    """Wavelength (µm) at successive detector columns along a whole trace."""
    lo, hi = BANDPASS_UM[disperser]
    if disperser == "GRISM":
        return lo + _GRISM_DISPERSION_UM * np.arange(int((hi - lo) / _GRISM_DISPERSION_UM) + 1)
    wavelengths = [lo]  # prism: R falls from 180 (blue) to 80 (red), 2 pixels per element
    while wavelengths[-1] < hi:
        resolution = 180 - 100 * (wavelengths[-1] - lo) / (hi - lo)
        wavelengths.append(wavelengths[-1] * (1 + 1 / (2 * resolution)))
    return np.array(wavelengths[:-1])


def _sensitivity(disperser: str, wavelength_um: np.ndarray) -> np.ndarray:
    """DN/s per detector column per unit f_λ (erg/s/cm²/Å) of the example optics."""
    if disperser == "GRISM":
        return 3.0e17 * np.exp(-0.5 * ((wavelength_um - 1.45) / 0.40) ** 2)
    return 6.0e17 * np.exp(-0.5 * ((wavelength_um - 1.25) / 0.45) ** 2)


def _throughput_dq(disperser: str, wavelength_um: np.ndarray) -> np.ndarray:
    s = _sensitivity(disperser, wavelength_um)
    peak = _sensitivity(disperser, np.array([1.45 if disperser == "GRISM" else 1.25]))[0]
    return np.where(s < 0.1 * peak, int(SpectrumDQ.LOW_THROUGHPUT), 0).astype("uint32")


@dataclass(frozen=True)
class _Scene:
    """Sources of the example exposure and the example optics that disperse them."""

    disperser: str
    source_id: np.ndarray
    ra_deg: np.ndarray
    dec_deg: np.ndarray
    x_direct: np.ndarray
    y_direct: np.ndarray
    mag_ab: np.ndarray
    z: np.ndarray
    fwhm_pix: np.ndarray
    ha_flux: np.ndarray
    contamination_fraction: np.ndarray
    n_contaminants: np.ndarray
    wavelength_um: np.ndarray
    reference_index: int

    def x_at(self, i: int, wavelength_um: np.ndarray) -> np.ndarray:
        """Detector x of the trace of source ``i`` at the given wavelengths."""
        k = np.interp(wavelength_um, self.wavelength_um, np.arange(self.wavelength_um.size))
        return self.x_direct[i] + k - self.reference_index

    def y_at(self, i: Any, x: np.ndarray) -> np.ndarray:
        """Detector y of the trace centre at detector x (a slight tilt)."""
        return self.y_direct[i] + 1.5 + 0.003 * (x - self.x_direct[i])

    def columns(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Detector columns of the trace on the science pixels, with their wavelengths."""
        k = np.arange(self.wavelength_um.size)
        first = int(np.ceil(self.x_direct[i] - self.reference_index))
        x = first + k
        wavelength = np.interp(x - self.x_direct[i] + self.reference_index, k, self.wavelength_um)
        inside = (x >= 4) & (x <= DETECTOR_PIXELS - 5) & (x - first < k.size - 1)
        y = self.y_at(i, x.astype("float64"))
        inside &= (y >= 10) & (y <= DETECTOR_PIXELS - 11)
        return x[inside], wavelength[inside]

    def bbox(self, i: int) -> tuple[int, int, int, int]:
        """Bounding box (x_min, x_max, y_min, y_max) of the whole trace, unclipped."""
        x = self.x_at(i, self.wavelength_um[[0, -1]])
        y = self.y_at(i, x)
        half = int(np.ceil(self.fwhm_pix[i]))
        return (
            int(np.floor(x.min())),
            int(np.ceil(x.max())),
            int(np.floor(y.min())) - half,
            int(np.ceil(y.max())) + half,
        )

    def on_detector(self) -> list[int]:
        """Sources whose trace falls (partly) on the detector."""
        return [i for i in range(self.source_id.size) if self.columns(i)[0].size]

    def continuum(self, i: int, wavelength_um: np.ndarray) -> np.ndarray:
        """Continuum f_λ (erg/s/cm²/Å): flat in f_ν at the source's magnitude."""
        f_nu = 10 ** (-0.4 * (self.mag_ab[i] + 48.6))
        return f_nu * 2.998e18 / (wavelength_um * 1e4) ** 2

    def flam(self, i: int, wavelength_um: np.ndarray) -> np.ndarray:
        """Model f_λ: continuum plus the emission lines at the source's redshift."""
        lines = GRISM_LINES if self.disperser == "GRISM" else PRISM_LINES
        model = self.continuum(i, wavelength_um)
        for line in lines:
            centre = line.rest_wavelength_um * (1 + self.z[i])
            if self.disperser == "GRISM":
                element = 1 / 461.0
            else:
                element = centre / (180 - 100 * (centre - 0.75) / 1.05)
            dispersion = element / 2  # µm per pixel
            sigma = np.hypot(element, self.fwhm_pix[i] * dispersion) / 2.355
            flux = _LINE_RATIOS.get(line.name, 0.1) * self.ha_flux[i]
            model = model + flux * _gauss(wavelength_um, centre, sigma) / 1e4
        return model

    def flam_error(self, i: int, wavelength_um: np.ndarray) -> np.ndarray:
        """1-sigma f_λ error of one exposure's optimal extraction."""
        noise_dn_s = 0.03 * np.sqrt(1.5 * self.fwhm_pix[i])
        return noise_dn_s / _sensitivity(self.disperser, wavelength_um)


def _example_scene(n_sources: int, disperser: str, seed: int) -> _Scene:
    """``n_sources`` sources; the first three show the edge cases of slitless spectroscopy:
    a trace cut by the detector edge, a source off the detector whose trace falls on it, and
    a source whose trace misses the detector."""
    rng = np.random.default_rng(seed)
    wavelength = _native_wavelengths(disperser)
    reference = int(np.argmin(np.abs(wavelength - _REFERENCE_UM[disperser])))
    x = rng.uniform(700, 3400, n_sources)
    y = rng.uniform(300, 3800, n_sources)
    for i, (xi, yi) in enumerate([(250.0, 900.0), (4250.0, 2100.0), (1800.0, -150.0)]):
        if i < n_sources:
            x[i], y[i] = xi, yi
    z_range = (0.55, 1.85) if disperser == "GRISM" else (0.2, 1.6)
    contamination = np.where(rng.random(n_sources) < 0.4, rng.uniform(0.02, 0.35, n_sources), 0)
    n_contaminants = np.where(contamination > 0, rng.integers(1, 4, n_sources), 0)
    cos_dec = np.cos(np.radians(_EXAMPLE_FIELD.dec_deg))
    centre = DETECTOR_PIXELS / 2
    return _Scene(
        disperser=disperser,
        source_id=np.sort(rng.choice(np.arange(4_120_000, 4_130_000), n_sources, replace=False)),
        ra_deg=_EXAMPLE_FIELD.ra_deg + (x - centre) * _PIXEL_DEG / cos_dec,
        dec_deg=_EXAMPLE_FIELD.dec_deg + (y - centre) * _PIXEL_DEG,
        x_direct=x,
        y_direct=y,
        mag_ab=rng.uniform(20.0, 23.5, n_sources).astype("float32"),
        z=rng.uniform(*z_range, n_sources),
        fwhm_pix=rng.uniform(1.8, 3.5, n_sources),
        ha_flux=10 ** rng.uniform(-16.4, -15.7, n_sources),
        contamination_fraction=contamination.astype("float32"),
        n_contaminants=n_contaminants.astype("int16"),
        wavelength_um=wavelength,
        reference_index=reference,
    )


def _example_exposure() -> L2Exposure:
    """Exposure 1 of visit 3 (segment 1, pass 1 of program 7), detector WFI01."""
    return L2Exposure(
        observation_id="0000701001001002003",
        segment=1,
        visit=3,
        exposure=1,
        detector="WFI01",
        exptime_s=301.6,
        dither=2,
        pa_v3_deg=105.0,
        v3yangle_deg=-60.0,
    )


def _example_spectral(disperser: str) -> dict[str, Any]:
    """The calibration, pointing and wavelength fields of spectral examples."""
    lo, hi = BANDPASS_UM[disperser]
    return {
        "cdp_context": 2,
        "pointing": _EXAMPLE_FIELD.model_copy(),
        "spectral": SpectralSetup(
            reference_wavelength_um=_REFERENCE_UM[disperser],
            contamination_min_um=lo,
            contamination_max_um=hi,
            snr_min_um=1.2 if disperser == "GRISM" else 1.0,
            snr_max_um=1.7 if disperser == "GRISM" else 1.5,
            mag_cut_filter="F158",
            mag_cut_ab=24.0,
        ),
    }


def _software_versions() -> dict[str, str]:
    try:
        return {"roman-schemas": version("roman-schemas")}
    except PackageNotFoundError:  # a source checkout that was never installed
        return {}


def _example_meta(cls: type[Product], disperser: str, **fields: Any) -> dict[str, Any]:
    """Meta keyword arguments common to the GDPS examples (program 7, a HLWAS-like tile)."""
    exposure = fields.get("exposure")
    defaults: dict[str, Any] = {
        "file_name": f"example_{cls.product_type}.asdf",
        "optical_element": disperser,
        "program": 7,
        "program_complete": False,
        "s_region": "POLYGON ICRS 9.75 -44.21 9.91 -44.21 9.91 -44.09 9.75 -44.09",
        "provenance": {"step": "example", "inputs": [], "parameters": {}},
        "software_versions": _software_versions(),
    }
    if exposure is not None:
        defaults["span"] = ObservationSpan(start_mjd_utc=62110.2150, end_mjd_utc=62110.2185)
    if issubclass(cls, G2dpProduct):
        defaults["run_id"] = "42"
    return cls.new_meta(**{**defaults, **fields})


__all__ = [
    "AB_MAG",
    "BANDPASS_UM",
    "DN_S",
    "FLAM",
    "GRISM_LINES",
    "LINE_FLUX",
    "PRISM_LINES",
    "UM",
    "CalibratedMeta",
    "CatalogDqa",
    "CatalogMeta",
    "CatalogSummary",
    "Combined1d",
    "CombinedSpectra",
    "CombinedSpectraMeta",
    "Cutout",
    "CutoutIndex",
    "Decontaminated2d",
    "Decontamination2dSummary",
    "Dqa2d",
    "Dqa2dMeta",
    "EmissionLine",
    "ExposureSpectraMeta",
    "FieldCenter",
    "FlagCounts",
    "G2dpMeta",
    "GdpsMeta",
    "GdpsProduct",
    "Individual1d",
    "L2Exposure",
    "LocationTableMeta",
    "ObservationSpan",
    "PhotozComparison",
    "RedshiftCatalog",
    "RedshiftCatalogMeta",
    "RedshiftCatalogSources",
    "RedshiftFlag",
    "RedshiftGrid",
    "SourceQuality2d",
    "SpectraLocationTable",
    "SpectraMeta",
    "SpectralSetup",
    "Spectrum1d",
    "SpectrumDQ",
    "SpectrumIndex",
    "SpectrumLocations",
    "SuccessByMagnitude",
    "gdps_version",
]
