"""How much the NLL per line owes to the scale the offsets are normalised by.

    python docs/nll_scale.py --data_dir=../shared/data/iamondb.tar.xz \\
        --model=saved_models/iamondb-synthesis --nll=-1052.93

The NLL is a density's: it is measured in the units of the offsets it scores.
hwtf scores offsets divided by the training lines' standard deviations
`(s_x, s_y)` (the model's `normalizer`); scored after dividing by
`(s'_x, s'_y)` instead, the same model's density over the same ink reads

    nll' = nll - points * log(s'_x * s'_y / (s_x * s_y))

per line, `points` being the offsets a line scores (all but its first):
the change of variables, exactly, for any model (an affine rescaling of its
inputs and outputs is the same model). The pen-up term does not change.
So the figure moves by `2 * points * log(1.01)` nats a line for each 1% on
both scales, and Graves (2013) does not say what his offsets were divided by
("no preprocessing", beyond filling missing readings and dropping long steps).

This prints one JSON object a line: first the scored points a line of
`--valid_split` and the nats a line that 1% of scale is worth; then, for
each way of computing the statistics that a reader of the paper might
choose, the standard deviations, the nats a line they shift the figure by,
and, given `--nll`, the figure that would read. It prints statistics only,
nothing of the data.
"""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np
from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from hwtf.data import iamondb  # noqa: E402
from hwtf.data.strokes import GLITCH_STEP, HandwritingSet, Normalizer  # noqa: E402
from hwtf.files import CONFIG_FILE  # noqa: E402
from hwtf.model import ModelConfig  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", os.path.join(REPO, "..", "shared", "data", "iamondb.tar.xz"),
                    "IAM-OnDB archive or folder.")
flags.DEFINE_list("train_splits", ["trainset", "testset_t", "testset_f"], "The splits the statistics come from.")
flags.DEFINE_string("valid_split", "testset_v", "The split the NLL is read on.")
flags.DEFINE_string("model", None, "An export or training directory: its normaliser is the reference, "
                    "checked against the one computed here.")
flags.DEFINE_float("nll", None, "The model's NLL in nats a line on --valid_split, to shift.")


def scale_shift(points_per_line: float, std: tuple[float, float], reference: tuple[float, float]) -> float:
    """Nats a line the NLL changes by when scored at `std` instead of `reference`."""
    return -points_per_line * math.log((std[0] * std[1]) / (reference[0] * reference[1]))


def _offsets(lines, glitch_step):
    return HandwritingSet.from_lines(lines, glitch_step=glitch_step).offsets


def _short_steps_std(offsets, longest: float) -> tuple[float, float]:
    """The deviations of the steps no longer than `longest` units."""
    deltas = np.concatenate([o[:, :2] for o in offsets]).astype(np.float64)
    return tuple(map(float, deltas[np.hypot(*deltas.T) <= longest].std(axis=0)))


def _model_normalizer(path: str) -> Normalizer:
    """The normaliser of an export (its hwtf_config.json) or a training directory (its config.json)."""
    for name in (CONFIG_FILE, "config.json"):
        if os.path.isfile(os.path.join(path, name)):
            return ModelConfig.load(os.path.join(path, name)).normalizer_lib
    raise app.UsageError(f"--model={path} has no {CONFIG_FILE} or config.json")


def main(argv):
    del argv
    if not os.path.exists(FLAGS.data_dir):
        raise app.UsageError(f"--data_dir={FLAGS.data_dir} does not exist")
    by_split = {s: iamondb.read(FLAGS.data_dir, [s])[0] for s in FLAGS.train_splits}
    train = [line for s in FLAGS.train_splits for line in by_split[s]]
    valid = HandwritingSet.from_lines(iamondb.read(FLAGS.data_dir, [FLAGS.valid_split])[0])
    points = (valid.num_points - len(valid)) / len(valid)

    train_offsets = _offsets(train, GLITCH_STEP)
    ours = Normalizer.fit(train_offsets)
    reference = ours.std
    if FLAGS.model:
        theirs = _model_normalizer(FLAGS.model)
        if not np.allclose(theirs.std, ours.std, rtol=1e-6):
            raise app.UsageError(f"--model={FLAGS.model}'s normaliser std {theirs.std} is not the one "
                                 f"these splits give, {ours.std}: other data or other splits")
        reference = theirs.std
    print(json.dumps({"split": FLAGS.valid_split, "lines": len(valid),
                      "scored_points_per_line": round(points, 1),
                      "nats_per_line_per_1pct_of_scale": round(-scale_shift(points, (1.01, 1.01), (1, 1)), 2)}))

    first = FLAGS.train_splits[0]
    variants = {
        f"hwtf: {'+'.join(FLAGS.train_splits)}, steps over {GLITCH_STEP:g} units split off": ours.std,
        f"{first} alone": Normalizer.fit(_offsets(by_split[first], GLITCH_STEP)).std,
        "strokes not split at long steps": Normalizer.fit(_offsets(train, None)).std,
        "steps over 500 units left out of the statistics": _short_steps_std(train_offsets, 500.0),
        "steps over 250 units left out of the statistics": _short_steps_std(train_offsets, 250.0),
        "one deviation for x and y (pooled)": (math.hypot(*ours.std) / math.sqrt(2),) * 2,
    }
    for name, std in variants.items():
        shift = scale_shift(points, std, reference)
        row = {"statistics": name, "std": [round(s, 3) for s in std], "shift_nats_per_line": round(shift, 1)}
        if FLAGS.nll is not None:
            row["nll_per_line"] = round(FLAGS.nll + shift, 1)
        print(json.dumps(row))


if __name__ == "__main__":
    app.run(main)
