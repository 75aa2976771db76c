"""Progress of a running estimate (sampler step k of K, tiles, members, time left) and its cooperative
cancellation: reported through callbacks, without changing one number of the estimate."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from models_testing import sampling, seeded, tiny_card, variant_card

from qpe.errors import EstimateCancelled
from qpe.inference.cache import EstimateCache
from qpe.inference.engine import EstimateConfig, EstimateProgress, estimate
from qpe.models import build_model, load, save_checkpoint
from qpe.models.sampling import SAMPLERS

#: A 32 x 48 grid in tiles of 24 pixels (overlap 4): 2 x 3 = 6 tiles; at most 2 fields per network call,
#: so 4 members are drawn 2 at a time, one tile per call.
TILED = {"tile": 24, "overlap": 4, "batch_fields": 2}


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    folder = tmp_path_factory.mktemp("progress") / "flow_gaussian"
    torch.manual_seed(3)
    card = variant_card("flow_gaussian")
    save_checkpoint(build_model(card), card, folder)
    return load(folder)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_reports_each_step_and_draws_the_same_numbers(name):
    family = SAMPLERS[name].family
    variant = "flow_gaussian" if family == "flow" else "ddpm_v"
    torch.manual_seed(0)
    model = build_model(variant_card(variant)).eval()
    settings = sampling(variant, members=2, steps=3, sampler=name)
    ir = torch.randn((1, 2, 2, 16, 16), generator=seeded(1))
    steps = []
    with torch.no_grad():
        plain = model.sample(ir, settings, seeded(7))
        called = model.sample(ir, settings, seeded(7), callback=lambda k, n: steps.append((k, n)))
    assert steps == [(1, 3), (2, 3), (3, 3)]
    assert torch.equal(plain, called), "a callback must not change the estimate or the noise it draws"


def test_engine_reports_step_tile_member_and_time_left(flow, small_paired):
    times = small_paired["time"].values[1:3]
    config = EstimateConfig(members=4, steps=3, **TILED)
    reports: list[EstimateProgress] = []
    with_progress = estimate(flow, small_paired, times, config, progress=False, on_progress=reports.append)
    without = estimate(flow, small_paired, times, config, progress=False)
    np.testing.assert_array_equal(with_progress["rain"].values, without["rain"].values)
    # 2 times x (6 tiles x 2 turns of 2 members) x 3 steps
    assert len(reports) == 2 * 12 * 3
    first, last = reports[0], reports[-1]
    assert (first.time, first.times, first.call, first.calls, first.step, first.steps) == (1, 2, 1, 12, 1, 3)
    assert (first.tile_first, first.tile_last, first.tiles) == (1, 1, 6)
    assert (first.member_first, first.member_last, first.members) == (1, 2, 4)
    assert (reports[3].call, reports[3].step, reports[3].tile_first, reports[3].member_first) == (2, 1, 1, 3)
    assert (last.time, last.call, last.step, last.tile_last, last.member_first) == (2, 12, 3, 6, 3)
    fractions = [r.fraction for r in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    np.testing.assert_allclose(fractions[0], 1 / 72)
    assert last.remaining_s == 0.0 and all(r.remaining_s is None or r.remaining_s >= 0 for r in reports)
    assert first.describe().startswith("step 1/3, tile 1 of 6, members 1-2 of 4, time 1/2")


def test_a_deterministic_model_reports_one_step_per_call(tmp_path, small_paired):
    save_checkpoint(build_model(tiny_card("unet")), tiny_card("unet"), tmp_path / "unet")
    reports: list[EstimateProgress] = []
    estimate(load(tmp_path / "unet"), small_paired, small_paired["time"].values[1:2], EstimateConfig(**TILED),
             progress=False, on_progress=reports.append)
    # one member: two tiles per call of at most 2 fields
    assert [(r.call, r.step, r.steps, r.tile_first) for r in reports] == [(1, 1, 1, 1), (2, 1, 1, 3), (3, 1, 1, 5)]
    assert reports[-1].describe() == "step 1/1, tiles 5-6 of 6, 0 s left"


def test_cancel_stops_between_steps_and_caches_nothing_of_that_time(flow, small_paired, tmp_path):
    cache = EstimateCache(tmp_path / "cache")
    cancel = threading.Event()
    seen: list[EstimateProgress] = []

    def cancel_in_second_time(report: EstimateProgress) -> None:
        seen.append(report)
        if report.time == 2 and report.step == 2:
            cancel.set()

    times = small_paired["time"].values[1:3]
    config = EstimateConfig(members=2, steps=3, **TILED)
    with pytest.raises(EstimateCancelled, match="estimate cancelled"):
        estimate(flow, small_paired, times, config, cache=cache, progress=False,
                 on_progress=cancel_in_second_time, cancel=cancel)
    assert (seen[-1].time, seen[-1].call, seen[-1].step) == (2, 1, 2), "stopped right after that step"
    assert len(list(cache.root.rglob("*.nc"))) == 1, "the finished first time is cached, the second is not"
    # the cached first time is the whole field: the same as an estimate that was never cancelled
    again = estimate(flow, small_paired, times[:1], config, cache=cache, progress=False)
    fresh = estimate(flow, small_paired, times[:1], config, progress=False)
    np.testing.assert_array_equal(again["rain"].values, fresh["rain"].values)


def test_an_estimate_already_cancelled_runs_no_network(flow, small_paired):
    cancel = threading.Event()
    cancel.set()
    reports: list[EstimateProgress] = []
    with pytest.raises(EstimateCancelled):
        estimate(flow, small_paired, small_paired["time"].values[1:2], EstimateConfig(members=2, steps=2),
                 progress=False, on_progress=reports.append, cancel=cancel)
    assert reports == []
