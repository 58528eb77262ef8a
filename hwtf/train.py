"""`python -m hwtf.train`: trains a handwriting model.

    python -m hwtf.train --flagfile=flags/quickstart.cfg
    python -m hwtf.train --dataset=iamondb --data_dir=PATH --mixtures=20

A custom loop: a `tf.function` step with `tf.GradientTape`, the global
gradient norm clipped to `--clipnorm`, updates with a non-finite loss or
gradient skipped (and counted), Gaussian weight noise (`--weight_noise`),
scheduled sampling fed from a schedule,
validation every `--eval_every` steps keeping the best checkpoint, under a
`tf.distribute` strategy. A run started on an existing `--train_dir` resumes
where it stopped, with the same data order. At the end the model is exported.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import time

from absl import app, flags, logging

from hwtf import precision as precision_lib

FLAGS = flags.FLAGS

def define_flags() -> None:
    """The command's flags; defined when it runs, not on import (as every
    hwtf command does), so that `Trainer` and the other library parts can be
    imported beside other commands' flags."""
    from hwtf.data.synthetic import CAPITALS_TEXTS

    # Model.
    flags.DEFINE_enum("model", "synthesis", ["synthesis", "prediction"], "Text-conditioned or unconditional.")
    flags.DEFINE_integer("lstm_units", 400, "Units per LSTM layer (Graves: 400).")
    flags.DEFINE_integer("lstm_layers", 3, "Number of LSTM layers (Graves: 3).")
    flags.DEFINE_integer("window_mixtures", 10, "Gaussians in the soft window, K (Graves: 10).")
    flags.DEFINE_integer("mixtures", 20, "Bivariate Gaussians in the output mixture, M (Graves: 20).")
    flags.DEFINE_enum("precision", "auto", list(precision_lib.PRECISIONS),
                      "Keras dtype policy; auto: mixed_bfloat16 on a GPU or a CPU with native bfloat16 "
                      "(AMX, AVX-512 BF16), else float32 (emulated bfloat16 trains 7x slower).")
    flags.DEFINE_enum("layout", "layered", ["layered", "wavefront"],
                      "How the recurrence runs: one loop per layer, or all layers in one loop (a synthesis model of "
                      "2 or more layers; the same weights and gradients). Which is faster depends on the host: "
                      "README, Speed.")
    # Data.
    flags.DEFINE_enum("dataset", "synthetic", ["synthetic", "iamondb"], "Embedded synthetic set or IAM-OnDB.")
    flags.DEFINE_string("data_dir", None, "IAM-OnDB folder or archive (for --dataset=iamondb).")
    flags.DEFINE_list("train_splits", None, "Training splits (default: trainset,testset_t,testset_f or train).")
    flags.DEFINE_string("valid_split", None, "Validation split (default: testset_v or valid).")
    flags.DEFINE_integer("synthetic_lines", None, "Lines per synthetic split (default: the set's own).")
    flags.DEFINE_string("cache_dir", None, "Preprocessed-data cache (default ~/.cache/hwtf; '' = off).")
    flags.DEFINE_integer("max_length", 1200, "Drop training lines longer than this many points.")
    flags.DEFINE_integer("length_buckets", 16, "Batch training lines of similar length, in this many buckets at "
                         "quantiles of the lengths (a batch costs its longest line; 1 = no bucketing). The data "
                         "order depends on it: a run resumed with another count goes on in another order.")
    flags.DEFINE_integer("chunk_length", None, "Cut lines into chunks of this many points (prediction).")
    flags.DEFINE_integer("capitals_repeat", 1, "Train on each line with two or more capitals in a row (\"BBC\", "
                         "\"SCALE WAR\") this many times an epoch (1 = once, like every other line).")
    flags.DEFINE_integer("synthetic_capitals", 0, "Add this many synthetic lines in capitals to each epoch "
                         "(Hershey print fonts, hwtf.data.synthetic.capitals; the same lines every run): IAM-OnDB's "
                         "training lines hold 8 lines in capitals and 196 capital Es.")
    flags.DEFINE_enum("synthetic_capitals_text", "sentences", list(CAPITALS_TEXTS),
                      "What --synthetic_capitals writes: the synthetic sentences upper-cased, or words drawn letter by "
                      "letter so that X, Z, Q and J are as common a reason for a word as E (the sentences have "
                      "25 Xs and 3,622 Es in 1,000 lines).")
    flags.DEFINE_integer("alphabet_min_count", 1, "Characters rarer than this in training map to unknown.")
    # Optimisation.
    flags.DEFINE_integer("batch_size", 32, "Lines per batch (over all replicas).")
    flags.DEFINE_enum("optimizer", "adam", ["adam", "rmsprop_graves"], "Adam, or Graves's centred RMSProp with momentum (eqs. 38-41).")
    flags.DEFINE_float("learning_rate", 1e-3, "Initial learning rate (Graves's RMSProp: 1e-4).")
    flags.DEFINE_enum("lr_schedule", "constant", ["constant", "exponential", "cosine"], "Learning-rate schedule.")
    flags.DEFINE_integer("lr_decay_steps", 1000, "Exponential schedule: steps per decay by --lr_decay_rate.")
    flags.DEFINE_float("lr_decay_rate", 0.5, "Exponential schedule: factor per --lr_decay_steps.")
    flags.DEFINE_float("clipnorm", 10.0, "Clip the global gradient norm to this (0 = off).")
    flags.DEFINE_float("ema_decay", 0.0, "Keep an exponential moving average of the weights with this decay a "
                       "step (Polyak averaging; 0.998 averages over about the last 500 steps), and validate, "
                       "keep as best and export it instead of the weights themselves (0 = off).")
    flags.DEFINE_float("weight_noise", 0.0, "Add zero-mean Gaussian noise of this standard deviation to every weight "
                       "for each update's gradient, drawn anew each step (Graves 2013's fixed weight noise, "
                       "a regulariser; the update itself applies to the weights without it; 0 = off). A trained "
                       "3x512 model loses 7 nats a line at 0.001, 510 at 0.01 (docs/weight_noise_sensitivity.py).")
    flags.DEFINE_integer("new_units_from", 0, "With --new_units_rate: the units a layer the run had before it was "
                         "widened (python -m hwtf.widen); the units past them are the new ones (0 = none).")
    flags.DEFINE_float("new_units_rate", 1.0, "Multiply every update of the new units' weights (their gates' and those "
                       "out of them) by this: a widening's new units start with zero weights out of them, and Adam "
                       "moves a weight by about the learning rate an update at most.")
    flags.DEFINE_enum("teacher_forcing", "constant", ["constant", "linear", "exponential", "inverse_sigmoid"], "Scheduled-sampling schedule of the teacher-forcing probability.")
    flags.DEFINE_float("teacher_forcing_floor", 1.0, "Probability the schedule decays to (constant: the value).")
    flags.DEFINE_integer("teacher_forcing_steps", 10000, "Steps over which the schedule decays from 1 to the floor.")
    flags.DEFINE_integer("steps", 10000, "Training steps in all (a resumed run counts those done).")
    flags.DEFINE_float("time_limit", 0, "Minutes of training after which the step reached is the last (validated, "
                       "checkpointed and exported as at --steps): a stint of known length; 0 = none.")
    flags.DEFINE_integer("seed", 0, "Seed for initialisation, data order and sampling.")
    # Bookkeeping.
    flags.DEFINE_string("train_dir", "runs/default", "Checkpoints, config.json and TensorBoard events.")
    flags.DEFINE_string("export_dir", None, "Where to export the SavedModel (default: <train_dir>/export; '' = no export).")
    flags.DEFINE_integer("eval_every", 500, "Validate every this many steps (and at the end).")
    flags.DEFINE_integer("eval_lines", 256, "Validation lines per evaluation (0 = all).")
    flags.DEFINE_integer("log_every", 20, "Log and write scalars every this many steps.")
    flags.DEFINE_integer("checkpoint_every", 200, "Checkpoint every this many steps (and at the end).")
    flags.DEFINE_integer("image_every", 500, "Write a sampled line and its attention to TensorBoard every this many steps (0 = never).")
    flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints kept.")
    flags.DEFINE_enum("strategy", "auto", ["auto", "default", "mirrored", "multi_worker"],
                      "auto: MirroredStrategy when several GPUs are present; multi_worker: "
                      "MultiWorkerMirroredStrategy across the machines TF_CONFIG names.")
    flags.DEFINE_integer("cpu_devices", 1, "Split the CPU into this many logical devices (to exercise MirroredStrategy without GPUs).")


def teacher_forcing_probability(kind: str, step: int, floor: float, steps: int) -> float:
    """The scheduled-sampling probability of feeding the true offset at `step`.

    `constant` is `floor` throughout (1 = pure teacher forcing); the others
    decay from 1 at step 0 to `floor` at `steps`: linearly, exponentially (1%
    of the way left at `steps`), or along an inverse sigmoid (Bengio et al.
    2015) centred at `steps / 2`.
    """
    if kind == "constant":
        return floor
    progress = min(max(step / max(steps, 1), 0.0), 1.0)
    if kind == "linear":
        left = 1.0 - progress
    elif kind == "exponential":
        left = 0.01**progress
    elif kind == "inverse_sigmoid":
        left = 1.0 / (1.0 + math.exp(12.0 * progress - 6.0))
    else:
        raise ValueError(f"unknown teacher-forcing schedule {kind!r}")
    return floor + (1.0 - floor) * left


def _default_splits(dataset: str):
    if dataset == "iamondb":  # Graves (2013), section 4
        return ["trainset", "testset_t", "testset_f"], "testset_v"
    return ["train"], "valid"


def make_strategy(kind: str, cpu_devices: int):
    import tensorflow as tf

    if cpu_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_devices
        )
    if kind == "multi_worker":
        return make_multi_worker_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    if kind == "mirrored" or (kind == "auto" and len(gpus) > 1):
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        logging.info("MirroredStrategy on %s", ", ".join(devices))
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def check_tf_config() -> tuple[dict, dict]:
    """Refuses a missing or broken `TF_CONFIG` (`{"cluster": {"worker":
    ["host:port", ...]}, "task": {"type": "worker", "index": i}}`) for
    `--strategy=multi_worker`, naming it rather than hanging or training alone;
    gives its cluster and task."""
    import json

    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise app.UsageError("--strategy=multi_worker needs TF_CONFIG naming the cluster and this task "
                             '(e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                             '"task": {"type": "worker", "index": 0}})')
    try:
        tf_config = json.loads(raw)
        cluster, task = tf_config["cluster"], tf_config["task"]
        members = cluster[task["type"]]
        if not 0 <= int(task["index"]) < len(members):
            raise ValueError(f"task index {task['index']} is not among the {len(members)} {task['type']} tasks")
    except (ValueError, KeyError, TypeError) as e:
        raise app.UsageError(f"TF_CONFIG is not a cluster and task description ({e}): {raw[:200]}") from e
    return cluster, task


def make_multi_worker_strategy():
    """MultiWorkerMirroredStrategy from the `TF_CONFIG` environment variable,
    checked first (`check_tf_config`)."""
    import json

    import tensorflow as tf

    cluster, task = check_tf_config()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    logging.info("MultiWorkerMirroredStrategy: %s %d of %s, %d replica(s) in all",
                 task["type"], int(task["index"]), json.dumps(cluster), strategy.num_replicas_in_sync)
    return strategy


def is_chief(strategy) -> bool:
    """Whether this process writes the run's files: always, except the
    non-chief workers of a multi-worker run (which take part in every step,
    validation and checkpoint, but write those to a scratch folder)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


# A run whose updates are skipped this many times in a row (non-finite loss or
# gradient) has diverged or is broken: it stops, saving and exporting nothing.
MAX_SKIPPED_IN_A_ROW = 20

SUM_KEYS = ("nll_sum", "offset_sum", "pen_sum", "points", "lines")


# Folded into a step's seed for its weight noise, apart from the seeds its
# sampling (scheduled sampling) draws from.
WEIGHT_NOISE_SALT = 0x776E


def weight_noises(variables, stddev: float, seed):
    """The weight noise of the step whose seed is `seed` (`[run seed, step]`):
    a zero-mean Gaussian of standard deviation `stddev` for each variable,
    the same wherever it is drawn again from the same seed."""
    import tensorflow as tf

    base = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), WEIGHT_NOISE_SALT)
    return [
        tf.random.stateless_normal(v.shape, tf.random.experimental.stateless_fold_in(base, i), stddev=stddev,
                                   dtype=tf.as_dtype(v.dtype))
        for i, v in enumerate(variables)
    ]


class Trainer:
    """The model, its optimizer and the compiled steps, under a strategy.

    `train()` runs one update: the gradient of the summed NLL over every
    replica's lines is divided by the number of predicted points, its global
    norm clipped to `clipnorm`, and the update skipped (and counted) when the
    loss or the gradient is not finite.

    With `ema_decay` > 0 it keeps `ema_model` too: after the n-th update since
    the average began, the mean of those n updates' weights weighted by
    `ema_decay` to the power of their age (the moving average divided by
    1 - decay^n, as Adam corrects its moments, so that it starts at the
    weights rather than at zero or at the weights of long ago).
    `eval_model` is the model that validates and exports: the average where
    there is one.

    With `weight_noise` > 0 each update's gradient is taken at the weights
    plus zero-mean Gaussian noise of that standard deviation (`weight_noises`:
    one draw for the whole batch and every replica, from the seed and the
    step, so that a resumed run draws what it would have), and applied to
    the weights without it (the noise is taken away exactly).

    With `new_units_from` (the units a layer before a widening, `hwtf.widen`)
    every update of the weights of the units past them (their gates' and
    those out of them: `hwtf.unit_weights.new_unit_mask`) is `new_units_rate` times
    what the optimizer makes it, as if they alone had that multiple of the
    learning rate: new units start with zero weights out of them, and Adam
    moves a weight by about the rate an update at most.
    """

    def __init__(self, config, strategy, optimizer: str = "adam", learning_rate=1e-3, clipnorm: float = 10.0,
                 gradients: str = "handwritten", layout: str = "layered", ema_decay: float = 0.0,
                 weight_noise: float = 0.0, new_units_from: int = 0, new_units_rate: float = 1.0):
        import keras
        import numpy as np
        import tensorflow as tf

        from hwtf.model import EMA_OBJECTS

        self.strategy = strategy
        self.clipnorm = clipnorm or np.inf
        self.learning_rate = learning_rate
        if not (math.isfinite(weight_noise) and weight_noise >= 0):
            raise ValueError(f"weight_noise={weight_noise}: must be a standard deviation, 0 (off) or more")
        self.weight_noise = float(weight_noise)
        if not (math.isfinite(new_units_rate) and new_units_rate > 0):
            raise ValueError(f"new_units_rate={new_units_rate}: must be a positive multiple of the learning rate")
        if new_units_from and config.model != "synthesis":
            raise ValueError(f"new_units_from={new_units_from}: for the synthesis model (a widened one) only")
        if new_units_from and not 0 < new_units_from < config.lstm_units:
            raise ValueError(f"new_units_from={new_units_from}: the network has {config.lstm_units} units a layer")
        with strategy.scope():
            self.model = config.build_model()
            self.model.stack.gradients = gradients  # how the recurrences are differentiated
            self.model.stack.layout = layout  # and laid out
            if optimizer == "adam":
                self.optimizer = keras.optimizers.Adam(learning_rate)
            elif optimizer == "rmsprop_graves":
                # Graves (2013) eqs. 38-41: centred RMSProp with momentum.
                self.optimizer = keras.optimizers.RMSprop(
                    learning_rate, rho=0.95, momentum=0.9, epsilon=1e-4, centered=True
                )
            else:
                raise ValueError(f"unknown optimizer {optimizer!r}")
            self.optimizer.build(self.model.trainable_variables)
            # (variable, the multiple of each of its updates): the weights of
            # a widening's new units, at `new_units_rate` times the rate.
            self.rate_scales, self.new_unit_weights = [], 0
            if new_units_from and new_units_rate != 1.0:
                from hwtf.model import named_weights
                from hwtf.unit_weights import rate_scales

                named = named_weights(self.model)
                scales = rate_scales({k: tuple(v.shape) for k, v in named.items()}, config.lstm_layers,
                                     new_units_from, config.lstm_units, new_units_rate)
                self.rate_scales = [(named[k], tf.constant(scale)) for k, scale in scales.items()]
                self.new_unit_weights = int(sum(np.sum(scale != 1.0) for scale in scales.values()))
            self.step = tf.Variable(0, dtype=tf.int64, name="step", trainable=False)
            self.skipped = tf.Variable(0, dtype=tf.int64, name="skipped_updates", trainable=False)
            self.best = tf.Variable(np.inf, dtype=tf.float64, name="best_valid_nll", trainable=False)
            self.ema_decay = float(ema_decay)
            self.ema_model = config.build_model() if ema_decay else None
            if self.ema_model is not None:
                self.ema_model.stack.layout = layout
            self.ema_updates = tf.Variable(0, dtype=tf.int64, name="ema_updates", trainable=False)
        # What a run resumes from; the average is read apart (`restore_ema`),
        # as a checkpoint of a run without one has none to read.
        self.state = dict(model=self.model, optimizer=self.optimizer, step=self.step, skipped=self.skipped,
                          best=self.best)
        self.ema_state = dict(zip(EMA_OBJECTS, (self.ema_model, self.ema_updates))) if ema_decay else {}
        self.checkpoint = tf.train.Checkpoint(**self.state, **self.ema_state)
        self.eval_model = self.model if self.ema_model is None else self.ema_model
        if ema_decay:
            self.reset_ema()
        # Batches differ in length (bucketing): trace once for any shape.
        self._train_step = tf.function(self._train_step_fn, reduce_retracing=True)
        self._eval_steps = {id(m): tf.function(lambda b, m=m: self._eval_step_fn(b, m), reduce_retracing=True)
                            for m in (self.model, self.eval_model)}

    def reset_ema(self) -> None:
        """Starts the average afresh, at the weights."""
        for average, weight in zip(self.ema_model.weights, self.model.weights):
            average.assign(weight)
        self.ema_updates.assign(0)

    def restore_ema(self, path: str) -> bool:
        """Reads the average from checkpoint `path` where it has one (and says
        so), else starts it afresh at the weights just restored."""
        import tensorflow as tf

        from hwtf.model import has_ema

        if has_ema(path):
            tf.train.Checkpoint(**self.ema_state).restore(path).assert_existing_objects_matched().expect_partial()
            return True
        self.reset_ema()
        return False

    def _update_ema(self):
        import tensorflow as tf

        n = tf.cast(self.ema_updates.assign_add(1), tf.float64)
        decay = tf.constant(self.ema_decay, tf.float64)
        # The bias-corrected average c_n = s_n / (1 - d^n), where
        # s_n = d s_(n-1) + (1 - d) w_n, is c_n = b c_(n-1) + (1 - b) w_n with
        # b = d (1 - d^(n-1)) / (1 - d^n): 0 at the first update.
        keep = decay * (1.0 - decay ** (n - 1.0)) / (1.0 - decay**n)
        for average, weight in zip(self.ema_model.weights, self.model.weights):
            if weight.trainable:
                k = tf.cast(keep, average.dtype)
                average.assign(k * average + (1.0 - k) * weight)
            else:
                average.assign(weight)

    def _reduce(self, value):
        import tensorflow as tf

        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)

    def _train_step_fn(self, batch, teacher_forcing, seed):
        import tensorflow as tf

        from hwtf.model import nll

        variables = self.model.trainable_variables
        if self.weight_noise:
            # In cross-replica context: every replica differentiates at the same noisy weights.
            clean = [tf.identity(v) for v in variables]
            for v, noise in zip(variables, weight_noises(variables, self.weight_noise, seed)):
                v.assign_add(noise)

        def replica_step(batch):
            replica_seed = tf.random.experimental.stateless_fold_in(
                seed, tf.distribute.get_replica_context().replica_id_in_sync_group
            )
            with tf.GradientTape() as tape:
                result = nll(self.model, batch, teacher_forcing, replica_seed)
            grads = tape.gradient(result["nll_sum"], variables)
            return grads, {k: result[k] for k in SUM_KEYS}

        grads, sums = self.strategy.run(replica_step, (batch,))
        if self.weight_noise:
            for v, c in zip(variables, clean):
                v.assign(c)
        sums = {k: self._reduce(v) for k, v in sums.items()}
        points = tf.maximum(sums["points"], 1.0)
        grads = [self._reduce(g) / points for g in grads]
        loss = sums["nll_sum"] / points
        norm = tf.linalg.global_norm(grads)
        finite = tf.math.is_finite(loss) & tf.math.is_finite(norm)

        def apply():
            clipped, _ = tf.clip_by_global_norm(grads, self.clipnorm, use_norm=norm)
            before = [tf.identity(v) for v, _ in self.rate_scales]
            self.optimizer.apply_gradients(zip(clipped, variables))
            # Adam's and RMSProp's updates are the rate times a direction: a
            # weight whose update is scaled moves as at that multiple of it.
            for (v, scale), start in zip(self.rate_scales, before):
                v.assign(start + scale * (v - start))
            if self.ema_model is not None:
                self._update_ema()
            return tf.constant(0, tf.int64)

        skipped = tf.cond(finite, apply, lambda: tf.constant(1, tf.int64))
        self.skipped.assign_add(skipped)
        self.step.assign_add(1)
        return {
            "loss": loss,
            "offset_nll": sums["offset_sum"] / points,
            "pen_nll": sums["pen_sum"] / points,
            "grad_norm": norm,
            "skipped": skipped,
        }

    def train(self, batch, teacher_forcing: float, seed: int) -> dict:
        """One update on a (distributed) batch; logs a skipped update."""
        import tensorflow as tf

        step = int(self.step.numpy())
        result = self._train_step(
            batch, tf.constant(teacher_forcing, tf.float32), tf.constant([seed, step], tf.int64)
        )
        if int(result["skipped"]):
            logging.warning(
                "step %d: non-finite loss or gradient; update skipped (%d so far)",
                step + 1, int(self.skipped.numpy()),
            )
        return result

    def _eval_step_fn(self, batch, model):
        from hwtf.model import nll

        sums = self.strategy.run(lambda b: {k: v for k, v in nll(model, b).items() if k in SUM_KEYS}, (batch,))
        return {k: self._reduce(v) for k, v in sums.items()}

    def evaluate(self, dataset, model=None) -> dict:
        """Validation NLL over a whole (distributed) dataset, in nats, of
        `model`: `eval_model` (the average where there is one) or `model`."""
        step = self._eval_steps[id(self.eval_model if model is None else model)]
        totals = dict.fromkeys(SUM_KEYS, 0.0)
        for batch in dataset:
            for k, v in step(batch).items():
                totals[k] += float(v)
        return {
            "nll_per_line": totals["nll_sum"] / max(totals["lines"], 1.0),
            "nll_per_point": totals["nll_sum"] / max(totals["points"], 1.0),
        }

    def validate(self, dataset, step: int, writer, best_manager) -> float:
        """Scores `eval_model` on `dataset` and logs it, with the weights
        themselves too where it is their moving average (as `valid/weights_*`),
        to `writer`; saves a new best with `best_manager`. Returns the
        `eval_model`'s NLL a line."""
        from hwtf import summaries

        valid = self.evaluate(dataset)
        logging.info("step %d  valid NLL %.2f nats/line, %.4f nats/point%s",
                     step, valid["nll_per_line"], valid["nll_per_point"],
                     " (the weights' moving average)" if self.ema_model is not None else "")
        with writer.as_default():
            summaries.scalar("valid/nll_per_line", valid["nll_per_line"], step)
            summaries.scalar("valid/nll_per_point", valid["nll_per_point"], step)
            if self.ema_model is not None:
                weights = self.evaluate(dataset, self.model)
                logging.info("step %d  valid NLL %.2f nats/line, %.4f nats/point (the weights themselves)",
                             step, weights["nll_per_line"], weights["nll_per_point"])
                summaries.scalar("valid/weights_nll_per_line", weights["nll_per_line"], step)
                summaries.scalar("valid/weights_nll_per_point", weights["nll_per_point"], step)
        if valid["nll_per_line"] < float(self.best.numpy()):
            self.best.assign(valid["nll_per_line"])
            best_manager.save(checkpoint_number=step)
        return valid["nll_per_line"]


# -- the command, step by step ---------------------------------------------


def validate_flags() -> None:
    """Refuses flags that cannot train, before anything is written."""
    positive = ("lstm_units", "lstm_layers", "window_mixtures", "mixtures", "batch_size", "eval_every",
                "length_buckets", "log_every", "checkpoint_every", "keep_checkpoints", "cpu_devices", "lr_decay_steps",
                "capitals_repeat")
    for name in positive:
        if getattr(FLAGS, name) < 1:
            raise app.UsageError(f"--{name}={getattr(FLAGS, name)}: must be at least 1")
    for name in ("steps", "eval_lines", "image_every", "teacher_forcing_steps", "synthetic_capitals"):
        if getattr(FLAGS, name) < 0:
            raise app.UsageError(f"--{name}={getattr(FLAGS, name)}: must not be negative")
    if not (math.isfinite(FLAGS.time_limit) and FLAGS.time_limit >= 0):
        raise app.UsageError(f"--time_limit={FLAGS.time_limit}: must be minutes, 0 or more")
    if FLAGS.time_limit and FLAGS.strategy == "multi_worker":
        raise app.UsageError("--time_limit cannot end a multi_worker run: each worker's clock would pick "
                             "another last step; give --steps")
    if FLAGS.strategy == "multi_worker":
        check_tf_config()
    if not (math.isfinite(FLAGS.learning_rate) and FLAGS.learning_rate > 0):
        raise app.UsageError(f"--learning_rate={FLAGS.learning_rate:g}: must be a positive number")
    if not (math.isfinite(FLAGS.clipnorm) and FLAGS.clipnorm >= 0):
        raise app.UsageError(f"--clipnorm={FLAGS.clipnorm:g}: must be 0 (off) or positive")
    if FLAGS.layout == "wavefront" and (FLAGS.model != "synthesis" or FLAGS.lstm_layers < 2):
        raise app.UsageError(f"--layout=wavefront: needs --model=synthesis and --lstm_layers of 2 or more "
                             f"(got --model={FLAGS.model}, --lstm_layers={FLAGS.lstm_layers}); "
                             "use --layout=layered")
    if not 0.0 <= FLAGS.ema_decay < 1.0:
        raise app.UsageError(f"--ema_decay={FLAGS.ema_decay:g}: must be in [0, 1) (0 = no average)")
    if not (math.isfinite(FLAGS.weight_noise) and FLAGS.weight_noise >= 0):
        raise app.UsageError(f"--weight_noise={FLAGS.weight_noise:g}: must be a standard deviation, 0 (off) or more")
    if not (math.isfinite(FLAGS.new_units_rate) and FLAGS.new_units_rate > 0):
        raise app.UsageError(f"--new_units_rate={FLAGS.new_units_rate:g}: must be a positive multiple of the rate")
    if FLAGS.new_units_from < 0:
        raise app.UsageError(f"--new_units_from={FLAGS.new_units_from}: must be units a layer, or 0 (none)")
    if not 0.0 <= FLAGS.teacher_forcing_floor <= 1.0:
        raise app.UsageError(f"--teacher_forcing_floor={FLAGS.teacher_forcing_floor:g}: must be in [0, 1]")
    from hwtf import cli
    from hwtf.files import check_export_dir

    FLAGS.dataset = cli.dataset_flag()
    export_dir = os.path.join(FLAGS.train_dir, "export") if FLAGS.export_dir is None else FLAGS.export_dir
    if export_dir:
        try:
            check_export_dir(export_dir)
        except ValueError as e:
            raise app.UsageError(f"--export_dir: {e}") from e


def load_data():
    """The training and validation sets (`--eval_lines` of the latter)."""
    from hwtf.data import dataset as dataset_lib

    default_train, default_valid = _default_splits(FLAGS.dataset)

    def load(splits):
        return dataset_lib.load(FLAGS.dataset, splits, FLAGS.data_dir, FLAGS.cache_dir, num_lines=FLAGS.synthetic_lines)

    try:
        train_set = load(FLAGS.train_splits or default_train)
        valid_set = load([FLAGS.valid_split or default_valid])
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    for name, data in (("train", train_set), ("valid", valid_set)):
        logging.info("%s: %d lines, %d points, %d skipped", name, len(data), data.num_points, len(data.skipped))
    if FLAGS.eval_lines and len(valid_set) > FLAGS.eval_lines:
        valid_set = valid_set.subset(range(FLAGS.eval_lines))
    return train_set, valid_set


def resolve_config(train_set, write: bool = True):
    """The model's configuration: `config.json` in `--train_dir` when the run
    resumes (it must describe the model the flags ask for), else made from
    the flags and the training data, and saved there."""
    from hwtf.data import strokes as strokes_lib
    from hwtf.model import ModelConfig

    config_path = os.path.join(FLAGS.train_dir, "config.json")
    wanted = ModelConfig(
        model=FLAGS.model,
        lstm_units=FLAGS.lstm_units,
        lstm_layers=FLAGS.lstm_layers,
        window_mixtures=FLAGS.window_mixtures,
        mixtures=FLAGS.mixtures,
        alphabet=strokes_lib.Alphabet.from_texts(train_set.texts, FLAGS.alphabet_min_count).chars,
        normalizer=strokes_lib.Normalizer.fit(train_set.offsets).as_dict(),
    )
    if not os.path.exists(config_path):
        if write:
            wanted.save(config_path)
        return wanted
    try:
        config = ModelConfig.load(config_path)
    except (OSError, ValueError, TypeError) as e:  # JSONDecodeError is a ValueError
        raise app.UsageError(f"{config_path} is damaged ({e}); restore it, or start a new --train_dir") from e
    sizes = lambda c: (c.model, c.lstm_units, c.lstm_layers, c.window_mixtures, c.mixtures)  # noqa: E731
    if sizes(config) != sizes(wanted):
        raise app.UsageError(
            f"{config_path} describes a different model ({config}); use a new --train_dir or the same sizes"
        )
    return config


SYNTHETIC_CAPITALS_SEED = 1300  # --synthetic_capitals: the same lines in every run and stint


def epoch_lines(train_set, capitals_repeat: int, synthetic_capitals: int = 0, alphabet=None,
                capitals_text: str = "sentences"):
    """The lines an epoch draws: `train_set` with each line that has capitals
    in a row `capitals_repeat` times (`--capitals_repeat`), then
    `synthetic_capitals` synthetic lines in capitals (`--synthetic_capitals`,
    of `capitals_text`, `--synthetic_capitals_text`; lines with a character
    outside `alphabet` are left out). Call it after
    the config is resolved, so that the normaliser stays the data's own;
    `make_datasets` and the JAX stint's export (`hwtf.stint_state`) both do."""
    from hwtf.data import dataset as dataset_lib

    if capitals_repeat > 1:
        before = len(train_set)
        train_set = dataset_lib.repeat_lines(train_set, dataset_lib.has_capital_run, capitals_repeat)
        logging.info("--capitals_repeat=%d: %d lines with capitals in a row, %d lines an epoch",
                     capitals_repeat, (len(train_set) - before) // (capitals_repeat - 1), len(train_set))
    if synthetic_capitals:
        from hwtf.data import synthetic
        from hwtf.data.strokes import HandwritingSet

        lines = synthetic.capitals(synthetic_capitals, SYNTHETIC_CAPITALS_SEED, capitals_text)
        if alphabet is not None:
            lines = [line for line in lines if not alphabet.unknown_chars(line.text)]
        extra = HandwritingSet.from_lines(lines)
        train_set = HandwritingSet(train_set.ids + extra.ids, train_set.texts + extra.texts,
                                   train_set.offsets + extra.offsets, train_set.skipped)
        logging.info("--synthetic_capitals=%d: %d synthetic lines in capitals (%s), %d lines an epoch",
                     synthetic_capitals, len(extra), capitals_text, len(train_set))
    return train_set


def make_datasets(config, train_set, valid_set, strategy=None):
    """Training batches (shuffled, bucketed, repeated) and validation batches."""
    import tensorflow as tf

    from hwtf.data import dataset as dataset_lib

    alphabet, normalizer = config.alphabet_lib, config.normalizer_lib
    train_set = epoch_lines(train_set, FLAGS.capitals_repeat, FLAGS.synthetic_capitals, alphabet,
                            FLAGS.synthetic_capitals_text)
    train_ds = dataset_lib.make_dataset(
        train_set, alphabet, normalizer, FLAGS.batch_size, seed=FLAGS.seed,
        max_length=FLAGS.max_length, chunk_length=FLAGS.chunk_length, buckets=FLAGS.length_buckets,
    )
    valid_ds = validation_dataset(config, valid_set)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Every worker reads all of the data and keeps its share of each
        # global batch (the lines are not in files to share out).
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        train_ds, valid_ds = train_ds.with_options(options), valid_ds.with_options(options)
    return train_ds, valid_ds


def validation_dataset(config, valid_set):
    """The validation lines in order of length, each once (the least padding)."""
    from hwtf.data import dataset as dataset_lib

    return dataset_lib.make_dataset(
        valid_set, config.alphabet_lib, config.normalizer_lib, FLAGS.batch_size, shuffle=False, repeat=False,
        bucket=False, by_length=True,
    )


def learning_rate(kind: str, initial: float, steps: int, decay_steps: int = 1000, decay_rate: float = 0.5):
    """The learning rate of schedule `kind`: `constant` (the number
    `initial`), `exponential` (times `decay_rate` every `decay_steps`) or
    `cosine` (from `initial` to a tenth of it at `steps`), as a Keras schedule."""
    import keras

    if kind == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(initial, decay_steps, decay_rate)
    if kind == "cosine":
        return keras.optimizers.schedules.CosineDecay(initial, steps, alpha=0.1)
    if kind == "constant":
        return initial
    raise ValueError(f"unknown learning-rate schedule {kind!r}")


def run_checkpoints(train_dir: str) -> list:
    """The checkpoints of the run in `train_dir`, oldest first: those its
    `checkpoint` file names, else the `ckpt-N` files there. (CheckpointManager
    alone sees none in a `checkpoint` file without timestamps, one written by
    hand, and would start the run again from step 0.) A packed checkpoint
    there (`hwtf.packed`, what docs/save_stint.py commits) is unpacked to
    `ckpt-N` first, unless the run has gone past it, and is then the latest
    (a stint's packed checkpoint copied into a run that has older ones)."""
    import tensorflow as tf

    from hwtf import packed

    unpacked = packed.unpack_into(train_dir)
    if unpacked:
        logging.info("unpacked %s.packed.npz", unpacked)
    state = tf.train.get_checkpoint_state(train_dir)
    paths = list(state.all_model_checkpoint_paths) if state else []
    if state and state.model_checkpoint_path and state.model_checkpoint_path not in paths:
        paths.append(state.model_checkpoint_path)
    if not paths:
        numbered = packed.checkpoint_prefixes(train_dir)
        paths = [numbered[n] for n in sorted(numbered)]
    if unpacked and unpacked not in paths:
        paths.append(unpacked)
    return paths


def restore(trainer, save_dir: str):
    """Checkpoint managers for the latest and the best checkpoint, saving
    under `save_dir`; resumes from the latest in `--train_dir` when it has one."""
    import numpy as np
    import tensorflow as tf

    manager = tf.train.CheckpointManager(trainer.checkpoint, save_dir, max_to_keep=FLAGS.keep_checkpoints)
    best = tf.train.CheckpointManager(trainer.checkpoint, os.path.join(save_dir, "best"), max_to_keep=1)
    # Newest first; a damaged one (a disk error, a copy cut short) is named
    # and the one before it is used.
    found = run_checkpoints(FLAGS.train_dir)
    for path in reversed(found):
        try:
            # Partial: the checkpoint may hold the average too (`restore_ema`).
            tf.train.Checkpoint(**trainer.state).restore(path).assert_existing_objects_matched().expect_partial()
            ema = trainer.restore_ema(path) if trainer.ema_model is not None else None
        except (tf.errors.OpError, ValueError, AssertionError, IndexError, RuntimeError) as e:  # IndexError: "Read less bytes than requested"
            logging.warning("checkpoint %s cannot be read (%s); trying the one before it",
                            path, str(e).strip().splitlines()[0][:200])
            continue
        logging.info("resumed from %s at step %d", path, int(trainer.step.numpy()))
        if ema is not None:
            logging.info("the weights' moving average: %s", f"{int(trainer.ema_updates.numpy())} updates so far"
                         if ema else "none in the checkpoint; it starts at the weights")
        # The checkpoint holds the optimizer's learning rate too; a constant
        # rate comes from the flags, so that a stint can change it.
        if isinstance(trainer.learning_rate, float):
            saved = float(trainer.optimizer.learning_rate.numpy())
            # The optimizer keeps its rate in float32: 1e-4 reads back as
            # 1.0000000474974513e-04, the same rate.
            if np.float32(saved) != np.float32(trainer.learning_rate):
                logging.info("learning rate %g (the checkpoint's was %g)", trainer.learning_rate, saved)
                trainer.optimizer.learning_rate.assign(trainer.learning_rate)
        break
    else:
        if found:
            raise app.UsageError(f"no checkpoint in {FLAGS.train_dir} can be read ({', '.join(found)}); "
                                 "start a new --train_dir or restore one")
    return manager, best


class Loop:
    """The training loop and what it does on the way: logs and scalars,
    validation (keeping the best checkpoint), sample pictures, checkpoints."""

    def __init__(self, trainer, strategy, config, lr, train_ds, valid_ds, valid_set, managers, chief=True, host=""):
        import numpy as np
        import tensorflow as tf

        from hwtf import summaries
        from hwtf.model import sample_loop

        self.trainer, self.strategy, self.config, self.lr = trainer, strategy, config, lr
        self.valid_ds, self.valid_set = valid_ds, valid_set
        self.manager, self.best_manager = managers
        self.summaries = summaries
        self.chief, self.host = chief, host
        self.writer = (tf.summary.create_file_writer(os.path.join(FLAGS.train_dir, "tensorboard")) if chief
                       else tf.summary.create_noop_writer())
        # The data order depends only on the seed, so a resumed run skips the
        # batches it has already seen and goes on with the same order.
        self.start = int(trainer.step.numpy())
        self.batches = iter(strategy.experimental_distribute_dataset(train_ds.skip(self.start)))
        # Compiled once: an eager sampling loop would be several times slower.
        # It starts, as training lines do, from the offset (0, 0), normalised.
        start = tf.constant(config.normalizer_lib.normalize(np.zeros((1, 3), np.float32)))
        self.sampler = tf.function(lambda *args: sample_loop(trainer.eval_model, 1, *args, first_input=start))

    def run(self) -> None:
        # SIGINT (Ctrl-C, kill -INT) and SIGTERM (kill, the end of a session or
        # job) save and stop, even where the run was started with SIGINT
        # ignored (a background job of a script). The handler only asks, and
        # the loop stops after the step under way: a KeyboardInterrupt raised
        # inside TensorFlow (which traces a Graves-size step for minutes)
        # reached Python as some other error, and the steps since the last
        # checkpoint were lost. A second signal stops at once, as Python's
        # default would.
        self.stop_signal = None
        previous = {signum: signal.signal(signum, self._request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}

        logging.info(
            "training %s: %d parameters, steps %d..%d, %d replica(s)", self.config.model,
            self.trainer.model.count_params(), self.start, FLAGS.steps, self.strategy.num_replicas_in_sync,
        )
        if self.host:  # where this stretch of the run trains (summaries.stints)
            with self.writer.as_default():
                self.summaries.text(self.summaries.NOTES + "host", self.host, self.start)
        self.last_time, self.last_step, run_start = time.time(), self.start, time.time()
        try:
            self._steps()
        except KeyboardInterrupt:  # a second SIGINT, where it lands between steps
            self.stop_signal = signal.SIGINT
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if self.stop_signal is not None:
            self._save_and_stop()
        logging.info("trained to step %d in %.1f s", int(self.trainer.step.numpy()), time.time() - run_start)

    def _request_stop(self, signum, frame) -> None:
        self.stop_signal = signum
        logging.warning("%s: saving and stopping after the step under way (a second one stops at once)",
                        signal.Signals(signum).name)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def _save_and_stop(self) -> None:
        """Saves the step reached and exits as a shell reports the signal
        (130 for SIGINT, 143 for SIGTERM)."""
        step, now = int(self.trainer.step.numpy()), time.time()
        self.manager.save(checkpoint_number=step)
        if step > self.last_step:  # the rate of the steps since the last log, so that
            # the hours to a later step (summaries.training_hours) count these at it
            with self.writer.as_default():
                self.summaries.scalar("steps_per_sec", (step - self.last_step) / (now - self.last_time), step)
        self.writer.flush()
        logging.warning("interrupted at step %d: checkpoint saved; run the same command to resume", step)
        raise SystemExit(128 + int(self.stop_signal))

    def _steps(self) -> None:
        step, skipped_in_a_row = self.start, 0
        deadline = time.time() + 60 * FLAGS.time_limit if FLAGS.time_limit else math.inf
        while step < FLAGS.steps:
            teacher_forcing = teacher_forcing_probability(
                FLAGS.teacher_forcing, step, FLAGS.teacher_forcing_floor, FLAGS.teacher_forcing_steps
            )
            result = self.trainer.train(next(self.batches), teacher_forcing, FLAGS.seed)
            step += 1
            skipped_in_a_row = skipped_in_a_row + 1 if int(result["skipped"]) else 0
            if skipped_in_a_row >= MAX_SKIPPED_IN_A_ROW:
                raise app.UsageError(
                    f"{skipped_in_a_row} updates in a row were skipped (non-finite loss or gradient) at step {step}: "
                    f"the flags, the data or config.json's normalisation are broken; nothing was saved or exported "
                    f"from these steps (the last checkpoint is {self.manager.latest_checkpoint})"
                )
            if self.stop_signal is not None:  # saved at once, without the step's validation or picture
                break
            last = step == FLAGS.steps
            if not last and time.time() >= deadline:
                logging.info("--time_limit=%g minutes reached at step %d: it is the last", FLAGS.time_limit, step)
                last = True
            if step % FLAGS.log_every == 0 or last:
                self.log(step, result, teacher_forcing)
            if step % FLAGS.eval_every == 0 or last:
                self.validate(step)
            if self.chief and FLAGS.image_every and (step % FLAGS.image_every == 0 or last):
                self.write_image(step)
            if step % FLAGS.checkpoint_every == 0 or last:
                self.manager.save(checkpoint_number=step)
            self.writer.flush()
            if last:
                break

    def log(self, step: int, result: dict, teacher_forcing: float) -> None:
        now = time.time()
        rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_step = now, step
        eta = (FLAGS.steps - step) / max(rate, 1e-9)
        loss = float(result["loss"])
        logging.info(
            "step %d  loss %.4f  (offset %.4f, pen %.4f)  %.2f steps/s  ETA %s",
            step, loss, float(result["offset_nll"]), float(result["pen_nll"]), rate,
            f"{int(eta // 3600)}:{time.strftime('%M:%S', time.gmtime(eta))}",  # hours may pass 24
        )
        scalar = self.summaries.scalar
        with self.writer.as_default():
            scalar("loss", loss, step)
            scalar("offset_nll", result["offset_nll"], step)
            scalar("pen_nll", result["pen_nll"], step)
            scalar("grad_norm", result["grad_norm"], step)
            scalar("learning_rate", float(self.lr(step) if callable(self.lr) else self.lr), step)
            scalar("teacher_forcing", teacher_forcing, step)
            scalar("skipped_updates", int(self.trainer.skipped.numpy()), step)
            scalar("steps_per_sec", rate, step)

    def validate(self, step: int) -> None:
        """Scores `eval_model` (the weights' average, where the run keeps one,
        and then the weights themselves too, as `valid/weights_*`)."""
        dataset = self.strategy.experimental_distribute_dataset(self.valid_ds)
        self.last_valid = self.trainer.validate(dataset, step, self.writer, self.best_manager)

    def write_image(self, step: int) -> None:
        """A line sampled at bias 0.5 (the first validation text) and its
        attention, to TensorBoard."""
        import tensorflow as tf

        from hwtf import render
        from hwtf.data import strokes as strokes_lib

        synthesis = self.config.model == "synthesis"
        text = self.valid_set.texts[0] if synthesis else ""
        alphabet, normalizer = self.config.alphabet_lib, self.config.normalizer_lib
        chars = tf.constant([alphabet.encode(text)]) if synthesis else None
        offsets, lengths, phi = self.sampler(
            chars, tf.constant([len(text)]) if synthesis else None,
            tf.constant(0.5), tf.constant([FLAGS.seed, step], tf.int64),
            tf.constant(min(40 * max(len(text), 10), 1500)),
        )
        n = int(lengths[0])
        strokes = strokes_lib.offsets_to_strokes(normalizer.denormalize(offsets[0, :n].numpy()))
        with self.writer.as_default():
            self.summaries.image("sample", render.png_bytes(strokes, title=text), step)
            if synthesis and n:
                self.summaries.image("attention", render.attention_png_bytes(phi[0, :n].numpy(), text, strokes), step)


def export_model(model, config) -> None:
    """Exports to `--export_dir` (default `<train_dir>/export`; '' = none)."""
    from hwtf import export as export_lib

    export_dir = os.path.join(FLAGS.train_dir, "export") if FLAGS.export_dir is None else FLAGS.export_dir
    if export_dir:
        export_lib.export(model, config, export_dir)
        logging.info("exported to %s", export_dir)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    import keras

    strategy = make_strategy(FLAGS.strategy, FLAGS.cpu_devices)
    if FLAGS.batch_size % strategy.num_replicas_in_sync:
        raise app.UsageError(f"--batch_size={FLAGS.batch_size} must divide among "
                             f"{strategy.num_replicas_in_sync} replicas")
    policy, why = precision_lib.resolve(FLAGS.precision)
    logging.info("precision %s (%s)", policy, why if FLAGS.precision == "auto" else "--precision")
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(FLAGS.seed)
    train_set, valid_set = load_data()
    try:
        os.makedirs(FLAGS.train_dir, exist_ok=True)
    except OSError as e:
        raise app.UsageError(f"--train_dir={FLAGS.train_dir}: cannot create it ({e.strerror})") from e
    if not os.access(FLAGS.train_dir, os.W_OK):
        raise app.UsageError(f"--train_dir={FLAGS.train_dir}: not writable")
    chief = is_chief(strategy)
    config = resolve_config(train_set, write=chief)
    train_ds, valid_ds = make_datasets(config, train_set, valid_set, strategy)
    # A non-chief worker saves its checkpoints (a collective step) to scratch.
    save_dir = FLAGS.train_dir if chief else os.path.join(FLAGS.train_dir, f"worker-{strategy.cluster_resolver.task_id}-scratch")
    lr = learning_rate(FLAGS.lr_schedule, FLAGS.learning_rate, FLAGS.steps, FLAGS.lr_decay_steps, FLAGS.lr_decay_rate)
    if FLAGS.new_units_from and (config.model != "synthesis" or not 0 < FLAGS.new_units_from < config.lstm_units):
        raise app.UsageError(f"--new_units_from={FLAGS.new_units_from}: must be fewer units a layer than the "
                             f"{config.model} network's {config.lstm_units}, in a synthesis network")
    trainer = Trainer(config, strategy, FLAGS.optimizer, lr, FLAGS.clipnorm, layout=FLAGS.layout,
                      ema_decay=FLAGS.ema_decay, weight_noise=FLAGS.weight_noise,
                      new_units_from=FLAGS.new_units_from, new_units_rate=FLAGS.new_units_rate)
    if trainer.rate_scales:
        logging.info("the units past the first %d a layer learn at %g times the rate (%d weights)",
                     FLAGS.new_units_from, FLAGS.new_units_rate, trainer.new_unit_weights)
    if FLAGS.weight_noise:
        logging.info("weight noise: each update's gradient at the weights plus Gaussian noise of deviation %g",
                     FLAGS.weight_noise)
    managers = restore(trainer, save_dir)
    host = f"{precision_lib.host()}, {policy}"
    loop = Loop(trainer, strategy, config, lr, train_ds, valid_ds, valid_set, managers, chief, host)
    try:
        loop.run()
    finally:
        if not chief:
            shutil.rmtree(save_dir, ignore_errors=True)
    if chief:
        if not math.isfinite(getattr(loop, "last_valid", 0.0)):
            raise app.UsageError(f"the validation NLL is {loop.last_valid}: the model is broken and is not exported")
        export_model(trainer.eval_model, config)


if __name__ == "__main__":
    define_flags()
    from hwtf import cli

    cli.run(main, "hwtf.train", info=True, check=validate_flags)
