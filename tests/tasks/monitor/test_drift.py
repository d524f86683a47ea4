"""Drift statistics on synthetic Gaussians: calibrated without shift, powerful with it."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.monitor.drift import (
    DriftConfig,
    alarm,
    classifier_auc,
    decide,
    drifted_dimensions,
    embedding_drift,
    input_drift,
    rbf_mmd2,
)

CONFIG = DriftConfig(permutations=100)


def gaussians(seed: int, shift: float = 0.0, n: int = 100, d: int = 16):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(n, d)) + shift


def test_false_alarm_rate_without_shift():
    alarms, mmd_small_p = 0, 0
    for seed in range(20):
        stats = embedding_drift(*gaussians(seed), CONFIG)
        alarms += alarm(stats, CONFIG)
        mmd_small_p += stats["mmd_p_value"] < 0.05
    # Nominal: MMD alarms at 1%, the combined rule at most that. 20 checks: allow a little luck.
    assert alarms <= 1
    assert mmd_small_p <= 4  # p-values roughly uniform: about 1 in 20 below 0.05


@pytest.mark.parametrize("shift", [0.4, 1.0])
def test_power_with_a_mean_shift(shift):
    detected = sum(alarm(embedding_drift(*gaussians(seed, shift), CONFIG), CONFIG)
                   for seed in range(5))
    assert detected == 5


def test_statistics_move_the_right_way():
    same = embedding_drift(*gaussians(1), CONFIG)
    moved = embedding_drift(*gaussians(1, 1.0), CONFIG)
    assert moved["mmd2"] > same["mmd2"] and moved["classifier_auc"] > 0.9
    assert moved["centroid_cosine_distance"] > same["centroid_cosine_distance"]
    assert moved["drifted_dimensions_share"] == 1.0 and same["drifted_dimensions_share"] == 0.0


def test_deterministic_with_a_fixed_seed():
    a, b = gaussians(3, 0.2)
    assert rbf_mmd2(a, b, 50, seed=7) == rbf_mmd2(a, b, 50, seed=7)
    assert classifier_auc(a, b, 5, seed=7) == classifier_auc(a, b, 5, seed=7)


def test_drifted_dimensions_sees_one_moved_dimension():
    a, b = gaussians(5, n=300)
    b[:, 0] += 2.0
    assert drifted_dimensions(a, b, 0.05) == pytest.approx(1 / 16)


def test_input_drift():
    stats = input_drift([10, 12, 11, 9] * 10, [40, 42, 41, 39] * 10, [0] * 40, [2] * 40,
                        {"the", "cell"}, ["the", "quantum", "cell", "lattice"])
    assert stats["token_length_p_value"] < 0.001
    assert stats["unknown_rate_reference"] == 0 and stats["unknown_rate_current"] > 0
    assert stats["new_vocabulary_share"] == 0.5


def test_k_of_n_and_rules():
    assert not decide(True, [False, False], DriftConfig(alarms_required=2, window=3))
    # The rule is a Literal: an unknown one is refused with the valid ones when configured.
    with pytest.raises(ValueError, match="'mmd_and_auc', 'mmd' or 'auc'"):
        alarm({"mmd_p_value": 0.0, "classifier_auc": 1.0},
              DriftConfig(rule="vibes"))  # type: ignore[arg-type]
