"""How much of the NLL a line comes from the recording's whole-number lattice.

    python docs/lattice_nll.py --model=checkpoints/iamondb

IAM-OnDB's pen positions are whole numbers of the board's units, so every
offset is too: 5.7% of `testset_v`'s steps have dx exactly 0, 4.8% dy
exactly 0, 1.7% both. The model's output is a density, and a density scored
only at lattice points can gain without bound by piling up on them (a
component of width 1e-3, hwtf's `SIGMA_MIN`, at the origin is worth about
12 nats a point there), which is no better handwriting. So a per-line NLL
holds some of the lattice, and so may Graves's; how much of it is this
model's is what this measures, as density models of whole-number data
(images) are measured: the same lines scored twice, once as recorded and
once with each target offset's x and y moved by uniform noise over its
lattice cell (`U(-1/2, 1/2)` units, `--noise` cells wide), the model
reading the recorded offsets both times. The excess is how much more
density the model puts on the lattice's points than across their cells,
with the little any smooth density loses to the noise: at most what the
lattice gives this model's figure. It prints one
JSON object a row, for the whole split and by kind of step (pen lifts,
dx and dy both 0, dx alone, dy alone, neither): the points a line, and
the NLL a point and a line, as recorded and dequantised; then what one
spike at the origin, fixed, would add to the recorded score (`spike_gain`):
a floor on how far the figure can be moved by the lattice, with no better
handwriting. Statistics only, nothing of the data.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from hwtf.distributions import SIGMA_MIN  # noqa: E402 (the narrowest component the output allows)

FLAGS = flags.FLAGS

KINDS = ("pen lifts", "dx and dy 0", "dx 0", "dy 0", "neither 0")


def define_flags() -> None:
    """The command's flags, defined when it runs (not on import: the tests
    import this beside other scripts that define flags of the same names)."""
    flags.DEFINE_string("model", os.path.join(REPO, "checkpoints", "iamondb"), "A training directory.")
    flags.DEFINE_string("data_dir", os.path.join(REPO, "..", "shared", "data", "iamondb.tar.xz"),
                        "IAM-OnDB archive or folder.")
    flags.DEFINE_string("split", "testset_v", "The split to score.")
    flags.DEFINE_integer("lines", 0, "Score this many of the split's lines, drawn at random (0: all).")
    flags.DEFINE_float("noise", 1.0, "Width of the uniform noise on each target's x and y, in lattice cells.")
    flags.DEFINE_integer("batch_size", 16, "Lines per batch.")
    flags.DEFINE_integer("seed", 0, "Seed of the lines drawn and of the noise.")


def step_kinds(targets: np.ndarray) -> dict:
    """Boolean masks over raw target offsets `[N, 3]`, one a kind of step
    (`KINDS`): each step is of exactly one kind, a pen lift before all."""
    up = targets[:, 2] > 0.5
    dx0, dy0 = targets[:, 0] == 0, targets[:, 1] == 0
    return dict(zip(KINDS, (up, ~up & dx0 & dy0, ~up & dx0 & ~dy0, ~up & ~dx0 & dy0, ~up & ~dx0 & ~dy0)))


def scorer(model):
    """`hwtf.model.nll` of `model` for a batch and the targets to score,
    compiled (eager, a 3x640 network takes minutes a batch of long lines)."""
    import tensorflow as tf

    from hwtf.model import nll

    return tf.function(lambda batch, targets: nll(model, batch, targets=targets), reduce_retracing=True)


def point_nll(score, config, offsets: list, texts: list, noise: float, rng) -> tuple[list, list]:
    """Each line's NLL a point (all but its first) under teacher forcing,
    the targets' x and y moved by `noise` times `U(-1/2, 1/2)` raw units
    (none at `noise=0`: `hwtf.model.nll`'s own scores), the inputs as
    recorded; and the pen-lift part of each point's NLL. `score` is
    `scorer(model)`'s."""
    from hwtf.evaluate import pad_lines, text_batch

    strokes, lengths = pad_lines(offsets)
    batch = text_batch(config, strokes, lengths, texts)
    moved = strokes.copy()
    moved[:, :, :2] += noise * rng.uniform(-0.5, 0.5, moved[:, :, :2].shape).astype(np.float32)
    targets = config.normalizer_lib.normalize(moved[:, 1:])  # [batch, time - 1, 3]
    out = score(batch, targets)
    per_point, pen = out["point_nll"].numpy(), out["point_pen_nll"].numpy()
    return ([per_point[row, : len(o) - 1] for row, o in enumerate(offsets)],
            [pen[row, : len(o) - 1] for row, o in enumerate(offsets)])


def kind_rows(offsets: list, recorded: list, dequantised: list) -> list[dict]:
    """The split's row, then one a kind of step: points a line and the NLL
    a point and a line, as recorded and dequantised, and their difference."""
    lines = len(offsets)
    targets = np.concatenate([o[1:] for o in offsets])
    recorded, dequantised = np.concatenate(recorded), np.concatenate(dequantised)
    masks = {"all": np.ones(len(targets), bool), **step_kinds(targets)}
    rows = []
    for kind, mask in masks.items():
        count = int(mask.sum())
        row = {"steps": kind, "points_per_line": round(count / lines, 2)}
        for name, values in (("recorded", recorded[mask]), ("dequantised", dequantised[mask])):
            row[name] = {"nll_per_point": round(float(values.mean()), 4) if count else None,
                         "nll_per_line": round(float(values.sum()) / lines, 2)}
        row["lattice_nats_per_line"] = round(row["dequantised"]["nll_per_line"] - row["recorded"]["nll_per_line"], 2)
        rows.append(row)
    return rows


def spike_gain(offsets: list, recorded: list, pen: list, sigma: float = SIGMA_MIN) -> dict:
    """What one fixed spike at the origin would add to the model's score: its
    offset density mixed, with weight `w`, with a bivariate normal of
    standard deviation `sigma` (normalised units, on both axes) at offset
    (0, 0), the same at every step whatever the context. The steps of dx and
    dy both 0 gain (their recorded density is about `w / (2 pi sigma^2)`
    at least), every other step loses `log(1 - w)`. Returns the `w` that
    gains most (on a grid) and what it gains a line: a floor on what a
    network that learnt the lattice could take from it, since a network
    would weigh the spike by context."""
    lines = len(offsets)
    targets = np.concatenate([o[1:] for o in offsets])
    at_origin = (targets[:, 0] == 0) & (targets[:, 1] == 0)
    offset_nll = (np.concatenate(recorded) - np.concatenate(pen))[at_origin].astype(np.float64)
    log_spike = -np.log(2 * np.pi * sigma**2)
    best = {"weight": 0.0, "nats_per_line": 0.0}
    for w in np.geomspace(1e-4, 0.5, 400):
        with_spike = np.logaddexp(np.log1p(-w) - offset_nll, np.log(w) + log_spike)  # minus the new offset NLL
        gain = float(np.sum(with_spike + offset_nll) + (len(targets) - at_origin.sum()) * np.log1p(-w)) / lines
        if gain > best["nats_per_line"]:
            best = {"weight": round(float(w), 5), "nats_per_line": round(gain, 2)}
    return {"spike_sigma": sigma, "steps_at_origin_per_line": round(float(at_origin.sum()) / lines, 2), **best}


def main(argv):
    del argv
    from hwtf.data import dataset as dataset_lib
    from hwtf.evaluate import checkpoint_model

    data = dataset_lib.load("iamondb", [FLAGS.split], FLAGS.data_dir, None)
    if not all(np.array_equal(o[:, :2], np.round(o[:, :2])) for o in data.offsets):
        raise app.UsageError(f"--split={FLAGS.split}: its offsets are not all whole numbers; there is no lattice")
    rng = np.random.default_rng(FLAGS.seed)
    chosen = np.arange(len(data))
    if FLAGS.lines:
        chosen = rng.choice(len(data), min(FLAGS.lines, len(data)), replace=False)
    chosen = sorted(chosen, key=lambda i: len(data.offsets[i]))  # similar lengths together
    config, model, checkpoint = checkpoint_model(FLAGS.model)
    offsets, score = [data.offsets[i] for i in chosen], scorer(model)
    recorded, pen, dequantised = [], [], []
    for start in range(0, len(chosen), FLAGS.batch_size):
        part, texts = offsets[start : start + FLAGS.batch_size], [data.texts[i] for i in chosen[start : start + FLAGS.batch_size]]
        scores, pens = point_nll(score, config, part, texts, 0.0, rng)
        recorded += scores
        pen += pens
        dequantised += point_nll(score, config, part, texts, FLAGS.noise, rng)[0]
    print(json.dumps({"checkpoint": checkpoint, "split": FLAGS.split, "lines": len(chosen), "noise": FLAGS.noise}))
    for row in kind_rows(offsets, recorded, dequantised):
        print(json.dumps(row))
    print(json.dumps({"one_spike_at_the_origin": spike_gain(offsets, recorded, pen)}))


if __name__ == "__main__":
    define_flags()
    app.run(main)
