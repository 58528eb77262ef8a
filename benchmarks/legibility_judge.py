"""How well Tesseract reads people's ink at each rendering: the judge's calibration.

    python benchmarks/legibility_judge.py --data_dir=../shared/data/iamondb.tar.xz \
        --split=testset_t --lines=128 --char_widths=32,48,64 --line_widths=3,10 --psms=13

`python -m hwtf.evaluate --legibility` renders every line, real or written,
at one scale fixed by the data (`hwtf.legibility.CHAR_WIDTH_PX` pixels an
average character) with one pen (`LINE_WIDTH_PX`) and reads it in one page
segmentation mode (`PSM`). Those settings should be the ones at which
Tesseract reads *people's* ink best, chosen on lines that are not the
legibility set's: by default the first `--lines` lines of 12 to 60
characters of `testset_t` (`hwtf.legibility.choose_lines`), while the
legibility set is `testset_v`'s. For each setting this prints one JSON line:
the mean line CER, the lines with CER > 0.5, and the seconds a line.
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
flags.DEFINE_string("data_dir", os.path.join(REPO, "..", "shared", "data", "iamondb.tar.xz"), "IAM-OnDB archive or folder.")
flags.DEFINE_string("split", "testset_t", "The split whose real ink to read.")
flags.DEFINE_integer("lines", 64, "Lines to read.")
flags.DEFINE_list("char_widths", ["32", "48", "64"], "Pixels an average character (CHAR_WIDTH_PX).")
flags.DEFINE_list("line_widths", ["3", "10"], "Pen widths in pixels (LINE_WIDTH_PX).")
flags.DEFINE_list("psms", ["13"], "Tesseract page segmentation modes (PSM).")
flags.DEFINE_string("cache_dir", None, "Parsed-data cache (default: hwtf's).")


def main(argv):
    del argv
    import numpy as np

    from hwtf import legibility
    from hwtf.data import dataset as dataset_lib
    from hwtf.data.strokes import offsets_to_strokes

    data = dataset_lib.load("iamondb", [FLAGS.split], FLAGS.data_dir, FLAGS.cache_dir)
    index = legibility.choose_lines(data, FLAGS.lines)
    texts = [" ".join(data.texts[i].split()) for i in index]
    lines = [offsets_to_strokes(data.offsets[i]) for i in index]
    # The scale as the legibility report sets it, from the data's own mean x
    # advance a point (a model's normalizer holds the training lines').
    mean_dx = float(np.mean(np.concatenate([data.offsets[i][1:, 0] for i in range(len(data.offsets))])))
    for psm in FLAGS.psms:
        for line_width in map(float, FLAGS.line_widths):
            for char_width in map(float, FLAGS.char_widths):
                start = time.perf_counter()
                scale = legibility.pixels_per_unit(mean_dx, char_width)
                readings = legibility.render_and_read(lines, scale, line_width=line_width, psm=psm)
                seconds = (time.perf_counter() - start) / len(lines)
                cers = [legibility.character_error_rate([r], [t]) for r, t in zip(readings, texts)]
                print(json.dumps({
                    "split": FLAGS.split, "lines": len(lines), "psm": psm, "line_width_px": line_width,
                    "char_width_px": char_width, "mean_cer": round(float(np.mean(cers)), 3),
                    "pooled_cer": round(legibility.character_error_rate(readings, texts), 3),
                    "over_half": int(sum(c > 0.5 for c in cers)), "seconds_per_line": round(seconds, 2),
                }), flush=True)


if __name__ == "__main__":
    app.run(main)
