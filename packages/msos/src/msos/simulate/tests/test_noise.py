"""Noise, error arrays and defects: dq marks every injected defect and nothing else."""

from __future__ import annotations

import numpy as np
from roman_datamodels.dqflags import pixel

from msos.simulate.instrument import SATURATION_RATE_DN_S
from msos.simulate.noise import (
    COSMIC_RAY,
    DEAD,
    HOT,
    NAN,
    SATURATED,
    draw_defects,
    observe,
)

SHAPE = (256, 256)


def _scene():
    model = np.full(SHAPE, 0.8, np.float32)
    model[100:103, 50:53] = 5000.0  # a saturating star
    model[10, 200] = 300.0  # bright but not saturated
    return model


def test_dq_flags_mark_every_injected_defect_and_nothing_else():
    defects = draw_defects(np.random.default_rng(1), SHAPE)
    arrays = observe(_scene(), defects, np.random.default_rng(2))
    dq = arrays.dq.ravel()
    data = arrays.data.ravel()

    assert np.all(dq[defects.hot] & HOT == HOT)
    assert np.all(dq[defects.dead] & DEAD == DEAD)
    assert np.all(dq.reshape(SHAPE)[:, defects.dead_column] & DEAD == DEAD)
    assert np.all(dq[defects.nan] & NAN == NAN)
    assert np.all(dq[arrays.cosmic_rays] & COSMIC_RAY)
    assert np.all(dq[arrays.saturated] & SATURATED == SATURATED)
    assert len(arrays.cosmic_rays) > 0 and len(arrays.saturated) == 9

    expected = np.zeros_like(dq)
    expected[defects.hot] |= HOT
    expected[defects.dead] |= DEAD
    expected[defects.nan] |= NAN
    expected[arrays.cosmic_rays] |= COSMIC_RAY
    expected[arrays.saturated] |= SATURATED
    np.testing.assert_array_equal(dq, expected)
    used = {int(b) for b in (pixel.DO_NOT_USE, pixel.SATURATED, pixel.JUMP_DET, pixel.DEAD,
                             pixel.HOT, pixel.NO_LIN_CORR)}  # fmt: skip
    assert int(np.bitwise_or.reduce(dq)) == sum(used)

    # NaN exactly at the NaN pixels (all arrays), which are DO_NOT_USE
    for array in (arrays.data, arrays.err, arrays.var_poisson, arrays.var_rnoise, arrays.var_flat):
        np.testing.assert_array_equal(np.flatnonzero(np.isnan(array)), defects.nan)
    assert np.all(dq[np.isnan(data)] & pixel.DO_NOT_USE)
    np.testing.assert_array_equal(data[arrays.saturated], np.float32(SATURATION_RATE_DN_S))


def test_fixed_defects_stay_put_and_cosmic_rays_do_not():
    defects = draw_defects(np.random.default_rng(1), SHAPE)
    a = observe(_scene(), defects, np.random.default_rng(2))
    b = observe(_scene(), defects, np.random.default_rng(3))
    fixed = HOT | DEAD | NAN
    np.testing.assert_array_equal(a.dq & fixed, b.dq & fixed)
    assert not np.array_equal(a.dq & COSMIC_RAY, b.dq & COSMIC_RAY)


def test_the_error_array_is_the_noise_that_was_injected():
    defects = draw_defects(np.random.default_rng(4), SHAPE)
    model = np.full(SHAPE, 0.8, np.float32)
    model[:, 128:] = 40.0  # Poisson-dominated half
    arrays = observe(model, defects, np.random.default_rng(5))
    good = arrays.dq == 0
    err = arrays.err.astype(np.float64)
    variance = sum(
        a.astype(np.float64) for a in (arrays.var_poisson, arrays.var_rnoise, arrays.var_flat)
    )
    np.testing.assert_allclose(err[good] ** 2, variance[good], rtol=2e-3)
    pull = (arrays.data - model) / err
    for half in (slice(0, 128), slice(128, 256)):
        values = pull[:, half][good[:, half]]
        assert abs(values.std() - 1.0) < 0.02
        assert abs(values.mean()) < 0.02
