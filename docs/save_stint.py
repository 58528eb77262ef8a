"""Keeps a training stint for the next session: the run's latest checkpoint
packed (`hwtf.packed`: everything exact but the optimizer's moments, which
are rounded to bfloat16, so that training resumes as it was at two thirds of
the size), its config.json and its scalar curves, in a folder to commit.

Where the run keeps the weights' moving average (`--ema_decay`), the packed
checkpoint keeps both (`--weights=both`, from 2026-12-07): the average as it
is, which is what evaluates and ships from it, and the weights as int8 codes
of their difference from the average (`hwtf.packed.to_delta8`: each within
1/254 of its row's largest difference), with Adam's second moments as 8-bit
codes of their logarithm (`to_log8`, as they travel to a lent GPU) rather
than bfloat16, so that it stays within the campaign's 50 MB a stint. The
next stint then goes on from the weights, and its average goes on too, as
one run would. Until then (`--weights=average`) only the average was kept,
as the weights: the next stint started from it and began a new average, so
each stint kept only what the average had of its movement (58% in stint
33). `--weights=latest` keeps the weights as they were last and no average.
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
flags.DEFINE_enum("weights", "both", ["both", "average", "latest"],
                  "What the packed checkpoint keeps, where the run keeps a moving average of the weights: both "
                  "(the average as it is, the weights as int8 differences from it, Adam's second moments as "
                  "log8 codes), the average as the model's weights, or the weights as they were last; a run "
                  "without an average keeps its weights.")
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
    mode = FLAGS.weights if has_ema(latest) else "latest"
    both = mode == "both"
    info = packed.pack(latest, os.path.join(tmp, name + ".packed.npz"), leave_out=() if both else EMA_OBJECTS,
                       weights_from=EMA_AVERAGE if mode == "average" else None,
                       weights_near=EMA_AVERAGE if both else None, log8_moments=both,
                       drop_momentum=FLAGS.drop_momentum)
    shutil.copy2(os.path.join(FLAGS.train_dir, "config.json"), tmp)
    count = summaries.copy_scalars(
        os.path.join(FLAGS.train_dir, "tensorboard"), os.path.join(tmp, "tensorboard"), notes
    )
    shutil.rmtree(FLAGS.out, ignore_errors=True)
    os.replace(tmp, FLAGS.out)
    size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(FLAGS.out, "**"), recursive=True) if os.path.isfile(p))
    kept = {"both": "the weights' moving average and the weights near it",
            "average": "the weights' moving average as its weights",
            "latest": "the weights as they were last"}[mode]
    if mode != FLAGS.weights:
        kept += " (the run keeps no average)"
    if info["zeroed"]:
        kept += f", its optimizer's {info['zeroed']} first moments left out (they resume at zero)"
    print(f"{FLAGS.out}: {name} with {kept}, {count} scalars, {size / 1e6:.1f} MB")


if __name__ == "__main__":
    app.run(main)
