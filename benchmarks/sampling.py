"""Sampling speed through an exported SavedModel.

    python benchmarks/sampling.py                       # a Graves-size (3x400) model, untrained
    python benchmarks/sampling.py --model=saved_models/synthetic-demo

Prints one JSON object: milliseconds per generated step at batch 1 and at
batch 64 (a fixed number of steps, the stop condition disabled by a long
text), and the seconds to write a 30-character line (to its stop condition
for a trained model; `steps_per_char` points per character for an untrained
one, whose attention never reaches the end), and the seconds to read a
600-point priming line (`generate_primed`, one point written after it).

`plain_ms_per_step_batch_*` times, in the same sitting, the plainest loop of
the same network: one `tf.while_loop` in a `tf.function`, float32, the same
matrix products, window and head, and a draw from the mixture with
`tf.random.categorical` and a normal, without hwtf's stop rule, per-row
seeds, outputs or XLA. It is what the export's sampler should match; hosts
differ tenfold in speed, so compare the two columns of one run.

`floor_ms_per_step_batch_*` is what the step's matrix products alone cost
here (the layers', the window's and the head's, one after another as the
step runs them, nothing else): the fastest of float32 and bfloat16, each
with and without XLA (`floor_kind_batch_*` says which;
`floors_ms_per_step_batch_*` gives all four). No sampler of this
network can step faster on this host, whatever it does with the rest.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

flags.DEFINE_string("model", None, "An exported SavedModel (default: export an untrained 3x400 model).")
flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16"],
                  "What the untrained model's export computes in (bfloat16: on hosts that have it natively).")
flags.DEFINE_integer("steps", 300, "Generated steps per timing.")
flags.DEFINE_integer("repeats", 3, "Timings per figure (the best is kept).")
flags.DEFINE_integer("steps_per_char", 22, "Points per character for an untrained model (IAM-OnDB: ~21).")
FLAGS = flags.FLAGS

LINE = "The quick brown fox jumps over"  # 30 characters
PRIME_POINTS = 600  # a priming line of IAM-OnDB: ~620 points


def main(argv):
    del argv
    import tensorflow as tf

    path = FLAGS.model
    if path is None:
        from hwtf.export import export
        from hwtf.model import ModelConfig

        alphabet = "".join(chr(c) for c in range(32, 127))
        config = ModelConfig(lstm_units=400, lstm_layers=3, window_mixtures=10, mixtures=20, alphabet=alphabet)
        path = export(config.build_model(), config, os.path.join(tempfile.mkdtemp(), "graves"), precision=FLAGS.precision)
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
        "model": path if FLAGS.model else f"untrained 3x400, K=10, M=20, {FLAGS.precision}",
    }
    for batch in (1, 64):
        seconds = best_time(lambda: generate([long_text] * batch, FLAGS.steps))
        result[f"ms_per_step_batch_{batch}"] = round(1000 * seconds / FLAGS.steps, 3)
    for batch in (1, 64):
        plain = plain_loop(model, batch, len(long_text), FLAGS.steps)
        seconds = best_time(plain)
        result[f"plain_ms_per_step_batch_{batch}"] = round(1000 * seconds / FLAGS.steps, 3)
    for batch in (1, 64):
        floors = {
            f"{dtype}{', XLA' if jit else ''}": best_time(products_only(model, batch, FLAGS.steps, dtype, jit))
            for dtype in ("float32", "bfloat16") for jit in (False, True)
        }
        kind = min(floors, key=floors.get)
        result[f"floor_ms_per_step_batch_{batch}"] = round(1000 * floors[kind] / FLAGS.steps, 3)
        result[f"floor_kind_batch_{batch}"] = kind
        result[f"floors_ms_per_step_batch_{batch}"] = {
            name: round(1000 * seconds / FLAGS.steps, 3) for name, seconds in floors.items()
        }
    lengths = generate([LINE], 40 * len(LINE))
    trained = lengths[0] < 40 * len(LINE)
    budget = int(lengths[0]) if trained else FLAGS.steps_per_char * len(LINE)
    result["line_30_chars_seconds"] = round(best_time(lambda: generate([LINE], budget)), 3)
    result["line_30_chars_steps"] = budget
    result["line_stopped_by_attention"] = bool(trained)
    # Priming: reading a 600-point line of a 28-character text (random ink:
    # the time does not depend on it) and writing one point after it.
    rng = np.random.default_rng(0)
    prime = np.concatenate([rng.normal(0.0, 5.0, [1, PRIME_POINTS, 2]),
                            (rng.random([1, PRIME_POINTS, 1]) < 0.05)], -1).astype(np.float32)

    def primed():
        model.generate_primed(
            text=tf.constant(["hi"]), prime_strokes=tf.constant(prime), prime_text=tf.constant([LINE[:28]]),
            bias=tf.constant(0.5), seed=tf.constant(1, tf.int64), max_steps=tf.constant(1),
        )["lengths"].numpy()

    result[f"prime_{PRIME_POINTS}_points_seconds"] = round(best_time(primed), 3)
    print(json.dumps(result))


def _network_sizes(model) -> tuple[int, int, int, int, int]:
    """(units, layers, window mixtures K, mixtures M, window width V) of an export."""
    import json as json_lib

    config = json_lib.loads(model.config()["config"].numpy().decode())
    return (config["lstm_units"], config["lstm_layers"], config["window_mixtures"], config["mixtures"],
            len(config["alphabet"]) + 2)


def products_only(model, batch: int, steps: int, dtype: str, jit: bool):
    """`steps` steps of only the export's network's matrix products, in
    `dtype`, each step's products in the order the step needs them (a layer's
    input is the one below's output): a function that runs them."""
    import tensorflow as tf

    units, layers, k, m, v = _network_sizes(model)
    rng = tf.random.Generator.from_seed(0)

    def weight(*shape):
        return tf.cast(rng.normal(shape, stddev=0.05), dtype)

    first = weight(3 + v + units, 4 * units)
    upper = [weight(3 + v + 2 * units, 4 * units) for _ in range(layers - 1)]
    window, head = weight(units, 3 * k), weight(layers * units, 1 + 6 * m)
    # Stands in for the window's [B, U] x [B, U, V] product with the text.
    text = weight(3 * k, v)

    def body(t, x, hs):
        h = tf.tanh(tf.matmul(tf.concat([x, hs[0]], -1), first)[:, :units])  # bounded, never denormal
        new_h = [h]
        x = tf.concat([x[:, :3], tf.matmul(tf.matmul(h, window), text)], -1)
        for n, kernel in enumerate(upper, start=1):
            h = tf.tanh(tf.matmul(tf.concat([x, h, hs[n]], -1), kernel)[:, :units])
            new_h.append(h)
        out = tf.matmul(tf.concat(new_h, -1), head)
        return t + 1, tf.concat([tf.tanh(out[:, :3]), tf.tanh(x[:, 3:])], -1), new_h

    @tf.function(jit_compile=jit)
    def run():
        start = (tf.constant(0), tf.zeros([batch, 3 + v], dtype), [tf.zeros([batch, units], dtype)] * layers)
        return tf.while_loop(lambda t, *_: t < steps, body, start)[1]

    return lambda: run().numpy()


def plain_loop(model, batch: int, chars: int, steps: int):
    """`steps` steps of the export's network (its sizes, random weights: the
    time does not depend on their values) as a plain float32 `tf.while_loop`:
    a function that runs them."""
    import tensorflow as tf

    units, layers, k, m, v = _network_sizes(model)
    rng = tf.random.Generator.from_seed(0)

    def weight(*shape):
        return rng.normal(shape, stddev=0.05)

    first = weight(3 + v + units, 4 * units)
    upper = [weight(3 + v + 2 * units, 4 * units) for _ in range(layers - 1)]
    bias = weight(4 * units)
    window = weight(units, 3 * k)
    head = weight(layers * units, 1 + 6 * m)
    onehot = tf.one_hot(tf.random.stateless_uniform([batch, chars], [1, 2], 0, v, tf.int32), v)  # [B, U, V]
    positions = tf.range(chars, dtype=tf.float32)

    def lstm(z, c):
        i, f, g, o = tf.split(z, 4, -1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        return tf.sigmoid(o) * tf.tanh(c), c

    def body(t, x, hs, cs, kappa, w):
        h1, c1 = lstm(tf.matmul(tf.concat([x, w, hs[0]], -1), first) + bias, cs[0])
        alpha, beta, step = tf.split(tf.exp(tf.matmul(h1, window)), 3, -1)
        kappa = kappa + step
        phi = tf.reduce_sum(alpha[..., None] * tf.exp(-beta[..., None] * tf.square(kappa[..., None] - positions)), 1)
        w = tf.einsum("bu,buv->bv", phi, onehot)
        new_h, new_c, below = [h1], [c1], h1
        for n, kernel in enumerate(upper, start=1):
            below, c = lstm(tf.matmul(tf.concat([x, w, below, hs[n]], -1), kernel) + bias, cs[n])
            new_h.append(below)
            new_c.append(c)
        out = tf.matmul(tf.concat(new_h, -1), head)
        pen, pi, mu, sigma, rho = tf.split(out, [1, m, 2 * m, 2 * m, m], -1)
        component = tf.random.categorical(pi, 1)[:, 0]
        mu = tf.gather(tf.reshape(mu, [-1, m, 2]), component, batch_dims=1)
        sigma = tf.gather(tf.exp(tf.reshape(sigma, [-1, m, 2])), component, batch_dims=1)
        xy = mu + sigma * tf.random.normal([batch, 2])
        lift = tf.cast(tf.random.uniform([batch, 1]) < tf.sigmoid(pen), tf.float32)
        return t + 1, tf.concat([xy, lift], -1), new_h, new_c, kappa, w

    zeros = [tf.zeros([batch, units])] * layers

    @tf.function
    def run():
        return tf.while_loop(
            lambda t, *_: t < steps, body,
            (tf.constant(0), tf.zeros([batch, 3]), zeros, zeros, tf.zeros([batch, k]), tf.zeros([batch, v])),
        )[1]

    return lambda: run().numpy()


if __name__ == "__main__":
    app.run(main)
