"""`python -m hwtf.widen`: a training run's checkpoint with more units a
layer, writing exactly as before, so that a wider network trains on from
what a narrower one has learned instead of from scratch.

    python -m hwtf.widen --flagfile=flags/iamondb.cfg --train_dir=runs/iamondb \\
        --lstm_units=512 --out=runs/iamondb-512
    python -m hwtf.train --flagfile=flags/iamondb.cfg --lstm_units=512 --train_dir=runs/iamondb-512 ...

Each layer's new units get small random input and recurrent weights, their
gates the usual starting biases (forget gates open), and zero weights out of
them: into their own layer's recurrence, the layer above, the window and the
mixture head. So the widened network computes the same function as the
checkpoint it came from (its loss is the same to rounding; a test checks it),
and the new units start to matter as training moves the weights out of them
off zero (the gradient of a zero outgoing weight is the new unit's output
times the gradient arriving there, not zero). A function-preserving widening
in the manner of Net2Net (Chen, Goodfellow and Shlens, 2016), with new units
where Net2Net copies old ones. Adam's moments of the new weights start at
zero; the step, Adam's iteration count, the skipped updates and the best
validation score carry over, so the curve goes on at the same step.
`--out` gets a config.json with the new width and one checkpoint.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
from absl import app, flags, logging

from hwtf.unit_weights import reading_rows

FLAGS = flags.FLAGS

# The scale of the new units' incoming weights, against Glorot's for the
# layer: small, so that their first outputs are small too.
NEW_WEIGHT_SCALE = 0.1


def _gates(array: np.ndarray, units: int, new_units: int, fill) -> np.ndarray:
    """Widens the last axis `[..., 4H]` (gates i, f, g, o) to `[..., 4H']`:
    each gate's old columns first, then `fill(shape, gate)` for its new ones."""
    blocks = []
    for gate in range(4):
        old = array[..., gate * units : (gate + 1) * units]
        blocks += [old, fill(old.shape[:-1] + (new_units - units,), gate)]
    return np.concatenate(blocks, -1)


def _rows(array: np.ndarray, starts: list[int], units: int, new_units: int) -> np.ndarray:
    """Inserts `new_units - units` zero rows after each block of `units` rows
    that begins at one of `starts` (the rows that read an old layer's h)."""
    pieces, at = [], 0
    for start in starts:
        pieces += [array[at : start + units], np.zeros((new_units - units,) + array.shape[1:], array.dtype)]
        at = start + units
    pieces.append(array[at:])
    return np.concatenate(pieces, 0)


def widen_arrays(weights: dict, m: dict, v: dict, layers: int, units: int, new_units: int,
                 rng: np.random.Generator) -> tuple[dict, dict, dict]:
    """`stint_state.state_arrays`' weights and Adam moments of a network of
    `units` a layer, widened to `new_units`: the same function, new units
    with zero outgoing weights (see the module's docstring)."""
    if new_units < units:
        raise ValueError(f"cannot narrow a network: {units} units a layer, asked for {new_units}")
    zeros = lambda shape, gate=None: np.zeros(shape, np.float32)  # noqa: E731
    out = ({}, {}, {})
    for name in weights:
        arrays = (weights[name], m[name], v[name])
        if name.startswith(("kernel_", "recurrent_kernel_", "bias_")):
            for which, array in enumerate(arrays):
                if name.startswith("bias_"):
                    # The starting biases: forget gates open, the rest zero.
                    fill = (lambda shape, gate: np.full(shape, 1.0 if gate == 1 else 0.0, np.float32)) if which == 0 else zeros
                    out[which][name] = _gates(array, units, new_units, fill)
                    continue
                inputs = array.shape[0]
                scale = NEW_WEIGHT_SCALE * np.sqrt(6.0 / (inputs + 4 * new_units))
                fill = (lambda shape, gate: rng.uniform(-scale, scale, shape).astype(np.float32)) if which == 0 else zeros
                # Rows that read an old layer's h get new zero rows.
                starts = list(reading_rows(name, inputs, layers, units).values())
                out[which][name] = _rows(_gates(array, units, new_units, fill), starts, units, new_units)
        else:  # the window and the head read h; their biases nothing (a copy)
            for which, array in enumerate(arrays):
                starts = list(reading_rows(name, array.shape[0], layers, units).values())
                out[which][name] = _rows(array, starts, units, new_units)
    return out


def outgoing(weights: dict, layers: int, old_units: int, units: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`(old, new)`: per layer, the weights out of its first `old_units`
    units and out of the rest (`reading_rows`: into its recurrence, the
    layer above, the window and the head), each flat, in `weights`' order."""
    old, new = [[] for _ in range(layers)], [[] for _ in range(layers)]
    for name, array in weights.items():
        for n, start in reading_rows(name, array.shape[0], layers, units).items():
            old[n].append(array[start : start + old_units].ravel())
            new[n].append(array[start + old_units : start + units].ravel())
    return [np.concatenate(parts) for parts in old], [np.concatenate(parts) for parts in new]


def unit_scales(weights: dict, layers: int, old_units: int, units: int) -> list[tuple[float, float]]:
    """For a network of `units` a layer widened from `old_units`: per layer,
    the root mean square of the weights out of its first `old_units` units
    and out of the rest (`reading_rows`: into its recurrence, the layer
    above, the window and the head). The new units' start at zero and grow
    as training uses them."""
    rms = lambda x: float(np.sqrt(np.mean(np.square(x))))  # noqa: E731
    return [(rms(o), rms(n)) for o, n in zip(*outgoing(weights, layers, old_units, units))]


def widen(train_dir: str, new_units: int, out_dir: str, seed: int = 0) -> str:
    """Writes `out_dir`: `train_dir`'s latest checkpoint widened to
    `new_units` a layer, and its config.json; returns the checkpoint's path."""
    import keras
    import tensorflow as tf

    from hwtf import stint_state, train
    from hwtf.model import ModelConfig

    if os.path.exists(os.path.join(out_dir, "config.json")) or train.run_checkpoints(out_dir):
        raise app.UsageError(f"--out={out_dir} holds a run already; widen into a new folder")
    if not train.run_checkpoints(train_dir):
        raise app.UsageError(f"--train_dir={train_dir} has no checkpoint to widen")
    config_path = os.path.join(train_dir, "config.json")
    try:
        config = ModelConfig.load(config_path)
    except (OSError, ValueError, TypeError) as e:
        raise app.UsageError(f"{config_path} cannot be read ({e})") from e
    if config.model != "synthesis":
        raise app.UsageError("hwtf.widen widens the synthesis model only")
    if new_units <= config.lstm_units:
        raise app.UsageError(f"--lstm_units={new_units}: the run has {config.lstm_units} units a layer; "
                             "widening needs more")
    keras.mixed_precision.set_global_policy("float32")
    source = train.Trainer(config, tf.distribute.get_strategy(), FLAGS.optimizer, FLAGS.learning_rate, FLAGS.clipnorm)
    train.restore(source, train_dir)
    weights, m, v = stint_state.state_arrays(source)
    wide = dataclasses.replace(config, lstm_units=new_units)
    arrays = widen_arrays(weights, m, v, config.lstm_layers, config.lstm_units, new_units,
                          np.random.default_rng(seed))
    target = train.Trainer(wide, tf.distribute.get_strategy(), FLAGS.optimizer, FLAGS.learning_rate, FLAGS.clipnorm)
    stint_state.load_state(target, *arrays, int(source.optimizer.iterations.numpy()), int(source.step.numpy()),
                           int(source.skipped.numpy()))
    target.best.assign(source.best)
    os.makedirs(out_dir, exist_ok=True)
    wide.save(os.path.join(out_dir, "config.json"))
    manager = tf.train.CheckpointManager(target.checkpoint, out_dir, max_to_keep=FLAGS.keep_checkpoints)
    path = manager.save(checkpoint_number=int(source.step.numpy()))
    logging.info("widened %s (step %d, %d units a layer) to %d units a layer: %s", train_dir,
                 int(source.step.numpy()), config.lstm_units, new_units, path)
    return path


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.out:
        raise app.UsageError("--out: the new run's folder")
    # --lstm_units is the new width; the run's config.json gives the old one.
    widen(FLAGS.train_dir, FLAGS.lstm_units, FLAGS.out, FLAGS.seed)


if __name__ == "__main__":
    from hwtf import cli, train

    train.define_flags()
    flags.DEFINE_string("out", None, "The widened run's folder (new).")
    cli.run(main, "hwtf.widen", info=True)
