"""docs/nll_by_position.py: the NLL a point along a line, and its bands."""

import importlib.util
import os

import numpy as np

from conftest import line_nll_alone

_SPEC = importlib.util.spec_from_file_location(
    "nll_by_position", os.path.join(os.path.dirname(__file__), "..", "docs", "nll_by_position.py"))
nll_by_position = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(nll_by_position)


def test_the_points_add_up_to_each_lines_nll(tiny_config):
    """Scored together in one padded batch, each line's points sum to what
    hwtf.model.nll gives that line alone: padding changes nothing."""
    import keras

    keras.utils.set_random_seed(0)
    model = tiny_config.build_model()
    rng = np.random.default_rng(0)
    offsets = [np.column_stack([rng.normal(0, 20, (n, 2)), rng.random(n) < 0.1]).astype(np.float32)
               for n in (30, 47, 12)]
    texts = ["hello", "a longer text", "ab"]
    per_point = nll_by_position.point_nll(model, tiny_config, offsets, texts)
    assert [len(p) for p in per_point] == [29, 46, 11]
    for o, text, points in zip(offsets, texts, per_point):
        np.testing.assert_allclose(points.sum(), line_nll_alone(model, tiny_config, o, text), rtol=1e-5)


def test_bands_split_lines_by_the_training_length_and_points_by_position():
    per_point = [np.full(9, 1.0), np.concatenate([np.full(5, 2.0), np.full(7, 4.0)])]  # lines of 10 and 13 points
    short, long = nll_by_position.band_rows(per_point, [0, 5, 10], max_length=10)
    assert short["count"] == 1 and long["count"] == 1
    assert short["0-5"] == {"points": 5, "nll_per_point": 1.0} and short["5-10"]["points"] == 4
    assert short["10+"] == {"points": 0, "nll_per_point": None}
    assert long["0-5"]["nll_per_point"] == 2.0 and long["5-10"]["nll_per_point"] == 4.0
    assert long["10+"] == {"points": 2, "nll_per_point": 4.0}
