"""The daily trigger fires on microlensing rises and stays quiet on noise (smooth variables
fire too: classification tells them apart), and gives the same answer day by day as in one
pass, however often a day is re-run."""

from __future__ import annotations

import numpy as np
import pytest

from msos.events.trigger.kernel import TriggerState, update
from msos.events.trigger.tests.synthetic import season as _season


@pytest.fixture(scope="module")
def season():
    return _season()


def _by_day(state, ids, time, flux, err, flags=None):
    fired = []
    day = np.floor(time - time[0]).astype(int)
    for d in np.unique(day):
        cols = day == d
        sub_flags = None if flags is None else flags[:, cols]
        fired.append(update(state, ids, time[cols], flux[:, cols], err[:, cols], sub_flags))
    return np.concatenate(fired)


def test_events_trigger_on_their_rise_and_constant_stars_do_not(season):
    ids, time, flux, err, kind, t0 = season
    state = TriggerState.new(ids)
    fired = _by_day(state, ids, time, flux, err)
    triggered = np.isin(ids, fired)
    assert triggered[kind == "event"].all()
    assert not triggered[kind == "constant"].any()
    # before the peak: a trigger is an alert, not a post-mortem
    when = state.trigger_time[np.searchsorted(state.object_id, ids[kind == "event"])]
    assert np.all(when < t0)


def test_day_by_day_equals_one_pass_and_a_rerun_day_changes_nothing(season):
    ids, time, flux, err, *_ = season
    daily = TriggerState.new(ids)
    _by_day(daily, ids, time, flux, err)
    again = update(daily, ids, time[-96:], flux[:, -96:], err[:, -96:])
    assert again.size == 0
    whole = TriggerState.new(ids)
    update(whole, ids, time, flux, err)
    for name, value in whole.arrays().items():
        np.testing.assert_array_equal(value, daily.arrays()[name], err_msg=name)


def test_bad_measurements_unsorted_and_duplicated_times_are_skipped_not_fatal():
    ids, time, flux, err, _kind, _ = _season(n_constant=50, seed=2)
    clean = TriggerState.new(ids)
    update(clean, ids, time, flux, err)
    # the same data, shuffled in time, with a duplicated epoch and bad values added
    rng = np.random.default_rng(3)
    order = rng.permutation(time.size)
    t, f, e = time[order], flux[:, order].copy(), err[:, order].copy()
    t = np.concatenate([t, t[:1]])
    f = np.concatenate([f, f[:, :1] + 1e4], axis=1)  # a duplicated time: the first is kept
    e = np.concatenate([e, e[:, :1]], axis=1)
    flags = np.zeros(f.shape, np.uint16)
    f[0, 5], e[1, 6], e[2, 7], flags[3, 8] = np.nan, 0.0, -1.0, 4
    messy = TriggerState.new(ids)
    update(messy, ids, t, f, e, flags)
    np.testing.assert_array_equal(np.isfinite(messy.trigger_time), np.isfinite(clean.trigger_time))
    assert messy.n_epochs == time.size


def test_a_three_point_light_curve_and_new_objects_are_taken_in():
    state = TriggerState.new(np.array([5, 3]))
    fired = update(state, np.array([3, 9]), np.array([1.0, 2.0, 3.0]),
                   np.ones((2, 3), "float32"), np.ones((2, 3), "float32"))  # fmt: skip
    assert fired.size == 0
    assert list(state.object_id) == [3, 5, 9]
    assert list(state.n_baseline) == [3, 0, 3]
