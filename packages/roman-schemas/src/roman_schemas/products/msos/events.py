"""MSOS event products: the microlensing event catalog, the detection-efficiency catalog and
the event trigger's daily state.

Model parameters use the names microlensing astronomers already use (MulensModel's:
``t_0``, ``u_0``, ``t_E``, ``rho``, ``pi_E_N``, ``pi_E_E``, ``q``, ``s``, ``alpha``), with the
unit in the name where it has one; a parameter a model does not have is NaN.
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar, Self

import numpy as np
from pydantic import Field, model_validator

from roman_schemas.arrays import NDArray
from roman_schemas.products.msos.base import MsosProduct
from roman_schemas.products.msos.meta import (
    EXAMPLE_REGION,
    RAD_MSOS,
    MsosDailyMeta,
    MsosEfficiencyMeta,
    MsosRegionMeta,
    example_common,
    example_partition,
)
from roman_schemas.tables import Table

#: microlensing models the fits use: point-source point-lens, finite source, binary lens,
#: binary source; "+par" adds annual parallax
MODEL_TYPES = ("PSPL", "FSPL", "2L1S", "1L2S", "PSPL+par", "FSPL+par", "2L1S+par")
CLASSIFICATIONS = (
    "single_lens",
    "binary_lens",
    "planetary",
    "binary_source",
    "variable_star",
    "artifact",
    "candidate",
)
BINARY_CLASSES = ("TP", "FP", "TN", "FN")

_PARAMETERS = {  # name → (unit, description)
    "t_0_mjd_tdb": ("d", "time of closest approach t_0 (MJD TDB)"),
    "u_0": (None, "impact parameter u_0 (Einstein radii)"),
    "t_E_d": ("d", "Einstein timescale t_E"),
    "rho": (None, "source radius rho (Einstein radii)"),
    "pi_E_N": (None, "microlens parallax, north component pi_E_N"),
    "pi_E_E": (None, "microlens parallax, east component pi_E_E"),
    "q": (None, "mass ratio q of the lens components"),
    "s": (None, "projected separation s of the lens components (Einstein radii)"),
    "alpha_deg": ("deg", "angle alpha between source trajectory and binary axis"),
    "source_flux_ujy": ("uJy", "source flux"),
    "blend_flux_ujy": ("uJy", "blend flux"),
}


class Events(Table):
    """One row per microlensing event: detection statistics, best model and classification."""

    key_column: ClassVar[str] = "event_id"
    #: the export speaks MulensModel: t_0, t_E, alpha, f_source, f_blend, <name>_err, model
    export_names: ClassVar[dict[str, str]] = {
        "t_0_mjd_tdb": "t_0", "t_0_err_d": "t_0_err", "t_E_d": "t_E", "t_E_err_d": "t_E_err",
        "alpha_deg": "alpha", "alpha_err_deg": "alpha_err", "source_flux_ujy": "f_source",
        "source_flux_err_ujy": "f_source_err", "blend_flux_ujy": "f_blend",
        "blend_flux_err_ujy": "f_blend_err", "model_type": "model",
    }  # fmt: skip
    #: a parameter the row's model does not have is NaN here and an empty cell in the export
    export_empty_nan: ClassVar[tuple[str, ...]] = (
        "u_0_err", "rho", "rho_err", "pi_E_N", "pi_E_N_err", "pi_E_E", "pi_E_E_err", "q",
        "q_err", "s", "s_err", "alpha_deg", "alpha_err_deg",
    )  # fmt: skip

    event_id: NDArray("U32", 1) = Field(description="event name, e.g. MSOS-s01-f03-000123")
    object_id: NDArray("int64", 1) = Field(description="object id (fiducial catalog)")
    field: NDArray("U3", 1) = Field(description="GBTDS field")
    detector: NDArray("U5", 1) = Field(description="WFI detector")
    ra_deg: NDArray("float64", 1, unit="deg") = Field(description="right ascension (ICRS)")
    dec_deg: NDArray("float64", 1, unit="deg") = Field(description="declination (ICRS)")
    t_peak_mjd_tdb: NDArray("float64", 1, unit="d", time_scale="tdb") = Field(
        description="time of the detection peak (MJD TDB)"
    )
    delta_chi2: NDArray("float32", 1) = Field(description="chi² of a flat line minus the model's")
    peak_snr: NDArray("float32", 1) = Field(description="signal-to-noise of the peak excess")
    n_points_magnified: NDArray("uint32", 1) = Field(description="epochs 3 sigma above baseline")
    model_type: NDArray("U12", 1) = Field(description=f"one of {', '.join(MODEL_TYPES)}")
    t_0_mjd_tdb: NDArray("float64", 1, unit="d", time_scale="tdb") = Field(
        description=_PARAMETERS["t_0_mjd_tdb"][1]
    )
    t_0_err_d: NDArray("float64", 1, unit="d") = Field(description="1-sigma error of t_0")
    u_0: NDArray("float64", 1) = Field(description=_PARAMETERS["u_0"][1])
    u_0_err: NDArray("float64", 1) = Field(description="1-sigma error of u_0")
    t_E_d: NDArray("float64", 1, unit="d") = Field(description=_PARAMETERS["t_E_d"][1])  # noqa: N815
    t_E_err_d: NDArray("float64", 1, unit="d") = Field(description="1-sigma error of t_E")  # noqa: N815
    rho: NDArray("float64", 1) = Field(description=_PARAMETERS["rho"][1])
    rho_err: NDArray("float64", 1) = Field(description="1-sigma error of rho")
    pi_E_N: NDArray("float64", 1) = Field(description=_PARAMETERS["pi_E_N"][1])  # noqa: N815
    pi_E_N_err: NDArray("float64", 1) = Field(description="1-sigma error of pi_E_N")  # noqa: N815
    pi_E_E: NDArray("float64", 1) = Field(description=_PARAMETERS["pi_E_E"][1])  # noqa: N815
    pi_E_E_err: NDArray("float64", 1) = Field(description="1-sigma error of pi_E_E")  # noqa: N815
    q: NDArray("float64", 1) = Field(description=_PARAMETERS["q"][1])
    q_err: NDArray("float64", 1) = Field(description="1-sigma error of q")
    s: NDArray("float64", 1) = Field(description=_PARAMETERS["s"][1])
    s_err: NDArray("float64", 1) = Field(description="1-sigma error of s")
    alpha_deg: NDArray("float64", 1, unit="deg") = Field(description=_PARAMETERS["alpha_deg"][1])
    alpha_err_deg: NDArray("float64", 1, unit="deg") = Field(description="1-sigma error of alpha")
    source_flux_ujy: NDArray("float64", 1, unit="uJy") = Field(description="source flux")
    source_flux_err_ujy: NDArray("float64", 1, unit="uJy") = Field(description="its error")
    blend_flux_ujy: NDArray("float64", 1, unit="uJy") = Field(description="blend flux")
    blend_flux_err_ujy: NDArray("float64", 1, unit="uJy") = Field(description="its error")
    chi2: NDArray("float64", 1) = Field(description="chi² of the best model")
    dof: NDArray("uint32", 1) = Field(description="degrees of freedom of the fit")
    classification: NDArray("U16", 1) = Field(description=f"one of {', '.join(CLASSIFICATIONS)}")
    classification_score: NDArray("float32", 1) = Field(description="classifier confidence 0–1")


def _check_vocabulary(table: Table, column: str, allowed: tuple[str, ...]) -> None:
    values = getattr(table, column)
    if isinstance(values, np.ndarray) and values.size:
        unknown = sorted(set(np.unique(values)) - set(allowed))
        if unknown:
            raise ValueError(f"{column} has unknown values {unknown}; allowed: {allowed}")


class MicrolensingEventCatalog(MsosProduct):
    """L4 microlensing event catalog: detections, fitted models with errors, classifications."""

    product_type: ClassVar[str] = "wfi_microlensing_event_catalog_level_4"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = f"{RAD_MSOS}/wfi_microlensing_event_catalog_level_4-1.0.0"
    export_table: ClassVar[str] = "events"

    meta: MsosRegionMeta
    events: Events

    @model_validator(mode="after")
    def _vocabularies(self) -> Self:
        _check_vocabulary(self.events, "model_type", MODEL_TYPES)
        _check_vocabulary(self.events, "classification", CLASSIFICATIONS)
        return self

    @classmethod
    def example(cls, seed: int = 7) -> Self:
        """Three events: a single lens, a planetary binary lens, a parallax event."""
        nan = np.nan
        rows: list[dict[str, Any]] = [
            dict(model_type="PSPL", classification="single_lens", t_0=61480.2, u_0=0.12,
                 t_E=22.5, rho=nan, pi_N=nan, pi_E=nan, q=nan, s=nan, alpha=nan),
            dict(model_type="2L1S", classification="planetary", t_0=61491.7, u_0=0.035,
                 t_E=31.0, rho=0.0012, pi_N=nan, pi_E=nan, q=4.1e-4, s=1.08, alpha=212.0),
            dict(model_type="PSPL+par", classification="single_lens", t_0=61502.3, u_0=0.41,
                 t_E=95.0, rho=nan, pi_N=0.08, pi_E=-0.05, q=nan, s=nan, alpha=nan),
        ]  # fmt: skip
        rng = np.random.default_rng(seed)
        n = len(rows)

        def column(key: str) -> np.ndarray:
            return np.array([row[key] for row in rows], dtype="float64")

        def err(key: str, fraction: float) -> np.ndarray:
            return np.abs(column(key)) * fraction

        return cls(
            meta=MsosRegionMeta(**example_common(cls, s_region=EXAMPLE_REGION)),
            events=Events(
                event_id=np.array([f"MSOS-s01-f03-{i:06d}" for i in range(1, n + 1)]),
                object_id=np.array([1021, 5532, 90877], dtype="int64"),
                field=np.full(n, "f03"),
                detector=np.array(["WFI01", "WFI01", "WFI07"]),
                ra_deg=268.1 + rng.uniform(0, 0.2, n),
                dec_deg=-29.2 + rng.uniform(0, 0.2, n),
                t_peak_mjd_tdb=column("t_0"),
                delta_chi2=np.array([5200.0, 18000.0, 2400.0], dtype="float32"),
                peak_snr=np.array([85.0, 160.0, 40.0], dtype="float32"),
                n_points_magnified=np.array([410, 820, 1900], dtype="uint32"),
                model_type=np.array([row["model_type"] for row in rows]),
                t_0_mjd_tdb=column("t_0"),
                t_0_err_d=np.full(n, 0.004),
                u_0=column("u_0"),
                u_0_err=err("u_0", 0.02),
                t_E_d=column("t_E"),
                t_E_err_d=err("t_E", 0.03),
                rho=column("rho"),
                rho_err=err("rho", 0.1),
                pi_E_N=column("pi_N"),
                pi_E_N_err=err("pi_N", 0.2),
                pi_E_E=column("pi_E"),
                pi_E_E_err=err("pi_E", 0.2),
                q=column("q"),
                q_err=err("q", 0.05),
                s=column("s"),
                s_err=err("s", 0.01),
                alpha_deg=column("alpha"),
                alpha_err_deg=err("alpha", 0.005),
                source_flux_ujy=np.array([3.2, 1.1, 7.5]),
                source_flux_err_ujy=np.array([0.05, 0.03, 0.08]),
                blend_flux_ujy=np.array([0.4, 2.0, 0.0]),
                blend_flux_err_ujy=np.array([0.05, 0.04, 0.08]),
                chi2=np.array([5810.0, 5932.0, 5790.0]),
                dof=np.array([5795, 5792, 5793], dtype="uint32"),
                classification=np.array([row["classification"] for row in rows]),
                classification_score=np.array([0.97, 0.91, 0.88], dtype="float32"),
            ),
        )


class Injections(Table):
    """One row per injected (or blank) synthetic event and what the search made of it."""

    key_column: ClassVar[str] = "injection_id"

    injection_id: NDArray("int64", 1) = Field(description="injection number")
    object_id: NDArray("int64", 1) = Field(description="host object (fiducial catalog)")
    ra_deg: NDArray("float64", 1, unit="deg") = Field(description="right ascension (ICRS)")
    dec_deg: NDArray("float64", 1, unit="deg") = Field(description="declination (ICRS)")
    injected: NDArray("bool", 1) = Field(description="an event was injected (else a blank)")
    model_type: NDArray("U12", 1) = Field(description=f"injected model: {', '.join(MODEL_TYPES)}")
    t_0_mjd_tdb: NDArray("float64", 1, unit="d", time_scale="tdb") = Field(
        description="injected t_0 (MJD TDB)"
    )
    u_0: NDArray("float64", 1) = Field(description="injected u_0")
    t_E_d: NDArray("float64", 1, unit="d") = Field(description="injected t_E")  # noqa: N815
    rho: NDArray("float64", 1) = Field(description="injected rho (NaN: point source)")
    q: NDArray("float64", 1) = Field(description="injected q (NaN: single lens)")
    s: NDArray("float64", 1) = Field(description="injected s (NaN: single lens)")
    alpha_deg: NDArray("float64", 1, unit="deg") = Field(description="injected alpha")
    source_flux_ujy: NDArray("float64", 1, unit="uJy") = Field(description="injected source")
    detected: NDArray("bool", 1) = Field(description="the search reported an event here")
    recovered_event_id: NDArray("U32", 1) = Field(description="event reported (empty if none)")
    recovered_t_0_mjd_tdb: NDArray("float64", 1, unit="d", time_scale="tdb") = Field(
        description="fitted t_0 (NaN if not detected)"
    )
    recovered_u_0: NDArray("float64", 1) = Field(description="fitted u_0")
    recovered_t_E_d: NDArray("float64", 1, unit="d") = Field(description="fitted t_E")  # noqa: N815
    delta_chi2: NDArray("float32", 1) = Field(description="detection statistic")
    binary_class: NDArray("U2", 1) = Field(
        description="TP injected+detected, FN injected+missed, FP blank+detected, TN blank+quiet"
    )

    @model_validator(mode="after")
    def _classes_follow_from_injection_and_detection(self) -> Self:
        injected, detected, classes = self.injected, self.detected, self.binary_class
        if all(isinstance(a, np.ndarray) for a in (injected, detected, classes)):
            expected = np.where(injected, np.where(detected, "TP", "FN"),
                                np.where(detected, "FP", "TN"))  # fmt: skip
            wrong = np.flatnonzero(expected != classes)
            if wrong.size:
                raise ValueError(
                    f"binary_class disagrees with injected/detected at rows {wrong[:5]}"
                )
        return self


class DetectionEfficiencyCatalog(MsosProduct):
    """L4 detection-efficiency catalog: injections, recoveries and TP/FP/TN/FN counts."""

    product_type: ClassVar[str] = "wfi_microlensing_detection_efficiency_catalog_level_4"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = (
        f"{RAD_MSOS}/wfi_microlensing_detection_efficiency_catalog_level_4-1.0.0"
    )
    export_table: ClassVar[str] = "injections"

    meta: MsosEfficiencyMeta
    injections: Injections

    def counts(self) -> dict[str, int]:
        """Number of rows of each binary class (TP, FP, TN, FN)."""
        classes = np.asarray(self.injections.binary_class)
        return {name: int(np.count_nonzero(classes == name)) for name in BINARY_CLASSES}

    def extra_archive_keywords(self) -> dict[str, Any]:
        counts = self.counts()
        return {
            **super().extra_archive_keywords(),
            **{f"{name.lower()}_count": value for name, value in counts.items()},
        }

    @classmethod
    def example(cls, n_rows: int = 40, seed: int = 8) -> Self:
        """40 rows: 30 injected single-lens events and 10 blanks, with a plausible recovery."""
        rng = np.random.default_rng(seed)
        injected = np.arange(n_rows) < 30
        u_0 = np.where(injected, rng.uniform(0.001, 1.5, n_rows), np.nan)
        detected = np.where(injected, u_0 < 1.0, rng.random(n_rows) < 0.1)
        t_0 = np.where(injected, rng.uniform(61465, 61527, n_rows), np.nan)
        t_e = np.where(injected, 10 ** rng.uniform(0.3, 2, n_rows), np.nan)
        classes = np.where(injected, np.where(detected, "TP", "FN"), np.where(detected, "FP", "TN"))
        ids = np.array([f"MSOS-s01-f03-9{i:05d}" if d else "" for i, d in enumerate(detected)])
        return cls(
            meta=MsosEfficiencyMeta(**example_common(cls, inject_medium="lightcurve")),
            injections=Injections(
                injection_id=np.arange(n_rows, dtype="int64"),
                object_id=rng.integers(1, 100000, n_rows).astype("int64"),
                ra_deg=268.1 + rng.uniform(0, 0.2, n_rows),
                dec_deg=-29.2 + rng.uniform(0, 0.2, n_rows),
                injected=injected,
                model_type=np.where(injected, "PSPL", ""),
                t_0_mjd_tdb=t_0,
                u_0=u_0,
                t_E_d=t_e,
                rho=np.full(n_rows, np.nan),
                q=np.full(n_rows, np.nan),
                s=np.full(n_rows, np.nan),
                alpha_deg=np.full(n_rows, np.nan),
                source_flux_ujy=np.where(injected, rng.lognormal(1, 0.7, n_rows), np.nan),
                detected=detected,
                recovered_event_id=ids,
                recovered_t_0_mjd_tdb=np.where(detected & injected, t_0 + 0.01, np.nan),
                recovered_u_0=np.where(detected & injected, u_0 * 1.02, np.nan),
                recovered_t_E_d=np.where(detected & injected, t_e * 0.98, np.nan),
                delta_chi2=np.where(detected, rng.uniform(300, 5000, n_rows), 20).astype("float32"),
                binary_class=classes,
            ),
        )


class TriggerState(MsosProduct):
    """The event trigger's per-object state after one day of a partition (a working product,
    not archived): the next day's trigger starts from it, so a day reads only its own epochs.
    Fluxes are the light curves' difference fluxes."""

    product_type: ClassVar[str] = "wfi_microlensing_trigger_state"
    schema_version: ClassVar[str] = "1.0.0"
    archived: ClassVar[bool] = False

    meta: MsosDailyMeta
    object_id: NDArray("int64", 1) = Field(description="object id, ascending")
    n_baseline: NDArray("int32", 1) = Field(description="epochs that went into the baseline")
    baseline_ujy: NDArray("float64", 1, unit="uJy") = Field(description="baseline flux")
    scatter_var_ujy2: NDArray("float64", 1, unit="uJy2") = Field(
        description="half the mean square of consecutive-epoch differences"
    )
    error_var_ujy2: NDArray("float64", 1, unit="uJy2") = Field(
        description="mean squared photometric error over the same pairs"
    )
    last_flux_ujy: NDArray("float64", 1, unit="uJy") = Field(
        description="last good epoch's flux (NaN: none yet)"
    )
    last_err2_ujy2: NDArray("float64", 1, unit="uJy2") = Field(
        description="last good epoch's squared error (NaN: none yet)"
    )
    run: NDArray("int32", 1) = Field(description="current run of significant brightenings")
    peak_z: NDArray("float32", 1) = Field(description="largest significance seen")
    trigger_time_mjd_tdb: NDArray("float64", 1, unit="d", time_scale="tdb") = Field(
        description="first trigger (NaN: not triggered)"
    )
    last_time_mjd_tdb: float | None = Field(
        default=None, description="last epoch processed (None: none yet)"
    )
    n_epochs: int = Field(ge=0, description="epochs processed so far")
    threshold: float = Field(gt=0, description="significance (σ) of a brightening")
    min_run: int = Field(ge=1, description="consecutive brightenings that trigger")
    clip: float = Field(gt=0, description="|z| beyond which an epoch stays out of the baseline")
    window: int = Field(ge=1, description="epochs the baseline remembers")
    warmup: int = Field(ge=0, description="baseline epochs before an object can trigger")

    @model_validator(mode="after")
    def _one_value_per_object(self) -> Self:
        n = self.object_id.shape[0]
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, np.ndarray) and value.shape != (n,):
                raise ValueError(f"{name} has {value.shape[0]} values for {n} objects")
        if n and np.any(np.diff(self.object_id) <= 0):
            raise ValueError("object_id must be strictly ascending")
        return self

    @classmethod
    def example(cls, n_objects: int = 20) -> Self:
        """A state after one day of 96 epochs, two objects triggered (one if fewer than 11)."""
        rng = np.random.default_rng(4)
        trigger = np.full(n_objects, np.nan)
        fired = np.arange(n_objects)[1::9][:2]  # objects 1 and 10 (of at least 11)
        trigger[fired] = [61465.41, 61465.77][: fired.size]
        err2 = rng.uniform(1, 9, n_objects)
        return cls(
            meta=MsosDailyMeta(**example_partition(cls, day=date(2027, 3, 1))),
            object_id=np.arange(1, n_objects + 1, dtype="int64") * 11,
            n_baseline=np.full(n_objects, 90, dtype="int32"),
            baseline_ujy=rng.normal(0, 1, n_objects),
            scatter_var_ujy2=err2 * 1.05,
            error_var_ujy2=err2,
            last_flux_ujy=rng.normal(0, 1, n_objects),
            last_err2_ujy2=err2,
            run=np.where(np.isfinite(trigger), 6, 0).astype("int32"),
            peak_z=np.where(np.isfinite(trigger), 12.0, 2.5).astype("float32"),
            trigger_time_mjd_tdb=trigger,
            last_time_mjd_tdb=61465.99,
            n_epochs=96,
            threshold=3.0,
            min_run=3,
            clip=3.0,
            window=480,
            warmup=10,
        )
