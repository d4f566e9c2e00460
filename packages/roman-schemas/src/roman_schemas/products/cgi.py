"""CGI-DM products: records of coronagraph data (the FITS files corgidrp reads and writes).

The Coronagraph Instrument's data stay FITS files as SSC's CDMS (L1) and corgidrp (L2a-L4,
calibrations) write them. What CGI-DM keeps and sends to the archive for each file is a
*record*: the archive keyword set of rad's ``SSC/CGI`` schema for the file's level, the file's
size and sha256, a per-HDU summary with data checksums, the visit the file belongs to and its
provenance. Each rad keyword group is one model here, shared by every level that has it.

rad names the CGI archive keywords after the FITS keywords themselves (``EXCAMT``, ``VISITID``,
...), so each keyword field records the FITS keyword and HDU it is read from;
:meth:`CgiRecord.from_fits_header` fills any level's record from plain header dicts with one
generic function and :meth:`CgiRecord.from_fits_file` does so from a file on disk.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple, Self

import numpy as np
from pydantic import AwareDatetime, Field, ValidationError, model_validator

from roman_schemas.arrays import NDArray
from roman_schemas.errors import ProductValidationError
from roman_schemas.meta import InputFile, MetaModel, ProductMeta, Provenance, archive
from roman_schemas.product import Product, first_error
from roman_schemas.tables import Table

RAD_CGI = "asdf://stsci.edu/datamodels/roman/schemas/SSC/CGI"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
#: the FITS block size: every FITS file is a whole number of blocks
FITS_BLOCK_BYTES = 2880
#: the most data axes the HDU summary records (corgidrp writes at most 3)
MAX_HDU_NDIM = 4

#: tolerance of time comparisons: headers print MJDs to 5 decimals (0.864 s)
MJD_ROUNDING_S = 1.0

#: the HDU a keyword is read from: the primary header or the first (image) extension
HduRole = Literal["primary", "image"]
_HDU_INDEX: dict[str, int] = {"primary": 0, "image": 1}

# --- rad's vocabularies (cgi_exposure, cgi_states, cgi_visit) -----------------------------

ArrayType = Literal["SCI", "ENG"]
ReadoutMode = Literal[
    "NONE_DETON_0", "ACQUIRE_SCIENCE", "LOWFSC_STRSH", "TRAP_PUMPING", "ENGINEERING_EM",
    "ENGINEERING_CONV", "SPARE_1", "SPARE_2", "SPARE_3", "SPARE_4", "SPARE_5", "SPARE_6",
    "SPARE_7", "SPARE_8", "SPARE_9", "NONE_DETON_15",
]  # fmt: skip
FsmProfile = Literal["NFOV", "EFOV", "SPEC660", "SPEC730", "EXCAM", "SPARE", "FSM_PROFILE_UNKNOWN"]
#: rad also lists the integers 0 and 1 for DMZLOOP, but its ``type: string`` refuses them;
#: FITS headers write the loop states as 0/1, which from_fits_header maps to OPEN/CLOSED.
LoopState = Literal["OPEN", "CLOSED"]
VisitType = Literal[
    "CGIVST_TDD_SETUP_HOWFSC", "CGIVST_TDD_OBS", "CGIVST_TDD_OBS_HOWFSC", "CGIVST_TDD_CLEANUP",
    "CGIVST_CAL_DRK_SETUP", "CGIVST_CAL_DARK", "CGIVST_CAL_DARK_CLEANUP", "CGIVST_CAL_BORESIGHT",
    "CGIVST_CAL_PUPIL_IMAGING", "CGIVST_CAL_LOCAM_GAIN", "CGIVST_CAL_TGTREF_PHOT",
    "CGIVST_CAL_ABSFLUX_FAINT", "CGIVST_CAL_ABSFLUX_BRIGHT", "CGIVST_CAL_CORETHRPT",
    "CGIVST_CAL_FLAT", "CGIVST_ENG_OTA_WVFRNT", "CGIVST_ENG_PAM_RECAL", "CGIVST_ENG_PFAC",
    "CGIVST_ENG_PUPILCAL", "CGIVST_ENG_IMAGECAL", "CGIVST_UTI_ADVANCE_SETUP",
    "CGIVST_UTI_POINT_REFINE", "CGIVST_UTI_GENERIC_STAR",
]  # fmt: skip

#: corgidrp calibration class (the DATATYPE keyword) → the ``_xxx_cal`` suffix of its file
#: names, which is the archive's ANCTYPE (rad allows at most 5 characters)
CORGIDRP_CALIBRATION_TYPES: dict[str, str] = {
    "AstrometricCalibration": "ast",
    "BadPixelMap": "bpm",
    "CoreThroughputCalibration": "ctp",
    "CoreThroughputMap": "ctm",
    "Dark": "drk",
    "DetectorNoiseMaps": "dnm",
    "DispersionModel": "dpm",
    "FlatField": "flt",
    "FluxcalFactor": "abf",
    "KGain": "krn",
    "LineSpread": "lsf",
    "MuellerMatrix": "mmx",
    "NDFilterSweetSpotDataset": "ndf",
    "NDMuellerMatrix": "ndm",
    "NDSpectroscopy": "nds",
    "NonLinearityCalibration": "nln",
    "SlitTransmission": "slt",
    "SpecFluxCal": "sfl",
    "SpectroscopyCentroidPSF": "scp",
    "TrapCalibration": "tpu",
}


# --- keyword fields that know their FITS source -------------------------------------------


class FitsSource(NamedTuple):
    """Where an archive keyword's value comes from in a CGI FITS file."""

    hdu: HduRole | None  #: the header searched first (None: not a header keyword)
    keyword: str | None  #: the FITS keyword (None: computed, see ``note``)
    note: str = ""  #: how the value is derived when the keyword is absent or computed


def cgi_keyword(
    name: str,
    hdu: HduRole = "image",
    *,
    fits: str | None = None,
    derived: str = "",
    description: str = "",
    **kwargs: Any,
) -> Any:
    """An archive keyword field ``name`` read from FITS keyword ``fits`` (default ``name``).

    The FITS source is stored in the field (``fits_keyword``, ``fits_hdu``; see
    :meth:`CgiRecord.fits_sources`) and appended to the description, so the generated schema
    documents it too. ``derived`` says how the value is computed when the header lacks it.
    """
    source = fits or name
    where = f"FITS {source} ({hdu} HDU)"
    if derived:
        where += f"; if absent: {derived}"
    text = f"{description}. {where}" if description else where
    extra = {"fits_keyword": source, "fits_hdu": hdu, "fits_derived": derived}
    return archive(name, description=text, json_schema_extra=extra, **kwargs)


class CgiKeywords(MetaModel):
    """A group of rad's CGI archive keywords (one ``SSC/CGI/keywords`` schema)."""

    #: the rad keyword schema this group is, e.g. cgi_common
    rad_group: ClassVar[str]

    @classmethod
    def rad_schema_id(cls) -> str:
        """The id of the rad keyword schema of this group."""
        return f"{RAD_CGI}/keywords/{cls.rad_group}-1.0.0"


# --- the rad keyword groups ---------------------------------------------------------------


class CgiCommon(CgiKeywords):
    """rad ``cgi_common``: flight software, program part of the visit id, detector, time span."""

    rad_group: ClassVar[str] = "cgi_common"

    fsw_dictionary_version: str = cgi_keyword(
        "FSWDVERS", "primary", max_length=8, description="CGI flight software dictionary version"
    )
    program: int = cgi_keyword(
        "PROGNUM", "primary", ge=0, le=99999, description="program number (visit id digits 1-5)"
    )
    execution_plan: int = cgi_keyword(
        "EXECNUM", "primary", ge=0, le=99, description="execution number (visit id digits 6-7)"
    )
    campaign: int = cgi_keyword(
        "CAMPAIGN", "primary", ge=0, le=999, description="campaign/pass (visit id digits 8-10)"
    )
    detector: str = cgi_keyword(
        "DETECTOR", "primary", max_length=16, description="detector name, e.g. EXCAM"
    )
    start_mjd_utc: float = cgi_keyword("MJDSRT", ge=0, description="observation start (MJD, UTC)")
    end_mjd_utc: float = cgi_keyword("MJDEND", ge=0, description="observation end (MJD, UTC)")

    @model_validator(mode="after")
    def _start_before_end(self) -> Self:
        if self.start_mjd_utc > self.end_mjd_utc:
            raise ValueError(f"MJDSRT {self.start_mjd_utc} is after MJDEND {self.end_mjd_utc}")
        return self


class CgiL1(CgiKeywords):
    """rad ``cgi_l1``: the keywords only L1 (made by SSC's CDMS) carries."""

    rad_group: ClassVar[str] = "cgi_l1"

    cdms_version: str = cgi_keyword(
        "CDMSVERS", "primary", max_length=128, description="CDMS software version"
    )


class CgiL2a(CgiKeywords):
    """rad ``cgi_l2a``: what corgidrp did to an L2a frame (L2a only in rad)."""

    rad_group: ClassVar[str] = "cgi_l2a"

    desmeared: bool = cgi_keyword("DESMEAR", description="desmearing applied in L1->L2a")
    cti_corrected: bool = cgi_keyword("CTI_CORR", description="CTI correction applied")
    is_bad: bool = cgi_keyword("IS_BAD", description="frame deemed bad")
    drp_time_utc: AwareDatetime = cgi_keyword(
        "DRPCTIME", description="when corgidrp wrote the file (UTC)"
    )


class CgiHldp(CgiKeywords):
    """rad ``cgi_hldp``: the corgidrp version of a processed (L2a-L4) file."""

    rad_group: ClassVar[str] = "cgi_hldp"

    drp_version: str = cgi_keyword("DRPVERSN", max_length=128, description="corgidrp version")


class CgiL4(CgiKeywords):
    """rad ``cgi_l4``: PSF subtraction and calibration files of an L4 product."""

    rad_group: ClassVar[str] = "cgi_l4"

    klip_algorithm: str | None = cgi_keyword(
        "KLIP_ALG",
        "primary",
        default=None,
        max_length=8,
        description="KLIP mode, e.g. ADI+RDI (coronagraphic only; empty value means null)",
    )
    n_input_files: int = cgi_keyword(
        "DRPNFILE", ge=1, description="raw files combined into the final image"
    )
    psf_subtraction: str | None = cgi_keyword(
        "PSFSUB",
        default=None,
        max_length=16,
        description="PSF subtraction algorithm (coronagraphic only; empty value means null)",
    )
    pyklip_version: str | None = cgi_keyword(
        "PYKLIPV",
        default=None,
        max_length=16,
        description="pyKLIP version (coronagraphic only; empty value means null)",
    )
    core_throughput_cal_file: str | None = cgi_keyword(
        "CTCALFN",
        default=None,
        max_length=128,
        description="core throughput calibration file (null when unocculted)",
    )
    flux_cal_file: str = cgi_keyword(
        "FLXCALFN",
        min_length=1,
        max_length=128,
        derived="FLXCLF0,FLXCLF45 (the two polarimetric flux calibrations, comma-joined)",
        description="absolute flux calibration file",
    )

    @model_validator(mode="after")
    def _klip_needs_psf_subtraction(self) -> Self:
        if self.psf_subtraction is None and (self.klip_algorithm or self.pyklip_version):
            raise ValueError("KLIP_ALG/PYKLIPV are set but PSFSUB (the PSF subtraction) is not")
        return self


class CgiDiagnostic(CgiKeywords):
    """rad ``cgi_diagnostic``: temperatures, FSM, alignment offsets and LOWFSC Zernike stats."""

    rad_group: ClassVar[str] = "cgi_diagnostic"

    excam_temp_degc: float = cgi_keyword("EXCAMT", description="EXCAM temperature (degC)")
    locam_temp_degc: float = cgi_keyword("LOCAMT", description="LOCAM temperature (degC)")
    over_exposed: bool = cgi_keyword("OVEREXP", description="EXCAM over-illumination flag")
    proxe_heater_temp_degc: float = cgi_keyword(
        "PROXET", description="EXCAM ProxE heater temperature (degC)"
    )
    fsm_x_mas: float = cgi_keyword("FSMX", description="fast steering mirror mean X (mas)")
    fsm_y_mas: float = cgi_keyword("FSMY", description="fast steering mirror mean Y (mas)")
    acq_row_pix: float = cgi_keyword("EACQ_ROW", description="desired acquisition row (pix)")
    acq_col_pix: float = cgi_keyword("EACQ_COL", description="desired acquisition col (pix)")
    fpam_balance_dx_pix: float = cgi_keyword(
        "SB_FP_DX", description="X offset from EXCAM centre, FPAM speckle balance (pix)"
    )
    fpam_balance_dy_pix: float = cgi_keyword(
        "SB_FP_DY", description="Y offset from EXCAM centre, FPAM speckle balance (pix)"
    )
    fsam_balance_dx_pix: float = cgi_keyword(
        "SB_FS_DX", description="X offset from EXCAM centre, FSAM speckle balance (pix)"
    )
    fsam_balance_dy_pix: float = cgi_keyword(
        "SB_FS_DY", description="Y offset from EXCAM centre, FSAM speckle balance (pix)"
    )
    lowfsc_1s_valid: bool = cgi_keyword("1SVALID", description="1 s LOWFSC statistics valid")
    z2_avg_nm: float = cgi_keyword("Z2AVG", description="mean Z2 (tip), last second (nm)")
    z2_res_nm: float = cgi_keyword("Z2RES", description="mean Z2 residual, last second (nm)")
    z2_var_nm2: float = cgi_keyword("Z2VAR", description="Z2 variance, last second (nm^2)")
    z3_avg_nm: float = cgi_keyword("Z3AVG", description="mean Z3 (tilt), last second (nm)")
    z3_res_nm: float = cgi_keyword("Z3RES", description="mean Z3 residual, last second (nm)")
    z3_var_nm2: float = cgi_keyword("Z3VAR", description="Z3 variance, last second (nm^2)")
    lowfsc_10s_valid: bool = cgi_keyword("10SVALID", description="10 s LOWFSC statistics valid")
    z4_avg_nm: float = cgi_keyword("Z4AVG", description="Z4 (focus), 10000 frames (nm)")
    z4_res_nm: float = cgi_keyword("Z4RES", description="Z4 residual, 10000 frames (nm)")
    z5_avg_nm: float = cgi_keyword("Z5AVG", description="Z5 (astigmatism), 10000 frames (nm)")
    z5_res_nm: float = cgi_keyword("Z5RES", description="Z5 residual, 10000 frames (nm)")
    z6_avg_nm: float = cgi_keyword("Z6AVG", description="Z6 (astigmatism), 10000 frames (nm)")
    z6_res_nm: float = cgi_keyword("Z6RES", description="Z6 residual, 10000 frames (nm)")
    z7_avg_nm: float = cgi_keyword("Z7AVG", description="Z7 (coma), 10000 frames (nm)")
    z7_res_nm: float = cgi_keyword("Z7RES", description="Z7 residual, 10000 frames (nm)")
    z8_avg_nm: float = cgi_keyword("Z8AVG", description="Z8 (coma), 10000 frames (nm)")
    z8_res_nm: float = cgi_keyword("Z8RES", description="Z8 residual, 10000 frames (nm)")
    z9_avg_nm: float = cgi_keyword("Z9AVG", description="Z9 (trefoil), 10000 frames (nm)")
    z9_res_nm: float = cgi_keyword("Z9RES", description="Z9 residual, 10000 frames (nm)")
    z10_avg_nm: float = cgi_keyword("Z10AVG", description="Z10 (trefoil), 10000 frames (nm)")
    z10_res_nm: float = cgi_keyword("Z10RES", description="Z10 residual, 10000 frames (nm)")
    z11_avg_nm: float = cgi_keyword("Z11AVG", description="Z11 (spherical), 10000 frames (nm)")
    z11_res_nm: float = cgi_keyword("Z11RES", description="Z11 residual, 10000 frames (nm)")
    z12_avg_percent: float = cgi_keyword(
        "Z12AVG", description="Z12 (flux reference), 10000 frames (percent)"
    )
    z13_avg_um: float = cgi_keyword("Z13AVG", description="Z13 (shear X), 10000 frames (um)")
    z14_avg_um: float = cgi_keyword("Z14AVG", description="Z14 (shear Y), 10000 frames (um)")
    keywords_missing: bool = cgi_keyword(
        "MISSING", description="header keywords were missing in telemetry"
    )


class CgiExposure(CgiKeywords):
    """rad ``cgi_exposure``: exposure time, EM gain, readout mode and frame time of a frame."""

    rad_group: ClassVar[str] = "cgi_exposure"

    exptime_s: float = cgi_keyword("EXPTIME", ge=0, description="exposing stage duration (s)")
    em_gain_commanded: float = cgi_keyword("EMGAIN_C", ge=0, description="commanded EM gain")
    em_gain_actual: float = cgi_keyword("EMGAIN_A", ge=0, description="actual EM gain")
    k_gain_e_per_dn: float = cgi_keyword(
        "KGAINPAR", ge=0, description="k gain, DN to electrons (e-/DN)"
    )
    excam_clock_cycles: int = cgi_keyword(
        "CYCLES", ge=0, description="EXCAM clock cycles since boot"
    )
    photon_counting: bool = cgi_keyword("ISPC", description="photon-counting frame")
    frame_time_utc: AwareDatetime = cgi_keyword(
        "FTIMEUTC", description="frame time at readout (UTC)"
    )
    array_type: ArrayType = cgi_keyword(
        "ARRTYPE", description="readout: SCI 2200x1200 or ENG 2200x2200 pixels"
    )
    hv_clock_bias_v: float = cgi_keyword("HVCBIAS", description="HV clock bias (V)")
    readout_mode: ReadoutMode = cgi_keyword("OPMODE", description="EXCAM readout mode")


class CgiOpticalConfig(CgiKeywords):
    """rad ``cgi_optical_config``: the positions of the six precision alignment mechanisms."""

    rad_group: ClassVar[str] = "cgi_optical_config"

    spam_h_um: float = cgi_keyword("SPAM_H", description="SPAM +H position (um)")
    spam_v_um: float = cgi_keyword("SPAM_V", description="SPAM +V position (um)")
    fpam_h_um: float = cgi_keyword("FPAM_H", description="FPAM +H position (um)")
    fpam_v_um: float = cgi_keyword("FPAM_V", description="FPAM +V position (um)")
    lsam_h_um: float = cgi_keyword("LSAM_H", description="LSAM +H position (um)")
    lsam_v_um: float = cgi_keyword("LSAM_V", description="LSAM +V position (um)")
    fsam_h_um: float = cgi_keyword("FSAM_H", description="FSAM +H position (um)")
    fsam_v_um: float = cgi_keyword("FSAM_V", description="FSAM +V position (um)")
    cfam_h_um: float = cgi_keyword("CFAM_H", description="CFAM +H position (um)")
    cfam_v_um: float = cgi_keyword("CFAM_V", description="CFAM +V position (um)")
    dpam_h_um: float = cgi_keyword("DPAM_H", description="DPAM +H position (um)")
    dpam_v_um: float = cgi_keyword("DPAM_V", description="DPAM +V position (um)")


class CgiNamedPositions(CgiKeywords):
    """rad ``cgi_optical_config_named_positions``: the mechanisms' closest named positions."""

    rad_group: ClassVar[str] = "cgi_optical_config_named_positions"

    spam_name: str = cgi_keyword("SPAMNAME", max_length=32, description="SPAM named position")
    fpam_name: str = cgi_keyword("FPAMNAME", max_length=32, description="FPAM named position")
    lsam_name: str = cgi_keyword("LSAMNAME", max_length=32, description="LSAM named position")
    fsam_name: str = cgi_keyword("FSAMNAME", max_length=32, description="FSAM named position")
    cfam_name: str = cgi_keyword("CFAMNAME", max_length=32, description="CFAM named position")
    dpam_name: str = cgi_keyword("DPAMNAME", max_length=32, description="DPAM named position")


class CgiPointing(CgiKeywords):
    """rad ``cgi_pointing``: the planned target and its coordinates (each may be null)."""

    rad_group: ClassVar[str] = "cgi_pointing"

    ra_deg: float | None = cgi_keyword(
        "RA", "primary", default=None, ge=0, lt=360, description="target RA (J2000, deg)"
    )
    dec_deg: float | None = cgi_keyword(
        "DEC", "primary", default=None, ge=-90, le=90, description="target Dec (J2000, deg)"
    )
    ra_pm_mas_per_yr: float | None = cgi_keyword(
        "RAPM", "primary", default=None, description="RA proper motion (mas/yr)"
    )
    dec_pm_mas_per_yr: float | None = cgi_keyword(
        "DECPM", "primary", default=None, description="Dec proper motion (mas/yr)"
    )
    target: str | None = cgi_keyword(
        "TARGET", "primary", default=None, max_length=256, description="target name"
    )
    equinox_yr: float | None = cgi_keyword(
        "EQUINOX", "primary", default=None, description="equinox of the coordinates (yr)"
    )


class CgiRegion(CgiKeywords):
    """rad ``cgi_region``: the sky footprint of an L3/L4 image, for cone searches."""

    rad_group: ClassVar[str] = "cgi_region"

    s_region: str = cgi_keyword(
        "S_REGION",
        pattern=r"^POLYGON ICRS( -?[0-9.]+){6,}$",
        derived="the four image corners through the image HDU's celestial WCS",
        description="footprint: POLYGON ICRS ra dec ... (deg)",
    )


class CgiStates(CgiKeywords):
    """rad ``cgi_states``: FSM profile, planned gain, satellite spots and control loops."""

    rad_group: ClassVar[str] = "cgi_states"

    fsm_profile: FsmProfile = cgi_keyword("FSMPRFL", description="FSM profile loaded")
    em_gain_planned: str | float = cgi_keyword(
        "OPGAIN", "primary", description="planned EM gain, or AUTO (a string of <= 32 chars)"
    )
    satellite_spots: bool = cgi_keyword("SATSPOTS", description="satellite spots commanded")
    howfsc: bool = cgi_keyword("ISHOWFSC", description="collected as part of HOWFSC")
    fcm_loop: LoopState = cgi_keyword(
        "FCMLOOP", description="FCM loop state (FITS 0/1 read as OPEN/CLOSED)"
    )
    dm_zernike_loop: LoopState = cgi_keyword(
        "DMZLOOP", description="DM Zernike loop state (FITS 0/1 read as OPEN/CLOSED)"
    )

    @model_validator(mode="after")
    def _gain_fits_archive(self) -> Self:
        if isinstance(self.em_gain_planned, str) and len(self.em_gain_planned) > 32:
            raise ValueError("OPGAIN is longer than 32 characters")
        return self


class CgiVisit(CgiKeywords):
    """rad ``cgi_visit``: the visit id, its lower-level parts, visit type and PSF-reference flag."""

    rad_group: ClassVar[str] = "cgi_visit"

    visit_id: str = cgi_keyword(
        "VISITID", "primary", pattern=r"^[0-9]{19}$", description="19-digit visit id"
    )
    segment: int = cgi_keyword(
        "SEGMENT", "primary", ge=0, le=999, description="segment (visit id digits 11-13)"
    )
    observation: int = cgi_keyword(
        "OBSNUM", "primary", ge=0, le=999, description="observation (visit id digits 14-16)"
    )
    visit: int = cgi_keyword(
        "VISNUM", "primary", ge=0, le=999, description="visit (visit id digits 17-19)"
    )
    visit_type: VisitType = cgi_keyword("VISTYPE", "primary", description="visit template")
    psf_reference: bool = cgi_keyword(
        "PSFREF", "primary", description="a PSF reference observation"
    )


class CgiAncillaryKeywords(CgiKeywords):
    """rad ``cgi_ancillary``: the type and validity span of an ancillary (calibration) file."""

    rad_group: ClassVar[str] = "cgi_ancillary"

    ancillary_type: str = cgi_keyword(
        "ANCTYPE",
        min_length=1,
        max_length=5,
        derived="corgidrp's suffix for DATATYPE (drk, flt, ...) or the file's _xxx_cal suffix",
        description="ancillary file type",
    )
    start_mjd_utc: float = cgi_keyword(
        "MJDSTART", fits="MJDSRT", ge=0, description="approximate start (MJD, UTC)"
    )
    end_mjd_utc: float = cgi_keyword("MJDEND", ge=0, description="approximate end (MJD, UTC)")

    @model_validator(mode="after")
    def _start_before_end(self) -> Self:
        if self.start_mjd_utc > self.end_mjd_utc:
            raise ValueError(f"MJDSTART {self.start_mjd_utc} is after MJDEND {self.end_mjd_utc}")
        return self


# --- what every record holds besides the keywords -----------------------------------------


class CgiRecipe(MetaModel):
    """One corgidrp recipe that processed the file (from the RECIPE, RECIPE2, ... keywords)."""

    name: str = Field(min_length=1, description="recipe name, e.g. l1_to_l2a_basic")
    steps: list[str] = Field(default_factory=list, description="step names, in order")


class CgiProvenance(Provenance):
    """Provenance of a CGI record: checksummed inputs plus corgidrp's own account of the file."""

    corgidrp_version: str | None = Field(
        None, max_length=128, description="corgidrp version that wrote the file (DRPVERSN)"
    )
    recipes: list[CgiRecipe] = Field(
        default_factory=list, description="corgidrp recipes, oldest first (RECIPE, RECIPE2...)"
    )
    parent_files: list[str] = Field(
        default_factory=list, description="files the header names as sources (FILE0, FILE1...)"
    )


class CgiMeta(ProductMeta):
    """Metadata of every CGI record: ``file_name`` is the FITS file's name (rad ``filename``)."""

    # rad's CGI schemas have no product_type/model_type keywords: kept, but not archived
    product_type: str = Field(description="product type (rad SSC name); not an archive keyword")
    model_type: str = Field(description="roman-schemas class of the record; not archived")
    instrument: Literal["CGI"] = archive("instrument", default="CGI")
    file_name: str = archive(
        "filename",
        max_length=1024,
        pattern=r"^[^/\\]+\.fits$",
        description="name of the FITS file the record describes",
    )
    provenance: CgiProvenance = Field(description="inputs, corgidrp version and recipes")

    @model_validator(mode="after")
    def _groups_agree(self) -> Self:
        common = getattr(self, "common", None)
        visit = getattr(self, "visit", None)
        exposure = getattr(self, "exposure", None)
        if common is not None and visit is not None:
            expected = (
                f"{common.program:05d}{common.execution_plan:02d}{common.campaign:03d}"
                f"{visit.segment:03d}{visit.observation:03d}{visit.visit:03d}"
            )
            if visit.visit_id != expected:
                raise ValueError(
                    f"VISITID {visit.visit_id} disagrees with PROGNUM/EXECNUM/CAMPAIGN/"
                    f"SEGMENT/OBSNUM/VISNUM ({expected})"
                )
        if common is not None and exposure is not None:
            span_s = (common.end_mjd_utc - common.start_mjd_utc) * 86400.0
            if exposure.exptime_s > span_s + MJD_ROUNDING_S:
                raise ValueError(
                    f"EXPTIME {exposure.exptime_s} s exceeds MJDSRT..MJDEND ({span_s:.3f} s)"
                )
        hldp = getattr(self, "hldp", None)
        version = self.provenance.corgidrp_version
        if hldp is not None and version is not None and version != hldp.drp_version:
            raise ValueError(
                f"provenance.corgidrp_version {version!r} != DRPVERSN {hldp.drp_version!r}"
            )
        return self


class CgiLevel1Meta(CgiMeta):
    """Keyword groups of an L1 (raw frame) record: rad ``cgi_level_1``."""

    common: CgiCommon
    l1: CgiL1
    diagnostic: CgiDiagnostic
    exposure: CgiExposure
    optical_config: CgiOpticalConfig
    named_positions: CgiNamedPositions
    pointing: CgiPointing
    states: CgiStates
    visit: CgiVisit


class CgiLevel2aMeta(CgiMeta):
    """Keyword groups of an L2a record: rad ``cgi_level_2a``."""

    common: CgiCommon
    hldp: CgiHldp
    l2a: CgiL2a
    diagnostic: CgiDiagnostic
    exposure: CgiExposure
    optical_config: CgiOpticalConfig
    named_positions: CgiNamedPositions
    pointing: CgiPointing
    states: CgiStates
    visit: CgiVisit


class CgiLevel2bMeta(CgiMeta):
    """Keyword groups of an L2b record: rad ``cgi_level_2b``."""

    common: CgiCommon
    hldp: CgiHldp
    exposure: CgiExposure
    optical_config: CgiOpticalConfig
    named_positions: CgiNamedPositions
    pointing: CgiPointing
    states: CgiStates
    visit: CgiVisit


class CgiLevel3Meta(CgiMeta):
    """Keyword groups of an L3 record: rad ``cgi_level_3``."""

    common: CgiCommon
    hldp: CgiHldp
    optical_config: CgiOpticalConfig
    named_positions: CgiNamedPositions
    pointing: CgiPointing
    region: CgiRegion
    states: CgiStates
    visit: CgiVisit


class CgiLevel4Meta(CgiMeta):
    """Keyword groups of an L4 record: rad ``cgi_level_4``."""

    common: CgiCommon
    l4: CgiL4
    hldp: CgiHldp
    named_positions: CgiNamedPositions
    pointing: CgiPointing
    region: CgiRegion
    states: CgiStates


class CgiAncillaryMeta(CgiMeta):
    """Keyword groups of an ancillary (calibration) file record: rad ``cgi_ancillary``."""

    ancillary: CgiAncillaryKeywords


class FitsFile(MetaModel):
    """The FITS file a record describes, pinned by size and content (name: meta.file_name)."""

    size_bytes: int = Field(
        gt=0, multiple_of=FITS_BLOCK_BYTES, description="file size (bytes, whole FITS blocks)"
    )
    sha256: str = Field(pattern=SHA256_PATTERN, description="sha256 of the file's bytes")


class HduSummary(Table):
    """One row per HDU of the FITS file: name, type, data shape, dtype and data checksum."""

    key_column: ClassVar[str] = "index"

    index: NDArray("int16", 1) = Field(description="HDU index, 0 = primary")
    name: NDArray("U68", 1) = Field(description="EXTNAME ('PRIMARY' for HDU 0, '' if unnamed)")
    hdu_type: NDArray("U8", 1) = Field(description="PRIMARY, IMAGE, BINTABLE or TABLE")
    ndim: NDArray("int16", 1) = Field(description="number of data axes (0: no data)")
    shape: NDArray("int64", 2) = Field(
        description=f"data shape in numpy (C) order, zero-padded to {MAX_HDU_NDIM} axes; "
        "rows for tables"
    )
    dtype: NDArray("U16", 1) = Field(
        description="numpy dtype of the data as read (unsigned/scaling conventions applied); "
        "'record' for tables, '' without data"
    )
    data_sha256: NDArray("U64", 1) = Field(
        description="sha256 of the data bytes as stored (big-endian, without block padding); "
        "'' without data"
    )

    @model_validator(mode="after")
    def _well_formed(self) -> Self:
        n = len(self)
        if n == 0:
            raise ValueError("a FITS file has at least its primary HDU")
        index = np.asarray(self.index)
        if not np.array_equal(index, np.arange(n)):
            raise ValueError(f"HDU indices must be 0..{n - 1} in order, got {index.tolist()}")
        kinds = np.asarray(self.hdu_type).tolist()
        if kinds[0] != "PRIMARY" or "PRIMARY" in kinds[1:]:
            raise ValueError("HDU 0 and only HDU 0 is the PRIMARY HDU")
        unknown = sorted(set(kinds) - {"PRIMARY", "IMAGE", "BINTABLE", "TABLE"})
        if unknown:
            raise ValueError(f"unknown HDU types {unknown}")
        shape = np.asarray(self.shape)
        if shape.shape[1:] != (MAX_HDU_NDIM,):
            raise ValueError(f"shape must have {MAX_HDU_NDIM} columns, got {shape.shape[1:]}")
        columns = (np.asarray(self.ndim).tolist(), np.asarray(self.data_sha256).tolist())
        dtypes = np.asarray(self.dtype).tolist()
        for row, (nd, sha, dtype) in enumerate(zip(*columns, dtypes, strict=True)):
            if not 0 <= nd <= MAX_HDU_NDIM:
                raise ValueError(f"HDU {row}: ndim {nd} outside 0..{MAX_HDU_NDIM}")
            has_data = nd > 0 and bool(np.all(shape[row, :nd] > 0))
            if has_data and not re.fullmatch(SHA256_PATTERN[1:-1], sha):
                raise ValueError(f"HDU {row}: data_sha256 {sha!r} is not a hex sha256")
            if not has_data and (sha or dtype):
                raise ValueError(f"HDU {row} has no data but a dtype or data_sha256")
        return self

    def shape_of(self, index: int) -> tuple[int, ...]:
        """The data shape of HDU ``index`` (empty for no data)."""
        nd = int(np.asarray(self.ndim)[index])
        return tuple(int(x) for x in np.asarray(self.shape)[index, :nd])


class VisitFiles(MetaModel):
    """The visit a file belongs to and the visit's files at the same level (this one included)."""

    visit_id: str = Field(pattern=r"^[0-9]{19}$", description="19-digit visit id")
    file_names: list[str] = Field(min_length=1, description="FITS file names of the visit")

    @model_validator(mode="after")
    def _unique(self) -> Self:
        if len(set(self.file_names)) != len(self.file_names):
            raise ValueError("visit file names repeat")
        return self


# --- the records ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FitsFacts:
    """What ``from_fits_file`` reads from a FITS file: its headers and checksums."""

    headers: list[dict[str, Any]]
    sha256: str
    size_bytes: int
    hdu_sha256: list[str | None]


class CgiRecord(Product):
    """Base of CGI-DM records: one FITS file's archive keywords, checksums, HDUs, provenance."""

    system: ClassVar[str] = "cgi"
    #: the DATALVL values (image HDU) a file of this record's level carries
    data_levels: ClassVar[tuple[str, ...]]
    #: a processed level: corgidrp made it, so its version, recipe and inputs are required
    processed: ClassVar[bool] = True
    #: the keywords the archive's file_date is read from, first found wins
    file_date_keywords: ClassVar[tuple[str, ...]] = ("DRPCTIME", "FILETIME")

    meta: CgiMeta
    fits: FitsFile = Field(description="the FITS file's size and sha256")
    hdus: HduSummary = Field(description="per-HDU summary with data checksums")

    @model_validator(mode="after")
    def _record_rules(self) -> Self:
        provenance = self.meta.provenance
        if self.processed:
            if provenance.corgidrp_version is None:
                raise ValueError(f"a {self.product_type} record names its corgidrp version")
            if not provenance.recipes:
                raise ValueError(f"a {self.product_type} record names its corgidrp recipe")
            if not provenance.inputs:
                raise ValueError(f"a {self.product_type} record names its inputs with their sha256")
        visit_files = getattr(self, "visit_files", None)
        if visit_files is not None:
            if self.meta.file_name not in visit_files.file_names:
                raise ValueError(
                    f"visit_files does not list the record's own file {self.meta.file_name}"
                )
            visit = getattr(self.meta, "visit", None)
            if visit is not None and visit.visit_id != visit_files.visit_id:
                raise ValueError(
                    f"visit_files.visit_id {visit_files.visit_id} != VISITID {visit.visit_id}"
                )
            common = getattr(self.meta, "common", None)
            prefix = (
                f"{common.program:05d}{common.execution_plan:02d}{common.campaign:03d}"
                if common is not None
                else ""
            )
            if not visit_files.visit_id.startswith(prefix):
                raise ValueError(
                    f"visit {visit_files.visit_id} is not in program/execution/campaign {prefix}"
                )
        return self

    def archive_keywords(self) -> dict[str, Any]:
        """The archive keywords; rad requires every CGI keyword, so a null one is sent as null."""
        keywords = super().archive_keywords()
        for group_name in self.keyword_groups():
            group = getattr(self.meta, group_name)
            for name, field in type(group).model_fields.items():
                if getattr(group, name) is None:
                    keywords[str(field.json_schema_extra["archive"])] = None  # type: ignore[index]
        return keywords

    # -- FITS sources ----------------------------------------------------------------------
    @classmethod
    def meta_class(cls) -> type[CgiMeta]:
        """The metadata class of this record type."""
        return cls.model_fields["meta"].annotation  # type: ignore[return-value]

    @classmethod
    def keyword_groups(cls) -> dict[str, type[CgiKeywords]]:
        """Meta field name → the rad keyword group model it holds, in rad's order."""
        groups = {}
        for name, field in cls.meta_class().model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, CgiKeywords):
                groups[name] = annotation
        return groups

    @classmethod
    def fits_sources(cls) -> dict[str, FitsSource]:
        """Archive keyword → where its value is read from in the FITS file."""
        file_date = "/".join(cls.file_date_keywords)
        sources = {
            "filename": FitsSource(None, None, "the name of the file ingested"),
            "file_date": FitsSource(None, None, f"{file_date} (UTC), first found"),
            "instrument": FitsSource("primary", "INSTRUME"),
            "origin": FitsSource("primary", "ORIGIN", "IPAC/SSC when absent"),
        }
        for group in cls.keyword_groups().values():
            for field in group.model_fields.values():
                extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
                sources[str(extra["archive"])] = FitsSource(
                    extra["fits_hdu"], extra["fits_keyword"], str(extra["fits_derived"])
                )
        return sources

    # -- building a record from FITS -------------------------------------------------------
    @classmethod
    def from_fits_header(
        cls,
        header_by_hdu: Mapping[Any, Mapping[str, Any]] | Sequence[Mapping[str, Any]],
        file_name: str,
        sha256: str,
        *,
        size_bytes: int,
        hdu_sha256: Sequence[str | None],
        visit_files: Sequence[str] | None = None,
        inputs: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        inherited: Mapping[str, Any] | None = None,
        file_date: datetime | None = None,
        step: str = "cgi_dm.ingest",
        task_id: str | None = None,
        processing_id: str = "r01",
    ) -> Self:
        """The record of one FITS file from its headers (plain dicts, in HDU order).

        ``header_by_hdu`` holds every HDU's header, primary first (a mapping's keys are only
        names; its order is the HDU order). Each archive keyword is read from its FITS
        keyword (see :meth:`fits_sources`), from its own HDU first, then the other of the
        primary and image headers, and normalised: visit id parts "02000" → 2000, flags 0/1
        → bools, loop states 0/1 → OPEN/CLOSED, FITS times (UTC, often without a zone) →
        aware datetimes. Empty strings and corgidrp's -999 ("cannot be merged") count as
        absent: optional keywords become null, others are derived where rad's keyword is
        computable (ANCTYPE, S_REGION, polarimetric FLXCALFN) or taken from ``inherited``.

        ``overrides`` (archive keyword → value) wins over the header. ``inherited`` (archive
        keyword → value, e.g. the parent L1 record's ``archive_keywords()``) fills keywords
        the header lacks: corgidrp drops LOCAMT and CYCLES after L1, which rad requires at
        L2a/L2b. ``hdu_sha256`` is each HDU's data sha256 (None without data), ``inputs``
        maps input file names to their sha256, ``visit_files`` lists the visit's files
        (default: this file alone).
        """
        headers = _normalised_headers(header_by_hdu)
        subject = f"{cls.product_type} {file_name}"
        overrides = dict(overrides or {})
        level = _lookup(headers, "image", "DATALVL")
        if level is not None and str(level).strip() not in cls.data_levels:
            raise ProductValidationError(
                subject,
                f"DATALVL is {level!r}; a {cls.product_type} record needs {cls.data_levels}",
            )
        instrument = _lookup(headers, "primary", "INSTRUME")
        if instrument is not None and str(instrument).strip().upper() != "CGI":
            raise ProductValidationError(subject, f"INSTRUME is {instrument!r}, not CGI")

        groups: dict[str, dict[str, Any]] = {}
        missing = []
        for group_name, group in cls.keyword_groups().items():
            values: dict[str, Any] = {}
            for field_name, field in group.model_fields.items():
                extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
                keyword = str(extra["archive"])
                if keyword in overrides:
                    value = _from_fits(keyword, overrides.pop(keyword), field.annotation)
                else:
                    value = _present(_lookup(headers, extra["fits_hdu"], extra["fits_keyword"]))
                    if value is None and keyword in _DERIVED:
                        value = _present(_DERIVED[keyword](headers, file_name))
                    if value is None and inherited:
                        value = _present(inherited.get(keyword))
                    value = _from_fits(keyword, value, field.annotation)
                if value is None and field.is_required():
                    missing.append(f"{extra['fits_keyword']} ({extra['fits_hdu']} HDU)")
                    continue
                values[field_name] = value
            groups[group_name] = values
        if overrides:
            raise ProductValidationError(
                subject, f"overrides name keywords this record lacks: {sorted(overrides)}"
            )
        if missing:
            raise ProductValidationError(
                subject,
                f"FITS keywords missing: {', '.join(missing)} (supply them with overrides= "
                "or, for values corgidrp drops after L1, inherited=<parent record keywords>)",
            )

        try:
            file_date = file_date or _file_date(headers, cls.file_date_keywords)
            if file_date is None:
                raise ValueError(f"no file date: none of {cls.file_date_keywords}; pass file_date")
            return cls._assemble(
                headers,
                file_name,
                sha256,
                size_bytes=size_bytes,
                hdu_sha256=hdu_sha256,
                groups=groups,
                file_date=file_date,
                visit_files=visit_files,
                inputs=inputs,
                step=step,
                task_id=task_id,
                processing_id=processing_id,
            )
        except ValidationError as exc:
            raise ProductValidationError(subject, first_error(exc)) from None
        except ValueError as exc:
            raise ProductValidationError(subject, str(exc)) from None

    @classmethod
    def _assemble(
        cls,
        headers: list[dict[str, Any]],
        file_name: str,
        sha256: str,
        *,
        size_bytes: int,
        hdu_sha256: Sequence[str | None],
        groups: dict[str, dict[str, Any]],
        file_date: datetime,
        visit_files: Sequence[str] | None,
        inputs: Mapping[str, str] | None,
        step: str,
        task_id: str | None,
        processing_id: str,
    ) -> Self:
        """The record from keyword group values already read (raises pydantic's errors)."""
        image = headers[1] if len(headers) > 1 else {}
        drp_version = _lookup(headers, "image", "DRPVERSN")
        provenance = CgiProvenance(
            step=step,
            inputs=[InputFile(uri=n, sha256=s) for n, s in (inputs or {}).items()],
            task_id=task_id,
            corgidrp_version=None if drp_version is None else str(drp_version),
            recipes=_recipes(image),
            parent_files=_parent_files(image),
        )
        origin = _lookup(headers, "primary", "ORIGIN")
        meta = cls.new_meta(
            file_name=file_name,
            file_date=file_date,
            processing_id=processing_id,
            software_versions={"roman-schemas": version("roman-schemas")},
            provenance=provenance,
            **({"origin": str(origin).strip()} if origin else {}),
            **groups,
        )
        fields: dict[str, Any] = {
            "meta": meta,
            "fits": {"size_bytes": size_bytes, "sha256": sha256},
            "hdus": _hdu_summary(headers, hdu_sha256),
        }
        if "visit_files" in cls.model_fields:
            visit_id = _lookup(headers, "primary", "VISITID")
            if visit_id is not None:
                fields["visit_files"] = {
                    "visit_id": _from_fits("VISITID", visit_id, str),
                    "file_names": list(visit_files or [file_name]),
                }
        return cls.model_validate(fields)

    @classmethod
    def from_fits_file(cls, path: str | Path, **kwargs: Any) -> Self:
        """The record of the FITS file at ``path`` (checksums computed, headers read).

        Keyword arguments are those of :meth:`from_fits_header` after ``size_bytes`` and
        ``hdu_sha256``, which come from the file.
        """
        facts = read_fits_facts(path)
        return cls.from_fits_header(
            facts.headers,
            Path(path).name,
            facts.sha256,
            size_bytes=facts.size_bytes,
            hdu_sha256=facts.hdu_sha256,
            **kwargs,
        )

    @classmethod
    def example(cls) -> Self:
        """A small, valid record of a plausible file of this level (docs and tests).

        Built from corgidrp-style headers through :meth:`from_fits_header`; the file and
        data checksums are those of placeholder strings, as no file exists.
        """
        level = cls.data_levels[0]
        headers = example_headers(level)
        file_name = headers[0]["FILENAME"]
        hdu_sha256 = [
            _placeholder_sha256(f"{file_name}[{i}]") if _data_bytes(h) else None
            for i, h in enumerate(headers)
        ]
        sources = _EXAMPLE_INPUTS[level]
        siblings = [file_name.replace(_EXAMPLE_TIME, t) for t in _EXAMPLE_SIBLING_TIMES]
        return cls.from_fits_header(
            headers,
            file_name,
            _placeholder_sha256(file_name),
            size_bytes=_fits_size(headers),
            hdu_sha256=hdu_sha256,
            inputs={name: _placeholder_sha256(name) for name in sources},
            visit_files=[file_name, *siblings],
            task_id="example-task",
        )


class CgiLevel1(CgiRecord):
    """Record of a CGI L1 file: one raw EXCAM frame as SSC's CDMS wrote it."""

    product_type: ClassVar[str] = "cgi_level_1"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = f"{RAD_CGI}/cgi_level_1-1.0.0"
    data_levels: ClassVar[tuple[str, ...]] = ("L1",)
    processed: ClassVar[bool] = False
    file_date_keywords: ClassVar[tuple[str, ...]] = ("FILETIME",)

    meta: CgiLevel1Meta
    visit_files: VisitFiles = Field(description="the visit of the frame and its L1 files")


class CgiLevel2a(CgiRecord):
    """Record of a CGI L2a file: a frame corgidrp bias-subtracted and corrected (in DN)."""

    product_type: ClassVar[str] = "cgi_level_2a"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = f"{RAD_CGI}/cgi_level_2a-1.0.0"
    data_levels: ClassVar[tuple[str, ...]] = ("L2a",)

    meta: CgiLevel2aMeta
    visit_files: VisitFiles = Field(description="the visit of the frame and its L2a files")


class CgiLevel2b(CgiRecord):
    """Record of a CGI L2b file: a calibrated frame in photoelectrons."""

    product_type: ClassVar[str] = "cgi_level_2b"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = f"{RAD_CGI}/cgi_level_2b-1.0.0"
    data_levels: ClassVar[tuple[str, ...]] = ("L2b",)

    meta: CgiLevel2bMeta
    visit_files: VisitFiles = Field(description="the visit of the frame and its L2b files")


class CgiLevel3(CgiRecord):
    """Record of a CGI L3 file: an image with a celestial WCS, in photoelectrons per second."""

    product_type: ClassVar[str] = "cgi_level_3"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = f"{RAD_CGI}/cgi_level_3-1.0.0"
    data_levels: ClassVar[tuple[str, ...]] = ("L3",)

    meta: CgiLevel3Meta
    visit_files: VisitFiles = Field(description="the visit of the image and its L3 files")


class CgiLevel4(CgiRecord):
    """Record of a CGI L4 file: a high-level product (PSF-subtracted, flux-calibrated)."""

    product_type: ClassVar[str] = "cgi_level_4"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = f"{RAD_CGI}/cgi_level_4-1.0.0"
    data_levels: ClassVar[tuple[str, ...]] = ("L4",)

    meta: CgiLevel4Meta
    visit_files: VisitFiles | None = Field(
        None, description="the science visit the product comes from, when it is one visit"
    )


class CgiAncillary(CgiRecord):
    """Record of a CGI ancillary file: a calibration product (dark, flat, k gain, ...)."""

    product_type: ClassVar[str] = "cgi_ancillary"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = f"{RAD_CGI}/cgi_ancillary-1.0.0"
    data_levels: ClassVar[tuple[str, ...]] = ("CAL", "CalibrationProduct")
    processed: ClassVar[bool] = False  # ancillary files may come from outside corgidrp

    meta: CgiAncillaryMeta


CGI_RECORDS: tuple[type[CgiRecord], ...] = (
    CgiLevel1,
    CgiLevel2a,
    CgiLevel2b,
    CgiLevel3,
    CgiLevel4,
    CgiAncillary,
)


def record_class(
    header_by_hdu: Mapping[Any, Mapping[str, Any]] | Sequence[Mapping[str, Any]],
) -> type[CgiRecord]:
    """The record class of a CGI FITS file, chosen by its DATALVL keyword."""
    level = _lookup(_normalised_headers(header_by_hdu), "image", "DATALVL")
    for cls in CGI_RECORDS:
        if level is not None and str(level).strip() in cls.data_levels:
            return cls
    raise ProductValidationError("CGI FITS file", f"no record type for DATALVL {level!r}")


# --- reading FITS headers ---------------------------------------------------------------------


def _normalised_headers(
    header_by_hdu: Mapping[Any, Mapping[str, Any]] | Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    items = header_by_hdu.values() if isinstance(header_by_hdu, Mapping) else header_by_hdu
    return [{str(k).strip().upper(): v for k, v in dict(h).items()} for h in items]


def _lookup(headers: list[dict[str, Any]], hdu: HduRole | None, keyword: str | None) -> Any:
    """The value of ``keyword`` in its HDU, else in the other of the primary/image headers."""
    if keyword is None or hdu is None:
        return None
    first = _HDU_INDEX[hdu]
    for index in (first, 1 - first):
        if index < len(headers) and keyword in headers[index]:
            value = headers[index][keyword]
            if value is not None:
                return value
    return None


#: corgidrp's value for a keyword it could not merge across frames (check.merge_headers)
CORGIDRP_INVALID = -999


def _present(value: Any) -> Any:
    """``value``, or None when a header says "no value": empty, or corgidrp's -999."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        return None if text in ("", str(CORGIDRP_INVALID)) else value
    if isinstance(value, (int, float)) and value == CORGIDRP_INVALID:
        return None
    return value


def _fits_time(value: Any) -> datetime | None:
    """A FITS time string (UTC, zone often omitted) as an aware UTC datetime."""
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    if not text:
        return None
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


#: the HDU corgidrp writes each file-date keyword in
_FILE_DATE_HDU: dict[str, HduRole] = {"DRPCTIME": "image", "FILETIME": "primary"}


def _file_date(headers: list[dict[str, Any]], keywords: Sequence[str]) -> datetime | None:
    """The first of ``keywords`` present, as a UTC time."""
    for keyword in keywords:
        value = _fits_time(_present(_lookup(headers, _FILE_DATE_HDU[keyword], keyword)))
        if value is not None:
            return value
    return None


def _loop_state(value: Any) -> Any:
    text = str(value).strip().upper()
    return {"0": "OPEN", "1": "CLOSED", "FALSE": "OPEN", "TRUE": "CLOSED"}.get(text, text)


def _from_fits(keyword: str, value: Any, annotation: Any) -> Any:
    """A FITS header value in the form the record field takes."""
    if value is None:
        return None
    if keyword in ("FCMLOOP", "DMZLOOP"):
        return _loop_state(value)
    if isinstance(value, str):
        value = value.strip()
    if annotation is AwareDatetime or (isinstance(annotation, type) and annotation is datetime):
        try:
            return _fits_time(value)
        except ValueError:
            return value  # the model names the bad value
    if keyword == "VISITID" and isinstance(value, int) and not isinstance(value, bool):
        return f"{value:019d}"  # a visit id written as a number lost its leading zeros
    if annotation in (str, str | None) and isinstance(value, (int, float)):
        return str(value)
    return value


def _anctype(headers: list[dict[str, Any]], file_name: str) -> str | None:
    datatype = _lookup(headers, "image", "DATATYPE")
    if datatype is not None and str(datatype).strip() in CORGIDRP_CALIBRATION_TYPES:
        return CORGIDRP_CALIBRATION_TYPES[str(datatype).strip()]
    match = re.search(r"_([a-z0-9]{1,5})_cal\.fits$", file_name)
    return match.group(1) if match else None


def _polarimetric_flux_cal(headers: list[dict[str, Any]], file_name: str) -> str | None:
    files = [_lookup(headers, "image", k) for k in ("FLXCLF0", "FLXCLF45")]
    return ",".join(str(f).strip() for f in files) if all(files) else None


def _s_region(headers: list[dict[str, Any]], file_name: str) -> str | None:
    """POLYGON ICRS of the image corners through the image header's celestial WCS."""
    if len(headers) < 2:
        return None
    header = headers[1]
    wcs_keys = re.compile(
        r"^(NAXIS\d?|WCSAXES|CTYPE\d|CRVAL\d|CRPIX\d|CDELT\d|CUNIT\d|CD\d_\d|PC\d_\d|"
        r"RADESYS|LONPOLE|LATPOLE)$"
    )
    wcs_header = {k: v for k, v in header.items() if wcs_keys.match(k)}
    if not str(wcs_header.get("CTYPE1", "")).startswith("RA--"):
        return None
    import warnings

    from astropy.wcs import WCS, FITSFixedWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(wcs_header, naxis=2)
            if abs(np.linalg.det(wcs.pixel_scale_matrix)) == 0:
                return None  # corgidrp's mock headers carry an all-zero CD matrix
            corners = wcs.calc_footprint(axes=(int(header["NAXIS1"]), int(header["NAXIS2"])))
    except Exception:  # a WCS that wcslib refuses (singular, inconsistent) gives no footprint
        return None
    points = " ".join(f"{ra % 360:.9f} {dec:.9f}" for ra, dec in corners)
    return f"POLYGON ICRS {points}"


#: archive keyword → how its value is computed when the FITS keyword is absent
_DERIVED: dict[str, Callable[[list[dict[str, Any]], str], Any]] = {
    "ANCTYPE": _anctype,
    "FLXCALFN": _polarimetric_flux_cal,
    "S_REGION": _s_region,
}


def _recipes(header: Mapping[str, Any]) -> list[CgiRecipe]:
    count = int(header.get("NRECIPES", 1) or 1)
    recipes = []
    for i in range(1, count + 1):
        value = header.get("RECIPE" if i == 1 else f"RECIPE{i}")
        if value is None or not str(value).strip():
            continue
        try:
            recipe = json.loads(str(value))
        except json.JSONDecodeError:
            recipes.append(CgiRecipe(name=str(value).strip()))
            continue
        if isinstance(recipe, dict):
            steps = [str(s.get("name", "")) for s in recipe.get("steps", []) if isinstance(s, dict)]
            recipes.append(CgiRecipe(name=str(recipe.get("name", "unnamed")), steps=steps))
    return recipes


def _parent_files(header: Mapping[str, Any]) -> list[str]:
    found = []
    for key, value in header.items():
        match = re.fullmatch(r"(?:HIERARCH )?FILE(\d+)", key)
        if match and value is not None and str(value).strip():
            found.append((int(match.group(1)), str(value).strip().strip('"')))
    return [name for _, name in sorted(found)]


_BITPIX_DTYPE = {8: "uint8", 16: "int16", 32: "int32", 64: "int64", -32: "float32", -64: "float64"}
_UNSIGNED = {(8, -128): "int8", (16, 32768): "uint16", (32, 2**31): "uint32", (64, 2**63): "uint64"}


def _data_bytes(header: Mapping[str, Any]) -> int:
    """Bytes of an HDU's data as stored (the FITS standard's formula, without padding)."""
    naxis = int(header.get("NAXIS", 0) or 0)
    if naxis == 0:
        return 0
    axes = [int(header.get(f"NAXIS{i}", 0) or 0) for i in range(1, naxis + 1)]
    bitpix = abs(int(header.get("BITPIX", 8)))
    gcount = int(header.get("GCOUNT", 1) or 1)
    pcount = int(header.get("PCOUNT", 0) or 0)
    return bitpix // 8 * gcount * (pcount + math.prod(axes))


def _hdu_summary(headers: list[dict[str, Any]], hdu_sha256: Sequence[str | None]) -> HduSummary:
    if len(hdu_sha256) != len(headers):
        raise ValueError(f"{len(hdu_sha256)} HDU checksums for {len(headers)} HDUs")
    rows: dict[str, list[Any]] = {c: [] for c in HduSummary.model_fields}
    for i, header in enumerate(headers):
        kind = "PRIMARY" if i == 0 else str(header.get("XTENSION", "IMAGE")).strip().upper()
        kind = "TABLE" if kind == "A3DTABLE" else kind
        naxis = int(header.get("NAXIS", 0) or 0)
        axes = [int(header.get(f"NAXIS{k}", 0) or 0) for k in range(1, naxis + 1)]
        if kind in ("BINTABLE", "TABLE"):
            shape = [axes[1]] if naxis >= 2 else []
            dtype = "record" if shape and shape[0] > 0 else ""
        else:
            shape = axes[::-1]
            bitpix = int(header.get("BITPIX", 8))
            bscale, bzero = header.get("BSCALE", 1) or 1, header.get("BZERO", 0) or 0
            if bscale == 1 and (bitpix, bzero) in _UNSIGNED:
                dtype = _UNSIGNED[(bitpix, bzero)]
            elif bscale != 1 or bzero != 0:
                dtype = "float32" if abs(bitpix) <= 16 else "float64"
            else:
                dtype = _BITPIX_DTYPE[bitpix]
            dtype = dtype if shape and all(shape) else ""
        if len(shape) > MAX_HDU_NDIM:
            raise ValueError(f"HDU {i} has {len(shape)} axes; at most {MAX_HDU_NDIM} recorded")
        rows["index"].append(i)
        rows["name"].append("PRIMARY" if i == 0 else str(header.get("EXTNAME", "")).strip())
        rows["hdu_type"].append(kind)
        rows["ndim"].append(len(shape))
        rows["shape"].append(shape + [0] * (MAX_HDU_NDIM - len(shape)))
        rows["dtype"].append(dtype)
        rows["data_sha256"].append(hdu_sha256[i] or "")
    return HduSummary(
        index=np.array(rows["index"], dtype="int16"),
        name=np.array(rows["name"], dtype="U68"),
        hdu_type=np.array(rows["hdu_type"], dtype="U8"),
        ndim=np.array(rows["ndim"], dtype="int16"),
        shape=np.array(rows["shape"], dtype="int64").reshape(len(headers), MAX_HDU_NDIM),
        dtype=np.array(rows["dtype"], dtype="U16"),
        data_sha256=np.array(rows["data_sha256"], dtype="U64"),
    )


def read_fits_facts(path: str | Path, chunk_bytes: int = 1 << 22) -> FitsFacts:
    """The headers (plain dicts), file sha256 and size, and each HDU's data sha256 of a FITS file.

    Data checksums are over the data bytes exactly as stored (no scaling, no block padding),
    read straight from the file at the offsets astropy reports; no data array is loaded.
    """
    from astropy.io import fits  # imported here: roman-schemas stays light at import time

    path = Path(path)
    with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
        headers = [_header_dict(hdu.header, fits) for hdu in hdul]
        offsets = [hdul.fileinfo(i)["datLoc"] for i in range(len(hdul))]
    file_hash = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            file_hash.update(block)
        size = handle.tell()
        hdu_sha256: list[str | None] = []
        for header, offset in zip(headers, offsets, strict=True):
            remaining = _data_bytes(header)
            if remaining == 0:
                hdu_sha256.append(None)
                continue
            data_hash = hashlib.sha256()
            handle.seek(offset)
            while remaining > 0:
                block = handle.read(min(chunk_bytes, remaining))
                if not block:
                    raise ValueError(f"{path.name}: data of an HDU runs past the end of file")
                data_hash.update(block)
                remaining -= len(block)
            hdu_sha256.append(data_hash.hexdigest())
    return FitsFacts(headers, file_hash.hexdigest(), size, hdu_sha256)


def _header_dict(header: Any, fits: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in header.items():
        if key in ("", "COMMENT", "HISTORY"):
            continue
        out[key] = None if isinstance(value, fits.card.Undefined) else value
    return out


# --- examples -------------------------------------------------------------------------------

_EXAMPLE_VISIT = "0200001001001001001"
_EXAMPLE_TIME = "20270315t0158492"
_EXAMPLE_SIBLING_TIMES = ("20270315t0159192", "20270315t0159492")
_EXAMPLE_STEM = f"cgi_{_EXAMPLE_VISIT}_{_EXAMPLE_TIME}"


def _placeholder_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _fits_size(headers: list[dict[str, Any]]) -> int:
    """A plausible FITS file size: each header (cards + END) and data padded to blocks."""
    blocks = 0
    for header in headers:
        blocks += -(-(len(header) + 1) * 80 // FITS_BLOCK_BYTES)
        blocks += -(-_data_bytes(header) // FITS_BLOCK_BYTES)
    return blocks * FITS_BLOCK_BYTES


def _image_hdu(bitpix: int, shape: tuple[int, ...], name: str, **more: Any) -> dict[str, Any]:
    header = {"XTENSION": "IMAGE", "BITPIX": bitpix, "NAXIS": len(shape)}
    header.update({f"NAXIS{i + 1}": n for i, n in enumerate(reversed(shape))})
    header.update({"PCOUNT": 0, "GCOUNT": 1, "EXTNAME": name, **more})
    return header


_EXAMPLE_INPUTS: dict[str, list[str]] = {
    "L1": [],
    "L2a": [f"{_EXAMPLE_STEM}_l1_.fits"],
    "L2b": [f"{_EXAMPLE_STEM}_l2a.fits"],
    "L3": [f"{_EXAMPLE_STEM}_l2b.fits"],
    "L4": [
        f"{_EXAMPLE_STEM}_l3_.fits",
        f"cgi_{_EXAMPLE_VISIT}_{_EXAMPLE_SIBLING_TIMES[0]}_l3_.fits",
    ],
    "CAL": [
        f"{_EXAMPLE_STEM}_l2a.fits",
        f"cgi_{_EXAMPLE_VISIT}_{_EXAMPLE_SIBLING_TIMES[0]}_l2a.fits",
    ],
}


def example_headers(level: str) -> list[dict[str, Any]]:
    """corgidrp-style headers (primary, image, ...) of a plausible CGI file of ``level``.

    ``level`` is a DATALVL: L1, L2a, L2b, L3, L4 or CAL (a dark). The keywords follow
    corgidrp's L1 header specification and the keywords its steps add at each level.
    """
    start = "2027-03-15T01:58:49.200"
    primary: dict[str, Any] = {
        "SIMPLE": True, "BITPIX": 8, "NAXIS": 0, "EXTEND": True,
        "VISITID": _EXAMPLE_VISIT, "CDMSVERS": "2.1.0", "FSWDVERS": "1.1.5.1",
        "TELESCOP": "ROMAN", "INSTRUME": "CGI", "DETECTOR": "EXCAM", "ORIGIN": "SSC",
        "FILETIME": "2027-03-15T03:12:07.415", "DATAVERS": 1,
        "PROGNUM": "02000", "EXECNUM": "01", "CAMPAIGN": "001", "SEGMENT": "001",
        "OBSNUM": "001", "VISNUM": "001", "VISTYPE": "CGIVST_TDD_OBS",
        "TARGET": "HD 209458", "RA": 330.794887, "DEC": 18.884318, "EQUINOX": 2000.0,
        "RAPM": 29.01, "DECPM": -17.92, "PSFREF": 0, "OPGAIN": "1000", "PHTCNT": "AUTO",
        "FILENAME": f"{_EXAMPLE_STEM}_l1_.fits",
    }  # fmt: skip
    image: dict[str, Any] = {
        "XTENSION": "IMAGE", "BITPIX": 16, "NAXIS": 2, "NAXIS1": 2200, "NAXIS2": 1200,
        "PCOUNT": 0, "GCOUNT": 1, "BSCALE": 1, "BZERO": 32768, "BUNIT": "DN",
        "ARRTYPE": "SCI", "SCTSRT": "2027-03-15T01:58:49", "SCTEND": "2027-03-15T01:59:19",
        "ISHOWFSC": 0, "ISACQ": 0, "SATSPOTS": False, "HVCBIAS": 21, "OPMODE": "ACQUIRE_SCIENCE",
        "EXPTIME": 30.0, "EMGAIN_C": 1000.0, "EXCAMT": -89.97, "LOCAMT": -20.4,
        "EMGAIN_A": 998.2, "KGAINPAR": 8.7, "CYCLES": 102384795120, "OVEREXP": 0, "ISPC": 0,
        "PROXET": 12.3, "FCMLOOP": "1", "FSMPRFL": "NFOV", "FSMX": 0.42, "FSMY": -0.31,
        "EACQ_ROW": 512.0, "EACQ_COL": 512.0, "SB_FP_DX": 0.12, "SB_FP_DY": -0.08,
        "SB_FS_DX": 0.0, "SB_FS_DY": 0.0, "DMZLOOP": "1", "1SVALID": 1,
        "Z2AVG": 0.11, "Z2RES": 0.02, "Z2VAR": 0.013, "Z3AVG": -0.07, "Z3RES": 0.01,
        "Z3VAR": 0.011, "10SVALID": 1, "Z4AVG": 0.21, "Z4RES": 0.03, "Z5AVG": 0.05,
        "Z5RES": 0.01, "Z6AVG": -0.04, "Z6RES": 0.01, "Z7AVG": 0.02, "Z7RES": 0.005,
        "Z8AVG": -0.01, "Z8RES": 0.004, "Z9AVG": 0.006, "Z9RES": 0.002, "Z10AVG": -0.003,
        "Z10RES": 0.001, "Z11AVG": 0.012, "Z11RES": 0.003, "Z12AVG": 0.4, "Z13AVG": 0.02,
        "Z14AVG": -0.01,
        "SPAM_H": 26.0, "SPAM_V": 26.5, "SPAMNAME": "OPEN", "FPAM_H": 6757.2,
        "FPAM_V": 22424.0, "FPAMNAME": "HLC12_C2R1", "LSAM_H": 36936.0, "LSAM_V": 30449.0,
        "LSAMNAME": "NFOV", "FSAM_H": 29387.0, "FSAM_V": 12238.0, "FSAMNAME": "R1C1",
        "CFAM_H": 55829.0, "CFAM_V": 10002.7, "CFAMNAME": "1F", "DPAM_H": 38917.0,
        "DPAM_V": 26016.0, "DPAMNAME": "IMAGING",
        "DATETIME": start, "FTIMEUTC": "2027-03-15T01:59:19.200",
        "MJDSRT": 61479.082513889, "MJDEND": 61479.082861111,
        "FILE0": f"{_EXAMPLE_STEM}_l0_.fits", "DATALVL": "L1", "MISSING": 0,
    }  # fmt: skip
    if level == "L1":
        return [primary, image]
    recipe_name = {"L2a": "l1_to_l2a_basic", "L2b": "l2a_to_l2b", "L3": "l2b_to_l3"}
    recipe_name |= {"L4": "l3_to_l4", "CAL": "build_trad_dark_image"}
    steps = {"L2a": ["prescan_biassub", "detect_cosmic_rays", "correct_nonlinearity"]}
    step_names = steps.get(level, ["save"])
    recipe = json.dumps({"name": recipe_name[level], "steps": [{"name": s} for s in step_names]})
    primary |= {"ORIGIN": "DRP", "FILENAME": f"{_EXAMPLE_STEM}_{level.lower():_<3}.fits"}
    image |= {
        "BITPIX": -32, "NAXIS1": 1024, "NAXIS2": 1024, "DATALVL": level,
        "DESMEAR": False, "CTI_CORR": False, "IS_BAD": False, "RECIPE": recipe,
        "DRPVERSN": "5.1.1", "DRPCTIME": "2027-03-16T10:04:31.118",
    }  # fmt: skip
    del image["BSCALE"], image["BZERO"]
    err = _image_hdu(-32, (1, 1024, 1024), "ERR", TRK_ERRS=False, LAYER_1="combined_error")
    dq = _image_hdu(16, (1024, 1024), "DQ", BSCALE=1, BZERO=32768)
    if level == "L2a":
        return [primary, image, err, dq, _image_hdu(-32, (1024,), "BIAS")]
    image |= {"BUNIT": "photoelectron", "KGAIN_ER": 0.2, "RN": 110.0, "RN_ERR": 4.0}
    if level == "L2b":
        return [primary, image, err, dq]
    if level == "CAL":
        primary["FILENAME"] = f"{_EXAMPLE_STEM}_drk_cal.fits"
        image |= {
            "DATALVL": "CAL", "DATATYPE": "Dark", "DRPNFILE": 2,
            "FILE0": _EXAMPLE_INPUTS["CAL"][0], "FILE1": _EXAMPLE_INPUTS["CAL"][1],
        }  # fmt: skip
        image["MJDEND"] = 61479.083203704  # the last input frame's end
        return [primary, image, err, dq]
    image |= {
        "BUNIT": "photoelectron/s", "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN",
        "CRPIX1": 512.5, "CRPIX2": 512.5, "CRVAL1": 330.794887, "CRVAL2": 18.884318,
        "CD1_1": -6.0556e-6, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 6.0556e-6,
        "NORTHANG": 0.0, "PLTSCALE": 21.8,
    }  # fmt: skip
    if level == "L3":
        return [primary, image, err, dq]
    primary["KLIP_ALG"] = "ADI+RDI"
    image |= {
        "NAXIS": 3, "NAXIS3": 3, "NUM_FR": 2, "DRPNFILE": 2,
        "FILE0": _EXAMPLE_INPUTS["L4"][0], "FILE1": _EXAMPLE_INPUTS["L4"][1],
        "PSFSUB": "pyKLIP", "PYKLIPV": "2.8.1", "STARLOCX": 512.0, "STARLOCY": 512.0,
        "CTCALFN": f"cgi_{_EXAMPLE_VISIT}_20270301t1200000_ctp_cal.fits",
        "FLXCALFN": f"cgi_{_EXAMPLE_VISIT}_20270301t1200000_abf_cal.fits",
        "MJDEND": 61479.083203704,
    }  # fmt: skip
    err = _image_hdu(-32, (1, 3, 1024, 1024), "ERR", LAYER_1="combined_error")
    dq = _image_hdu(16, (3, 1024, 1024), "DQ", BSCALE=1, BZERO=32768)
    return [primary, image, err, dq]


__all__ = [
    "CGI_RECORDS",
    "CORGIDRP_CALIBRATION_TYPES",
    "CgiAncillary",
    "CgiAncillaryKeywords",
    "CgiAncillaryMeta",
    "CgiCommon",
    "CgiDiagnostic",
    "CgiExposure",
    "CgiHldp",
    "CgiKeywords",
    "CgiL1",
    "CgiL2a",
    "CgiL4",
    "CgiLevel1",
    "CgiLevel1Meta",
    "CgiLevel2a",
    "CgiLevel2aMeta",
    "CgiLevel2b",
    "CgiLevel2bMeta",
    "CgiLevel3",
    "CgiLevel3Meta",
    "CgiLevel4",
    "CgiLevel4Meta",
    "CgiMeta",
    "CgiNamedPositions",
    "CgiOpticalConfig",
    "CgiPointing",
    "CgiProvenance",
    "CgiRecipe",
    "CgiRecord",
    "CgiRegion",
    "CgiStates",
    "CgiVisit",
    "FitsFacts",
    "FitsFile",
    "FitsSource",
    "HduSummary",
    "VisitFiles",
    "cgi_keyword",
    "example_headers",
    "read_fits_facts",
    "record_class",
]
