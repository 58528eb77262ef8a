"""Whether the points past the longest training line score worse.

    python docs/nll_by_position.py --model=checkpoints/iamondb --min_points=1000

The campaign trains on lines of at most `--max_length=1200` points
(`flags/iamondb.cfg`; 61 of the 10,732 training lines are longer and are
left out), while `testset_v` is scored whole, 12 of its 1,438 lines being
longer than that. So the network never learnt to write on past its 1,200th
point. This scores the `testset_v` lines of at least `--min_points` points
with the model (a training directory's best or latest checkpoint, its
moving average where the run keeps one, as `hwtf.evaluate` reads it) and
prints one JSON object a row: for the lines up to `--max_length` points and
for those longer, the mean NLL a point in bands of position along the line
(`--bands`), with the points in each band. If the points past the training
length score clearly worse than the band before them, in the long lines and
against the same band in the shorter ones, the length limit costs
likelihood; the last row says what that costs a line over the whole split
(the excess of the points past the limit over the band before it, summed,
divided by `testset_v`'s lines). It prints statistics only, nothing of the
data.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command's flags, defined when it runs (not on import: the tests
    import this beside other scripts that define flags of the same names)."""
    flags.DEFINE_string("model", os.path.join(REPO, "checkpoints", "iamondb"), "A training directory.")
    flags.DEFINE_string("data_dir", os.path.join(REPO, "..", "shared", "data", "iamondb.tar.xz"),
                        "IAM-OnDB archive or folder.")
    flags.DEFINE_string("split", "testset_v", "The split to score.")
    flags.DEFINE_integer("min_points", 1000, "Score the lines of at least this many points.")
    flags.DEFINE_integer("max_length", 1200, "The longest training line (flags/iamondb.cfg's --max_length).")
    flags.DEFINE_list("bands", ["0", "400", "800", "1000", "1200"], "Where the position bands begin.")
    flags.DEFINE_integer("batch_size", 8, "Lines per batch.")


def point_nll(model, config, offsets: list, texts: list) -> list:
    """Each line's NLL a point (all but its first), as `hwtf.model.nll`
    scores them under teacher forcing, as numpy arrays."""
    from hwtf.evaluate import pad_lines, text_batch
    from hwtf.model import nll

    batch = text_batch(config, *pad_lines(offsets), texts)
    per_point = nll(model, batch)["point_nll"].numpy()
    return [per_point[row, : len(o) - 1] for row, o in enumerate(offsets)]


def band_rows(per_point: list, bands: list[int], max_length: int) -> list[dict]:
    """For the lines of at most `max_length` points and those longer: the
    mean NLL a point and the points in each band of position (a point's
    position is its index in the line, the first scored being 1)."""
    rows = []
    for group, keep in (("at most the training length", lambda n: n <= max_length),
                        ("longer than the training length", lambda n: n > max_length)):
        lines = [p for p in per_point if keep(len(p) + 1)]
        row = {"lines": group, "count": len(lines)}
        for lo, hi in zip(bands, bands[1:] + [None]):
            values = np.concatenate([p[lo:hi] for p in lines] or [np.zeros(0)])
            name = f"{lo}-{hi}" if hi is not None else f"{lo}+"
            row[name] = {"points": int(values.size),
                         "nll_per_point": round(float(values.mean()), 4) if values.size else None}
        rows.append(row)
    return rows


def main(argv):
    del argv
    from hwtf.data import dataset as dataset_lib
    from hwtf.evaluate import checkpoint_model

    bands = sorted(int(b) for b in FLAGS.bands)
    if FLAGS.max_length not in bands:
        raise app.UsageError(f"--bands={FLAGS.bands}: one must begin at --max_length={FLAGS.max_length}")
    data = dataset_lib.load("iamondb", [FLAGS.split], FLAGS.data_dir, None)
    chosen = [i for i, o in enumerate(data.offsets) if len(o) >= FLAGS.min_points]
    if not chosen:
        raise app.UsageError(f"--min_points={FLAGS.min_points}: no {FLAGS.split} line is that long")
    config, model, checkpoint = checkpoint_model(FLAGS.model)
    per_point = []
    chosen.sort(key=lambda i: len(data.offsets[i]))
    for start in range(0, len(chosen), FLAGS.batch_size):
        index = chosen[start : start + FLAGS.batch_size]
        per_point += point_nll(model, config, [data.offsets[i] for i in index], [data.texts[i] for i in index])
    print(json.dumps({"checkpoint": checkpoint, "split": FLAGS.split, "split_lines": len(data),
                      "scored_lines": len(chosen), "min_points": FLAGS.min_points}))
    for row in band_rows(per_point, bands, FLAGS.max_length):
        print(json.dumps(row))
    # What the points past the limit cost over the band before them.
    before = bands[bands.index(FLAGS.max_length) - 1]
    long_lines = [p for p in per_point if len(p) + 1 > FLAGS.max_length]
    past = np.concatenate([p[FLAGS.max_length:] for p in long_lines] or [np.zeros(0)])
    reference = np.concatenate([p[before : FLAGS.max_length] for p in long_lines] or [np.zeros(0)])
    if past.size and reference.size:
        excess = float(past.mean() - reference.mean())
        print(json.dumps({"points_past_the_limit": int(past.size),
                          "their_excess_nll_per_point": round(excess, 4),
                          "cost_nats_per_split_line": round(excess * past.size / len(data), 3)}))


if __name__ == "__main__":
    define_flags()
    app.run(main)
