"""Built-in priming styles: records of a model's own handwriting.

    python -m hwtf.styles --model=saved_models/iamondb-synthesis   # (re)write
    python -m hwtf.sample --text="hello" --style=2 --out=hello.png

A style is a line the model wrote itself, unprimed, with a fixed seed: its
slant, size, spacing and letter shapes are one draw of the writers the model
learned. `python -m hwtf.sample --style=N` primes the model with style N
(Graves 2013, section 5.5) so that it writes on in that hand. The styles are
stored beside the SavedModel as `styles.json` (offsets in the data's units,
the text they say, the seed and bias), so they are the model's own ink, never
the training data's, and ship with it. `hwtf.export` writes them for every
synthesis export.
"""

from __future__ import annotations

import math
import os

from absl import app, flags, logging

# An export's styles.json is read and written by hwtf.writer (every Writer of
# an export reads it); this module makes the styles.
from hwtf.writer import Writer, save_styles

FLAGS = flags.FLAGS

# Every lowercase letter, so that a primed model has seen the hand write each.
STYLE_TEXT = "the quick brown fox jumps over the lazy dog"
# Low enough for the variety of writers to show, high enough to keep each
# hand steady (Graves's bias, section 5.4).
STYLE_BIAS = 0.25
STYLE_COUNT = 6
MAX_STEPS_PER_CHAR = 40


def make_styles(writer, count: int = STYLE_COUNT, text: str = STYLE_TEXT, bias: float = STYLE_BIAS) -> list[dict]:
    """`count` lines of `text` written in one batch by `writer` (an
    `hwtf.writer.Writer`) with seed 0, as style records; row `i` of the batch
    is style `i`."""
    import numpy as np

    ink = writer.write([text] * count, bias=bias, seed=0, steps_per_char=MAX_STEPS_PER_CHAR)
    styles = []
    for i, line in enumerate(ink):
        offsets = np.round(line.offsets.astype(np.float64), 1)
        if len(offsets):
            offsets[-1, 2] = 1.0  # the line may stop mid-stroke; a style ends with the pen lifted
        styles.append({"text": text, "seed": 0, "row": i, "bias": bias, "offsets": offsets.tolist()})
    return styles


def check_flags() -> None:
    """Refuses bad flags before TensorFlow is imported (`cli.run`'s `check`)."""
    if not os.path.exists(os.path.join(FLAGS.model, "saved_model.pb")):
        raise app.UsageError(f"--model={FLAGS.model}: not a SavedModel directory")
    if FLAGS.count < 1:
        raise app.UsageError(f"--count={FLAGS.count}: must be at least 1")
    if not (math.isfinite(FLAGS.bias) and FLAGS.bias >= 0):
        raise app.UsageError(f"--bias={FLAGS.bias}: must be a finite number, 0 or more")


def main(argv):
    del argv
    try:
        writer = Writer.load(FLAGS.model)
    except ValueError as e:
        raise app.UsageError(f"--model: {e}; styles need a synthesis model") from e
    path = save_styles(FLAGS.model, make_styles(writer, FLAGS.count, bias=FLAGS.bias))
    logging.info("wrote %d styles to %s", FLAGS.count, path)


def define_flags() -> None:
    """The command's flags, defined when it runs (as in every hwtf command)."""
    flags.DEFINE_string("model", None, "An exported synthesis SavedModel.", required=True)
    flags.DEFINE_integer("count", STYLE_COUNT, "How many styles.")
    flags.DEFINE_float("bias", STYLE_BIAS, "Sampling bias of the recorded lines.")


if __name__ == "__main__":
    define_flags()
    from hwtf import cli

    cli.run(main, "hwtf.styles", info=True, check=check_flags)
