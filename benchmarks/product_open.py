"""Opening a light-curve partition: roman-schemas (lazy ASDF) against astropy FITS.

Writes the same objects × epochs arrays as a DailyLightCurves product and as a FITS file
with one image HDU per array, then times opening each and reading one object's light curve.
FITS through astropy (memory-mapped, unvalidated) is the field's usual container for such
arrays; roman-schemas also memory-maps local files but validates the header on every open.

    ./dev run python benchmarks/product_open.py [--objects 1100000] [--epochs 96]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

from roman_schemas import open_product, write_product
from roman_schemas.products.msos import DailyLightCurves


def build(directory: Path, n_objects: int, n_epochs: int) -> tuple[Path, Path]:
    small = DailyLightCurves.example(n_objects=4, n_epochs=n_epochs)
    fields = {name: getattr(small, name) for name in DailyLightCurves.model_fields}
    shape = (n_objects, n_epochs)
    rng = np.random.default_rng(0)
    fields["object_id"] = np.arange(1, n_objects + 1, dtype="int64")
    fields["delta_flux_ujy"] = rng.standard_normal(shape, dtype="float32")
    fields["delta_flux_err_ujy"] = np.ones(shape, dtype="float32")
    fields["flags"] = np.zeros(shape, dtype="uint16")
    product = DailyLightCurves(**fields)
    asdf_path = write_product(product, directory / "partition.asdf")
    fits_path = directory / "partition.fits"
    hdus = [fits.PrimaryHDU()]
    for name in ("delta_flux_ujy", "delta_flux_err_ujy", "flags"):
        hdus.append(fits.ImageHDU(fields[name], name=name.upper()))
    hdus.append(
        fits.BinTableHDU.from_columns([fits.Column("object_id", "K", array=fields["object_id"])])
    )
    fits.HDUList(hdus).writeto(fits_path)
    return asdf_path, fits_path


def time_asdf(path: Path, row: int) -> float:
    start = time.perf_counter()
    with open_product(path, DailyLightCurves) as product:
        np.asarray(product.delta_flux_ujy[row])
    return time.perf_counter() - start


def time_fits(path: Path, row: int) -> float:
    start = time.perf_counter()
    with fits.open(path, memmap=True) as hdul:
        np.asarray(hdul["DELTA_FLUX_UJY"].data[row])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1_100_000)
    parser.add_argument("--epochs", type=int, default=96)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        asdf_path, fits_path = build(Path(scratch), args.objects, args.epochs)
        size_gb = asdf_path.stat().st_size / 1e9
        time_asdf(asdf_path, 0)  # load asdf's extensions once, as any process does
        row = args.objects // 2
        asdf_times = [time_asdf(asdf_path, row) for _ in range(args.repeat)]
        fits_times = [time_fits(fits_path, row) for _ in range(args.repeat)]
    ours, theirs = statistics.median(asdf_times), statistics.median(fits_times)
    print(f"partition: {args.objects} objects × {args.epochs} epochs, {size_gb:.2f} GB")
    print(f"roman-schemas open + one light curve: {ours * 1e3:8.1f} ms (validated on read)")
    print(f"astropy FITS  open + one light curve: {theirs * 1e3:8.1f} ms")
    print(f"ratio (FITS time / roman-schemas time): {theirs / ours:.2f}")


if __name__ == "__main__":
    main()
