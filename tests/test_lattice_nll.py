"""docs/lattice_nll.py: the NLL on the lattice's points and across its cells."""

import importlib.util
import os

import numpy as np

from conftest import line_nll_alone

_SPEC = importlib.util.spec_from_file_location(
    "lattice_nll", os.path.join(os.path.dirname(__file__), "..", "docs", "lattice_nll.py"))
lattice_nll = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(lattice_nll)


def _lines(rng, lengths):
    return [np.column_stack([rng.integers(-3, 4, (n, 2)), rng.random(n) < 0.1]).astype(np.float32) for n in lengths]


def test_recorded_scores_are_the_models_and_noise_moves_only_the_targets(tiny_config):
    """At no noise each line's points sum to hwtf.model.nll's NLL of it; with
    noise the scores change and stay finite, and the pen-lift part of each
    is untouched (a step that lifts the pen keeps its kind)."""
    import keras

    keras.utils.set_random_seed(0)
    model = tiny_config.build_model()
    rng = np.random.default_rng(0)
    offsets, texts = _lines(rng, (30, 47, 12)), ["hello", "a longer text", "ab"]
    recorded, pen = lattice_nll.point_nll(lattice_nll.scorer(model), tiny_config, offsets, texts, 0.0, rng)
    assert all(np.all(p >= 0) for p in pen)
    assert [len(p) for p in recorded] == [29, 46, 11]
    for o, text, points in zip(offsets, texts, recorded):
        np.testing.assert_allclose(points.sum(), line_nll_alone(model, tiny_config, o, text), rtol=1e-5)
    moved, moved_pen = lattice_nll.point_nll(lattice_nll.scorer(model), tiny_config, offsets, texts, 1.0, rng)
    for a, b in zip(pen, moved_pen):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(recorded, moved):
        assert a.shape == b.shape and np.all(np.isfinite(b)) and not np.allclose(a, b)


def test_a_density_piled_on_the_lattice_shows_as_lattice_nats():
    """kind_rows: each step in exactly one kind, and the excess of the
    dequantised NLL over the recorded one, a line, by kind and in all."""
    offsets = [np.array([[0, 0, 0], [0, 0, 0], [0, 2, 0], [3, 0, 0], [1, 1, 1], [2, 2, 0]], np.float32),
               np.array([[0, 0, 0], [0, 0, 1], [0, 0, 0]], np.float32)]
    kinds = lattice_nll.step_kinds(np.concatenate([o[1:] for o in offsets]))
    assert sum(m.astype(int) for m in kinds.values()).tolist() == [1] * 7
    recorded = [np.full(5, -3.0), np.full(2, -3.0)]
    dequantised = [np.array([-1.0, -2.0, -2.0, -3.0, -3.0]), np.array([-3.0, -1.0])]
    rows = {r["steps"]: r for r in lattice_nll.kind_rows(offsets, recorded, dequantised)}
    assert rows["all"]["points_per_line"] == 3.5 and rows["all"]["lattice_nats_per_line"] == 3.0
    assert rows["dx and dy 0"]["points_per_line"] == 1.0
    assert rows["dx and dy 0"]["recorded"] == {"nll_per_point": -3.0, "nll_per_line": -3.0}
    assert rows["dx and dy 0"]["lattice_nats_per_line"] == 2.0 and rows["pen lifts"]["lattice_nats_per_line"] == 0.0
    assert rows["dx 0"]["lattice_nats_per_line"] == 0.5 and rows["dy 0"]["lattice_nats_per_line"] == 0.5
    assert rows["neither 0"]["points_per_line"] == 0.5 and rows["neither 0"]["lattice_nats_per_line"] == 0.0


def test_a_spike_at_the_origin_gains_on_steps_there_and_costs_the_rest():
    """spike_gain: with a step in ten at (0, 0) scored 2 nats a point, a
    spike of width 1e-3 (about 12 nats there) pays, at about the weight of
    those steps; with none there it pays nothing; pen-lift bits do not move
    the offset density's share."""
    rng = np.random.default_rng(0)
    line = np.column_stack([rng.integers(1, 5, (101, 2)), np.zeros(101)]).astype(np.float32)
    line[1::10, :2] = 0  # 10 of the 100 targets at the origin
    recorded, pen = [np.full(100, 2.0)], [np.zeros(100)]
    gain = lattice_nll.spike_gain([line], recorded, pen)
    assert gain["steps_at_origin_per_line"] == 10.0
    assert 0.05 < gain["weight"] < 0.2
    expected = 10 * (2 + np.log(gain["weight"]) - np.log(2 * np.pi * 1e-6)) + 90 * np.log1p(-gain["weight"])
    assert abs(gain["nats_per_line"] - expected) < 0.1 and gain["nats_per_line"] > 50
    # The pen part of a step's NLL is not the offsets': the same offset score, the same gain.
    assert lattice_nll.spike_gain([line], [np.full(100, 2.5)], [np.full(100, 0.5)]) == gain
    nowhere = line.copy()
    nowhere[1::10, :2] = 1
    assert lattice_nll.spike_gain([nowhere], recorded, pen)["nats_per_line"] == 0.0
