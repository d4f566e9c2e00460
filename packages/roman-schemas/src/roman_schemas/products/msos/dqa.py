"""MSOS data-quality assessment (DQA) products: reference-frame and light-curve photometry
quality of a partition, and the quality of one event's data and fit."""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
from pydantic import Field, model_validator

from roman_schemas.arrays import NDArray
from roman_schemas.meta import MetaModel
from roman_schemas.products.msos.base import MsosDqaProduct
from roman_schemas.products.msos.meta import (
    RAD_MSOS,
    MsosDqaMeta,
    example_common,
)
from roman_schemas.tables import Table


def _example_dqa_meta(cls: type, **fields: object) -> MsosDqaMeta:
    common = example_common(cls)
    for name in ("flip", "gal_cen_flag"):
        common.pop(name)
    return MsosDqaMeta(**{**common, **fields})


class ReferenceQuality(MetaModel):
    """Summary of how good a partition's reference frame is."""

    n_epochs_available: int = Field(ge=0, description="epochs offered to the stack")
    n_epochs_used: int = Field(ge=0, description="epochs that passed the cuts")
    median_psf_fwhm_pix: float = Field(gt=0, description="median PSF FWHM of used epochs (pix)")
    astrometric_rms_mas: float = Field(ge=0, description="alignment residual rms (mas)")
    n_objects: int = Field(ge=0, description="objects detected on the frame")
    limiting_mag_ab: float = Field(description="5-sigma point-source depth (AB mag)")
    background_mjy_sr: float = Field(description="median sky (MJy/sr)")

    @model_validator(mode="after")
    def _used_le_available(self) -> Self:
        if self.n_epochs_used > self.n_epochs_available:
            raise ValueError("n_epochs_used exceeds n_epochs_available")
        return self


class EpochQuality(Table):
    """Quality measures of every epoch of the partition."""

    exposure_name: NDArray("U48", 1) = Field(description="Level-2 exposure")
    time_mjd_tdb: NDArray("float64", 1, unit="d", time_scale="tdb") = Field(description="time")
    used: NDArray("bool", 1) = Field(description="used in the reference stack")
    psf_fwhm_pix: NDArray("float32", 1, unit="pix") = Field(description="PSF FWHM")
    background_mjy_sr: NDArray("float32", 1, unit="MJy / sr") = Field(description="sky level")
    astrometric_rms_mas: NDArray("float32", 1, unit="mas") = Field(description="alignment rms")
    kernel_chi2_dof: NDArray("float32", 1) = Field(description="DIA kernel chi² per dof")
    bad_pixel_fraction: NDArray("float32", 1) = Field(description="fraction of dq-flagged pixels")


class DqaPhotometryLevel3(MsosDqaProduct):
    """L3 photometry DQA of one partition: reference-frame summary and per-epoch quality."""

    product_type: ClassVar[str] = "wfi_microlensing_dqa_photometry_level_3"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = f"{RAD_MSOS}/wfi_microlensing_dqa_photometry_level_3-1.0.0"
    dqa_workflows: ClassVar[tuple[str, ...]] = ("periodic",)
    export_table: ClassVar[str] = "epochs"

    meta: MsosDqaMeta
    reference: ReferenceQuality
    epochs: EpochQuality

    @classmethod
    def example(cls, n_epochs: int = 96, seed: int = 9) -> Self:
        """A day of epochs of partition s01/f03/WFI01, three of them rejected."""
        rng = np.random.default_rng(seed)
        used = np.ones(n_epochs, dtype=bool)
        used[[10, 40, 77]] = False
        fwhm = rng.normal(1.9, 0.05, n_epochs).astype("float32")
        fwhm[~used] = 3.1
        meta = _example_dqa_meta(
            cls, dqa_workflow="periodic", dqa_artifact_type="catalog", season="s01",
            field="f03", detector="wfi01", optical_element="f146", sequence="e01", dqa_flag=0,
        )  # fmt: skip
        return cls(
            meta=meta,
            reference=ReferenceQuality(
                n_epochs_available=n_epochs,
                n_epochs_used=int(used.sum()),
                median_psf_fwhm_pix=float(np.median(fwhm[used])),
                astrometric_rms_mas=4.2,
                n_objects=1_450_000,
                limiting_mag_ab=26.1,
                background_mjy_sr=0.52,
            ),
            epochs=EpochQuality(
                exposure_name=np.array(
                    [f"r0000101001001001{i:04d}_wfi01_cal.asdf" for i in range(n_epochs)]
                ),
                time_mjd_tdb=61465.0 + np.arange(n_epochs) * 15 / 1440,
                used=used,
                psf_fwhm_pix=fwhm,
                background_mjy_sr=rng.normal(0.52, 0.02, n_epochs).astype("float32"),
                astrometric_rms_mas=rng.normal(4.2, 0.3, n_epochs).astype("float32"),
                kernel_chi2_dof=rng.normal(1.0, 0.05, n_epochs).astype("float32"),
                bad_pixel_fraction=rng.uniform(0.001, 0.004, n_epochs).astype("float32"),
            ),
        )


class ScatterByMagnitude(Table):
    """Light-curve scatter of constant stars in magnitude bins (the classic rms–mag curve)."""

    mag_ab: NDArray("float32", 1, unit="mag") = Field(description="bin centre (AB mag)")
    n_objects: NDArray("uint32", 1) = Field(description="objects in the bin")
    median_rms_mmag: NDArray("float32", 1, unit="mmag") = Field(description="median rms")
    p90_rms_mmag: NDArray("float32", 1, unit="mmag") = Field(description="90th percentile rms")
    expected_rms_mmag: NDArray("float32", 1, unit="mmag") = Field(description="from the errors")


class DqaPhotometryLevel4(MsosDqaProduct):
    """L4 photometry DQA of a partition's season: light-curve scatter against magnitude."""

    product_type: ClassVar[str] = "wfi_microlensing_dqa_photometry_level_4"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = f"{RAD_MSOS}/wfi_microlensing_dqa_photometry_level_4-1.0.0"
    dqa_workflows: ClassVar[tuple[str, ...]] = ("longterm",)
    dqa_artifact_types: ClassVar[tuple[str, ...]] = ("report",)
    export_table: ClassVar[str] = "scatter"

    meta: MsosDqaMeta
    n_epochs: int = Field(ge=0, description="epochs in the season's light curves")
    good_epoch_fraction: float = Field(ge=0, le=1, description="fraction of unflagged epochs")
    scatter: ScatterByMagnitude

    @classmethod
    def example(cls) -> Self:
        """Scatter of a season in 0.5-mag bins from 16 to 25 AB."""
        mag = np.arange(16.0, 25.01, 0.5).astype("float32")
        expected = (1.0 + 10 ** (0.4 * (mag - 21.0)) * 8.0).astype("float32")
        meta = _example_dqa_meta(
            cls, dqa_workflow="longterm", dqa_artifact_type="report", season="s01",
            field="f03", detector="wfi01", optical_element="f146",
        )  # fmt: skip
        return cls(
            meta=meta,
            n_epochs=5900,
            good_epoch_fraction=0.97,
            scatter=ScatterByMagnitude(
                mag_ab=mag,
                n_objects=(2000 * 10 ** (0.25 * (mag - 16))).astype("uint32"),
                median_rms_mmag=(expected * 1.1).astype("float32"),
                p90_rms_mmag=(expected * 1.8).astype("float32"),
                expected_rms_mmag=expected,
            ),
        )


class ResidualsByTime(Table):
    """Normalised residuals of an event's best fit, binned in time."""

    time_mjd_tdb: NDArray("float64", 1, unit="d", time_scale="tdb") = Field(description="centre")
    n_points: NDArray("uint32", 1) = Field(description="epochs in the bin")
    mean_residual_sigma: NDArray("float32", 1) = Field(description="mean (data - model) / error")
    rms_residual_sigma: NDArray("float32", 1) = Field(description="rms of the same")


class DqaEventsLevel4(MsosDqaProduct):
    """L4 events DQA of one event: how well its data and best model hold up."""

    product_type: ClassVar[str] = "wfi_microlensing_dqa_events_level_4"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = f"{RAD_MSOS}/wfi_microlensing_dqa_events_level_4-1.0.0"
    dqa_workflows: ClassVar[tuple[str, ...]] = ("events",)
    dqa_artifact_types: ClassVar[tuple[str, ...]] = ("report",)
    export_table: ClassVar[str] = "residuals"

    meta: MsosDqaMeta
    event_id: str = Field(max_length=32, description="event name in the event catalog")
    model_type: str = Field(max_length=12, description="best model of the event")
    chi2_dof: float = Field(ge=0, description="chi² per dof of the best model")
    n_outliers: int = Field(ge=0, description="epochs beyond 5 sigma of the model")
    fit_converged: bool = Field(description="the optimiser met its tolerance")
    residuals: ResidualsByTime

    @model_validator(mode="after")
    def _event_named(self) -> Self:
        if self.meta.object_id is None or self.meta.classification is None:
            raise ValueError("an events DQA names meta.object_id and meta.classification")
        return self

    @classmethod
    def example(cls, seed: int = 10) -> Self:
        """The DQA of a planetary event: 60 time bins of residuals."""
        rng = np.random.default_rng(seed)
        meta = _example_dqa_meta(
            cls, dqa_workflow="events", dqa_artifact_type="report", season="s01",
            field="f03", detector="wfi01", object_id="5532", roman_name="MSOS-s01-f03-000002",
            classification="planetary", ra_deg=268.15, dec_deg=-29.12, dqa_flag=0,
        )  # fmt: skip
        return cls(
            meta=meta,
            event_id="MSOS-s01-f03-000002",
            model_type="2L1S",
            chi2_dof=1.02,
            n_outliers=3,
            fit_converged=True,
            residuals=ResidualsByTime(
                time_mjd_tdb=61465.0 + np.arange(60) + 0.5,
                n_points=np.full(60, 96, dtype="uint32"),
                mean_residual_sigma=rng.normal(0, 0.1, 60).astype("float32"),
                rms_residual_sigma=rng.normal(1.0, 0.05, 60).astype("float32"),
            ),
        )
