"""Figures recorded from the shipped demo model, kept to show that a change
meant to alter nothing altered nothing.

Whole sampled lines cannot be kept for this: sampling is chaotic, and the
same code on another CPU (this project's hosts are Intel with AVX-512 and AMX
on some days, AMD without AVX-512 on others) rounds its matrix products
differently and writes a different line from the first stroke on. So the
goldens are the parts that rounding cannot move far:

- the model's log-likelihood of fixed lines of ink, and its predicted
  mixture after their first points (teacher forced: no feedback);
- the first few points written for fixed seeds, plain and primed, through
  the export's signatures (too few steps for rounding to grow);

and `tests/test_model.py` checks, on any host, that every point a sampled
line holds is the draw its own predicted distribution and its step's seed
give (the replay test).

`tests/golden/demo_figures.json` was written by `python tests/test_golden.py
--record` with the code of 2026-12-03 (the sampler's random numbers now come
from Philox's raw words, `distributions.row_noise`). Rewrite it only when a
change means to alter the model or sampling, and say so in its commit.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).parents[1]
MODEL = REPO / "saved_models" / "synthetic-demo"
FIGURES = Path(__file__).parent / "golden" / "demo_figures.json"
# Fixed ink to score: two lines the demo model wrote on 2026-12-01 (any ink
# would do; these are inputs, not outputs).
SCORED = [("hello world", 3), ("a test of writing", 4)]
FIRST_POINTS = 4
POINTS_RTOL = 1e-3


def figures():
    """Everything the goldens record, computed with the current code."""
    from hwtf.writer import Writer

    writer = Writer.load(str(MODEL))
    module = writer.module
    ink = [writer.write([text], bias=0.5, seed=seed, candidates=1)[0] for text, seed in SCORED]
    return {
        "ink": [{"text": i.text, "offsets": np.round(i.offsets, 4).tolist()} for i in ink],
        "scores": _scores(module, [(i.text, np.round(i.offsets, 4)) for i in ink]),
        "first_points": _first_points(module, writer),
    }


def _scores(module, lines):
    import tensorflow as tf

    length = max(len(o) for _, o in lines)
    strokes = np.zeros([len(lines), length, 3], np.float32)
    for b, (_, o) in enumerate(lines):
        strokes[b, : len(o)] = o
    args = dict(strokes=tf.constant(strokes), lengths=tf.constant([len(o) for _, o in lines], tf.int32),
                text=tf.constant([t for t, _ in lines]))
    lp = module.log_prob(**args)
    mix = module.mixture(**args)
    return {
        "log_prob": lp["log_prob"].numpy().tolist(),
        "points": lp["points"].numpy().tolist(),
        # after the first 6 points of line 0
        "mixture": {k: v.numpy()[0, :6].tolist() for k, v in mix.items()},
    }


def _first_points(module, writer):
    import tensorflow as tf

    plain = module.generate(text=tf.constant(["hello world", "write on"]), bias=tf.constant(0.5),
                            seed=tf.constant(3, tf.int64), max_steps=tf.constant(FIRST_POINTS))
    text, offsets = writer.builtin_style(1)
    primed = module.generate_primed(
        text=tf.constant(["write on in style"]), prime_strokes=tf.constant(offsets[None]),
        prime_text=tf.constant([text]), bias=tf.constant(0.75), seed=tf.constant(5, tf.int64),
        max_steps=tf.constant(FIRST_POINTS))
    return {"plain": plain["strokes"].numpy().tolist(), "primed": primed["strokes"].numpy().tolist()}


@pytest.fixture(scope="module")
def writer():
    from hwtf.writer import Writer

    return Writer.load(str(MODEL))


@pytest.fixture(scope="module")
def then():
    return json.loads(FIGURES.read_text())


def test_the_model_scores_recorded_ink_as_it_did(writer, then):
    assert [i["text"] for i in then["ink"]] == [t for t, _ in SCORED]
    lines = [(i["text"], np.asarray(i["offsets"], np.float32)) for i in then["ink"]]
    scores = _scores(writer.module, lines)
    assert scores["points"] == then["scores"]["points"]
    np.testing.assert_allclose(scores["log_prob"], then["scores"]["log_prob"], rtol=1e-4)
    for name, values in then["scores"]["mixture"].items():
        np.testing.assert_allclose(scores["mixture"][name], values, rtol=1e-3, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("kind", ["plain", "primed"])
def test_the_first_points_are_drawn_as_they_were(writer, then, kind):
    """The start point, the seed of each line and step, the bias and the
    prime's state decide these: any change to them moves the first point."""
    got = np.asarray(_first_points(writer.module, writer)[kind])
    want = np.asarray(then["first_points"][kind])
    assert got.shape == want.shape == (len(want), FIRST_POINTS, 3)
    np.testing.assert_array_equal(got[..., 2], want[..., 2])
    np.testing.assert_allclose(got[..., :2], want[..., :2], rtol=POINTS_RTOL, atol=POINTS_RTOL * 10)


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python tests/test_golden.py --record")
    FIGURES.write_text(json.dumps(figures()) + "\n")
    print(f"wrote {FIGURES}")
