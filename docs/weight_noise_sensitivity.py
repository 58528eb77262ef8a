"""How much weight noise a trained model bears: its validation NLL at noisy weights.

    python docs/weight_noise_sensitivity.py [--model=checkpoints/iamondb] \
        [--data_dir=../shared/data/iamondb.tar.xz] [--lines=128] [--stddevs=0.003,0.01,0.03,0.075] [--draws=2]

`hwtf.train --weight_noise=σ` takes each gradient at the weights plus a
Gaussian draw of deviation σ (`hwtf.train.weight_noises`), so the loss it
descends is the loss at noisy weights. This scores the first `--lines`
lines of `testset_v` with the model's weights (a training directory's best
or latest checkpoint, or a committed stint's packed one:
`hwtf.evaluate.checkpoint_model`) and then, for each σ, with
`--draws` draws of noise added (the draws `hwtf.train` would make at the
first steps of seed 0), and prints, per σ, the mean NLL a line over the
draws and how much worse it is than the clean weights'. A σ whose noisy
loss is far worse than the clean one trains a different model (one robust
to that noise) rather than regularising this one: the figure says where a
first trial of `--weight_noise` on a trained run should start. It prints
figures only, no line of the data.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

FLAGS = flags.FLAGS
flags.DEFINE_string("model", os.path.join(REPO, "checkpoints", "iamondb"),
                    "A training directory or a committed stint (config.json and a checkpoint).")
flags.DEFINE_string("data_dir", os.path.join(REPO, "..", "shared", "data", "iamondb.tar.xz"),
                    "IAM-OnDB archive or folder.")
flags.DEFINE_integer("lines", 128, "Score the first this many testset_v lines.")
flags.DEFINE_list("stddevs", ["0.003", "0.01", "0.03", "0.075"], "Weight noise deviations to try.")
flags.DEFINE_integer("draws", 2, "Draws of noise per deviation.")
flags.DEFINE_integer("batch_size", 32, "Lines per scored batch.")


def main(argv):
    del argv
    import numpy as np
    import tensorflow as tf

    from hwtf.data import dataset as dataset_lib
    from hwtf.evaluate import checkpoint_model, model_scorer, score_set
    from hwtf.train import weight_noises

    try:
        stddevs = [float(s) for s in FLAGS.stddevs]
    except ValueError as e:
        raise app.UsageError(f"--stddevs={','.join(FLAGS.stddevs)}: {e}") from e
    if any(not (np.isfinite(s) and s > 0) for s in stddevs) or FLAGS.draws < 1 or FLAGS.lines < 1:
        raise app.UsageError("--stddevs must be positive numbers, --draws and --lines at least 1")
    config, model, checkpoint = checkpoint_model(FLAGS.model)
    data = dataset_lib.load("iamondb", ["testset_v"], FLAGS.data_dir)
    data = data.subset(range(min(FLAGS.lines, len(data))))
    score = model_scorer(config, model)
    variables = model.trainable_variables
    clean = [v.numpy() for v in variables]
    base = score_set(score, data, FLAGS.batch_size)["nll_per_line"]
    result = {"model": FLAGS.model, "checkpoint": os.path.basename(checkpoint), "lines": len(data),
              "clean_nll_per_line": round(base, 2)}
    for stddev in stddevs:
        scores = []
        for draw in range(FLAGS.draws):
            for v, w, n in zip(variables, clean, weight_noises(variables, stddev, tf.constant([0, draw], tf.int64))):
                v.assign(w + n.numpy())
            scores.append(score_set(score, data, FLAGS.batch_size)["nll_per_line"])
        for v, w in zip(variables, clean):
            v.assign(w)
        result[f"stddev={stddev:g}"] = {"nll_per_line": [round(s, 2) for s in scores],
                                        "worse_than_clean": round(float(np.mean(scores)) - base, 2)}
        print(json.dumps({f"stddev={stddev:g}": result[f"stddev={stddev:g}"]}), flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)
