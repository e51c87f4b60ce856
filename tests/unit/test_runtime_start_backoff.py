"""Back-off of a shard whose start failed (``engine.start_backoff``, pure)."""

from __future__ import annotations

import random

import pytest

from tradebot_runtime.engine import START_BACKOFF_INITIAL_S, START_BACKOFF_MAX_S, start_backoff


def test_grows_exponentially_within_its_jitter_band() -> None:
    rng = random.Random(7)
    for failures in range(1, 6):
        ceiling = START_BACKOFF_INITIAL_S * 2 ** (failures - 1)
        delays = [start_backoff(failures, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), failures
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not constant


def test_is_capped() -> None:
    rng = random.Random(1)
    for failures in (6, 10, 64, 10_000):
        delay = start_backoff(failures, rng)
        assert START_BACKOFF_MAX_S / 2 <= delay <= START_BACKOFF_MAX_S


def test_first_failure_hands_the_shard_over_about_as_fast_as_before() -> None:
    # the first retry stays near the old fixed 1 s; the tenth waits the cap, not 2 s
    rng = random.Random(3)
    assert start_backoff(1, rng) <= 1.0
    assert start_backoff(10, rng) >= START_BACKOFF_MAX_S / 2


def test_parameters_and_reset_semantics() -> None:
    rng = random.Random(5)
    assert 2.0 <= start_backoff(1, rng, initial_s=4.0, max_s=100.0) <= 4.0
    assert 5.0 <= start_backoff(3, rng, initial_s=4.0, max_s=10.0) <= 10.0
    # after a successful start the caller counts from 1 again: the short delay returns
    assert start_backoff(1, rng) <= START_BACKOFF_INITIAL_S


def test_rejects_a_count_without_failure() -> None:
    with pytest.raises(ValueError):
        start_backoff(0, random.Random())
