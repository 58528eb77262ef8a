"""How much of a stint's movement the weights' moving average keeps.

    python docs/average_drift.py --start=DIR --end=runs/iamondb

From stint 29 to stint 34, `docs/save_stint.py` packed the weights' moving
average as the weights, so each stint started from the average rather than
from where the weights had gone, and this measured what that cost; from
stint 35's checkpoint on it keeps both (`--weights=both`) and the next
stint goes on from the weights. `--start` is the training folder the stint began from
(a committed stint's, its packed checkpoint included); `--end` the run's
folder, whose latest checkpoint holds the weights and their average. This
prints the share of the weights' change that the average's change keeps
(the projection of one on the other), with the root mean square of each,
over all the weights and over those out of the units beyond
`--old_units` (a widening's new units; `hwtf.unit_weights.reading_rows`).
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

FLAGS = flags.FLAGS
flags.DEFINE_string("start", None, "The training folder the stint began from.")
flags.DEFINE_string("end", "runs/iamondb", "The run's folder: its latest checkpoint, weights and average.")
flags.DEFINE_integer("old_units", 0, "Units a layer before a widening: also report the weights out of the rest.")


def main(argv):
    del argv
    import numpy as np
    import tensorflow as tf

    from hwtf.evaluate import checkpoint_model
    from hwtf.model import ModelConfig, has_ema, named_weights, read_weights
    from hwtf.widen import outgoing

    if not FLAGS.start:
        raise app.UsageError("--start: the training folder the stint began from")
    latest = tf.train.latest_checkpoint(FLAGS.end)
    if latest is None or not has_ema(latest):
        raise app.UsageError(f"--end={FLAGS.end}: no checkpoint with the weights' moving average")
    _, start, _ = checkpoint_model(FLAGS.start)
    config = ModelConfig.load(os.path.join(FLAGS.end, "config.json"))
    weights, average = config.build_model(), config.build_model()
    tf.train.Checkpoint(model=weights).restore(latest).expect_partial()
    read_weights(average, latest)
    arrays = lambda model: {k: v.numpy().astype(np.float64) for k, v in named_weights(model).items()}  # noqa: E731
    s, w, a = arrays(start), arrays(weights), arrays(average)
    if any(s[k].shape != w[k].shape for k in s):
        raise app.UsageError(f"--start={FLAGS.start} is another network than --end's")

    def report(what, select):
        dw, da = select({k: w[k] - s[k] for k in s}), select({k: a[k] - s[k] for k in s})
        print(f"{what}: the average keeps {dw @ da / (dw @ dw):.3f} of the weights' change "
              f"(rms {np.sqrt(np.mean(dw**2)):.3g} the weights, {np.sqrt(np.mean(da**2)):.3g} the average)")

    print(f"from {FLAGS.start} to {latest}")
    report(f"all {sum(x.size for x in s.values()):,} weights", lambda d: np.concatenate([x.ravel() for x in d.values()]))
    if FLAGS.old_units:
        units, layers = config.lstm_units, config.lstm_layers
        report(f"the weights out of units {FLAGS.old_units} to {units - 1}",
               lambda d: np.concatenate(outgoing(d, layers, FLAGS.old_units, units)[1]))


if __name__ == "__main__":
    app.run(main)
