"""Primed writing, one candidate against the best of N: skipped words and legibility.

    python docs/primed_best_of_n.py [--model=saved_models/iamondb-synthesis] [--candidates=4]
    python docs/primed_best_of_n.py --hands=12 [--data_dir=../shared/data/iamondb.tar.xz]

Writes the README's paragraph (`docs/make_iamondb_pages.sh`'s text, wrapped
at 60 characters: 4 lines) in each of the model's built-in styles, at each
of `--biases` and `--seeds`, every line `--candidates` times in one primed
batch (`Writer.write` with a style, one row a candidate), reads every
candidate with Tesseract and prints, over all the lines, for

- the first candidate (what one candidate writes: a draw like any other),
- the mean over all the candidates (a random one),
- the candidate `hwtf.writer.ink_score` rates best (what
  `Writer.write(candidates=N)` keeps, `hwtf.writer.best_rows`),
- the candidate Tesseract reads best (the ceiling of any choice),

how many lines skip words (the attention resting on under
`hwtf.styles.MIN_COVERAGE` of the line's characters, `line_coverage`), the
mean line CER and the lines with CER over 0.5. Then it times a page in the
first style (or hand) written with one candidate and with N (`--time`). The
text is the README's own, no IAM-OnDB transcription.

With `--hands=K` the primes are people's hands instead of the model's own:
the first K lines of `testset_v` (`hwtf.legibility.choose_lines`: 12 to 60
characters, all in the model's alphabet), by writers the model never trained
on, each brought to the model as a user's ink is (`Writer.style_from_ink`:
scaled and resampled by `normalise_style`, then read back by the model,
`check_prime`). A hand the model refuses is counted, as a user would see
the refusal, and not written with. It prints only counts and rates: no line
of the data, its text or its ink.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

FLAGS = flags.FLAGS
flags.DEFINE_string("model", os.path.join(REPO, "saved_models", "iamondb-synthesis"), "An exported synthesis model.")
flags.DEFINE_integer("candidates", 4, "Candidates written for each line.")
flags.DEFINE_list("biases", ["0.5", "1"], "Sampling biases.")
flags.DEFINE_list("seeds", ["0", "1"], "Sampling seeds.")
flags.DEFINE_list("styles", None, "Built-in styles (default: all the model has).")
flags.DEFINE_integer("hands", 0, "Prime with this many testset_v lines (people's hands) instead of the styles.")
flags.DEFINE_string("data_dir", os.path.join(REPO, "..", "shared", "data", "iamondb.tar.xz"),
                    "IAM-OnDB archive or folder (for --hands).")
flags.DEFINE_bool("time", True, "Also time a page in the first style (or hand) with one candidate and with N.")

TEXT = ("Handwriting synthesis after Alex Graves: a recurrent network reads the text through a soft window and "
        "writes it one pen movement at a time, in a hand it learned from people writing on a whiteboard.")


def people_hands(writer, count: int) -> tuple[list, int]:
    """The first `count` usable lines of `testset_v` as primes, each brought
    to the model as a user's ink is; and how many of them it refused."""
    from hwtf import legibility
    from hwtf.data import dataset as dataset_lib
    from hwtf.data.strokes import offsets_to_strokes

    data = dataset_lib.load("iamondb", ["testset_v"], FLAGS.data_dir)
    texts = [" ".join(t.split()) for t in data.texts]
    usable = [i for i in legibility.choose_lines(data, len(data)) if not writer.unknown_chars(texts[i])]
    primes, refused = [], 0
    for k, i in enumerate(usable[:count]):
        try:
            style = writer.style_from_ink(offsets_to_strokes(data.offsets[i]), texts[i])
            writer.write(["a"], style=style)  # check_prime: the model reads the ink as its text
        except ValueError:
            refused += 1
            continue
        primes.append((f"hand {k}", style))
    return primes, refused


def main(argv):
    del argv
    from hwtf import legibility
    from hwtf.styles import MIN_COVERAGE, line_coverage
    from hwtf.writer import Writer, ink_score, load_styles, wrap_text

    if not legibility.tesseract_available():
        raise app.UsageError("tesseract with English data is not installed")
    writer = Writer.load(FLAGS.model)
    lines = wrap_text(TEXT, 60)
    scale = legibility.pixels_per_unit(float(writer.config.normalizer_lib.mean[0]))
    if FLAGS.hands:
        primes, refused = people_hands(writer, FLAGS.hands)
        print(f"{len(primes)} of {FLAGS.hands} people's hands (testset_v) primed; the model refused {refused}")
    else:
        numbers = [int(s) for s in FLAGS.styles] if FLAGS.styles else range(len(load_styles(FLAGS.model)))
        primes = [(f"style {number}", writer.builtin_style(number)) for number in numbers]
    n = FLAGS.candidates
    coverage, cer, best = [], [], []  # [line, candidate], and the score's choice per line
    for name, style in primes:
        for bias in map(float, FLAGS.biases):
            for seed in map(int, FLAGS.seeds):
                ink = writer.write([t for t in lines for _ in range(n)], bias, seed, style=style)
                for i, text in enumerate(lines):
                    rows = ink[i * n : (i + 1) * n]
                    coverage.append([line_coverage(r) for r in rows])
                    readings = legibility.render_and_read([r.strokes for r in rows], scale)
                    cer.append([legibility.character_error_rate([r], [text]) for r in readings])
                    best.append(int(np.argmax([ink_score(r) for r in rows])))
        print(f"{name} done", flush=True)
    coverage, cer = np.array(coverage), np.array(cer)
    every = np.arange(len(cer))
    kind = "hands" if FLAGS.hands else "styles"
    print(f"{len(cer)} lines ({len(primes)} {kind} x {len(FLAGS.biases)} biases x {len(FLAGS.seeds)} seeds x "
          f"{len(lines)} lines), {n} candidates each")
    print(f"{'choice':<34} {'skipping':>9} {'mean CER':>9} {'over 0.5':>9}")
    for name, pick in (("the first candidate", np.zeros(len(cer), int)), ("the score's (candidate_score)", best),
                       ("Tesseract's (the ceiling)", cer.argmin(1))):
        pick = np.asarray(pick)
        print(f"{name:<34} {int((coverage[every, pick] < MIN_COVERAGE).sum()):>9} "
              f"{cer[every, pick].mean():>9.3f} {int((cer[every, pick] > 0.5).sum()):>9}")
    print(f"{'a random candidate (the mean)':<34} {(coverage < MIN_COVERAGE).mean(1).sum():>9.2f} "
          f"{cer.mean():>9.3f} {(cer > 0.5).mean(1).sum():>9.2f}")
    if FLAGS.time:
        name, style = primes[0]
        for candidates in (1, n):
            writer.write(lines, 0.5, 0, style=style, candidates=candidates)  # traced once
            start = time.perf_counter()
            writer.write(lines, 0.5, 0, style=style, candidates=candidates)
            print(f"{candidates} candidate(s): {(time.perf_counter() - start) / len(lines):.2f} s a line "
                  f"(a page of {len(lines)} lines, {name}, bias 0.5)")


if __name__ == "__main__":
    app.run(main)
