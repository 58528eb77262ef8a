"""Seconds per training step at Graves size, fp32 and mixed bfloat16.

    python benchmarks/train_step.py [--timed_steps=3] [--batch=32] [--length=600]
    python benchmarks/train_step.py --profile   # also where the time goes
    python benchmarks/train_step.py --ema_decays=0,0.998   # with a moving average of the weights
    python benchmarks/train_step.py --weight_noises=0,0.075   # with Gaussian weight noise
    python benchmarks/train_step.py --units=640 --new_units_rates=1,10   # new units past 512 at 10x the rate

Prints one JSON object: per precision the median seconds per step (after a
warm-up step that traces), the achieved GFLOP/s (matmul FLOPs of the forward
and backward passes), and for scale a 4096^3 matmul's GFLOP/s in each dtype.
`--profile` adds, per precision, one more step under the TensorFlow profiler:
the number of TensorFlow ops it ran, their summed time, and the op types that
took the most time (milliseconds, share of the summed op time, count).
"""

from __future__ import annotations

import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

flags.DEFINE_integer("timed_steps", 3, "Timed steps per precision.")
flags.DEFINE_integer("batch", 32, "Lines per batch.")
flags.DEFINE_integer("length", 600, "Points per line.")
flags.DEFINE_integer("chars", 40, "Characters per line.")
flags.DEFINE_integer("alphabet", 80, "Alphabet size (IAM-OnDB has about 80 characters).")
flags.DEFINE_integer("units", 400, "LSTM units (Graves: 400).")
flags.DEFINE_integer("layers", 3, "LSTM layers (Graves: 3).")
flags.DEFINE_list("precisions", ["float32", "mixed_bfloat16"], "Precisions to time.")
flags.DEFINE_list("gradients", ["handwritten"],
                  "How the recurrences are differentiated: handwritten, autodiff, or both (each timed).")
flags.DEFINE_list("layouts", ["layered"], "How the recurrences are laid out: layered, wavefront, or both.")
flags.DEFINE_list("ema_decays", ["0"], "Moving averages of the weights to keep (hwtf.train --ema_decay; 0 = none), "
                  "each timed.")
flags.DEFINE_list("weight_noises", ["0"], "Weight noise standard deviations (hwtf.train --weight_noise; 0 = none), "
                  "each timed.")
flags.DEFINE_list("new_units_rates", ["1"], "Multiples of the rate for the units past --new_units_from "
                  "(hwtf.train --new_units_rate; 1 = none), each timed.")
flags.DEFINE_integer("new_units_from", 512, "With --new_units_rates: the units a layer before the widening.")
flags.DEFINE_bool("profile", False, "Also profile one step per precision: time by op type.")
flags.DEFINE_integer("profile_top", 12, "Op types to list with --profile.")
flags.DEFINE_float("teacher_forcing_p", 1.0, "Teacher-forcing probability (< 1 adds a forward pass).")
FLAGS = flags.FLAGS


def matmul_flops(config, batch, length) -> float:
    """Matmul FLOPs of one training step (forward + backward = 3x forward)."""
    h, layers, v = config.lstm_units, config.lstm_layers, len(config.alphabet) + 2
    per_step = 0
    for n in range(layers):
        inputs = 3 + v + (h if n else 0)
        per_step += 2 * (inputs + h) * 4 * h
    per_step += 2 * h * 3 * config.window_mixtures  # window parameters
    per_step += 2 * h * layers * (1 + 6 * config.mixtures)  # head
    return 3.0 * per_step * batch * length


def matmul_gflops(dtype, n=4096, repeats=5) -> float:
    import tensorflow as tf

    a = tf.random.normal([n, n], dtype=tf.float32)
    a = tf.cast(a, dtype)
    f = tf.function(lambda x: tf.matmul(x, x))
    f(a).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f(a).numpy()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def profile_ops(run, top: int) -> dict:
    """Runs `run()` under the TensorFlow profiler; op time by op type."""
    import collections
    import glob
    import shutil
    import tempfile

    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    logdir = tempfile.mkdtemp()
    try:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        run()
        wall = time.perf_counter() - start
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        with open(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)[0], "rb") as f:
            space.ParseFromString(f.read())
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
    total, count = collections.Counter(), collections.Counter()
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name or "::" in name or " " in name:  # executor bookkeeping, not an op
                    continue
                op_type = name.rsplit(":", 1)[1]
                total[op_type] += event.duration_ps / 1e9  # ms
                count[op_type] += 1
    op_ms = sum(total.values())
    return {
        "wall_seconds": round(wall, 3),
        "ops": sum(count.values()),
        "op_seconds": round(op_ms / 1e3, 3),
        "mean_op_us": round(1e3 * op_ms / max(sum(count.values()), 1), 1),
        "top": {
            k: [round(v, 1), round(v / op_ms, 3), count[k]] for k, v in total.most_common(top)
        },
    }


def main(argv):
    del argv
    import keras
    import numpy as np
    import tensorflow as tf

    from hwtf.model import ModelConfig
    from hwtf.train import Trainer

    rng = np.random.default_rng(0)
    alphabet = "".join(chr(33 + i) for i in range(FLAGS.alphabet - 2))
    b, t, u = FLAGS.batch, FLAGS.length, FLAGS.chars
    offsets = rng.normal(size=(b, t, 3)).astype(np.float32)
    offsets[..., 2] = rng.random((b, t)) < 0.05
    batch = {
        "offsets": tf.constant(offsets),
        "lengths": tf.fill([b], t),
        "chars": tf.constant(rng.integers(2, FLAGS.alphabet, (b, u)), tf.int32),
        "char_lengths": tf.fill([b], u),
    }
    config = ModelConfig(
        lstm_units=FLAGS.units, lstm_layers=FLAGS.layers, window_mixtures=10, mixtures=20, alphabet=alphabet
    )
    flops = matmul_flops(config, b, t)
    result = {
        "benchmark": "train_step",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "tensorflow": tf.__version__,
        "batch_size": b, "length": t, "chars": u, "teacher_forcing": FLAGS.teacher_forcing_p,
        "model": f"{FLAGS.layers}x{FLAGS.units} LSTM, K=10, M=20",
        "gflop_per_step": round(flops / 1e9, 1),
    }
    runs = [(p, g, lay, e, w, r) for p in FLAGS.precisions for g in FLAGS.gradients for lay in FLAGS.layouts
            for e in FLAGS.ema_decays for w in FLAGS.weight_noises for r in FLAGS.new_units_rates]
    for precision, gradients, layout, ema, noise, rate in runs:
        keras.mixed_precision.set_global_policy(precision)
        keras.utils.set_random_seed(0)
        trainer = Trainer(config, tf.distribute.get_strategy(), "adam", 1e-4, clipnorm=10.0,
                          gradients=gradients, layout=layout, ema_decay=float(ema), weight_noise=float(noise),
                          new_units_from=FLAGS.new_units_from if float(rate) != 1.0 else 0,
                          new_units_rate=float(rate))
        start = time.perf_counter()
        trainer.train(batch, FLAGS.teacher_forcing_p, seed=0)
        warmup = time.perf_counter() - start
        times = []
        for _ in range(FLAGS.timed_steps):
            start = time.perf_counter()
            out = trainer.train(batch, FLAGS.teacher_forcing_p, seed=0)
            float(out["loss"])
            times.append(time.perf_counter() - start)
        seconds = float(np.median(times))
        # Named by precision, and by gradients, layout, average, noise and new units' rate where they are not
        # the defaults alone.
        chosen = ((gradients, FLAGS.gradients, ["handwritten"]), (layout, FLAGS.layouts, ["layered"]),
                  (f"ema_decay={ema}", FLAGS.ema_decays, ["0"]), (f"weight_noise={noise}", FLAGS.weight_noises, ["0"]),
                  (f"new_units_rate={rate}", FLAGS.new_units_rates, ["1"]))
        name = "/".join([precision] + [x for x, asked, default in chosen if asked != default])
        result[name] = {
            "seconds_per_step": round(seconds, 3),
            "first_step_seconds": round(warmup, 1),
            "gflops": round(flops / seconds / 1e9, 1),
            "loss": round(float(out["loss"]), 4),
        }
        if FLAGS.profile:
            result[name]["profile"] = profile_ops(
                lambda: float(trainer.train(batch, FLAGS.teacher_forcing_p, seed=0)["loss"]), FLAGS.profile_top
            )
    keras.mixed_precision.set_global_policy("float32")
    result["matmul_4096_gflops"] = {
        "float32": round(matmul_gflops(tf.float32), 1),
        "bfloat16": round(matmul_gflops(tf.bfloat16), 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)
