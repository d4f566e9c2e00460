"""``msos simulate``: write a synthetic GBTDS partition as Level-2 files plus its truth."""

from __future__ import annotations

import logging
import math
import re
import time
from pathlib import Path
from typing import Annotated

import typer

from ssc_common.errors import SSCError

log = logging.getLogger(__name__)

TRUTH_STARS = "truth_stars.parquet"
TRUTH_EPOCHS = "truth_epochs.parquet"
TRUTH_VARIABLE_FLUXES = "truth_variable_fluxes.parquet"
TRUTH_PSF = "truth_psf.asdf"


def simulate(
    out: Annotated[Path, typer.Option("--out", help="directory to write the files into")],
    epochs: Annotated[int, typer.Option(help="number of exposures")] = 96,
    shape: Annotated[
        int, typer.Option(help="image side in pixels (4088 = a full detector)")
    ] = 4088,
    field: Annotated[str, typer.Option(help="GBTDS field, f01–f07")] = "f03",
    detector: Annotated[str, typer.Option(help="WFI01–WFI18")] = "WFI01",
    season: Annotated[str, typer.Option(help="season, s01…")] = "s01",
    start: Annotated[str, typer.Option(help="first exposure start (UTC, ISO)")] = (
        "2027-03-01T00:00:00"
    ),
    cadence_min: Annotated[float, typer.Option(help="minutes between exposures")] = 15.0,
    stars_per_arcmin2: Annotated[
        float, typer.Option(help="density of 16–26 AB mag stars (18000 ≈ 1e6 per detector)")
    ] = 18000.0,
    periodic_fraction: Annotated[float, typer.Option(help="fraction of periodic variables")] = 0.01,
    microlensing: Annotated[int, typer.Option(help="point-lens microlensing events")] = 5,
    binary_lens: Annotated[int, typer.Option(help="planetary binary-lens events")] = 1,
    seed: Annotated[int, typer.Option(help="random seed: same inputs, same files")] = 1,
    compression: Annotated[
        str,
        typer.Option(help="ASDF array compression of the L2 files: lz4 (romancal's), zlib, none"),
    ] = "lz4",
    overwrite: Annotated[bool, typer.Option(help="replace a simulation already in --out")] = False,
) -> None:
    """Simulate one (season, field, detector) partition: N epochs of romancal Level-2
    ``wfi_image`` files of a crowded bulge field (variables, microlensing, defects) and the
    truth beside them (stars, epochs, variable fluxes, ePSF grids). The stars are rendered with
    the pipeline's ePSF model (``msos.psf.model``: cubic B-spline in the truth ePSF stamps),
    each star's wings truncated where at most 0.01 DN/s of its flux lies beyond."""
    config = _config(
        epochs, shape, field, detector, season, start, cadence_min, stars_per_arcmin2,
        periodic_fraction, microlensing, binary_lens, seed,
    )  # fmt: skip
    if compression not in ("none", "lz4", "zlib"):
        raise SSCError("--compression", f"{compression!r} is not one of none, lz4, zlib")
    out = out.expanduser()
    if out.exists() and not out.is_dir():
        raise SSCError(str(out), "exists and is not a directory")
    if (out / TRUTH_STARS).exists() and not overwrite:
        raise SSCError(str(out), "already holds a simulation (use --overwrite to replace it)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SSCError(str(out), f"cannot create the directory: {error.strerror}") from None
    for line in write_partition(config, out, compression):
        typer.echo(line)


def _config(
    epochs: int,
    shape: int,
    field: str,
    detector: str,
    season: str,
    start: str,
    cadence_min: float,
    stars_per_arcmin2: float,
    periodic_fraction: float,
    microlensing: int,
    binary_lens: int,
    seed: int,
) -> object:
    from astropy.time import Time

    from msos.simulate.partition import SimulationConfig
    from msos.survey import DETECTORS, FIELDS_GALACTIC

    if epochs < 1:
        raise SSCError("--epochs", f"{epochs} is not a positive number of exposures")
    if not 32 <= shape <= 4088:
        raise SSCError("--shape", f"{shape} pixels is outside 32–4088")
    field = field.lower()
    if field not in FIELDS_GALACTIC:
        raise SSCError("--field", f"{field!r} is not one of {', '.join(FIELDS_GALACTIC)}")
    detector = detector.upper()
    if detector not in DETECTORS:
        raise SSCError("--detector", f"{detector!r} is not one of WFI01–WFI18")
    match = re.fullmatch(r"s(\d{2,3})", season.lower())
    if not match or not 1 <= int(match.group(1)) <= 999:
        raise SSCError("--season", f"{season!r} is not a season like s01")
    try:
        Time(start, scale="utc")
    except ValueError:
        raise SSCError("--start", f"{start!r} is not an ISO UTC time") from None
    per_day = math.ceil(1440.0 / cadence_min) if cadence_min > 0 else 10**9
    if per_day > 999:
        raise SSCError("--cadence-min", f"{cadence_min} min gives more than 999 visits a day")
    if epochs * cadence_min / 1440.0 >= 999:
        raise SSCError("--epochs", "the simulation spans more than 999 days")
    if stars_per_arcmin2 < 0:
        raise SSCError("--stars-per-arcmin2", f"{stars_per_arcmin2} is negative")
    if not 0 <= periodic_fraction <= 1:
        raise SSCError("--periodic-fraction", f"{periodic_fraction} is not within 0–1")
    if microlensing < 0 or binary_lens < 0:
        raise SSCError("--microlensing/--binary-lens", "the number of events is negative")
    return SimulationConfig(
        n_epochs=epochs,
        shape=(shape, shape),
        field=field,
        detector=detector,
        season=int(match.group(1)),
        start=start,
        cadence_s=cadence_min * 60.0,
        stars_per_arcmin2=stars_per_arcmin2,
        periodic_fraction=periodic_fraction,
        n_pspl=microlensing,
        n_binary=binary_lens,
        seed=seed,
    )


def write_partition(config: object, out: Path, compression: str = "lz4") -> list[str]:
    """Simulate ``config`` into ``out``; the lines reporting what was written."""
    from msos import __version__
    from msos.simulate.partition import Partition
    from msos.simulate.psf import stamp_fwhm
    from msos.simulate.write import (
        ExposureId,
        make_image_model,
        write_image,
        write_table,
        write_truth_psf,
    )

    began = time.perf_counter()
    partition = Partition(config)
    plan = partition.plan
    lines: list[str] = []
    names: list[str] = []
    psfs = []
    counts: dict[str, list[int]] = {"n_cosmic_ray_pixels": [], "n_saturated_pixels": []}
    per_day = math.ceil(86400.0 / config.cadence_s)
    for e in range(partition.n_epochs):
        t0 = time.perf_counter()
        psf = partition.psf(e)
        model = partition.model(e, psf)
        arrays = partition.observe(e, model)
        t1 = time.perf_counter()
        exposure_id = ExposureId(
            season=config.season,
            field=int(config.field[1:]),
            segment=e // per_day + 1,
            visit=e % per_day + 1,
        )
        wcs = partition.wcs(e)
        image = make_image_model(
            arrays,
            wcs=wcs,
            exposure_id=exposure_id,
            detector=config.detector,
            start=plan.start[e],
            end=plan.end[e],
            field_center=partition.center,
            boresight=_boresight(partition, wcs),
            sky_dn_s=float(plan.sky_dn_s[e]),
            software_version=__version__,
        )
        path = out / image.meta.filename
        write_image(image, path, compression)
        names.append(path.name)
        psfs.append(psf)
        counts["n_cosmic_ray_pixels"].append(len(arrays.cosmic_rays))
        counts["n_saturated_pixels"].append(len(arrays.saturated))
        log.info(
            "epoch %d: simulated in %.1f s, written in %.1f s",
            e, t1 - t0, time.perf_counter() - t1,
        )  # fmt: skip
        lines.append(f"wrote {path}")

    o = config.psf.oversampling
    fwhm = [[stamp_fwhm(s, o) for s in p.stamps] for p in psfs]
    truth = {
        TRUTH_STARS: partition.star_table(),
        TRUTH_EPOCHS: partition.epoch_table(names, counts),
        TRUTH_VARIABLE_FLUXES: partition.variable_flux_table(),
    }
    for name, table in truth.items():
        write_table(table, out / name)
        lines.append(f"wrote {out / name} ({len(table)} rows)")
    write_truth_psf(out / TRUTH_PSF, psfs, plan.jitter_sigma_pix, fwhm)
    lines.append(f"wrote {out / TRUTH_PSF}")
    lines.append(
        f"simulated s{config.season:02d} {config.field} {config.detector}: "
        f"{partition.n_epochs} epochs of {config.shape[1]}×{config.shape[0]} pixels, "
        f"{len(partition.stars)} stars ({len(partition.variables)} variable) "
        f"in {time.perf_counter() - began:.1f} s"
    )
    return lines


def _boresight(partition: object, wcs: object) -> tuple[float, float]:
    """Sky position of the field centre's detector-frame location in this epoch."""
    x, y = partition.reference_wcs.invert(*partition.center, with_bounding_box=False)
    ra, dec = wcs(x, y, with_bounding_box=False)
    return float(ra), float(dec)
