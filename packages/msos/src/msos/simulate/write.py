"""Writing a simulated partition: L2 ``wfi_image`` files through roman_datamodels, and truth.

See :mod:`msos.simulate` for the file layout and the truth formats.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import asdf
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from astropy.table import Table
from astropy.time import Time
from roman_datamodels import datamodels as rdm

from msos.simulate import instrument as wfi
from msos.simulate.noise import Level2Arrays
from msos.simulate.wcs import s_region
from roman_schemas.products.msos import GriddedPSF

#: a placeholder program number for the simulated GBTDS
PROGRAM = 1
EXECUTION_PLAN = 1
#: reference-pixel planes written: one per resultant, romancal's cube layout
_REFPIX_COLUMNS_AMP33 = 128
#: the steps of romancal's exposure-level pipeline (``meta.cal_step``), and those a cal file
#: has been through
_CAL_STEPS = (
    "assign_wcs", "flat_field", "dark", "dark_decay", "dq_init", "flux", "linearity", "photom",
    "source_catalog", "ramp_fit", "refpix", "saturation", "outlier_detection", "tweakreg",
    "skymatch", "wfi18_transient",
)  # fmt: skip
_DONE = {
    "assign_wcs", "flat_field", "dark", "dark_decay", "dq_init", "linearity", "photom",
    "ramp_fit", "refpix", "saturation",
}  # fmt: skip


@dataclass(frozen=True)
class ExposureId:
    """Identifiers of one exposure: season → pass, day → segment, field → observation,
    epoch of the day → visit; one exposure per visit."""

    season: int
    field: int
    segment: int
    visit: int
    exposure: int = 1

    @property
    def visit_id(self) -> str:
        return (
            f"{PROGRAM:05d}{EXECUTION_PLAN:02d}{self.season:03d}{self.segment:03d}"
            f"{self.field:03d}{self.visit:03d}"
        )

    @property
    def observation_id(self) -> str:
        return f"{self.visit_id}01101{self.exposure:04d}"

    def filename(self, detector: str, optical_element: str = "F146") -> str:
        """romancal's name: ``r<visit id>_<exposure>_<detector>_<filter>_cal.asdf``."""
        return (
            f"r{self.visit_id}_{self.exposure:04d}_{detector.lower()}_"
            f"{optical_element.lower()}_cal.asdf"
        )


def make_image_model(
    arrays: Level2Arrays,
    *,
    wcs: object,
    exposure_id: ExposureId,
    detector: str,
    start: Time,
    end: Time,
    field_center: tuple[float, float],
    boresight: tuple[float, float],
    sky_dn_s: float,
    software_version: str,
) -> rdm.ImageModel:
    """A validated L2 ``ImageModel`` of one exposure, every array and metadata block filled."""
    ny, nx = arrays.data.shape
    model = rdm.ImageModel.create_fake_data(shape=(ny, nx))
    nres = len(wfi.READ_PATTERN)
    model.data = arrays.data
    model.dq = arrays.dq
    model.dq2 = np.zeros((ny, nx), np.uint32)
    model.err = arrays.err
    model.var_poisson = arrays.var_poisson
    model.var_rnoise = arrays.var_rnoise
    model.var_flat = arrays.var_flat
    chisq = np.ones((ny, nx), np.float16)
    chisq[np.isnan(arrays.data)] = np.nan
    model.chisq = chisq
    model.dumo = np.zeros((ny, nx), np.float16)
    # reference pixels are not simulated: zero cubes with romancal's layout
    model.amp33 = np.zeros((nres, ny + 8, _REFPIX_COLUMNS_AMP33), np.uint16)
    model.border_ref_pix_left = np.zeros((nres, ny + 8, 4), np.float32)
    model.border_ref_pix_right = np.zeros((nres, ny + 8, 4), np.float32)
    model.border_ref_pix_top = np.zeros((nres, 4, nx + 8), np.float32)
    model.border_ref_pix_bottom = np.zeros((nres, 4, nx + 8), np.float32)
    model.dq_border_ref_pix_left = np.zeros((ny + 8, 4), np.uint32)
    model.dq_border_ref_pix_right = np.zeros((ny + 8, 4), np.uint32)
    model.dq_border_ref_pix_top = np.zeros((4, nx + 8), np.uint32)
    model.dq_border_ref_pix_bottom = np.zeros((4, nx + 8), np.uint32)

    meta = model.meta
    meta.filename = exposure_id.filename(detector)
    meta.file_date = Time(end.isot, scale="utc", format="isot")
    meta.product_type = "cal"
    meta.origin = "IPAC/SSC"
    meta.calibration_software_name = "msos.simulate"
    meta.calibration_software_version = software_version
    meta.prd_version = "simulated"
    meta.sdf_software_version = "simulated"

    exposure = meta.exposure
    exposure.type = "WFI_IMAGE"
    exposure.start_time = Time(start.isot, scale="utc", format="isot")
    exposure.end_time = Time(end.isot, scale="utc", format="isot")
    exposure.engineering_quality = "OK"
    exposure.ma_table_id = "SIM_GBTDS"
    exposure.ma_table_name = "SIM_GBTDS_F146"
    exposure.ma_table_number = 1
    exposure.nresultants = nres
    exposure.data_problem = None
    exposure.frame_time = wfi.FRAME_TIME_S
    exposure.exposure_time = wfi.EXPOSURE_TIME_S
    exposure.effective_exposure_time = wfi.EFFECTIVE_EXPOSURE_TIME_S
    exposure.read_pattern = [list(group) for group in wfi.READ_PATTERN]
    exposure.truncated = False
    exposure.hga_move = False

    meta.instrument.name = "WFI"
    meta.instrument.detector = detector
    meta.instrument.optical_element = "F146"

    obs = meta.observation
    obs.observation_id = exposure_id.observation_id
    obs.visit_id = exposure_id.visit_id
    obs.program = PROGRAM
    obs.execution_plan = EXECUTION_PLAN
    setattr(obs, "pass", exposure_id.season)
    obs.segment = exposure_id.segment
    obs.observation = exposure_id.field
    obs.visit = exposure_id.visit
    obs.visit_file_group = 1
    obs.visit_file_sequence = 1
    obs.visit_file_activity = "01"
    obs.exposure = exposure_id.exposure
    obs.wfi_parallel = False

    program = meta.program
    program.title = "Galactic Bulge Time Domain Survey (simulated by msos)"
    program.investigator_name = "Roman SSC"
    program.category = "CCS"
    program.subcategory = "GBTD"
    program.science_category = "Exoplanets (microlensing)"

    visit = meta.visit
    visit.type = "GBTDS"
    visit.start_time = Time(start.isot, scale="utc", format="isot")
    visit.nexposures = 1
    visit.internal_target = False
    visit.dither.primary_name = None
    visit.dither.subpixel_name = None
    visit.dither.executed_pattern = None

    pointing = meta.pointing
    pointing.target_ra, pointing.target_dec = field_center
    pointing.ra_v1, pointing.dec_v1 = boresight
    pointing.pa_v3 = 0.0
    pointing.pa_aperture = 0.0
    pointing.target_aperture = "WFI_CEN"
    pointing.pointing_engineering_source = "CALCULATED"

    ra_ref, dec_ref = wcs((nx - 1) / 2.0, (ny - 1) / 2.0)
    info = meta.wcsinfo
    info.aperture_name = f"{detector}_FULL"
    info.ra_ref = float(ra_ref)
    info.dec_ref = float(dec_ref)
    info.roll_ref = 0.0
    info.s_region = s_region(wcs, (ny, nx))
    meta.wcs = wcs

    photometry = meta.photometry
    photometry.conversion_megajanskys = wfi.CONVERSION_MJY_SR
    photometry.conversion_megajanskys_uncertainty = (
        wfi.CONVERSION_MJY_SR * wfi.CONVERSION_REL_UNCERTAINTY
    )
    photometry.pixel_area = wfi.PIXEL_AREA_SR

    meta.background = {"level": float(sky_dn_s), "method": "None", "subtracted": False}
    meta.cal_step = {step: "COMPLETE" if step in _DONE else "INCOMPLETE" for step in _CAL_STEPS}
    meta.cal_step["wfi18_transient"] = "COMPLETE" if detector == "WFI18" else "N/A"
    model.validate()
    return model


def write_image(model: rdm.ImageModel, path: Path, compression: str = "lz4") -> None:
    """Save ``model`` to ``path``, arrays compressed with ``compression`` (lz4 — what
    roman_datamodels writes by default —, zlib or none).

    ``ImageModel.save`` would stamp ``meta.file_date`` with the wall-clock time; this writes
    the same tree the same way (under ``roman``, arrays over 512 elements in binary blocks)
    but keeps the file_date set from the exposure, so the same inputs give identical files.
    """
    model.meta.filename = Path(path).name
    af = asdf.AsdfFile()
    af["roman"] = model._instance
    with asdf.config_context() as config:
        config.array_inline_threshold = 512
        config.validate_on_write = False  # make_image_model validated it
        af.write_to(path, all_array_compression=None if compression == "none" else compression)


def write_table(table: Table, path: Path) -> None:
    """Write a truth table as Parquet with pyarrow: each column's unit in its field metadata
    (``unit``), the table's metadata as JSON in the schema metadata (``msos_simulate``)."""
    fields, columns = [], []
    for name in table.colnames:
        column = table[name]
        values = np.asarray(column)
        array = pa.array(values.tolist() if values.dtype.kind == "U" else values)
        unit = {b"unit": str(column.unit).encode()} if column.unit is not None else None
        fields.append(pa.field(name, array.type, metadata=unit))
        columns.append(array)
    schema = pa.schema(fields, metadata={b"msos_simulate": json.dumps(dict(table.meta)).encode()})
    pq.write_table(pa.Table.from_arrays(columns, schema=schema), path)


def read_table(path: Path) -> Table:
    """A truth table written by :func:`write_table`, as an astropy Table with units."""
    arrow = pq.read_table(path)
    table = Table()
    for field in arrow.schema:
        column = arrow.column(field.name).to_numpy(zero_copy_only=False)
        if column.dtype == object:
            column = column.astype(str)
        table[field.name] = column
        if field.metadata and b"unit" in field.metadata:
            table[field.name].unit = field.metadata[b"unit"].decode()
    metadata = arrow.schema.metadata or {}
    table.meta.update(json.loads(metadata.get(b"msos_simulate", b"{}")))
    return table


def write_truth_psf(
    path: Path, psfs: list[GriddedPSF], jitter: np.ndarray, fwhm: np.ndarray
) -> None:
    """The per-epoch ePSF grids in one ASDF file (see :mod:`msos.simulate`)."""
    first = psfs[0]
    tree = {
        "oversampling": int(first.oversampling),
        "x_pix": np.asarray(first.x_pix),
        "y_pix": np.asarray(first.y_pix),
        "stamps": np.stack([np.asarray(p.stamps, np.float32) for p in psfs]),
        "jitter_sigma_pix": np.asarray(jitter, np.float64),
        "fwhm_pix": np.asarray(fwhm, np.float64),
        "convention": "packages/msos/README.md: ePSF stamps, sum oversampling**2",
    }
    with asdf.AsdfFile(tree) as af:
        af.write_to(path)


def read_truth_psf(path: Path, epoch: int = 0) -> GriddedPSF:
    """The truth ePSF grid of ``epoch`` from a ``truth_psf.asdf``."""
    with asdf.open(path, lazy_load=False, memmap=False) as af:
        return GriddedPSF(
            stamps=np.asarray(af["stamps"][epoch], np.float32),
            x_pix=np.asarray(af["x_pix"], np.float64),
            y_pix=np.asarray(af["y_pix"], np.float64),
            oversampling=int(af["oversampling"]),
        )
