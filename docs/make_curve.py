"""Plots training runs' validation curves from their TensorBoard events.

    python docs/make_curve.py   # checkpoints/iamondb beside checkpoints/iamondb-2x256

Validation NLL (nats per line) against training steps (left) and against
hours of training (right, on this machine or a lent GPU; summed from the
logged steps per second, so the time between stints is not counted).
`--compare_dir` draws a second run beside it; Graves's -1096.9 nats per line
is drawn for scale.
A dotted line marks where the run moved to another host or precision (its
`run/host` notes, `hwtf.summaries.stints`): an hour of one host is not an
hour of another. A dash-dotted one marks where a resume changed the learning
rate (`hwtf.summaries.rate_changes`).

`--plateau=FROM-TO,...` also fits the run's validations in each range of
steps with `hwtf.summaries.plateau` and prints where each stretch was
heading (its floor, in nats per line), had its recipe gone on unchanged.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

FLAGS = flags.FLAGS
flags.DEFINE_string("train_dir", "checkpoints/iamondb", "Training directory (its tensorboard/ events).")
flags.DEFINE_string("label", "3x400, 3x512 from step 10,964, 3x640 from 27,019, averaged from 25,115 "
                    "(flags/iamondb.cfg; 31,463 shipped), all of testset_v", "The run's legend.")
flags.DEFINE_string("compare_dir", "checkpoints/iamondb-2x256", "Another run's training directory, drawn beside "
                    "it ('' = none).")
flags.DEFINE_string("compare_label", "2x256 (shipped until 2026-12-05), trainset+testset_t, "
                    "first 256 lines of testset_v",
                    "The other run's legend.")
flags.DEFINE_string("out", "docs/iamondb_curve.png", "Where to write the PNG.")
flags.DEFINE_string("title", "hwtf on IAM-OnDB", "Figure title.")
flags.DEFINE_bool("graves", True, "Draw Graves's -1096.9 nats/line.")
flags.DEFINE_list("plateau", [], "Ranges of steps (FROM-TO) of the run whose validations to fit a floor to "
                  "(hwtf.summaries.plateau).")


def plateaus(steps, nll, ranges: list[str]) -> list[str]:
    """`hwtf.summaries.plateau`'s fit of each range of steps of a curve, as
    lines to print; refuses a range it cannot fit."""
    from hwtf import summaries

    lines = []
    for text in ranges:
        try:
            first, last = (int(part) for part in text.split("-"))
        except ValueError:
            raise app.UsageError(f"--plateau={text}: expected FROM-TO, two step numbers") from None
        points = [(s, v) for s, v in zip(steps, nll) if first <= s <= last]
        if len(points) < 4:
            raise app.UsageError(f"--plateau={text}: {len(points)} validations in that range; the fit needs 4")
        fit = summaries.plateau(*zip(*points))
        loose = " (at the fit's edge: the bend is not pinned, so neither is the floor)" if fit["at_edge"] else ""
        lines.append(f"steps {first}-{last} ({len(points)} validations): floor {fit['floor']:.1f} nats/line, "
                     f"exponent {fit['exponent']:.2f}{loose}, rms {fit['rms']:.2f}")
    return lines


def curve(train_dir: str):
    """`(steps, hours, nll)` of a run's validations."""
    from hwtf import summaries

    steps, hours, nll = summaries.validation_curve(train_dir)
    if not steps:
        raise app.UsageError(f"{train_dir}: no valid/nll_per_line events")
    return steps, hours, nll


def main(argv):
    del argv
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from hwtf import summaries

    runs = [(FLAGS.train_dir, FLAGS.label, "tab:blue")]
    if FLAGS.compare_dir:
        runs.append((FLAGS.compare_dir, FLAGS.compare_label, "tab:orange"))
    curves = {train_dir: curve(train_dir) for train_dir, _, _ in runs}
    steps, _, nll = curves[FLAGS.train_dir]
    fits = plateaus(steps, nll, FLAGS.plateau)  # refused before anything is drawn
    fig = Figure(figsize=(10, 5.2), dpi=100)
    FigureCanvasAgg(fig)
    by_steps, by_hours = fig.subplots(1, 2, sharey=True)
    for index, (train_dir, label, colour) in enumerate(runs):
        steps, hours, nll = curves[train_dir]
        by_steps.plot(steps, nll, "o-", color=colour, label=label, markersize=3)
        by_hours.plot(hours, nll, "o-", color=colour, label=label, markersize=3)
        # Where the run validated a moving average of its weights (hwtf.train
        # --ema_decay), the curve is the average's; the weights' own are dots.
        weights = dict(summaries.read_scalars(train_dir, "valid/weights_nll_per_line"))
        if weights:
            at = [(s, h, weights[s]) for s, h in zip(steps, hours) if s in weights]
            for ax, x in ((by_steps, 0), (by_hours, 1)):
                ax.plot([a[x] for a in at], [a[2] for a in at], "o", color=colour, markersize=3, fillstyle="none",
                        label="its weights alone (the line: their average)" if x else None)
        for number, (step, hour, host) in enumerate(summaries.stints(train_dir)):
            for ax, x in ((by_steps, step), (by_hours, hour)):
                ax.axvline(x, color=colour, linestyle=":", linewidth=1)
                ax.annotate(f"{number + 1}: {host}", (x, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -4),
                            textcoords="offset points", rotation=90, va="top", fontsize=6, color=colour)
        for step, hour, rate in summaries.rate_changes(train_dir):
            for ax, x in ((by_steps, step), (by_hours, hour)):
                ax.axvline(x, color=colour, linestyle="-.", linewidth=0.8, alpha=0.6)
                ax.annotate(f"lr {rate:.0e}".replace("e-0", "e-"), (x, 0.0), xycoords=("data", "axes fraction"),
                            xytext=(2 + 8 * index, 4), textcoords="offset points", rotation=90, va="bottom", fontsize=6,
                            color=colour)
        print(f"{train_dir}: {len(nll)} validations, last {nll[-1]:.1f} nats/line at step {steps[-1]} "
              f"({hours[-1]:.2f} h), best {min(nll):.1f}")
    hours_label = "hours of training (2 CPUs; GPU where marked)"
    for ax, xlabel in ((by_steps, "training step"), (by_hours, hours_label)):
        if FLAGS.graves:
            ax.axhline(-1096.9, color="tab:gray", linestyle="--", label="Graves (2013): -1096.9")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    by_steps.set_ylabel("testset_v NLL, nats per line")
    # Below both panels: over either, it hid the curve's newest points.
    fig.legend(*by_hours.get_legend_handles_labels(), loc="lower center", ncol=1, fontsize=8)
    fig.suptitle(FLAGS.title, fontsize=10)
    fig.tight_layout(rect=(0, 0.2, 1, 1))
    fig.savefig(FLAGS.out, format="png", facecolor="white")
    print(f"wrote {FLAGS.out}")
    for line in fits:
        print(line)


if __name__ == "__main__":
    app.run(main)
