"""MSOS object catalogs: the fiducial catalog of every object, periodic and variable objects."""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
from pydantic import Field

from roman_schemas.arrays import NDArray
from roman_schemas.products.msos.base import MsosProduct
from roman_schemas.products.msos.flags import PhotometryFlag, describe
from roman_schemas.products.msos.meta import (
    EXAMPLE_REGION,
    RAD_MSOS,
    MsosPartitionMeta,
    MsosRegionMeta,
    example_common,
    example_partition,
)
from roman_schemas.tables import Table

#: classes of periodic variables the period search assigns
PERIODIC_CLASSES = ("eclipsing_binary", "rr_lyrae", "delta_scuti", "cepheid", "rotation", "other")


def ab_mag(flux_ujy: np.ndarray) -> np.ndarray:
    """AB magnitude of a flux density in µJy (23.9 is the AB zero point in µJy)."""
    return (23.9 - 2.5 * np.log10(flux_ujy)).astype("float32")


def _sky(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return 268.1 + rng.uniform(0, 0.2, n), -29.2 + rng.uniform(0, 0.2, n)


class FiducialObjects(Table):
    """Every object of a partition with its reference-frame astrometry and photometry."""

    key_column: ClassVar[str] = "object_id"
    export_names: ClassVar[dict[str, str]] = {
        "ra_deg": "ra",
        "dec_deg": "dec",
        "x_ref_pix": "x",
        "y_ref_pix": "y",
        "ref_flux_ujy": "flux",
        "ref_flux_err_ujy": "flux_err",
    }

    object_id: NDArray("int64", 1) = Field(description="stable object id in the partition")
    ra_deg: NDArray("float64", 1, unit="deg") = Field(description="right ascension (ICRS)")
    dec_deg: NDArray("float64", 1, unit="deg") = Field(description="declination (ICRS)")
    x_ref_pix: NDArray("float64", 1, unit="pix") = Field(description="x on the reference frame")
    y_ref_pix: NDArray("float64", 1, unit="pix") = Field(description="y on the reference frame")
    ref_flux_ujy: NDArray("float32", 1, unit="uJy") = Field(description="reference PSF flux")
    ref_flux_err_ujy: NDArray("float32", 1, unit="uJy") = Field(description="1-sigma error")
    mag_ab: NDArray("float32", 1, unit="mag") = Field(description="AB magnitude in the filter")
    psf_qfit: NDArray("float32", 1) = Field(description="PSF fit quality: |residual| / flux")
    crowding: NDArray("float32", 1) = Field(
        description="fraction of the flux within the PSF core that belongs to neighbours"
    )
    flags: NDArray("uint32", 1) = Field(description=describe(PhotometryFlag))


class ObjectFiducialCatalog(MsosProduct):
    """L4 object fiducial catalog of one partition: the objects every light curve refers to."""

    product_type: ClassVar[str] = "wfi_microlensing_object_fiducial_catalog_level_4"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = f"{RAD_MSOS}/wfi_microlensing_object_fiducial_catalog_level_4-1.0.0"
    export_table: ClassVar[str] = "objects"

    meta: MsosPartitionMeta
    objects: FiducialObjects

    @classmethod
    def example(cls, n_objects: int = 200, seed: int = 4) -> Self:
        """200 objects of a crowded bulge partition."""
        rng = np.random.default_rng(seed)
        ra, dec = _sky(rng, n_objects)
        flux = rng.lognormal(2.5, 1.2, n_objects).astype("float32")
        return cls(
            meta=MsosPartitionMeta(**example_partition(cls)),
            objects=FiducialObjects(
                object_id=np.arange(1, n_objects + 1, dtype="int64"),
                ra_deg=ra,
                dec_deg=dec,
                x_ref_pix=rng.uniform(0, 4088, n_objects),
                y_ref_pix=rng.uniform(0, 4088, n_objects),
                ref_flux_ujy=flux,
                ref_flux_err_ujy=(0.02 * flux + 0.05).astype("float32"),
                mag_ab=ab_mag(flux),
                psf_qfit=rng.uniform(0.005, 0.05, n_objects).astype("float32"),
                crowding=rng.uniform(0, 0.6, n_objects).astype("float32"),
                flags=np.where(rng.random(n_objects) < 0.05, PhotometryFlag.BLENDED, 0).astype(
                    "uint32"
                ),
            ),
        )


class PeriodicObjects(Table):
    """Objects whose light curves show a significant period."""

    key_column: ClassVar[str] = "object_id"

    object_id: NDArray("int64", 1) = Field(description="object id (fiducial catalog)")
    ra_deg: NDArray("float64", 1, unit="deg") = Field(description="right ascension (ICRS)")
    dec_deg: NDArray("float64", 1, unit="deg") = Field(description="declination (ICRS)")
    period_d: NDArray("float64", 1, unit="d") = Field(description="best period")
    period_err_d: NDArray("float64", 1, unit="d") = Field(description="1-sigma period error")
    epoch_mjd_tdb: NDArray("float64", 1, unit="d", time_scale="tdb") = Field(
        description="epoch of phase zero (maximum light), MJD TDB"
    )
    amplitude_ujy: NDArray("float32", 1, unit="uJy") = Field(description="peak-to-peak amplitude")
    power: NDArray("float32", 1) = Field(description="normalised periodogram power at the period")
    false_alarm_probability: NDArray("float64", 1) = Field(description="of the periodogram peak")
    n_harmonics: NDArray("uint8", 1) = Field(description="Fourier terms of the fitted model")
    n_epochs: NDArray("uint32", 1) = Field(description="epochs used in the search")
    variable_class: NDArray("U24", 1) = Field(description=f"one of {', '.join(PERIODIC_CLASSES)}")


class ObjectPeriodicCatalog(MsosProduct):
    """L4 periodic-object catalog of one partition: periods, epochs, amplitudes, classes."""

    product_type: ClassVar[str] = "wfi_microlensing_object_periodic_catalog_level_4"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = f"{RAD_MSOS}/wfi_microlensing_object_periodic_catalog_level_4-1.0.0"
    export_table: ClassVar[str] = "objects"

    meta: MsosPartitionMeta
    frequency_grid_per_d: NDArray("float64", 1, unit="1 / d") = Field(
        description="frequencies the periodograms were evaluated on"
    )
    objects: PeriodicObjects

    @classmethod
    def example(cls, n_objects: int = 30, seed: int = 5) -> Self:
        """30 periodic variables of a partition."""
        rng = np.random.default_rng(seed)
        ra, dec = _sky(rng, n_objects)
        period = 10 ** rng.uniform(-1.3, 1.5, n_objects)
        return cls(
            meta=MsosPartitionMeta(**example_partition(cls)),
            frequency_grid_per_d=np.linspace(0.01, 50.0, 5000),
            objects=PeriodicObjects(
                object_id=np.sort(rng.choice(np.arange(1, 5000), n_objects, replace=False)),
                ra_deg=ra,
                dec_deg=dec,
                period_d=period,
                period_err_d=period**2 * 1e-5,
                epoch_mjd_tdb=61465.0 + rng.uniform(0, 1, n_objects) * period,
                amplitude_ujy=rng.lognormal(1, 0.8, n_objects).astype("float32"),
                power=rng.uniform(0.3, 0.95, n_objects).astype("float32"),
                false_alarm_probability=10 ** rng.uniform(-12, -4, n_objects),
                n_harmonics=rng.integers(1, 6, n_objects).astype("uint8"),
                n_epochs=np.full(n_objects, 5800, dtype="uint32"),
                variable_class=rng.choice(PERIODIC_CLASSES, n_objects),
            ),
        )


class VariableObjects(Table):
    """Variability statistics of objects (all objects, or those passing a cut)."""

    key_column: ClassVar[str] = "object_id"

    object_id: NDArray("int64", 1) = Field(description="object id (fiducial catalog)")
    field: NDArray("U3", 1) = Field(description="GBTDS field of the object")
    detector: NDArray("U5", 1) = Field(description="WFI detector of the object")
    ra_deg: NDArray("float64", 1, unit="deg") = Field(description="right ascension (ICRS)")
    dec_deg: NDArray("float64", 1, unit="deg") = Field(description="declination (ICRS)")
    n_epochs: NDArray("uint32", 1) = Field(description="good epochs in the statistics")
    mean_flux_ujy: NDArray("float32", 1, unit="uJy") = Field(description="mean total flux")
    std_flux_ujy: NDArray("float32", 1, unit="uJy") = Field(description="standard deviation")
    mad_flux_ujy: NDArray("float32", 1, unit="uJy") = Field(description="median abs. deviation")
    chi2_dof: NDArray("float32", 1) = Field(description="chi² per dof about the weighted mean")
    von_neumann_eta: NDArray("float32", 1) = Field(description="von Neumann ratio η")
    stetson_j: NDArray("float32", 1) = Field(description="Stetson J index")
    stetson_k: NDArray("float32", 1) = Field(description="Stetson K index")
    skewness: NDArray("float32", 1) = Field(description="skewness of the flux distribution")
    amplitude_ujy: NDArray("float32", 1, unit="uJy") = Field(description="5–95 % range")
    is_variable: NDArray("bool", 1) = Field(description="passes the variability selection")


class VariabilityCatalog(MsosProduct):
    """L4 variability catalog: per-object variability statistics over a season."""

    product_type: ClassVar[str] = "wfi_microlensing_variability_catalog_level_4"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = f"{RAD_MSOS}/wfi_microlensing_variability_catalog_level_4-1.0.0"
    export_table: ClassVar[str] = "objects"

    meta: MsosRegionMeta
    objects: VariableObjects

    @classmethod
    def example(cls, n_objects: int = 100, seed: int = 6) -> Self:
        """Statistics of 100 objects, 10 of them variable."""
        rng = np.random.default_rng(seed)
        ra, dec = _sky(rng, n_objects)
        mean = rng.lognormal(2.5, 1, n_objects).astype("float32")
        variable = np.arange(n_objects) < 10
        std = np.where(variable, 0.2 * mean, 0.02 * mean).astype("float32")
        return cls(
            meta=MsosRegionMeta(**example_common(cls, s_region=EXAMPLE_REGION)),
            objects=VariableObjects(
                object_id=np.arange(1, n_objects + 1, dtype="int64"),
                field=np.full(n_objects, "f03"),
                detector=np.full(n_objects, "WFI01"),
                ra_deg=ra,
                dec_deg=dec,
                n_epochs=np.full(n_objects, 5800, dtype="uint32"),
                mean_flux_ujy=mean,
                std_flux_ujy=std,
                mad_flux_ujy=(0.6745 * std).astype("float32"),
                chi2_dof=np.where(variable, 40.0, 1.0).astype("float32"),
                von_neumann_eta=np.where(variable, 0.2, 2.0).astype("float32"),
                stetson_j=np.where(variable, 5.0, 0.0).astype("float32"),
                stetson_k=np.full(n_objects, 0.8, dtype="float32"),
                skewness=rng.normal(0, 0.1, n_objects).astype("float32"),
                amplitude_ujy=(3.3 * std).astype("float32"),
                is_variable=variable,
            ),
        )
