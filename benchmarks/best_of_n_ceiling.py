"""How far best-of-N writing could go: the CER of the best of N candidates.

    python benchmarks/best_of_n_ceiling.py --model=saved_models/iamondb-synthesis \
        --data_dir=../shared/data/iamondb.tar.xz --bias=0.75 --candidates=4

Writes each of the legibility set's texts (`hwtf.legibility.choose_lines`,
the first `--lines` of `testset_v` with 12 to 60 characters) `--candidates`
times in one batch at `--bias` (seed 0; each row draws from its own seed and
row, as `generate_best`'s candidates do), reads every candidate with
Tesseract and prints one JSON object:

- `one_candidate`: the mean line CER and the lines with CER > 0.5 of one
  candidate picked at random (the mean over candidates);
- `oracle`: for 2, 4, ... `--candidates` candidates (each text's first k),
  the same for the candidate Tesseract itself reads best, the ceiling of
  any scorer that picks among them, and its `fall` in mean CER against one
  candidate.

A scorer from the model's own signals (`generate_best`) can at best match
the oracle, so this says whether a target on best-of-N can be met by
choosing better or needs better candidates.
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

FLAGS = flags.FLAGS
flags.DEFINE_string("model", os.path.join(REPO, "saved_models", "iamondb-synthesis"), "An exported synthesis model.")
flags.DEFINE_string("data_dir", os.path.join(REPO, "..", "shared", "data", "iamondb.tar.xz"), "IAM-OnDB archive or folder.")
flags.DEFINE_string("split", "testset_v", "The split whose texts to write.")
flags.DEFINE_integer("lines", 64, "Texts to write.")
flags.DEFINE_float("bias", 0.75, "Sampling bias.")
flags.DEFINE_integer("candidates", 4, "Candidates per text.")
flags.DEFINE_integer("seed", 0, "Sampling seed.")
flags.DEFINE_integer("texts_per_batch", 16, "Texts per batch (each written --candidates times).")


def main(argv):
    del argv
    import numpy as np

    from hwtf import legibility
    from hwtf.data import dataset as dataset_lib
    from hwtf.writer import Writer

    if FLAGS.candidates < 1 or FLAGS.lines < 1:
        raise app.UsageError("--candidates and --lines must be at least 1")
    if not legibility.tesseract_available():
        raise app.UsageError("tesseract with English data is not installed "
                             "(Debian: apt-get install tesseract-ocr tesseract-ocr-eng)")
    data = dataset_lib.load("iamondb", [FLAGS.split], FLAGS.data_dir, None)
    writer = Writer.load(FLAGS.model)
    texts = [legibility._normal(data.texts[i]) for i in legibility.choose_lines(data, FLAGS.lines)]
    scale = legibility.pixels_per_unit(float(writer.config.normalizer_lib.mean[0]))
    n = FLAGS.candidates
    start = time.perf_counter()
    written = []
    for first in range(0, len(texts), FLAGS.texts_per_batch):
        batch = [t for t in texts[first : first + FLAGS.texts_per_batch] for _ in range(n)]
        written.extend(line.strokes for line in writer.write(batch, FLAGS.bias, FLAGS.seed, steps_per_char=40))
    seconds = time.perf_counter() - start
    readings = legibility.render_and_read(written, scale)
    cers = np.array([legibility.character_error_rate([r], [t]) for r, t in zip(readings, [t for t in texts for _ in range(n)])])
    cers = cers.reshape(len(texts), n)
    capitals = np.array([legibility.in_capitals(t) for t in texts])
    result = {
        "benchmark": "best_of_n_ceiling",
        "model": FLAGS.model,
        "lines": len(texts),
        "bias": FLAGS.bias,
        "candidates": n,
        "in_capitals": int(capitals.sum()),
        "one_candidate": {"mean_cer": round(float(cers.mean()), 3),
                          "lines_over_half": round(float((cers > 0.5).sum(0).mean()), 2),
                          "over_half_in_capitals": round(float((cers[capitals] > 0.5).sum(0).mean()), 2)},
        "oracle": {},
        "seconds_writing": round(seconds, 1),
    }
    k = 2
    while k <= n:  # the best of each text's first k candidates
        best = cers[:, :k].min(1)
        result["oracle"][str(k)] = {"mean_cer": round(float(best.mean()), 3), "lines_over_half": int((best > 0.5).sum()),
                                    "over_half_in_capitals": int((best[capitals] > 0.5).sum()),
                                    "fall": round(float(1.0 - best.mean() / cers.mean()), 3)}
        k *= 2
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)
