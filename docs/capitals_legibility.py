"""How legibly models write in capitals: the legibility set's texts upper-cased.

    python docs/capitals_legibility.py --models=saved_models/iamondb-synthesis,DIR \
        --data_dir=../shared/data/iamondb.tar.xz --bias=0.75 --candidates=1,4

`hwtf.evaluate --legibility` holds 7 lines in capitals (one `testset_v`
writer's), too few to tell a change in how a model writes capitals from the
draws. This writes each of the legibility set's 64 texts
(`hwtf.legibility.choose_lines`) in capitals ("THE TIME, BECAUSE LARGE-"),
reads it with Tesseract and prints, for each model and number of candidates,
the mean line CER and the lines with CER > 0.5, beside the same texts in
capitals in the neat printed hand (Tesseract's floor). There is no real ink
of these texts in capitals: IAM-OnDB's writers wrote them in mixed case.
`--json_out=FILE` also writes each line's text, reading and CER there: they
quote IAM-OnDB's transcriptions, so keep that file out of the repository.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

FLAGS = flags.FLAGS
flags.DEFINE_list("models", [os.path.join(REPO, "saved_models", "iamondb-synthesis")], "Exported synthesis models.")
flags.DEFINE_string("data_dir", os.path.join(REPO, "..", "shared", "data", "iamondb.tar.xz"), "IAM-OnDB archive or folder.")
flags.DEFINE_integer("lines", 64, "Texts to write.")
flags.DEFINE_float("bias", 0.75, "Sampling bias.")
flags.DEFINE_list("candidates", ["1", "4"], "Best-of-N settings.")
flags.DEFINE_integer("seed", 0, "Sampling seed.")
flags.DEFINE_string("json_out", None, "Also write the texts, readings and each line's CER here (JSON; they quote "
                    "IAM-OnDB, so not for the repository).")


def main(argv):
    del argv
    from hwtf import legibility
    from hwtf.data import dataset as dataset_lib
    from hwtf.writer import Writer

    data = dataset_lib.load("iamondb", ["testset_v"], FLAGS.data_dir)
    texts = [" ".join(data.texts[i].split()).upper() for i in legibility.choose_lines(data, FLAGS.lines)]

    result = {"lines": len(texts), "bias": FLAGS.bias, "seed": FLAGS.seed, "texts": texts, "models": {}}
    for model in FLAGS.models:
        writer = Writer.load(model)
        scale = legibility.pixels_per_unit(float(writer.config.normalizer_lib.mean[0]))
        for n in (int(c) for c in FLAGS.candidates):
            written = legibility.write_lines(writer, texts, FLAGS.bias, FLAGS.seed, n)
            result["models"][f"{model} x{n}"] = legibility.score(legibility.render_and_read(written, scale), texts)
    neat = legibility.neat_print(texts, FLAGS.seed)
    result["print"] = legibility.score(legibility.render_and_read(neat, scale), texts)
    for name, out in [("neat print", result["print"]), *result["models"].items()]:
        over_half = round(out["share_over_half"] * len(texts))
        print(f"{name}: mean line CER {out['mean_cer']:.3f}, lines over 0.5: {over_half} of {len(texts)}")
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    app.run(main)
