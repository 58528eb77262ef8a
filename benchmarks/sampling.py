"""Sampling speed through an exported SavedModel.

    python benchmarks/sampling.py                       # a Graves-size (3x400) model, untrained
    python benchmarks/sampling.py --model=saved_models/synthetic-demo

Prints one JSON object: milliseconds per generated step at batch 1 and at
batch 64 (a fixed number of steps, the stop condition disabled by a long
text), and the seconds to write a 30-character line (to its stop condition
for a trained model; `steps_per_char` points per character for an untrained
one, whose attention never reaches the end).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

flags.DEFINE_string("model", None, "An exported SavedModel (default: export an untrained 3x400 model).")
flags.DEFINE_integer("steps", 300, "Generated steps per timing.")
flags.DEFINE_integer("repeats", 3, "Timings per figure (the best is kept).")
flags.DEFINE_integer("steps_per_char", 22, "Points per character for an untrained model (IAM-OnDB: ~21).")
FLAGS = flags.FLAGS

LINE = "The quick brown fox jumps over"  # 30 characters


def main(argv):
    del argv
    import tensorflow as tf

    path = FLAGS.model
    if path is None:
        from hwtf.export import export
        from hwtf.model import ModelConfig

        alphabet = "".join(chr(c) for c in range(32, 127))
        config = ModelConfig(lstm_units=400, lstm_layers=3, window_mixtures=10, mixtures=20, alphabet=alphabet)
        path = export(config.build_model(), config, os.path.join(tempfile.mkdtemp(), "graves"))
    model = tf.saved_model.load(path)

    def generate(texts, max_steps):
        out = model.generate(
            text=tf.constant(texts), bias=tf.constant(0.5), seed=tf.constant(1, tf.int64),
            max_steps=tf.constant(max_steps),
        )
        return out["lengths"].numpy()

    def best_time(fn):
        fn()  # warm up
        times = []
        for _ in range(FLAGS.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    long_text = "the quick brown fox jumps over the lazy dog " * 20
    result = {
        "benchmark": "sampling",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "tensorflow": tf.__version__,
        "model": path if FLAGS.model else "untrained 3x400, K=10, M=20",
    }
    for batch in (1, 64):
        seconds = best_time(lambda: generate([long_text] * batch, FLAGS.steps))
        result[f"ms_per_step_batch_{batch}"] = round(1000 * seconds / FLAGS.steps, 3)
    lengths = generate([LINE], 40 * len(LINE))
    trained = lengths[0] < 40 * len(LINE)
    budget = int(lengths[0]) if trained else FLAGS.steps_per_char * len(LINE)
    result["line_30_chars_seconds"] = round(best_time(lambda: generate([LINE], budget)), 3)
    result["line_30_chars_steps"] = budget
    result["line_stopped_by_attention"] = bool(trained)
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)
