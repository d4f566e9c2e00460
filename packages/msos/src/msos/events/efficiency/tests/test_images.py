"""Injection into images on a simulated partition (192² pixels, 16 hourly epochs): hosts of a
pass keep their distance, the photometry gives back the flux injected, bright events come
back as TP at their t_0 and blanks as TN, ``msos efficiency --medium images`` publishes a
valid catalog, and an unreadable image stops the run with one line naming it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from msos.context import PartitionReference
from msos.dia.step import read_input_epoch
from msos.events.efficiency.images import (
    HOST_EDGE_PIX,
    HOST_SPACING_PIX,
    draw_image_injections,
    inject_epoch,
    injected_light_curves,
)
from msos.events.efficiency.kernel import InjectionSettings, added_flux, search_and_match
from msos.events.efficiency.step import IMAGES_MEDIUM, ImagesEfficiencyStep
from msos.partition import Partition

PARTITION = Partition("s01", "f03", "WFI01")
#: bright events of ~0.5 d in a 15-hour season: many epochs each, well above the noise
BRIGHT = {"t_E_d": (0.4, 0.6), "source_flux_ujy": (20.0, 40.0)}


@pytest.fixture(scope="module")
def partition(tmp_path_factory):
    """The simulated images, and a store holding their reference frame and catalog."""
    from msos.catalog.step import CatalogStep
    from msos.reference.step import ReferenceStep
    from msos.simulate.command import write_partition
    from msos.simulate.partition import SimulationConfig
    from ssc_common.context import Context
    from ssc_common.settings import Settings

    level2 = tmp_path_factory.mktemp("level2")
    config = SimulationConfig(n_epochs=16, shape=(192, 192), n_pspl=0, n_binary=0,
                              periodic_fraction=0.0, seed=3, cadence_s=3600.0)  # fmt: skip
    write_partition(config, level2, compression="none")
    images = [str(p) for p in sorted(level2.glob("*_cal.asdf"))]
    store = tmp_path_factory.mktemp("store")
    ctx = Context(Settings(storage_url=store.as_uri()))
    ReferenceStep(ctx, PARTITION).run(images, {}, partition=PARTITION.name)
    CatalogStep(ctx, PARTITION).run([PARTITION.reference_key()], {}, partition=PARTITION.name)
    yield ctx, images, store
    ctx.close()


def test_bright_events_come_back_at_their_t_0_and_blanks_stay_quiet(partition):
    ctx, images, _ = partition
    reference = PartitionReference.load(ctx, PARTITION)
    epochs = [read_input_epoch(ctx, image, PARTITION) for image in images]
    time = np.array([epoch.time_mjd_tdb for epoch in epochs])
    rng = np.random.default_rng(8)
    settings = InjectionSettings(n_injections=10, blank_fraction=0.3, **BRIGHT)
    plan, pass_of_row = draw_image_injections(rng, time, reference, settings)
    assert len(plan) == 10 and set(pass_of_row) == {0}
    x, y = reference.xy
    hx, hy = x[plan.host], y[plan.host]
    apart = np.hypot(hx[:, None] - hx, hy[:, None] - hy) + np.eye(10) * 1e9
    assert apart.min() >= HOST_SPACING_PIX  # one pass: no host lies in another's light
    assert min(hx.min(), hy.min()) >= HOST_EDGE_PIX and max(hx.max(), hy.max()) <= 191 - 16
    # peaks well inside the season, u_0 large enough that the peak spans several epochs
    events = plan.injected
    t_0 = np.where(events, rng.uniform(time[4], time[-5], 10), np.nan)
    plan = dataclasses.replace(plan, t_0=t_0, u_0=np.where(events, 0.3, np.nan))
    added = added_flux(time, plan)
    curves = injected_light_curves(reference, iter(epochs), plan, pass_of_row, added)
    assert curves.rejected == []
    # the photometry's flux change at a (constant) host is what was injected
    ref = np.asarray(reference.catalog.objects.ref_flux_ujy, dtype=np.float64)[plan.host]
    strong = added[events] > 10.0
    ratio = (curves.flux - ref[:, None])[events][strong] / added[events][strong]
    ratio = ratio[np.isfinite(ratio)]  # a flagged point has no flux
    assert ratio.size > 20 and abs(np.median(ratio) - 1) < 0.02
    recovery = search_and_match(time, [curves.as_injected(added)], plan, threshold=500.0)
    classes = recovery.binary_class(plan.injected)
    assert list(classes[~events]) == ["TN"] * 3
    # a host under a fixed defect (dead or hot pixels in its core) has too few unflagged
    # points to be searched: its event is missed, as a real one would be
    measurable = np.count_nonzero(curves.flags == 0, axis=1) >= 10
    assert np.count_nonzero(events & measurable) >= 5
    assert set(classes[events & measurable]) == {"TP"} and set(classes[events & ~measurable]) <= {
        "FN"
    }
    found = recovery.detected
    np.testing.assert_allclose(recovery.t_0[found], t_0[found], atol=0.03)
    assert np.all(recovery.peak_snr[events & measurable] > 20)


def test_msos_efficiency_medium_images_publishes_a_valid_catalog(partition):
    from typer.testing import CliRunner

    from msos.cli import app
    from roman_schemas.io import validate_file

    ctx, images, store = partition
    settings = ctx.settings
    options = [
        "--n-injections",
        "8",
        "--blank-fraction",
        "0.25",
        "--seed",
        "2",
        "--t-e-d",
        "0.4",
        "0.6",
        "--source-flux-ujy",
        "20",
        "40",
        "--u-0-max",
        "0.5",
    ]
    result = CliRunner().invoke(app, [
        "--storage", settings.storage_url, "--database", settings.resolved_database_url(),
        "efficiency", "--medium", "images", *options, *images,
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    catalog = validate_file(store / PARTITION.efficiency_key(IMAGES_MEDIUM))
    assert catalog.meta.inject_medium == "images" and catalog.meta.season == "s01"
    counts = catalog.counts()
    assert counts["TP"] + counts["FN"] == 6 and (counts["FP"], counts["TN"]) == (0, 2)
    assert counts["TP"] >= 2  # misses: a host under bad pixels, or a u_0 near 0 (a spike)
    assert f"TP {counts['TP']} FP 0 TN 2 FN {counts['FN']}" in result.output
    table = catalog.injections
    reference = PartitionReference.load(ctx, PARTITION)
    assert set(np.asarray(table.object_id)) <= set(reference.object_id)
    detected = np.asarray(table.detected)
    assert np.all(np.char.startswith(np.asarray(table.recovered_event_id)[detected], "MSOS-s01"))
    shift = np.asarray(table.recovered_t_0_mjd_tdb) - np.asarray(table.t_0_mjd_tdb)
    assert np.all(np.abs(shift[detected]) < 0.05)
    step = ImagesEfficiencyStep(ctx, PARTITION)
    parameters = {"n_injections": 8, "blank_fraction": 0.25, "seed": 2, "threshold": 500.0,
                  "planet_fraction": 0.0, "u_0_max": 0.5, "t_E_d": [0.4, 0.6],
                  "source_flux_ujy": [20.0, 40.0]}  # fmt: skip
    assert step.run(step.inputs(images), parameters, partition=PARTITION.name).skipped


def test_an_unreadable_image_stops_the_run_naming_it_and_publishes_nothing(
    partition, tmp_path: Path, capsys
):
    from msos.cli import app
    from ssc_common.cli_base import run_app

    ctx, images, store = partition
    broken = tmp_path / "r0000101001001099001_0001_wfi01_f146_cal.asdf"
    broken.write_bytes(b"#ASDF 1.0.0\nnot really")
    before = sorted(p for p in store.rglob("*") if "efficiency" in str(p))
    code = run_app(app, [
        "--storage", ctx.settings.storage_url, "--database", ctx.settings.resolved_database_url(),
        "efficiency", "--medium", "images", "--n-injections", "4", "--seed", "9",
        images[0], str(broken), *images[1:],
    ])  # fmt: skip
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code != 0
    assert len(errors) == 1 and broken.name in errors[0] and "not a readable Level-2" in errors[0]
    assert sorted(p for p in store.rglob("*") if "efficiency" in str(p)) == before


def test_photon_noise_of_the_added_pixels_widens_their_variance_by_gain_times_time(partition):
    ctx, images, _ = partition
    epoch = read_input_epoch(ctx, images[0], PARTITION)
    psf = PartitionReference.load(ctx, PARTITION).epsf
    x, y, added = np.array([60.0, 120.0]), np.array([70.0, 110.0]), np.array([4e4, 4e4])
    plain = inject_epoch(epoch, x, y, added, psf)
    noisy = inject_epoch(epoch, x, y, added, psf, electrons_per_dn_s=100.0,
                         rng=np.random.default_rng(3))  # fmt: skip
    pixels = plain.data - epoch.data
    lit = np.isfinite(pixels) & (pixels > 5.0)
    np.testing.assert_allclose((noisy.variance - epoch.variance)[lit], pixels[lit] / 100.0,
                               rtol=1e-3)  # fmt: skip
    pulls = (noisy.data - plain.data)[lit] / np.sqrt(pixels[lit] / 100.0)
    assert lit.sum() > 50 and abs(np.std(pulls) - 1) < 0.2
    np.testing.assert_array_equal(plain.variance, epoch.variance)  # noiseless: kept
    with pytest.raises(ValueError, match="random generator"):
        inject_epoch(epoch, x, y, added, psf, electrons_per_dn_s=100.0)
