"""MSOS photometry products: the L3 reference frame, daily light curves, the L4 light-curve
catalog. Light curves are dense objects × epochs arrays per partition, never a file per star.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import ClassVar, Self

import numpy as np
from pydantic import Field, model_validator

from roman_schemas.arrays import NDArray
from roman_schemas.meta import MetaModel
from roman_schemas.products.msos.base import MsosProduct
from roman_schemas.products.msos.flags import EpochFlag, PhotometryFlag, describe
from roman_schemas.products.msos.meta import (
    RAD_MSOS,
    MsosDailyMeta,
    MsosEpochMeta,
    MsosPartitionMeta,
    example_common,
    example_partition,
)
from roman_schemas.tables import ExportColumn, Table
from roman_schemas.wfi import ImageUnit

#: solid angle of one 0.11" WFI pixel, to turn MJy/sr summed over pixels into µJy
PIXEL_SOLID_ANGLE_SR = (0.11 / 206264.806) ** 2
LIGHT_CURVE_RAD = f"{RAD_MSOS}/wfi_microlensing_light_curve_catalog_level_4-1.0.0"


class GriddedPSF(MetaModel):
    """A spatially varying PSF: oversampled stamps at a grid of detector positions."""

    model_config = MetaModel.model_config | {"arbitrary_types_allowed": True}

    stamps: NDArray("float32", 3) = Field(description="PSF stamps (n_grid, ny, nx), sum 1")
    x_pix: NDArray("float64", 1, unit="pix") = Field(description="detector x of each stamp")
    y_pix: NDArray("float64", 1, unit="pix") = Field(description="detector y of each stamp")
    oversampling: int = Field(ge=1, description="stamp pixels per detector pixel")

    @model_validator(mode="after")
    def _grid_matches(self) -> Self:
        n = self.stamps.shape[0]
        if self.x_pix.shape != (n,) or self.y_pix.shape != (n,):
            raise ValueError(f"{n} stamps but {self.x_pix.shape[0]} grid positions")
        return self

    @classmethod
    def example(cls, size: int, sigma_pix: float = 1.2, oversampling: int = 4) -> GriddedPSF:
        """A 2×2 grid of Gaussian stamps over a ``size``-pixel detector."""
        half = 3 * oversampling
        stamp_y, stamp_x = np.mgrid[-half : half + 1, -half : half + 1] / oversampling
        stamp = np.exp(-(stamp_x**2 + stamp_y**2) / (2 * sigma_pix**2)).astype("float32")
        grid = np.array([size / 4, 3 * size / 4])
        gx, gy = np.meshgrid(grid, grid)
        return cls(
            stamps=np.repeat((stamp / stamp.sum())[None], 4, axis=0),
            x_pix=gx.ravel().astype("float64"),
            y_pix=gy.ravel().astype("float64"),
            oversampling=oversampling,
        )


class SuperResolvedFrame(MetaModel):
    """The reference field on a grid ``factor`` times finer than the detector's, made from the
    dithered epochs: what an epoch at any sub-pixel offset sees of it, which a stack of
    undersampled frames cannot show (see ``msos.reference.superres``)."""

    model_config = MetaModel.model_config | {"arbitrary_types_allowed": True}

    data: NDArray("float32", 2) = Field(
        description="fine grid (image_unit per detector pixel, sky removed): detector pixel "
        "(x, y) spans fine pixels factor*(x + pad) ... factor*(x + pad + 1) - 1"
    )
    factor: int = Field(ge=2, description="fine pixels per detector pixel, each axis")
    pad: int = Field(ge=0, description="detector pixels of fine grid beyond each edge")
    n_epochs: int = Field(ge=1, description="epochs it was reconstructed from")
    half_taps: int = Field(
        ge=1, description="fine pixels each side of a detector pixel that its view spans"
    )

    @classmethod
    def example(cls, image: np.ndarray, factor: int = 2, pad: int = 4) -> SuperResolvedFrame:
        """A fine grid that every epoch would see as ``image`` (each pixel's value spread over
        its fine pixels; docs and tests)."""
        padded = np.pad(image, pad)
        fine = np.repeat(np.repeat(padded, factor, axis=0), factor, axis=1)
        return cls(data=fine.astype("float32"), factor=factor, pad=pad, n_epochs=12, half_taps=16)


class ReferenceObjects(Table):
    """Objects measured on the reference frame by PSF fitting."""

    key_column: ClassVar[str] = "object_id"
    export_names: ClassVar[dict[str, str]] = {
        "ra_deg": "ra",
        "dec_deg": "dec",
        "x_pix": "x",
        "y_pix": "y",
        "flux_ujy": "flux",
        "flux_err_ujy": "flux_err",
    }

    object_id: NDArray("int64", 1) = Field(description="stable object id in the partition")
    x_pix: NDArray("float64", 1, unit="pix") = Field(description="x on the reference frame")
    y_pix: NDArray("float64", 1, unit="pix") = Field(description="y on the reference frame")
    ra_deg: NDArray("float64", 1, unit="deg") = Field(description="right ascension (ICRS)")
    dec_deg: NDArray("float64", 1, unit="deg") = Field(description="declination (ICRS)")
    flux_ujy: NDArray("float32", 1, unit="uJy") = Field(description="PSF flux")
    flux_err_ujy: NDArray("float32", 1, unit="uJy") = Field(description="1-sigma error")
    psf_qfit: NDArray("float32", 1) = Field(description="PSF fit quality: |residual| / flux")
    flags: NDArray("uint32", 1) = Field(description=describe(PhotometryFlag))


def _star_field(size: int, n_objects: int, seed: int, sigma: float = 1.2) -> tuple:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    x = rng.uniform(4, size - 4, n_objects)
    y = rng.uniform(4, size - 4, n_objects)
    flux = rng.lognormal(3, 1, n_objects).astype("float32")
    image = np.zeros((size, size), dtype="float32")
    for xi, yi, fi in zip(x, y, flux, strict=True):
        image += (
            fi
            * np.exp(-((xx - xi) ** 2 + (yy - yi) ** 2) / (2 * sigma**2))
            / (2 * np.pi * sigma**2)
        )
    image += rng.normal(0.5, 0.05, image.shape).astype("float32")
    return x, y, flux, image


def example_wcs(size: int, ra_deg: float = 268.0, dec_deg: float = -29.0) -> dict:
    """A FITS TAN WCS header of a ``size``-pixel frame with 0.11" pixels."""
    scale = 0.11 / 3600
    return {
        "WCSAXES": 2,
        "CTYPE1": "RA---TAN",
        "CTYPE2": "DEC--TAN",
        "CRPIX1": (size + 1) / 2,
        "CRPIX2": (size + 1) / 2,
        "CRVAL1": ra_deg,
        "CRVAL2": dec_deg,
        "CD1_1": -scale,
        "CD1_2": 0.0,
        "CD2_1": 0.0,
        "CD2_2": scale,
        "CUNIT1": "deg",
        "CUNIT2": "deg",
        "RADESYS": "ICRS",
    }


class ReferenceFrame(MsosProduct):
    """L3 reference frame of one partition: stacked image, error, mask, WCS, calibration, PSF
    and objects."""

    product_type: ClassVar[str] = "wfi_microlensing_reference_frame_level_3"
    schema_version: ClassVar[str] = "1.2.0"
    rad_schema: ClassVar[str] = f"{RAD_MSOS}/wfi_microlensing_reference_frame_level_3-1.0.0"
    export_table: ClassVar[str] = "objects"

    meta: MsosPartitionMeta
    image_unit: ImageUnit = Field(description="unit of data and err")
    ujy_per_image_unit: float = Field(
        gt=0, description="µJy of a point source of 1 image_unit summed over pixels"
    )
    n_epochs_stacked: int = Field(ge=1, description="epochs in the stack")
    data: NDArray("float32", 2) = Field(description="stacked image (image_unit)")
    err: NDArray("float32", 2) = Field(description="1-sigma error of data (image_unit)")
    mask: NDArray("uint32", 2) = Field(description="data-quality bits (romancal dq)")
    coverage: NDArray("uint16", 2) = Field(description="epochs contributing to each pixel")
    wcs_fits: dict[str, float | int | str] = Field(
        description="FITS WCS of the frame (TAN or TAN-SIP keywords), for astropy.wcs.WCS"
    )
    psf: GriddedPSF
    objects: ReferenceObjects
    superres: SuperResolvedFrame | None = Field(
        default=None, description="the field super-resolved from the dithered epochs"
    )

    @model_validator(mode="after")
    def _same_shape(self) -> Self:
        shape = self.data.shape
        for name in ("err", "mask", "coverage"):
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} shape {getattr(self, name).shape} != data {shape}")
        missing = {"CTYPE1", "CTYPE2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2"} - set(self.wcs_fits)
        if missing:
            raise ValueError(f"wcs_fits lacks {sorted(missing)}")
        if self.superres is not None:
            f, p = self.superres.factor, self.superres.pad
            fine = (f * (shape[0] + 2 * p), f * (shape[1] + 2 * p))
            if self.superres.data.shape != fine:
                raise ValueError(f"superres shape {self.superres.data.shape} != {fine}")
        return self

    @classmethod
    def example(cls, size: int = 64, n_objects: int = 20, seed: int = 1) -> Self:
        """A small, valid reference frame with a synthetic star field (docs and tests)."""
        x, y, flux, image = _star_field(size, n_objects, seed)
        flux_ujy = (flux * PIXEL_SOLID_ANGLE_SR * 1e12).astype("float32")
        wcs = example_wcs(size)
        return cls(
            meta=MsosPartitionMeta(**example_partition(cls)),
            image_unit="MJy / sr",
            ujy_per_image_unit=PIXEL_SOLID_ANGLE_SR * 1e12,
            n_epochs_stacked=12,
            data=image,
            err=np.full(image.shape, 0.05, dtype="float32"),
            mask=np.zeros(image.shape, dtype="uint32"),
            coverage=np.full(image.shape, 12, dtype="uint16"),
            wcs_fits=wcs,
            psf=GriddedPSF.example(size),
            superres=SuperResolvedFrame.example(image),
            objects=ReferenceObjects(
                object_id=np.arange(1, n_objects + 1, dtype="int64"),
                x_pix=x,
                y_pix=y,
                ra_deg=wcs["CRVAL1"]
                - (x - wcs["CRPIX1"] + 1) * 0.11 / 3600 / np.cos(np.radians(-29)),
                dec_deg=wcs["CRVAL2"] + (y - wcs["CRPIX2"] + 1) * 0.11 / 3600,
                flux_ujy=flux_ujy,
                flux_err_ujy=np.sqrt(flux_ujy) * 0.01,
                psf_qfit=np.full(n_objects, 0.02, dtype="float32"),
                flags=np.zeros(n_objects, dtype="uint32"),
            ),
        )


class Epochs(Table):
    """One row per epoch (exposure) of a partition, in time order."""

    time_mjd_tdb: NDArray("float64", 1, unit="d", time_scale="tdb") = Field(
        description="mid-exposure time, barycentric (MJD TDB)"
    )
    exposure_time_s: NDArray("float32", 1, unit="s") = Field(description="exposure time")
    exposure_name: NDArray("U48", 1) = Field(description="Level-2 exposure the epoch comes from")
    psf_fwhm_pix: NDArray("float32", 1, unit="pix") = Field(description="PSF FWHM of the epoch")
    background_mjy_sr: NDArray("float32", 1, unit="MJy / sr") = Field(description="sky level")
    kernel_chi2_dof: NDArray("float32", 1) = Field(description="DIA kernel fit chi² per dof")
    flags: NDArray("uint16", 1) = Field(description=describe(EpochFlag))

    @model_validator(mode="after")
    def _time_ordered(self) -> Self:
        times = np.asarray(self.time_mjd_tdb) if isinstance(self.time_mjd_tdb, np.ndarray) else None
        if times is not None and times.size > 1 and np.any(np.diff(times) <= 0):
            raise ValueError("epochs must be in strictly increasing time order")
        return self


class LightCurveObjects(Table):
    """Per-object summary of light curves: position, reference flux, statistics."""

    key_column: ClassVar[str] = "object_id"

    object_id: NDArray("int64", 1) = Field(description="object id (fiducial catalog)")
    ra_deg: NDArray("float64", 1, unit="deg") = Field(description="right ascension (ICRS)")
    dec_deg: NDArray("float64", 1, unit="deg") = Field(description="declination (ICRS)")
    ref_flux_ujy: NDArray("float32", 1, unit="uJy") = Field(description="reference-frame flux")
    ref_flux_err_ujy: NDArray("float32", 1, unit="uJy") = Field(description="its 1-sigma error")
    n_epochs_good: NDArray("uint32", 1) = Field(description="epochs without flags")
    median_delta_flux_ujy: NDArray("float32", 1, unit="uJy") = Field(description="median")
    rms_delta_flux_ujy: NDArray("float32", 1, unit="uJy") = Field(description="robust rms")


class LightCurveArrays(MsosProduct):
    """Dense light curves of one partition: difference fluxes per object (rows) and epoch."""

    epochs: Epochs
    object_id: NDArray("int64", 1) = Field(description="object id of each row (fiducial catalog)")
    delta_flux_ujy: NDArray("float32", 2, unit="uJy") = Field(
        description="difference-image PSF flux (objects × epochs); total = ref_flux + this"
    )
    delta_flux_err_ujy: NDArray("float32", 2, unit="uJy") = Field(
        description="1-sigma error of delta_flux_ujy"
    )
    flags: NDArray("uint16", 2) = Field(description=describe(PhotometryFlag))

    @model_validator(mode="after")
    def _dense_shapes(self) -> Self:
        shape = (self.object_id.shape[0], len(self.epochs))
        for name in ("delta_flux_ujy", "delta_flux_err_ujy", "flags"):
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(
                    f"{name} shape {tuple(getattr(self, name).shape)} != objects × epochs {shape}"
                )
        return self


class LightCurveProduct(LightCurveArrays):
    """Light curves with their objects (position, reference flux): exports long-format rows
    ``object_id, ra, dec, time_mjd, flux, flux_err, flag`` with flux = reference + difference,
    so a constant star is flat at its reference flux."""

    objects: LightCurveObjects

    @model_validator(mode="after")
    def _objects_match_rows(self) -> Self:
        rows, listed = self.object_id, self.objects.object_id
        if isinstance(rows, np.ndarray) and isinstance(listed, np.ndarray):
            if not np.array_equal(rows, listed):
                raise ValueError("objects.object_id must list the light-curve rows in order")
        elif tuple(rows.shape) != tuple(listed.shape):
            raise ValueError("objects and light-curve rows differ in number")
        return self

    def export_columns(self) -> list[ExportColumn]:
        return [
            ExportColumn("object_id", "int64", None, None, "object id (fiducial catalog)"),
            ExportColumn("ra", "float64", "deg", None, "right ascension (ICRS)"),
            ExportColumn("dec", "float64", "deg", None, "declination (ICRS)"),
            ExportColumn("time_mjd", "float64", "d", "tdb", "mid-exposure time (MJD TDB)"),
            ExportColumn("flux", "float32", "uJy", None, "reference flux + difference flux"),
            ExportColumn("flux_err", "float32", "uJy", None, "1-sigma error of the epoch's flux"),
            ExportColumn("flag", "uint16", None, None, describe(PhotometryFlag)),
        ]

    def export_batches(self, rows: int) -> Iterator[dict[str, np.ndarray]]:
        n_objects, n_epochs = self.object_id.shape[0], len(self.epochs)
        time = np.asarray(self.epochs.time_mjd_tdb)
        per_batch = max(1, rows // max(n_epochs, 1))
        for start in range(0, max(n_objects, 1), per_batch):
            stop = min(start + per_batch, n_objects)
            objects = self.objects
            ref = np.asarray(objects.ref_flux_ujy[start:stop], dtype="float32")
            yield {
                "object_id": np.repeat(np.asarray(objects.object_id[start:stop]), n_epochs),
                "ra": np.repeat(np.asarray(objects.ra_deg[start:stop]), n_epochs),
                "dec": np.repeat(np.asarray(objects.dec_deg[start:stop]), n_epochs),
                "time_mjd": np.tile(time, stop - start),
                "flux": (ref[:, None] + np.asarray(self.delta_flux_ujy[start:stop])).ravel(),
                "flux_err": np.asarray(self.delta_flux_err_ujy[start:stop]).ravel(),
                "flag": np.asarray(self.flags[start:stop]).ravel(),
            }


def _example_light_curves(n_objects: int, n_epochs: int, start_mjd: float, seed: int) -> dict:
    """Noise plus one Paczyński event on object 1: plausible rows for examples."""
    rng = np.random.default_rng(seed)
    time = start_mjd + np.arange(n_epochs) * 15.0 / 1440.0
    error = rng.uniform(0.5, 2.0, (n_objects, 1)).astype("float32") * np.ones((1, n_epochs))
    flux = rng.normal(0, error).astype("float32")
    t_0, u_0, t_e = time[n_epochs // 2], 0.1, 0.4
    u = np.hypot(u_0, (time - t_0) / t_e)
    flux[0] += (20.0 * ((u**2 + 2) / (u * np.sqrt(u**2 + 4)) - 1)).astype("float32")
    epochs = Epochs(
        time_mjd_tdb=time,
        exposure_time_s=np.full(n_epochs, 46.8, dtype="float32"),
        exposure_name=np.array(
            [f"r0000101001001001{i:04d}_wfi01_cal.asdf" for i in range(n_epochs)]
        ),
        psf_fwhm_pix=rng.normal(1.9, 0.05, n_epochs).astype("float32"),
        background_mjy_sr=rng.normal(0.5, 0.02, n_epochs).astype("float32"),
        kernel_chi2_dof=rng.normal(1.0, 0.05, n_epochs).astype("float32"),
        flags=np.zeros(n_epochs, dtype="uint16"),
    )
    return {
        "epochs": epochs,
        "object_id": np.arange(1, n_objects + 1, dtype="int64"),
        "delta_flux_ujy": flux,
        "delta_flux_err_ujy": error.astype("float32"),
        "flags": np.zeros((n_objects, n_epochs), dtype="uint16"),
    }


class DailyLightCurves(LightCurveProduct):
    """One day of light curves of one partition: every object at every epoch of that day."""

    product_type: ClassVar[str] = "wfi_microlensing_daily_light_curves_level_3"
    schema_version: ClassVar[str] = "1.1.0"
    rad_schema: ClassVar[str] = LIGHT_CURVE_RAD
    export_table: ClassVar[str] = "objects"

    meta: MsosDailyMeta

    @classmethod
    def example(cls, n_objects: int = 50, n_epochs: int = 96, seed: int = 2) -> Self:
        """A day (96 epochs at 15 min) of 50 objects, one of them microlensed."""
        meta = MsosDailyMeta(**example_partition(cls, day=date(2027, 3, 1)))
        curves = _example_light_curves(n_objects, n_epochs, 61465.0, seed)
        return cls(meta=meta, objects=_example_objects(curves, seed), **curves)


class LightCurveCatalog(LightCurveProduct):
    """L4 light-curve catalog of one partition over a season, with per-object summaries."""

    product_type: ClassVar[str] = "wfi_microlensing_light_curve_catalog_level_4"
    schema_version: ClassVar[str] = "1.0.0"
    rad_schema: ClassVar[str] = LIGHT_CURVE_RAD
    export_table: ClassVar[str] = "objects"

    meta: MsosPartitionMeta

    @classmethod
    def example(cls, n_objects: int = 50, n_epochs: int = 400, seed: int = 3) -> Self:
        """Part of a season (400 epochs) of 50 objects, one of them microlensed."""
        curves = _example_light_curves(n_objects, n_epochs, 61465.0, seed)
        meta = MsosPartitionMeta(**example_partition(cls))
        return cls(meta=meta, objects=_example_objects(curves, seed), **curves)


def _example_objects(curves: dict, seed: int) -> LightCurveObjects:
    flux = curves["delta_flux_ujy"]
    n_objects, n_epochs = flux.shape
    rng = np.random.default_rng(seed)
    ref = rng.lognormal(2, 1, n_objects).astype("float32")
    return LightCurveObjects(
        object_id=curves["object_id"],
        ra_deg=268.0 + rng.uniform(0, 0.1, n_objects),
        dec_deg=-29.0 + rng.uniform(0, 0.1, n_objects),
        ref_flux_ujy=ref,
        ref_flux_err_ujy=(0.01 * ref).astype("float32"),
        n_epochs_good=np.full(n_objects, n_epochs, dtype="uint32"),
        median_delta_flux_ujy=np.median(flux, axis=1).astype("float32"),
        rms_delta_flux_ujy=(1.4826 * np.median(np.abs(flux), axis=1)).astype("float32"),
    )


class EpochPhotometry(MsosProduct):
    """Forced photometry of every catalog object on one epoch's difference image (a working
    product between the photometry and light-curve steps; one column of the daily arrays)."""

    product_type: ClassVar[str] = "wfi_microlensing_epoch_photometry"
    schema_version: ClassVar[str] = "1.0.0"
    archived: ClassVar[bool] = False
    export_table: ClassVar[str] = "epoch"

    meta: MsosEpochMeta
    epoch: Epochs
    object_id: NDArray("int64", 1) = Field(description="object id (fiducial catalog order)")
    delta_flux_ujy: NDArray("float32", 1, unit="uJy") = Field(description="difference flux")
    delta_flux_err_ujy: NDArray("float32", 1, unit="uJy") = Field(description="1-sigma error")
    flags: NDArray("uint16", 1) = Field(description=describe(PhotometryFlag))

    @model_validator(mode="after")
    def _one_epoch_one_value_per_object(self) -> Self:
        if len(self.epoch) != 1:
            raise ValueError(f"epoch must hold exactly one row, not {len(self.epoch)}")
        n = self.object_id.shape[0]
        for name in ("delta_flux_ujy", "delta_flux_err_ujy", "flags"):
            if tuple(getattr(self, name).shape) != (n,):
                raise ValueError(f"{name} must have one value per object ({n})")
        return self

    @classmethod
    def example(cls, n_objects: int = 50, seed: int = 11) -> Self:
        """One epoch of 50 objects."""
        curves = _example_light_curves(n_objects, 1, 61465.0, seed)
        epoch = curves["epochs"]
        meta = example_common(
            cls,
            field="f03",
            detector="WFI01",
            exposure_name=str(epoch.exposure_name[0]),
            offset_pix=[0.12, -0.31],
            ujy_per_dn_s=0.0632,
        )
        return cls(
            meta=MsosEpochMeta(**meta),
            epoch=epoch,
            object_id=curves["object_id"],
            delta_flux_ujy=curves["delta_flux_ujy"][:, 0],
            delta_flux_err_ujy=curves["delta_flux_err_ujy"][:, 0],
            flags=curves["flags"][:, 0],
        )


class DiaKernelSolution(MetaModel):
    """A solved difference-imaging kernel (Bramich delta basis, polynomial in position):
    everything needed to evaluate K(x, y), the photometric scale ΣK and the background."""

    model_config = MetaModel.model_config | {"arbitrary_types_allowed": True}

    shape: list[int] = Field(min_length=2, max_length=2, description="(ny, nx) solved for")
    kernel_size: int = Field(ge=1, description="odd width of the pixel kernel")
    kernel_order: int = Field(ge=0, description="polynomial order of the kernel's shape")
    scale_order: int = Field(ge=0, description="polynomial order of the photometric scale")
    background_order: int = Field(ge=0, description="polynomial order of the background")
    x_offset: float = Field(description="u = (x - x_offset) / x_scale")
    x_scale: float = Field(gt=0)
    y_offset: float = Field(description="v = (y - y_offset) / y_scale")
    y_scale: float = Field(gt=0)
    kernel_coefficients: NDArray("float64", 3) = Field(
        description="[kernel_size, kernel_size, n_terms]: polynomial coefficients per kernel pixel"
    )
    background_coefficients: NDArray("float64", 1) = Field(description="background polynomial")
    scale_covariance: NDArray("float64", 2) = Field(description="covariance of the scale terms")
    chi2_per_dof: float = Field(ge=0, description="of the fit on the stamps")
    n_pixels: int = Field(ge=0, description="stamp pixels in the final fit")
    n_pixels_clipped: int = Field(ge=0, description="stamp pixels rejected as outliers")
    n_parameters: int = Field(ge=1)
    n_iterations: int = Field(ge=1)
    stamp_x: NDArray("int64", 1) = Field(description="stamp centres (x)")
    stamp_y: NDArray("int64", 1) = Field(description="stamp centres (y)")
    stamp_size: int = Field(ge=1)
    stamp_status: NDArray("int8", 1) = Field(description="0 used, 1 clipped, 2 unusable")
    stamp_chi2_per_dof: NDArray("float64", 1) = Field(description="NaN where unusable")


class DifferenceImage(MsosProduct):
    """One epoch minus the reference convolved to match it: D = I - (R ⊗ K + B), its
    variance and bad mask, and the kernel (a working product, not archived)."""

    product_type: ClassVar[str] = "wfi_microlensing_difference_image"
    schema_version: ClassVar[str] = "1.0.0"
    archived: ClassVar[bool] = False
    export_table: ClassVar[str] = "epoch"

    meta: MsosEpochMeta
    epoch: Epochs
    data: NDArray("float32", 2) = Field(description="difference image (DN/s), NaN where bad")
    variance: NDArray("float32", 2) = Field(description="variance of data (DN/s)²")
    bad: NDArray("bool", 2) = Field(description="pixels that could not be differenced")
    kernel: DiaKernelSolution

    @model_validator(mode="after")
    def _shapes(self) -> Self:
        if len(self.epoch) != 1:
            raise ValueError("epoch must hold exactly one row")
        shape = tuple(self.data.shape)
        for name in ("variance", "bad"):
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"{name} shape differs from data {shape}")
        return self

    @classmethod
    def example(cls, size: int = 48, seed: int = 12) -> Self:
        """A small difference image of noise and one brightened star, with a delta kernel."""
        rng = np.random.default_rng(seed)
        data = rng.normal(0, 0.1, (size, size)).astype("float32")
        yy, xx = np.mgrid[0:size, 0:size]
        data += (30 * np.exp(-((xx - 20.3) ** 2 + (yy - 25.7) ** 2) / 1.2)).astype("float32")
        coefficients = np.zeros((7, 7, 6))
        coefficients[3, 3, 0] = 1.0
        photometry = EpochPhotometry.example(n_objects=3)
        return cls(
            meta=photometry.meta.model_copy(update={"product_type": cls.product_type,
                                                    "model_type": cls.__name__}),
            epoch=photometry.epoch,
            data=data,
            variance=np.full(data.shape, 0.01, dtype="float32"),
            bad=np.zeros(data.shape, dtype=bool),
            kernel=DiaKernelSolution(
                shape=[size, size], kernel_size=7, kernel_order=2, scale_order=2,
                background_order=1, x_offset=(size - 1) / 2, x_scale=(size - 1) / 2,
                y_offset=(size - 1) / 2, y_scale=(size - 1) / 2,
                kernel_coefficients=coefficients, background_coefficients=np.zeros(3),
                scale_covariance=np.eye(6) * 1e-8, chi2_per_dof=1.0, n_pixels=2000,
                n_pixels_clipped=3, n_parameters=297, n_iterations=2,
                stamp_x=np.array([10, 30], dtype="int64"),
                stamp_y=np.array([12, 33], dtype="int64"),
                stamp_size=19, stamp_status=np.zeros(2, dtype="int8"),
                stamp_chi2_per_dof=np.array([1.02, 0.97]),
            ),
        )  # fmt: skip
