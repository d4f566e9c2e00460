"""Dense light-curve arrays (objects × epochs) assembled with bounded memory.

A day of one partition is ~1 million objects × 96 epochs × 10 bytes ≈ 1 GB and a season
~60 times more, so the arrays live in memory-mapped scratch files, filled one epoch column
(or one block of rows) at a time, and are handed to the product writer as memory maps.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from roman_schemas.products.msos.flags import PhotometryFlag

ROWS_PER_BLOCK = 131_072  # rows handled at once when filling the arrays
STATS_ROWS_PER_BLOCK = 16_384  # rows per block of statistics (float64 copies: keep them small)


@dataclass
class LightCurveArrays:
    """The three objects × epochs arrays of a light-curve product, memory-mapped."""

    delta_flux: np.ndarray
    delta_flux_err: np.ndarray
    flags: np.ndarray

    @classmethod
    def create(cls, directory: Path, n_objects: int, n_epochs: int) -> LightCurveArrays:
        """New arrays in ``directory``: NaN fluxes flagged NO_DATA until an epoch fills them."""
        directory.mkdir(parents=True, exist_ok=True)
        shape = (n_objects, n_epochs)

        def mapped(name: str, dtype: str) -> np.ndarray:
            return np.lib.format.open_memmap(directory / f"{name}.npy", "w+", dtype, shape)

        arrays = cls(mapped("delta_flux", "float32"), mapped("delta_flux_err", "float32"),
                     mapped("flags", "uint16"))  # fmt: skip
        for rows in row_blocks(n_objects):
            arrays.delta_flux[rows] = np.nan
            arrays.delta_flux_err[rows] = np.nan
            arrays.flags[rows] = PhotometryFlag.NO_DATA
        return arrays

    def set_epoch(
        self, column: int, flux: np.ndarray, flux_err: np.ndarray, flags: np.ndarray
    ) -> None:
        """Fill one epoch column, a block of rows at a time."""
        for rows in row_blocks(self.delta_flux.shape[0]):
            self.delta_flux[rows, column] = flux[rows]
            self.delta_flux_err[rows, column] = flux_err[rows]
            self.flags[rows, column] = flags[rows]

    def set_block(self, columns: slice, flux: object, flux_err: object, flags: object) -> None:
        """Copy whole arrays (e.g. a day of a season) into a range of columns, by row blocks."""
        for rows in row_blocks(self.delta_flux.shape[0]):
            self.delta_flux[rows, columns] = np.asarray(flux[rows])
            self.delta_flux_err[rows, columns] = np.asarray(flux_err[rows])
            self.flags[rows, columns] = np.asarray(flags[rows])

    def flush(self) -> None:
        """Write dirty pages to the scratch files."""
        for array in (self.delta_flux, self.delta_flux_err, self.flags):
            if isinstance(array, np.memmap):
                array.flush()


def row_blocks(n_rows: int, size: int = ROWS_PER_BLOCK) -> Iterator[slice]:
    """Consecutive row slices covering ``n_rows``."""
    for start in range(0, n_rows, size):
        yield slice(start, min(start + size, n_rows))


def summarise(arrays: LightCurveArrays) -> dict[str, np.ndarray]:
    """Per-object good-epoch count, median and robust rms (1.4826 × MAD) of the difference
    flux over unflagged epochs, computed a block of rows at a time."""
    n_objects = arrays.delta_flux.shape[0]
    n_good = np.zeros(n_objects, dtype="uint32")
    median = np.full(n_objects, np.nan, dtype="float32")
    rms = np.full(n_objects, np.nan, dtype="float32")
    for rows in row_blocks(n_objects, STATS_ROWS_PER_BLOCK):
        flux = np.array(arrays.delta_flux[rows], dtype="float64")
        good = (np.asarray(arrays.flags[rows]) == 0) & np.isfinite(flux)
        flux[~good] = np.nan
        n_good[rows] = good.sum(axis=1)
        has = n_good[rows] > 0
        block_median = np.full(flux.shape[0], np.nan)
        block_rms = np.full(flux.shape[0], np.nan)
        if has.any():
            block_median[has] = np.nanmedian(flux[has], axis=1)
            deviation = np.abs(flux[has] - block_median[has, None])
            block_rms[has] = 1.4826 * np.nanmedian(deviation, axis=1)
        median[rows], rms[rows] = block_median, block_rms
    return {"n_epochs_good": n_good, "median": median, "rms": rms}
