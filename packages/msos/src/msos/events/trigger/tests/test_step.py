"""``msos trigger`` day after day: each day's state is a stored working product, the chain of
days gives what one pass over the season gives, and a re-run day is not redone."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from msos.errors import MsosError
from msos.events.trigger.kernel import TriggerState, update
from msos.events.trigger.step import TriggerStep, state_from_product, trigger_day
from msos.events.trigger.tests.synthetic import season
from msos.partition import Partition
from roman_schemas import write_product
from roman_schemas.io import load_arrays
from roman_schemas.products.msos import DailyLightCurves
from roman_schemas.products.msos import TriggerState as TriggerStateProduct
from ssc_common.publish import open_stored_product

PARTITION = Partition("s01", "f03", "WFI01")
FIRST_DAY = date(2027, 3, 1)


@pytest.fixture
def stored_days(ssc_context, tmp_path):
    """Four days of daily light curves of 300 objects in storage, and the data behind them."""
    ids, time, flux, err, _kind, _ = season(n_constant=240, seed=5)
    day_of = np.floor(time - time[0]).astype(int)
    days = []
    for d in range(4):
        cols = day_of == d
        product = DailyLightCurves.example(n_objects=ids.size, n_epochs=int(cols.sum()))
        product.meta.day = FIRST_DAY + timedelta(days=d)
        product.object_id[:] = ids
        product.epochs.time_mjd_tdb[:] = time[cols]
        product.delta_flux_ujy[:] = flux[:, cols]
        product.delta_flux_err_ujy[:] = err[:, cols]
        product.flags[:] = 0
        key = PARTITION.daily_key(product.meta.day)
        ssc_context.storage.put_file(key, write_product(product, tmp_path / f"day{d}.asdf"))
        days.append(product.meta.day)
    last = day_of < 4
    return ssc_context, days, (ids, time[last], flux[:, last], err[:, last])


def _state(ctx, day) -> TriggerState:
    key = PARTITION.trigger_state_key(day)
    with open_stored_product(ctx, key, TriggerStateProduct) as opened:
        return state_from_product(load_arrays(opened, key))


def test_a_chain_of_daily_states_equals_one_pass_and_a_rerun_day_is_skipped(stored_days):
    ctx, days, (ids, time, flux, err) = stored_days
    for day in days:
        result = trigger_day(ctx, PARTITION, day)
        assert not result.skipped
    whole = TriggerState.new(ids)
    update(whole, ids, time, flux, err)
    chained = _state(ctx, days[-1])
    for name, value in whole.arrays().items():
        np.testing.assert_array_equal(chained.arrays()[name], value, err_msg=name)
    assert chained.triggered.any()
    # the same day again, from the same state: already done
    assert trigger_day(ctx, PARTITION, days[2]).skipped


def test_a_state_from_the_same_or_a_later_day_is_refused(stored_days):
    ctx, days, _ = stored_days
    trigger_day(ctx, PARTITION, days[1])
    later_state = PARTITION.trigger_state_key(days[1])
    with pytest.raises(MsosError, match="not before"):
        TriggerStep(ctx, PARTITION).run([later_state, PARTITION.daily_key(days[0])], {})


@pytest.mark.parametrize("ssc_settings", ["embedded"], indirect=True)
def test_msos_trigger_runs_each_day_and_names_the_objects_that_fired(stored_days):
    from typer.testing import CliRunner

    from msos.cli import app

    ctx, days, (ids, time, flux, err) = stored_days
    command = ["--storage", ctx.settings.storage_url, "--database",
               ctx.settings.resolved_database_url(), "trigger", "--day"]  # fmt: skip
    runner = CliRunner()
    fired = []
    for day in days:
        result = runner.invoke(app, [*command, day.isoformat()])
        assert result.exit_code == 0, result.output
        assert "msos.trigger: done: " in result.output
        line = result.output.strip().splitlines()[-1]
        assert f"objects triggered on {day}" in line
        fired += [int(v) for v in line.split(": ", 1)[1].split()] if ": " in line else []
    whole = TriggerState.new(ids)
    update(whole, ids, time, flux, err)
    assert sorted(fired) == sorted(whole.object_id[whole.triggered])
    assert "already done" in runner.invoke(app, [*command, days[0].isoformat()]).output


def test_the_state_and_its_parameters_round_trip_through_the_product():
    from msos.events.trigger.kernel import TriggerParameters
    from msos.events.trigger.step import product_from_state

    ids, time, flux, err, *_ = season(n_constant=50, seed=6)
    state = TriggerState.new(ids, TriggerParameters(threshold=4.0, min_run=2))
    update(state, ids, time[:200], flux[:, :200], err[:, :200])
    meta = TriggerStateProduct.example().meta
    back = state_from_product(product_from_state(state, meta))
    assert back.parameters == state.parameters
    update(state, ids, time[200:], flux[:, 200:], err[:, 200:])
    update(back, ids, time[200:], flux[:, 200:], err[:, 200:])
    for name, value in state.arrays().items():
        np.testing.assert_array_equal(back.arrays()[name], value, err_msg=name)
