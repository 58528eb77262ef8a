"""The matmul floor of a training step: what its matmuls alone cost here.

    python benchmarks/matmul_floor.py [--units=400] [--layers=3] [--batch=32] [--length=600]

A training step of the synthesis network has two kinds of matmul:
- inside the recurrence loops, one small product per layer per step forwards
  (`[B, V + H] x [V + H, 4H]` for the first layer, `[B, H] x [H, 4H]` above)
  and one backwards (`[B, 4H] x [4H, V + H]` and `[B, 4H] x [4H, H]`), run
  one after another, 600 times each;
- outside them, the input projections of all steps at once and the kernels'
  gradients, large products that run near the machine's peak.
This times the loop matmuls inside a `tf.while_loop` (as the model runs them)
and the large ones at their real shapes, in float32 and bfloat16, and prints
one JSON object with the seconds a step would take if it did nothing else:
a floor that no rearranging of the element-wise work can beat.
"""

from __future__ import annotations

import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("units", 400, "LSTM units H (Graves: 400).")
flags.DEFINE_integer("layers", 3, "LSTM layers (Graves: 3).")
flags.DEFINE_integer("batch", 32, "Lines per batch.")
flags.DEFINE_integer("length", 600, "Points per line (loop steps).")
flags.DEFINE_integer("alphabet", 80, "Alphabet size V (the window vector's width).")
flags.DEFINE_integer("mixtures", 20, "Output mixture components M.")
flags.DEFINE_list("dtypes", ["float32", "bfloat16"], "Matmul dtypes.")


def _best(fn, repeats=3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def loop_matmul_seconds(dtype, batch, n_in, n_out, steps) -> float:
    """Seconds for `steps` dependent `[batch, n_in] x [n_in, n_out]` products
    in a `tf.while_loop` (each step's input is the previous step's output)."""
    import tensorflow as tf

    w = tf.cast(tf.random.normal([n_in, n_out], stddev=0.01), dtype)
    x = tf.cast(tf.random.normal([batch, n_in]), dtype)
    back = tf.cast(tf.random.normal([n_out, n_in], stddev=0.01), dtype)

    @tf.function
    def run(x):
        # Two products per iteration (there and back), so shapes stay fixed.
        body = lambda i, x: (i + 1, tf.matmul(tf.matmul(x, w), back))
        return tf.while_loop(lambda i, _: i < steps, body, (0, x))[1]

    return _best(lambda: run(x).numpy())


def big_matmul_seconds(dtype, m, k, n) -> float:
    import tensorflow as tf

    a = tf.cast(tf.random.normal([m, k]), dtype)
    b = tf.cast(tf.random.normal([k, n]), dtype)
    f = tf.function(lambda a, b: tf.matmul(a, b))
    return _best(lambda: f(a, b).numpy())


def main(argv):
    del argv
    import tensorflow as tf

    h, b, t, v = FLAGS.units, FLAGS.batch, FLAGS.length, FLAGS.alphabet
    rows = b * t
    result = {
        "benchmark": "matmul_floor",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "tensorflow": tf.__version__,
        "model": f"{FLAGS.layers}x{h} LSTM, V={v}, M={FLAGS.mixtures}",
        "batch_size": b, "length": t,
    }
    for name in FLAGS.dtypes:
        dtype = tf.as_dtype(name)
        # In the loops: per layer, the forward product and the backward one.
        first = loop_matmul_seconds(dtype, b, v + h, 4 * h, t)
        upper = loop_matmul_seconds(dtype, b, h, 4 * h, t)
        loop = first + (FLAGS.layers - 1) * upper
        # Outside: input projections of all steps (forward), and for each
        # kernel its gradient and its input's gradient (backward).
        # (The first layer's window and recurrent kernels are in the loop; its
        # gradient is one product after it.)
        big = big_matmul_seconds(dtype, v + h, rows, 4 * h)
        for n in range(1, FLAGS.layers):
            inputs = 3 + v + h
            big += big_matmul_seconds(dtype, rows, inputs, 4 * h)  # x W
            big += big_matmul_seconds(dtype, inputs + h, rows, 4 * h)  # dW and dU
            big += big_matmul_seconds(dtype, rows, 4 * h, inputs)  # d inputs
        head = FLAGS.layers * h
        big += 3 * big_matmul_seconds(dtype, rows, head, 1 + 6 * FLAGS.mixtures)
        result[name] = {
            "loop_seconds": round(loop, 3),
            "loop_us_per_product": round(1e6 * loop / (2 * FLAGS.layers * t), 1),
            "outside_seconds": round(big, 3),
            "floor_seconds_per_step": round(loop + big, 3),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)
