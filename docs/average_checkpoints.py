"""The mean of several checkpoints' weights, as a folder that
`python -m hwtf.evaluate --model=OUT` scores like a training directory.

    python docs/average_checkpoints.py --train_dir=runs/iamondb \
        --checkpoints=runs/iamondb/ckpt-3750,runs/iamondb/ckpt-4000 --out=runs/average
    python -m hwtf.evaluate --model=runs/average --dataset=iamondb \
        --data_dir=../shared/data/iamondb.tar.xz --split=testset_v --batch_size=32

Averaging the weights of one run's recent checkpoints (Polyak averaging, done
after the fact) can score better than its last checkpoint when a constant
learning rate leaves the weights jittering about a minimum; this measures
whether it does. `--checkpoints` defaults to all the run's kept checkpoints.
`--out` gets the run's config.json and one checkpoint of the model's weights
alone (no optimizer state: it is for scoring, not for resuming).
"""

from __future__ import annotations

import os
import shutil
import sys

from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

FLAGS = flags.FLAGS
flags.DEFINE_string("train_dir", "runs/iamondb", "The training directory (its config.json).")
flags.DEFINE_list("checkpoints", [], "Checkpoint prefixes to average (default: the run's kept checkpoints).")
flags.DEFINE_string("out", "runs/average", "The folder to write (replaced).")


def model_weights(config, checkpoint: str) -> list:
    """The model's weights in `checkpoint` (their moving average where the run
    kept one), in `model.weights` order."""
    from hwtf.model import read_weights

    model = config.build_model()
    read_weights(model, checkpoint)
    return [v.numpy() for v in model.weights]


def average(train_dir: str, checkpoints: list[str], out: str) -> str:
    """Writes the mean of `checkpoints`' model weights to `out`; returns the
    checkpoint's path."""
    import numpy as np
    import tensorflow as tf

    from hwtf.model import ModelConfig

    config = ModelConfig.load(os.path.join(train_dir, "config.json"))
    weights = [model_weights(config, c) for c in checkpoints]
    model = config.build_model()
    for variable, values in zip(model.weights, zip(*weights)):
        variable.assign(np.mean(np.stack(values), axis=0, dtype=np.float64).astype(values[0].dtype))
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    shutil.copy(os.path.join(train_dir, "config.json"), out)
    return tf.train.Checkpoint(model=model).save(os.path.join(out, "ckpt"))


def main(argv):
    del argv
    from hwtf.train import run_checkpoints

    if not os.path.exists(os.path.join(FLAGS.train_dir, "config.json")):
        raise app.UsageError(f"--train_dir={FLAGS.train_dir}: no config.json there")
    checkpoints = FLAGS.checkpoints or run_checkpoints(FLAGS.train_dir)
    if not checkpoints:
        raise app.UsageError(f"--train_dir={FLAGS.train_dir}: no checkpoints to average")
    missing = [c for c in checkpoints if not os.path.exists(c + ".index")]
    if missing:
        raise app.UsageError(f"--checkpoints: no checkpoint at {', '.join(missing)}")
    if os.path.abspath(FLAGS.out) == os.path.abspath(FLAGS.train_dir):
        raise app.UsageError("--out must not be --train_dir (it is replaced)")
    path = average(FLAGS.train_dir, checkpoints, FLAGS.out)
    print(f"{path}: the mean of {len(checkpoints)} checkpoints ({', '.join(os.path.basename(c) for c in checkpoints)})")


if __name__ == "__main__":
    app.run(main)
