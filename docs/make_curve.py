"""Plots a training run's curves from its TensorBoard events.

    python docs/make_curve.py --train_dir=runs/iamondb --out=docs/iamondb_curve.png

Validation NLL (nats per line, on the run's validation lines) against steps,
with the training loss (nats per point, mean of each logging interval) on a
second axis; Graves's -1096.9 nats per line is drawn for scale when
`--graves` is set.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

FLAGS = flags.FLAGS
flags.DEFINE_string("train_dir", "runs/iamondb", "Training directory (its tensorboard/ events).")
flags.DEFINE_string("out", "docs/iamondb_curve.png", "Where to write the PNG.")
flags.DEFINE_string("title", "hwtf on IAM-OnDB (flags/iamondb.cfg)", "Figure title.")
flags.DEFINE_bool("graves", True, "Draw Graves's -1096.9 nats/line.")


def main(argv):
    del argv
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from hwtf import summaries

    valid = summaries.read_scalars(FLAGS.train_dir, "valid/nll_per_line")
    loss = summaries.read_scalars(FLAGS.train_dir, "loss")
    if not valid:
        raise app.UsageError(f"{FLAGS.train_dir}: no valid/nll_per_line events")
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    steps, values = zip(*valid)
    ax.plot(steps, values, "o-", color="tab:blue", label="validation NLL (nats/line)")
    if FLAGS.graves:
        ax.axhline(-1096.9, color="tab:gray", linestyle="--", label="Graves (2013): -1096.9")
    ax.set_xlabel("training step")
    ax.set_ylabel("validation NLL, nats per line")
    ax.grid(alpha=0.3)
    if loss:
        twin = ax.twinx()
        twin.plot(*zip(*loss), color="tab:orange", alpha=0.6, linewidth=1, label="training loss (nats/point)")
        twin.set_ylabel("training loss, nats per point")
        lines = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        ax.legend(lines, [line.get_label() for line in lines], loc="upper right", fontsize=8)
    else:
        ax.legend(loc="upper right", fontsize=8)
    ax.set_title(FLAGS.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(FLAGS.out, format="png", facecolor="white")
    print(f"wrote {FLAGS.out}: {len(valid)} validation points, last {values[-1]:.1f} at step {steps[-1]}")


if __name__ == "__main__":
    app.run(main)
