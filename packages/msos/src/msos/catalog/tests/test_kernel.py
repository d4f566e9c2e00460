import numpy as np
import pytest
from scipy.spatial import cKDTree

from msos.catalog.kernel import decode_object_id, measure_objects, object_ids
from msos.catalog.synthetic import observe, true_snr, truth_psf
from msos.psf.model import render_stars, to_gridded_psf
from roman_schemas.products.msos.flags import PhotometryFlag


@pytest.fixture(scope="module")
def measured(crowded):
    return measure_objects(crowded["image"], crowded["psf"], variance=crowded["variance"])


def test_crowded_field_completeness_and_accuracy(crowded, measured):
    x, y, flux = crowded["x"], crowded["y"], crowded["flux"]
    size = crowded["image"].shape[0]
    snr = true_snr(x, y, flux, crowded["psf"], 29.0)
    inside = (x > 4) & (x < size - 5) & (y > 4) & (y < size - 5)
    tree = cKDTree(np.column_stack([measured.x, measured.y]))
    dist, j = tree.query(np.column_stack([x, y]))
    found = dist < 0.75
    above = inside & (snr >= 10)
    assert above.sum() > 300
    # stars with a brighter one closer than ~1 FWHM are blends no fit can always split
    truth = cKDTree(np.column_stack([x, y]))
    near, idx = truth.query(np.column_stack([x, y]), k=8)
    brighter = flux[np.minimum(idx, x.size - 1)] > flux[:, None]
    resolvable = ~np.any((near[:, 1:] < 1.25) & brighter[:, 1:], axis=1)
    assert found[above].mean() >= 0.93, found[above].mean()
    assert found[above & resolvable].mean() >= 0.95, found[above & resolvable].mean()
    # flux pulls of all matched stars above 10σ (a few hundred: the median is good to ±0.05)
    sel = above & found
    pull = (measured.flux[j[sel]] - flux[sel]) / measured.flux_err[j[sel]]
    assert abs(np.median(pull)) <= 0.1, np.median(pull)
    # positions by S/N
    for lo, hi, pos_limit in [(10, 30, 0.2), (30, 100, 0.08), (100, np.inf, 0.05)]:
        sel = inside & (snr >= lo) & (snr < hi) & found
        assert np.median(dist[sel]) < pos_limit, (lo, np.median(dist[sel]))
    bright = inside & (snr >= 100) & found
    rel = measured.flux[j[bright]] / flux[bright] - 1
    assert abs(np.median(rel)) < 0.01
    # few spurious objects: detections with no true star within 1 pix
    d_back, _ = cKDTree(np.column_stack([x, y])).query(np.column_stack([measured.x, measured.y]))
    assert (d_back > 1.0).mean() < 0.02
    assert np.all(np.isfinite(measured.flux_err[measured.flags == 0]))


def test_outputs_are_consistent(measured):
    n = len(measured)
    for name in ("x", "y", "flux", "flux_err", "x_err", "y_err", "qfit", "crowding", "flags"):
        assert getattr(measured, name).shape == (n,)
    assert measured.flags.dtype == np.uint32
    ok = measured.flags == 0
    assert np.all((measured.crowding[ok] >= 0) & (measured.crowding[ok] <= 1))
    assert np.nanmedian(measured.qfit) < 0.5
    # BLENDED: some brighter neighbour within the blend radius
    blended = (measured.flags & PhotometryFlag.BLENDED) > 0
    assert blended.any() and not blended.all()
    assert measured.residual.dtype == np.float32


@pytest.mark.parametrize("sep", [1.0, 1.5, 2.0])
def test_close_pairs_are_separated(sep):
    size = 96
    psf = truth_psf(size)
    rng = np.random.default_rng(int(sep * 10))
    centres = [(16 + 30 * c + rng.uniform(-0.5, 0.5), 16 + 30 * r + rng.uniform(-0.5, 0.5))
               for r in range(3) for c in range(3)]  # fmt: skip
    xs, ys, fs = [], [], []
    for k, (cx, cy) in enumerate(centres):
        ang = rng.uniform(0, np.pi)
        ratio = [1.0, 0.5, 0.3][k % 3]
        xs += [cx - sep / 2 * np.cos(ang), cx + sep / 2 * np.cos(ang)]
        ys += [cy - sep / 2 * np.sin(ang), cy + sep / 2 * np.sin(ang)]
        fs += [2e4, 2e4 * ratio]
    x, y, f = map(np.array, (xs, ys, fs))
    image, var = observe((size, size), x, y, f, psf, rng)
    res = measure_objects(image, psf, variance=var)
    dist, j = cKDTree(np.column_stack([res.x, res.y])).query(np.column_stack([x, y]))
    assert np.all(dist < 0.3), dist
    assert len(set(j.tolist())) == x.size  # two objects per pair
    # the pair's total flux is well measured; its split as well as its covariance allows
    np.testing.assert_allclose(
        res.flux[j].reshape(-1, 2).sum(1), f.reshape(-1, 2).sum(1), rtol=0.03
    )
    assert np.all(np.abs(res.flux[j] - f) < 5 * res.flux_err[j] + 0.01 * f)
    if sep >= 1.5:
        np.testing.assert_allclose(res.flux[j], f, rtol=0.06)
    fainter = f < f.reshape(-1, 2).max(1).repeat(2)
    if sep < 2:  # a brighter neighbour within blend_radius (2 pix)
        assert np.all(res.flags[j][fainter] & PhotometryFlag.BLENDED)


def test_saturated_bad_and_nan_regions_are_flagged():
    size = 80
    psf = truth_psf(size)
    rng = np.random.default_rng(7)
    x = np.array([20.3, 50.6, 60.2, 30.0, 1.2])
    y = np.array([20.7, 50.1, 20.4, 60.5, 40.0])
    f = np.array([3e6, 2e4, 2e4, 2e4, 2e4])
    image, var = observe((size, size), x, y, f, psf, rng)
    level = 6e4
    saturated = image >= level
    assert saturated.sum() >= 3
    image[saturated] = level
    bad = np.zeros_like(saturated)
    bad[50, 50] = True  # in the core of star 1
    image[20, 60] = np.nan  # in the core of star 2
    image[0:10, 60:80] = np.nan  # an empty corner
    res = measure_objects(image, psf, variance=var, bad=bad, saturated=saturated)
    dist, j = cKDTree(np.column_stack([res.x, res.y])).query(np.column_stack([x, y]))
    assert np.all(dist < 0.5), dist
    flags = res.flags[j]
    assert flags[0] & PhotometryFlag.SATURATED
    assert flags[1] & PhotometryFlag.BAD_PIXEL
    assert flags[2] & PhotometryFlag.BAD_PIXEL
    assert not flags[3]
    assert flags[4] & PhotometryFlag.EDGE
    # the saturated star is one object, its flux measured from the wings
    assert np.sum(np.hypot(res.x - x[0], res.y - y[0]) < 3) == 1
    assert abs(res.flux[j[0]] / f[0] - 1) < 0.1
    assert np.all(np.isfinite(res.flux[j[1:]]))


def test_blank_image_gives_an_empty_catalog():
    psf = truth_psf(40)
    rng = np.random.default_rng(0)
    image = rng.normal(20, 3, (40, 40)).astype("float32")
    image[:5] = np.nan
    res = measure_objects(image, psf, variance=np.full(image.shape, 9.0, "float32"))
    assert len(res) == 0
    assert res.residual.shape == image.shape
    # a product (stamps summing to 1) is refused, not silently misread by oversampling²
    with pytest.raises(TypeError, match="from_gridded_psf"):
        measure_objects(image, to_gridded_psf(psf))


def test_ids_are_deterministic_and_local(crowded, measured):
    ids = object_ids(measured.x, measured.y, field="f03", detector="WFI07", flux=measured.flux)
    assert ids.dtype == np.int64
    assert np.unique(ids).size == ids.size
    again = measure_objects(crowded["image"], crowded["psf"], variance=crowded["variance"])
    ids2 = object_ids(again.x, again.y, field="f03", detector="WFI07", flux=again.flux)
    np.testing.assert_array_equal(ids, ids2)
    # a faint star added far from a region leaves that region's ids unchanged
    image = crowded["image"].copy()
    psf = crowded["psf"]
    gy, gx = np.mgrid[150:190, 150:190] + 0.3
    clear, _ = cKDTree(np.column_stack([crowded["x"], crowded["y"]])).query(
        np.column_stack([gx.ravel(), gy.ravel()])
    )
    sx, sy = gx.ravel()[np.argmax(clear)], gy.ravel()[np.argmax(clear)]
    image += render_stars(image.shape, [sx], [sy], [600.0], psf)
    third = measure_objects(image, psf, variance=crowded["variance"])
    ids3 = object_ids(third.x, third.y, field="f03", detector="WFI07", flux=third.flux)
    assert np.any(np.hypot(third.x - sx, third.y - sy) < 0.5)
    far = np.hypot(measured.x - sx, measured.y - sy) > 15
    assert np.isin(ids[far], ids3).mean() > 0.995


def test_object_id_layout_and_collisions():
    x = np.array([1234.56, 1234.58, 1234.57, 10.0, 4087.4])
    y = np.array([2345.61, 2345.64, 2345.58, 0.0, 4087.4])
    flux = np.array([1.0, 3.0, 2.0, 5.0, 1.0])
    ids = object_ids(x, y, field="f03", detector="WFI01", flux=flux)
    # three objects in one 0.1-pix cell: slots by decreasing flux
    base = ((301 * 100_000 + 23456) * 100_000 + 12346) * 10
    assert ids[1] == base and ids[2] == base + 1 and ids[0] == base + 2
    decoded = decode_object_id(ids)
    assert np.all(decoded["field"] == 3) and np.all(decoded["detector"] == 1)
    np.testing.assert_allclose(decoded["x"], np.round(x, 1), atol=1e-9)
    # order of the input does not matter
    perm = np.array([4, 2, 0, 3, 1])
    ids_p = object_ids(x[perm], y[perm], field=3, detector=1, flux=flux[perm])
    np.testing.assert_array_equal(ids_p, ids[perm])
    # an 11th object of a cell spills into the next free cell, deterministically
    many = object_ids(np.full(12, 5.0), np.full(12, 5.0), field=1, detector=2)
    assert np.unique(many).size == 12
    with pytest.raises(ValueError):
        object_ids(x, y, field="bulge", detector=1)
