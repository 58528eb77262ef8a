"""The recurrence's small matrix products, three ways, in a `tf.while_loop`.

    python benchmarks/loop_products.py [--batch=32] [--units=400] [--length=200]

Each loop step multiplies a `[B, H]` state by a `[H, 4H]` kernel per layer and
folds the result back through a cheap gate (`tanh` of the four quarters'
sum, so that all of the product is used and Grappler cannot shrink it). The
three layouts of one step's three layers:

- `separate`: one loop per layer, one after another (what training does);
- `together`: one loop whose body does the three independent products (a
  wavefront's data flow, with separate kernels);
- `batched`: one loop and one `BatchMatMul` over a `[3, H, 4H]` kernel (a
  wavefront's single product).

Prints one JSON object: per layout the microseconds per layer-step and the
GFLOP/s (best of `--repeats`), beside a 4096^2 float32 matmul's GFLOP/s.
"""

from __future__ import annotations

import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

flags.DEFINE_integer("batch", 32, "Lines per batch.")
flags.DEFINE_integer("units", 400, "LSTM units (Graves: 400).")
flags.DEFINE_integer("length", 200, "Loop steps.")
flags.DEFINE_integer("repeats", 4, "Timings per layout (the best is kept).")
FLAGS = flags.FLAGS

LAYERS = 3


def best_seconds(f, x, repeats: int) -> float:
    f(x).numpy()  # trace
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f(x).numpy()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv):
    del argv
    import tensorflow as tf

    b, h, steps = FLAGS.batch, FLAGS.units, FLAGS.length
    kernels = [tf.Variable(tf.random.stateless_normal([h, 4 * h], [n, 0]) * 0.05) for n in range(LAYERS)]
    stacked = tf.Variable(tf.stack([k.read_value() for k in kernels]))
    h0 = tf.random.stateless_normal([b, h], [9, 0])

    def gate(z):
        i, f, g, o = tf.split(z, 4, -1)
        return tf.tanh(i + f + g + o)

    def loop(body, state):
        return tf.while_loop(lambda t, *_: t < steps, lambda t, *s: (t + 1, *body(*s)), (0, *state))[1:]

    @tf.function
    def separate(x):
        for kernel in kernels:
            (x,) = loop(lambda s, k=kernel: (gate(tf.matmul(s, k)),), (x,))
        return x

    @tf.function
    def together(x):
        out = loop(lambda *s: tuple(gate(tf.matmul(si, k)) for si, k in zip(s, kernels)), (x,) * LAYERS)
        return tf.add_n(list(out))

    @tf.function
    def batched(x):
        (out,) = loop(lambda s: (gate(tf.matmul(s, stacked)),), (tf.stack([x] * LAYERS),))
        return out

    flops = LAYERS * steps * 2 * b * h * 4 * h
    result = {
        "benchmark": "loop_products",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "tensorflow": tf.__version__,
        "batch": b, "units": h, "length": steps, "layers": LAYERS,
    }
    for name, f in (("separate", separate), ("together", together), ("batched", batched)):
        seconds = best_seconds(f, h0, FLAGS.repeats)
        result[name] = {
            "us_per_layer_step": round(seconds * 1e6 / (LAYERS * steps), 1),
            "gflops": round(flops / seconds / 1e9, 1),
        }
    big = tf.random.stateless_normal([4096, 4096], [1, 0])
    seconds = best_seconds(tf.function(lambda x: tf.matmul(x, x)), big, 3)
    result["matmul_4096_gflops"] = round(2 * 4096**3 / seconds / 1e9, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)
