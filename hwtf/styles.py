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
synthesis export. Lines that lead the model astray when it is primed with
them (its pen leaving the line, `stray_ratio`, or its attention skipping
words, `line_coverage`) are passed over (`make_styles`).
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

# Some hands lead a primed model astray: the 3x512 model primed with a small,
# widely spaced line of its own sometimes left the line mid-word and drew its
# way back down to it (README, "The shipped model"). A style is kept only if,
# primed with it, the model writes these lines (where it strayed), each
# CHECK_COPIES times in one batch (each row its own draw), at bias 1 without
# a stroke taller than MAX_STRAY times the median stroke.
CHECK_TEXTS = ("Handwriting synthesis after Alex Graves: a recurrent network",
               "reads the text through a soft window and writes it one pen",
               "movement at a time, in a hand it learned from people writing")
CHECK_COPIES = 3
CHECK_BIAS = 1.0
# Bounds the check's lines (a trained model writes about 21 points a
# character and stops; an untrained one runs to the bound).
CHECK_STEPS_PER_CHAR = 30
# Written lines measured 1.9 to 3.9 in the styles seen not to stray, up to
# 12 and 27 in the two that did (2026-12-05, the 3x512 step 17,855).
MAX_STRAY = 4.5
# Some hands make a primed model skip words: the weights' average of step
# 25,798, primed with the six styles the stray test alone kept, skipped words
# in 10 of 96 lines of the README's page (down to 13% of a line's
# characters; README, "The shipped model"), where step 22,421 with its own
# skipped in none (1.00 in all 96). So a style is kept only if every check
# line's attention also rests on at least this share of the line's
# characters (`line_coverage`).
MIN_COVERAGE = 0.9
# Rows written for each style kept, so that styles that lead astray can be
# passed over.
CANDIDATE_ROWS = 2


def stray_ratio(offsets) -> float:
    """How far a written line strays: its tallest stroke's height over its
    median stroke's (1 for a line of equal strokes; a pen that leaves the
    line and draws its way back makes one stroke several lines tall).
    `offsets` are `[T, 3]` (dx, dy, pen_up); 0 for a line of under 2 strokes."""
    import numpy as np

    from hwtf.data.strokes import offsets_to_strokes

    heights = [float(np.ptp(s[:, 1])) for s in offsets_to_strokes(np.asarray(offsets)) if len(s) > 1]
    if len(heights) < 2:
        return 0.0
    median = float(np.median(heights))
    return max(heights) / median if median > 0 else 0.0


def _record(line, text: str, row: int, bias: float) -> dict:
    import numpy as np

    offsets = np.round(line.offsets.astype(np.float64), 1)
    if len(offsets):
        offsets[-1, 2] = 1.0  # the line may stop mid-stroke; a style ends with the pen lifted
    return {"text": text, "seed": 0, "row": row, "bias": bias, "offsets": offsets.tolist()}


def line_coverage(line) -> float:
    """The share of a written line's characters that its attention rested on
    most at some point (`hwtf.writer.candidate_features`): under 1 where it
    skipped some."""
    from hwtf.writer import candidate_features

    return candidate_features(line.offsets, line.phi, len(line.text), line.finished)["coverage"]


def style_check(writer, record: dict) -> tuple[float, float]:
    """`(stray, coverage)`: the largest `stray_ratio` and the smallest
    `line_coverage` of `CHECK_TEXTS` written `CHECK_COPIES` times by `writer`
    primed with the style `record` (seed 0, bias `CHECK_BIAS`)."""
    from hwtf.writer import style_from_record

    ink = writer.write(list(CHECK_TEXTS) * CHECK_COPIES, bias=CHECK_BIAS, seed=0, style=style_from_record(record),
                       check_style=False, steps_per_char=CHECK_STEPS_PER_CHAR)
    return max(stray_ratio(line.offsets) for line in ink), min(line_coverage(line) for line in ink)


def make_styles(writer, count: int = STYLE_COUNT, text: str = STYLE_TEXT, bias: float = STYLE_BIAS,
                check: bool = True) -> list[dict]:
    """`count` style records: lines of `text` written in one batch by `writer`
    (an `hwtf.writer.Writer`) with seed 0, row `i` of the batch recorded as
    `"row": i`.

    With `check`, `CANDIDATE_ROWS` times as many rows are written, and the
    first `count` in row order that do not lead the model astray
    (`style_check`: stray ratio at most `MAX_STRAY`, coverage at least
    `MIN_COVERAGE`) are kept; if too few pass, the rest fill the last
    places (so that the first styles are the ones that passed), those that
    skip least first, then those that stray least, in row order. Without
    it, rows 0 to `count - 1`."""
    rows = count * CANDIDATE_ROWS if check else count
    ink = writer.write([text] * rows, bias=bias, seed=0, steps_per_char=MAX_STEPS_PER_CHAR)
    records = [_record(line, text, i, bias) for i, line in enumerate(ink)]
    if not check:
        return records
    checks = [style_check(writer, r) for r in records]
    passed = [i for i in range(rows) if checks[i][0] <= MAX_STRAY and checks[i][1] >= MIN_COVERAGE][:count]
    rest = sorted((i for i in range(rows) if i not in passed),
                  key=lambda i: (min(checks[i][1], MIN_COVERAGE), -checks[i][0]), reverse=True)
    kept = passed + sorted(rest[: count - len(passed)])
    logging.info("styles: kept rows %s of %d (stray ratios %s, at most %.1f passes; coverages %s, at least %.2f "
                 "passes)", kept, rows, ", ".join(f"{x:.1f}" for x, _ in checks), MAX_STRAY,
                 ", ".join(f"{c:.2f}" for _, c in checks), MIN_COVERAGE)
    return [records[i] for i in kept]


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
