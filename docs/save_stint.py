"""Keeps a training stint for the next session: the run's latest checkpoint
packed (`hwtf.packed`: everything exact but the optimizer's moments, which
are rounded to bfloat16, so that training resumes as it was at two thirds of
the size), its config.json and its scalar curves, in a folder to commit.

Where the run keeps the weights' moving average (`--ema_decay`), the packed
checkpoint keeps the average as its weights (`--weights=average`): the
average validates better than the weights it averages (by 2 to 4 nats a
line in stints 27 and 28), the next stint starts from it and starts its own average
there, and whoever ships or evaluates the committed checkpoint gets it. The
average itself is not kept beside the weights: as big again as they are, it
would take the commit past the campaign's 50 MB a stint. `--weights=latest`
keeps the weights as they were last (the run's exact state).
`--drop_momentum` leaves out the optimizer's first moments as well, so that
a network wider than 3x512 fits in those 50 MB (`hwtf.packed`).

    python docs/save_stint.py --train_dir=runs/iamondb --out=checkpoints/iamondb

Replaces `--out`. Its curves keep the run's notes of where each stretch of
it trained (host and precision: `hwtf.summaries.stints`); `--note=STEP=TEXT`
adds one for a stretch that trained before runs wrote them. The sample pictures of the run's TensorBoard events are
left out (their titles quote the validation texts, which are IAM-OnDB's).
Resume with `cp -r checkpoints/iamondb runs/iamondb` and the run's flagfile:
`hwtf.train` unpacks the checkpoint there.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys

from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

FLAGS = flags.FLAGS
flags.DEFINE_string("train_dir", "runs/iamondb", "The training directory.")
flags.DEFINE_string("out", "checkpoints/iamondb", "The folder to write (replaced).")
flags.DEFINE_enum("weights", "average", ["average", "latest"],
                  "What the packed checkpoint keeps as the model's weights: the weights' moving average, where "
                  "the run keeps one (else the weights), or the weights as they were last.")
flags.DEFINE_bool("drop_momentum", False,
                  "Leave the optimizer's first moments out (they unpack as zeros, and the run's first updates "
                  "after it resumes are smaller): what lets a network wider than 3x512 fit the campaign's "
                  "50 MB a stint (hwtf/packed.py).")
flags.DEFINE_multi_string("note", [], "STEP=HOST: where the run trained from STEP on (host and precision), "
                          "for stretches that trained before runs noted it.")


def parse_notes(notes: list[str]) -> dict[int, str]:
    parsed = {}
    for note in notes:
        step, _, text = note.partition("=")
        if not step.strip().isdigit() or not text.strip():
            raise app.UsageError(f"--note={note!r}: want STEP=HOST, e.g. --note='1500=AMD EPYC, 2 CPU cores, float32'")
        parsed[int(step)] = text.strip()
    return parsed


def main(argv):
    del argv
    import tensorflow as tf

    from hwtf import packed, summaries
    from hwtf.model import EMA_AVERAGE, EMA_OBJECTS, has_ema

    notes = parse_notes(FLAGS.note)
    latest = tf.train.latest_checkpoint(FLAGS.train_dir)
    if latest is None:
        raise app.UsageError(f"{FLAGS.train_dir}: no checkpoint")
    tmp = FLAGS.out.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    name = os.path.basename(latest)
    average = FLAGS.weights == "average" and has_ema(latest)
    info = packed.pack(latest, os.path.join(tmp, name + ".packed.npz"), leave_out=EMA_OBJECTS,
                       weights_from=EMA_AVERAGE if average else None, drop_momentum=FLAGS.drop_momentum)
    shutil.copy2(os.path.join(FLAGS.train_dir, "config.json"), tmp)
    count = summaries.copy_scalars(
        os.path.join(FLAGS.train_dir, "tensorboard"), os.path.join(tmp, "tensorboard"), notes
    )
    shutil.rmtree(FLAGS.out, ignore_errors=True)
    os.replace(tmp, FLAGS.out)
    size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(FLAGS.out, "**"), recursive=True) if os.path.isfile(p))
    kept = ("the weights' moving average as its weights" if average else
            "the weights as they were last" + (" (the run keeps no average)" if FLAGS.weights == "average" else ""))
    if info["zeroed"]:
        kept += f", its optimizer's {info['zeroed']} first moments left out (they resume at zero)"
    print(f"{FLAGS.out}: {name} with {kept}, {count} scalars, {size / 1e6:.1f} MB")


if __name__ == "__main__":
    app.run(main)
