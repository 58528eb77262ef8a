"""What `hwtf.train --ema_decay` adds to a training step: one update of the
weights' moving average, timed alone.

    python benchmarks/ema_update.py [--lstm_units=512] [--lstm_layers=3] [--repeats=20]

Builds the synthesis model at the campaign's size (3x512, K=10, M=20) and a
`Trainer` keeping an average, and times the compiled update the training
step runs after each applied gradient: one multiply-add over every weight.
Prints one JSON object: the weights, and the best and median milliseconds an
update over `--repeats` timings, to set beside a step's seconds
(`benchmarks/train_step.py`).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

flags.DEFINE_integer("lstm_units", 512, "LSTM units a layer (the campaign's: 512).")
flags.DEFINE_integer("lstm_layers", 3, "LSTM layers.")
flags.DEFINE_float("ema_decay", 0.998, "The average's decay a step (flags/iamondb.cfg's).")
flags.DEFINE_integer("repeats", 20, "Timed updates.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import tensorflow as tf

    from hwtf.model import ModelConfig
    from hwtf.train import Trainer

    alphabet = "".join(chr(33 + i) for i in range(78))  # about IAM-OnDB's 80 characters
    config = ModelConfig(lstm_units=FLAGS.lstm_units, lstm_layers=FLAGS.lstm_layers, alphabet=alphabet)
    trainer = Trainer(config, tf.distribute.get_strategy(), ema_decay=FLAGS.ema_decay)
    update = tf.function(trainer._update_ema)
    update()  # trace
    times = []
    for _ in range(FLAGS.repeats):
        start = time.perf_counter()
        update()
        times.append(time.perf_counter() - start)
    print(json.dumps({
        "host": platform.processor() or platform.machine(),
        "weights": int(sum(v.numpy().size for v in trainer.model.trainable_variables)),
        "ms_best": round(1000 * min(times), 2),
        "ms_median": round(1000 * statistics.median(times), 2),
    }))


if __name__ == "__main__":
    app.run(main)
