"""Turning one processed epoch into its products (difference image, epoch photometry)."""

from __future__ import annotations

import dataclasses

import numpy as np

from msos.context import PartitionReference
from msos.epoch import EpochResult
from msos.inputs import Epoch
from msos.products import common_meta
from roman_schemas.products.msos import (
    DiaKernelSolution,
    DifferenceImage,
    EpochPhotometry,
    Epochs,
    MsosEpochMeta,
)


def epoch_row(epoch: Epoch, result: EpochResult) -> Epochs:
    """The one-row epoch table of an epoch's products."""
    return Epochs(
        time_mjd_tdb=np.array([epoch.time_mjd_tdb]),
        exposure_time_s=np.array([epoch.exposure_time_s], dtype="float32"),
        exposure_name=np.array([epoch.exposure_name]),
        psf_fwhm_pix=np.array([result.psf_fwhm_pix], dtype="float32"),
        background_mjy_sr=np.array([result.background_mjy_sr], dtype="float32"),
        kernel_chi2_dof=np.array([result.solution.chi2_per_dof], dtype="float32"),
        flags=np.array([result.epoch_flags], dtype="uint16"),
    )


def epoch_meta(cls: type, reference: PartitionReference, epoch: Epoch, result: EpochResult):  # noqa: ANN201
    """The metadata of an epoch's working products."""
    partition = reference.partition
    return MsosEpochMeta(
        **common_meta(
            cls,
            partition,
            reference.catalog.meta.program,
            field=partition.field,
            detector=partition.detector,
            optical_element=epoch.optical_element,
            exposure_name=epoch.exposure_name,
            offset_pix=[float(result.shift[0]), float(result.shift[1])],
            ujy_per_dn_s=epoch.ujy_per_dn_s,
        )
    )


def photometry_product(
    reference: PartitionReference, epoch: Epoch, result: EpochResult
) -> EpochPhotometry:
    """The forced photometry of every catalog object on this epoch."""
    return EpochPhotometry(
        meta=epoch_meta(EpochPhotometry, reference, epoch, result),
        epoch=epoch_row(epoch, result),
        object_id=reference.object_id,
        delta_flux_ujy=result.flux_ujy,
        delta_flux_err_ujy=result.flux_err_ujy,
        flags=result.flags,
    )


def difference_product(
    reference: PartitionReference, epoch: Epoch, result: EpochResult
) -> DifferenceImage:
    """The difference image of this epoch with its kernel."""
    solution = dataclasses.asdict(result.solution)
    solution["shape"] = list(solution["shape"])
    solution["stamp_status"] = np.asarray(solution["stamp_status"], dtype="int8")
    solution["stamp_chi2_per_dof"] = np.asarray(solution["stamp_chi2_per_dof"], dtype="float64")
    return DifferenceImage(
        meta=epoch_meta(DifferenceImage, reference, epoch, result),
        epoch=epoch_row(epoch, result),
        data=result.difference.data,
        variance=result.difference.variance,
        bad=result.difference.bad,
        kernel=DiaKernelSolution(**solution),
    )
