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

Then the forward pass of a whole three-layer stack with Graves's skip
connections (gates and a stand-in window included), two ways:

- `forward_layered`: as training runs it, one loop per layer, layers 2 and 3
  reading the layer below through one large product outside their loop;
- `forward_layered_xla_gates`: the same with each step's gate arithmetic one
  XLA-compiled function (`jit_compile=True`; the products stay oneDNN's);
- `forward_wavefront`: one loop of T + 2 steps, layer n at time t - n + 1,
  each layer's product taking `[x, w, h_below, h]` inside the loop.

Prints one JSON object: per layout the microseconds per layer-step and the
GFLOP/s, and per forward pass its milliseconds (best of `--repeats`), beside
a 4096^2 float32 matmul's GFLOP/s.
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
    v = 82  # window width: IAM-OnDB's alphabet and two extra symbols
    first = tf.Variable(tf.random.stateless_normal([v + h, 4 * h], [3, 0]) * 0.05)  # [w, h] of layer 1
    below = [tf.Variable(tf.random.stateless_normal([3 + v + h, 4 * h], [4 + n, 0]) * 0.05) for n in range(2)]
    both = [tf.Variable(tf.concat([k.read_value(), r.read_value()], 0)) for k, r in zip(below, kernels[1:])]
    x = tf.random.stateless_normal([steps, b, 3], [8, 0])
    zeros, w0 = tf.zeros([b, h]), tf.zeros([b, v])

    def cell(z, c):
        i, f, g, o = tf.split(z, 4, -1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        return tf.sigmoid(o) * tf.tanh(c), c

    window = lambda hh: tf.nn.softmax(hh[:, :v])  # the window's cost, roughly: a [B, V] function of h

    xla_cell = tf.function(cell, jit_compile=True)

    def layered(cell):
        return tf.function(lambda x: forward_layered(x, cell))

    def forward_layered(x, cell):
        def first_body(t, hh, c, w, hs, ws):
            hh, c = cell(tf.matmul(tf.concat([w, hh], -1), first), c)
            w = window(hh)
            return t + 1, hh, c, w, hs.write(t, hh), ws.write(t, w)

        arrays = (tf.TensorArray(tf.float32, steps), tf.TensorArray(tf.float32, steps))
        *_, hs, ws = tf.while_loop(lambda t, *_: t < steps, first_body, (0, zeros, zeros, w0, *arrays))
        hs, ws = hs.stack(), ws.stack()
        for kernel, recurrent in zip(below, kernels[1:]):
            proj = tf.einsum("tbi,ij->tbj", tf.concat([x, ws, hs], -1), kernel)

            def body(t, hh, c, out, proj=proj, recurrent=recurrent):
                hh, c = cell(proj[t] + tf.matmul(hh, recurrent), c)
                return t + 1, hh, c, out.write(t, hh)

            *_, out = tf.while_loop(lambda t, *_: t < steps, body, (0, zeros, zeros, tf.TensorArray(tf.float32, steps)))
            hs = out.stack()
        return hs

    @tf.function
    def forward_wavefront(x):
        def body(t, h1, c1, w1, h2, c2, w2, h3, c3, out):
            # Layer 3 at t - 2 reads layer 2's h and the window of t - 2 (w2,
            # delayed one step more), layer 2 at t - 1 reads layer 1's h and w.
            at = lambda s: x[tf.clip_by_value(s, 0, steps - 1)]
            n3, d3 = cell(tf.matmul(tf.concat([at(t - 2), w2, h2, h3], -1), both[1]), c3)
            n2, d2 = cell(tf.matmul(tf.concat([at(t - 1), w1, h1, h2], -1), both[0]), c2)
            n1, d1 = cell(tf.matmul(tf.concat([w1, h1], -1), first), c1)
            # Layers 2 and 3 start one and two steps late, from zero states.
            late = lambda n, new, old: tf.where(t >= n, new, old)
            n2, d2, n3, d3 = late(1, n2, h2), late(1, d2, c2), late(2, n3, h3), late(2, d3, c3)
            return t + 1, n1, d1, window(n1), n2, d2, w1, n3, d3, out.write(t, n3)

        state = (0, zeros, zeros, w0, zeros, zeros, w0, zeros, zeros, tf.TensorArray(tf.float32, steps + 2))
        return tf.while_loop(lambda t, *_: t < steps + 2, body, state)[-1].stack()[2:]

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
    forwards = {
        "forward_layered": layered(cell),
        "forward_layered_xla_gates": layered(xla_cell),
        "forward_wavefront": forward_wavefront,
    }
    # The three forward passes compute the same thing.
    want = forwards["forward_layered"](x)
    for name, f in forwards.items():
        gap = float(tf.reduce_max(tf.abs(f(x) - want)))
        assert gap < 1e-4, f"{name}'s outputs differ from forward_layered's by {gap}"
        result[name] = {"ms": round(best_seconds(f, x, FLAGS.repeats) * 1e3, 1)}
    big = tf.random.stateless_normal([4096, 4096], [1, 0])
    seconds = best_seconds(tf.function(lambda x: tf.matmul(x, x)), big, 3)
    result["matmul_4096_gflops"] = round(2 * 4096**3 / seconds / 1e9, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)
