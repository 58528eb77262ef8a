"""`python -m hwtf.stint_state`: a training run's state as plain arrays, for a
stint on a machine without TensorFlow (`hwtf.jax_stint`), and back.

    python -m hwtf.stint_state export --flagfile=flags/iamondb.cfg --train_dir=runs/iamondb \\
        --data_dir=PATH --state=.gpu
    python -m hwtf.jax_stint --state=.gpu --out=OUT --minutes=8      # on the GPU machine
    python -m hwtf.stint_state import --flagfile=flags/iamondb.cfg --train_dir=runs/iamondb \\
        --data_dir=PATH --state=OUT --validate

`export` restores the run's latest checkpoint and writes, to `--state`:
`weights.npz` and `adam_v.npz` (the weights as float32 arrays named as
`hwtf.jax_stint.weight_names`, Adam's second moments in the same names as
8-bit codes of their logarithm, `hwtf.packed.to_log8`; the first moments do
not travel and come back as zeros; each group split into `NAME-1.npz`, ...
past 15 MiB: `jax_stint.write_state`),
`meta.json` (the model's config, the step, Adam's iteration count, the
skipped updates, the learning rate and the recipe the JAX stint follows:
batch, length buckets, clipnorm) and `data.npz.xz`, the training lines as
arrays (raw offsets, as int16 where they are whole numbers, and character
ids; IAM-OnDB's licence forbids passing them on: they go to the lent machine
and nowhere else, and the folder must not be committed). It refuses a recipe
the JAX stint does not follow (another optimizer, a learning-rate schedule,
scheduled sampling). `import` reads such a folder back, after the JAX stint
trained it on, and saves it as the run's next checkpoint, with the stint's
logged losses and a host note in the run's TensorBoard events; where the
run keeps a moving average of the weights (`--ema_decay`), the run's own
stays behind and the stint's (begun at the weights it was given) replaces
it;
`--validate` also scores it on the validation split, as `hwtf.train` does.
Everything is read with `allow_pickle=False`.
"""

from __future__ import annotations

import io
import json
import lzma
import os

import numpy as np
from absl import app, flags, logging

from hwtf import jax_stint

FLAGS = flags.FLAGS


def _slots(optimizer, variable):
    """Keras Adam's first and second moments of `variable`."""
    index = optimizer._get_variable_index(variable)
    return optimizer._momentums[index], optimizer._velocities[index]


def state_arrays(trainer) -> tuple[dict, dict, dict]:
    """`(weights, m, v)`: float32 numpy arrays by weight name."""
    from hwtf.model import named_weights

    weights, m, v = {}, {}, {}
    for name, variable in named_weights(trainer.model).items():
        first, second = _slots(trainer.optimizer, variable)
        weights[name] = variable.numpy().astype(np.float32)
        m[name], v[name] = first.numpy().astype(np.float32), second.numpy().astype(np.float32)
    return weights, m, v


def _assign(target, source: dict, name: str, what: str) -> None:
    """`target` (a variable) takes `source[name]`, refused (ValueError,
    naming `what` and `name`) where it is missing, of another shape or not
    finite."""
    if name not in source:
        raise ValueError(f"{what}: no {name}")
    if tuple(source[name].shape) != tuple(target.shape):
        raise ValueError(f"{what}: {name} is {tuple(source[name].shape)}; the model's is {tuple(target.shape)}")
    if not np.all(np.isfinite(source[name])):
        raise ValueError(f"{what}: {name} is not finite")
    target.assign(source[name])


def load_state(trainer, weights: dict, m: dict, v: dict, iterations: int, step: int, skipped: int) -> None:
    """Assigns arrays from `state_arrays` (or a JAX stint) to the trainer."""
    from hwtf.model import named_weights

    for name, variable in named_weights(trainer.model).items():
        first, second = _slots(trainer.optimizer, variable)
        for target, source, what in ((variable, weights, "the weights"), (first, m, "Adam's m"),
                                     (second, v, "Adam's v")):
            _assign(target, source, name, what)
    trainer.optimizer.iterations.assign(iterations)
    trainer.step.assign(step)
    trainer.skipped.assign(skipped)


def load_average(trainer, average: dict | None, updates: int) -> None:
    """The trainer's moving average of the weights becomes a stint's
    (`average` by weight name, taken over `updates` updates), or starts
    afresh at the weights where the stint brought none back."""
    from hwtf.model import named_weights

    if average is None:
        trainer.reset_ema()
        logging.info("the stint brought no moving average of the weights back; it starts at the weights")
        return
    for name, variable in named_weights(trainer.ema_model).items():
        _assign(variable, average, name, "the moving average")
    trainer.ema_updates.assign(updates)
    logging.info("the weights' moving average: the stint's, over %d updates", updates)


def data_arrays(train_set, alphabet, max_length: int | None) -> dict:
    """The training lines as `hwtf.jax_stint.Batches` reads them: raw
    offsets, `lengths`, `chars` (ids, flat) and `char_lengths`, lines longer
    than `max_length` left out (as `make_dataset` does). The offsets of the
    lines whose offsets are whole numbers (IAM-OnDB's) are `offsets`, int16,
    and the others' (the synthetic capitals') `offsets_float`, float32, both
    `[3, points]`, with `whole` marking which lines are which
    (`jax_stint.line_offsets`): 14.0 MB against 16.0 MB for all of them as
    float32 `[points, 3]`, once compressed, for the campaign's lines."""
    keep = [i for i, o in enumerate(train_set.offsets) if not max_length or len(o) <= max_length]
    if not keep:
        raise ValueError(f"no training line is at most {max_length} points long")
    lines = [np.asarray(train_set.offsets[i], np.float32) for i in keep]
    whole = np.array([np.all(o == np.round(o)) and np.all(np.abs(o) < 2**15) for o in lines], bool)
    chars = [alphabet.encode(train_set.texts[i]) for i in keep]
    # Column by column ([3, points]): dx, dy and pen-up each compress better alone.
    concat = lambda arrays, dtype: np.ascontiguousarray(
        (np.concatenate(arrays) if arrays else np.zeros((0, 3))).astype(dtype).T)
    return {
        "offsets": concat([o for o, w in zip(lines, whole) if w], np.int16),
        "offsets_float": concat([o for o, w in zip(lines, whole) if not w], np.float32),
        "whole": whole,
        "lengths": np.array([len(o) for o in lines], np.int32),
        "chars": np.concatenate(chars).astype(np.uint8 if len(alphabet) < 256 else np.int32),
        "char_lengths": np.array([len(c) for c in chars], np.int32),
    }


def write_data(path: str, arrays: dict) -> None:
    """An xz-compressed `.npz` (a third smaller than numpy's own zip)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(lzma.compress(buffer.getvalue(), preset=6))
    os.replace(tmp, path)


def _check_recipe() -> None:
    """The JAX stint is `hwtf.train`'s update for this recipe only."""
    problems = []
    if FLAGS.model != "synthesis":
        problems.append(f"--model={FLAGS.model} (it trains synthesis)")
    if FLAGS.optimizer != "adam":
        problems.append(f"--optimizer={FLAGS.optimizer} (it applies Adam)")
    if FLAGS.lr_schedule != "constant":
        problems.append(f"--lr_schedule={FLAGS.lr_schedule} (it keeps the rate constant)")
    if FLAGS.teacher_forcing != "constant" or FLAGS.teacher_forcing_floor != 1.0:
        problems.append("scheduled sampling (it trains under pure teacher forcing: "
                        "--teacher_forcing=constant --teacher_forcing_floor=1)")
    if FLAGS.chunk_length:
        problems.append(f"--chunk_length={FLAGS.chunk_length} (it trains whole lines)")
    if problems:
        raise app.UsageError("the JAX stint cannot follow this run's recipe: " + "; ".join(problems))


def _trainer():
    """The run's config, a float32 `Trainer` restored from its latest
    checkpoint, and its checkpoint managers."""
    import keras
    import tensorflow as tf

    from hwtf import train

    keras.mixed_precision.set_global_policy("float32")
    train_set, valid_set = train.load_data()
    if not train.run_checkpoints(FLAGS.train_dir):
        raise app.UsageError(f"--train_dir={FLAGS.train_dir} has no checkpoint to export or to continue")
    config = train.resolve_config(train_set, write=False)
    trainer = train.Trainer(config, tf.distribute.get_strategy(), FLAGS.optimizer, FLAGS.learning_rate, FLAGS.clipnorm,
                            ema_decay=FLAGS.ema_decay)
    managers = train.restore(trainer, FLAGS.train_dir)
    return config, trainer, managers, train_set, valid_set


def export_state(state_dir: str) -> dict:
    from hwtf import train

    _check_recipe()
    if FLAGS.ema_decay:
        logging.info("--ema_decay=%g: the run's moving average stays here; the JAX stint starts one afresh at "
                     "the weights and brings it back", FLAGS.ema_decay)
    config, trainer, _, train_set, _ = _trainer()
    weights, m, v = state_arrays(trainer)
    meta = {
        "config": json.loads(config.to_json()),
        "step": int(trainer.step.numpy()),
        "recipe": {"batch_size": FLAGS.batch_size, "length_buckets": FLAGS.length_buckets,
                   "clipnorm": FLAGS.clipnorm, "weight_noise": FLAGS.weight_noise, "max_length": FLAGS.max_length,
                   "capitals_repeat": FLAGS.capitals_repeat, "synthetic_capitals": FLAGS.synthetic_capitals,
                   "synthetic_capitals_text": FLAGS.synthetic_capitals_text,
                   "new_units_from": FLAGS.new_units_from, "new_units_rate": FLAGS.new_units_rate,
                   "ema_decay": FLAGS.ema_decay},
        "log": [],
    }
    state = {"params": weights, "m": m, "v": v, "iterations": int(trainer.optimizer.iterations.numpy()),
             "skipped": int(trainer.skipped.numpy()), "learning_rate": float(trainer.optimizer.learning_rate.numpy())}
    jax_stint.write_state(state_dir, state, meta)
    data = data_arrays(train.epoch_lines(train_set, FLAGS.capitals_repeat, FLAGS.synthetic_capitals,
                                         config.alphabet_lib, FLAGS.synthetic_capitals_text),
                       config.alphabet_lib, FLAGS.max_length)
    write_data(os.path.join(state_dir, jax_stint.DATA), data)
    logging.info("exported step %d and %d training lines to %s", meta["step"], len(data["lengths"]), state_dir)
    return meta


def import_state(state_dir: str, validate: bool = False) -> int:
    import tensorflow as tf

    from hwtf import summaries, train

    try:
        weights, m, v, meta = jax_stint.read_arrays(state_dir)
    except (OSError, KeyError, ValueError) as e:  # JSONDecodeError is a ValueError
        raise app.UsageError(f"--state={state_dir}: cannot read the stint's state ({e})") from e
    config, trainer, (manager, best_manager), _, valid_set = _trainer()
    if meta["config"] != json.loads(config.to_json()):
        raise app.UsageError(f"--state={state_dir} holds another model than {FLAGS.train_dir}'s config.json")
    start = int(trainer.step.numpy())
    if meta["step"] <= start:
        raise app.UsageError(f"--state={state_dir} is of step {meta['step']}; {FLAGS.train_dir} is already at "
                             f"step {start}")
    first = meta["log"][0]["step"] if meta["log"] else meta["step"]
    try:
        average = jax_stint.read_average(state_dir, meta, weights)
        load_state(trainer, weights, m, v, meta["iterations"], meta["step"], meta["skipped"])
        if trainer.ema_model is not None:
            load_average(trainer, average, meta.get("average_updates", 0))
        elif average is not None:
            logging.info("--ema_decay=0: the stint's moving average of the weights is left out")
    except (OSError, ValueError) as e:
        raise app.UsageError(f"--state={state_dir}: {e}") from e
    writer = tf.summary.create_file_writer(os.path.join(FLAGS.train_dir, "tensorboard"))
    with writer.as_default():
        # The stint began where the run's checkpoint was: its first logged
        # interval counts from there (summaries.training_hours).
        summaries.text(summaries.NOTES + "host", f"{meta.get('device', 'unknown device')} (hwtf.jax_stint), "
                       "float32", min(start, first))
        for entry in meta["log"]:
            step = entry["step"]
            for key in ("loss", "offset_nll", "pen_nll", "grad_norm", "steps_per_sec"):
                summaries.scalar(key, entry[key], step)
            summaries.scalar("skipped_updates", entry["skipped"], step)
            summaries.scalar("learning_rate", meta["learning_rate"], step)
            summaries.scalar("teacher_forcing", 1.0, step)
        if validate:  # as hwtf.train validates
            trainer.validate(train.validation_dataset(config, valid_set), meta["step"], writer, best_manager)
    writer.close()
    path = manager.save(checkpoint_number=meta["step"])
    logging.info("saved step %d (from step %d, %d steps on %s) as %s", meta["step"], start,
                 meta["step"] - start, meta.get("device"), path)
    return meta["step"]


def main(argv):
    if len(argv) != 2 or argv[1] not in ("export", "import"):
        raise app.UsageError("usage: python -m hwtf.stint_state export|import --flagfile=... --state=DIR")
    if not FLAGS.state:
        raise app.UsageError("--state: the folder to write (export) or read (import)")
    from hwtf import cli

    FLAGS.dataset = cli.dataset_flag()
    if argv[1] == "export":
        export_state(FLAGS.state)
    else:
        import_state(FLAGS.state, FLAGS.validate)


if __name__ == "__main__":
    from hwtf import cli, train

    train.define_flags()
    flags.DEFINE_string("state", None, "The state's folder: written by export, read by import.")
    flags.DEFINE_bool("validate", False, "import: score the imported state on the validation split too.")
    cli.run(main, "hwtf.stint_state", info=True)
