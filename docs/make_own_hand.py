"""Renders `docs/own_hand.png`: the model writing on in someone's own hand.

    python docs/make_own_hand.py [--model=saved_models/synthetic-demo] [--ink_dir=/tmp/hwtf-own-hand]

The ink is made here, not borrowed: for each of two writers, a line of the
synthetic set's generator (`hwtf.data.synthetic.write`) is shrunk to screen
pixels and sampled densely, as a tablet would give it, and saved as InkML
with its text as truth annotation (in `--ink_dir`). Then exactly what
`python -m hwtf.sample --style_file=... --text=...` does: the file is read
(`hwtf.inkml`), brought to the training scale (`hwtf.writer.normalise_style`),
primes the model, and the model writes a new text. The picture shows each
writer's ink (as the model reads it) above what the model wrote in that hand,
all at one scale.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402

from hwtf import inkml, render  # noqa: E402
from hwtf.data import synthetic  # noqa: E402
from hwtf.data.strokes import offsets_to_strokes  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model", os.path.join(REPO, "saved_models", "synthetic-demo"), "Exported synthesis model.")
flags.DEFINE_string("style_text", "a line in my own hand", "What the writers' ink says.")
flags.DEFINE_string("text", "the model writes on in it", "What the model writes in each hand.")
flags.DEFINE_multi_integer("writer_seeds", [11, 4], "Seeds of the synthetic writers (one row pair each).")
flags.DEFINE_integer("seed", 1, "Sampling seed.")
flags.DEFINE_float("bias", 1.0, "Sampling bias (a little neater than as trained).")
flags.DEFINE_string("ink_dir", "/tmp/hwtf-own-hand", "Where the writers' InkML files go.")
flags.DEFINE_string("out", os.path.join(REPO, "docs", "own_hand.png"), "The picture.")


def tablet_ink(text: str, seed: int) -> list[np.ndarray]:
    """A line in writer `seed`'s hand, in screen pixels (about 20 px a
    character) and sampled every pixel, as a tablet or web canvas gives it."""
    from hwtf.writer import resample_stroke

    strokes = synthetic.write(text, np.random.default_rng(seed))
    return [resample_stroke(s * 0.12, 1.0) for s in strokes]


def main(argv):
    del argv
    from hwtf.writer import Writer

    model = Writer.load(FLAGS.model)
    os.makedirs(FLAGS.ink_dir, exist_ok=True)
    rows = []
    for writer in FLAGS.writer_seeds:
        path = os.path.join(FLAGS.ink_dir, f"writer-{writer}.inkml")
        inkml.write_inkml(tablet_ink(FLAGS.style_text, writer), path, text=FLAGS.style_text)
        style = model.style_from_file(path)  # the text comes from the file's truth annotation
        strokes = model.write([FLAGS.text], FLAGS.bias, FLAGS.seed, 40, style)[0].strokes
        rows.append((f"your ink ({os.path.basename(path)}): {style.text}", offsets_to_strokes(style.offsets)))
        rows.append((f"the model, in that hand: {FLAGS.text}", strokes))
        logging.info("writer %d: %d style points, %d written", writer, len(style.offsets), sum(map(len, strokes)))
    render.render_lines_png(rows, FLAGS.out, width_px=900, linewidth=1.2)
    logging.info("wrote %s (InkML in %s)", FLAGS.out, FLAGS.ink_dir)


if __name__ == "__main__":
    app.run(main)
