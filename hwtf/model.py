"""The prediction and synthesis models, their loss, and the sampling loop.

A `HandwritingModel` is the `LSTMStack` (with the soft window for synthesis)
followed by the `MixtureDensityHead`. `ModelConfig` is the one source of truth
for a model: its sizes, alphabet and normalisation statistics, saved as JSON
beside every checkpoint and inside every export.
"""

from __future__ import annotations

import dataclasses
import json

import keras
import tensorflow as tf

from hwtf import distributions
from hwtf.data import strokes as strokes_lib
from hwtf.files import atomic_write
from hwtf.layers import LSTMStack, MixtureDensityHead, StackState

MODELS = ("synthesis", "prediction")


@dataclasses.dataclass
class ModelConfig:
    """Everything needed to rebuild a model and read or write its data."""

    model: str = "synthesis"
    lstm_units: int = 400
    lstm_layers: int = 3
    window_mixtures: int = 10
    mixtures: int = 20
    alphabet: str = ""
    normalizer: dict = dataclasses.field(
        default_factory=lambda: {"mean": [0.0, 0.0], "std": [1.0, 1.0]}
    )

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.model == "synthesis" and not self.alphabet:
            raise ValueError("a synthesis model needs a non-empty alphabet")

    @property
    def alphabet_lib(self) -> strokes_lib.Alphabet:
        return strokes_lib.Alphabet(self.alphabet)

    @property
    def normalizer_lib(self) -> strokes_lib.Normalizer:
        return strokes_lib.Normalizer.from_dict(self.normalizer)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        data = json.loads(text)
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}")
        return cls(**data)

    def save(self, path: str) -> None:
        """Writes the JSON atomically (a kill leaves the old file or the new)."""
        with atomic_write(path) as f:
            f.write(self.to_json())

    @classmethod
    def load(cls, path: str) -> "ModelConfig":
        with open(path) as f:
            return cls.from_json(f.read())

    def build_model(self) -> "HandwritingModel":
        model = HandwritingModel(
            lstm_units=self.lstm_units,
            lstm_layers=self.lstm_layers,
            window_mixtures=self.window_mixtures if self.model == "synthesis" else 0,
            mixtures=self.mixtures,
            alphabet_size=len(self.alphabet_lib) if self.model == "synthesis" else 0,
        )
        model.build()
        return model


@keras.saving.register_keras_serializable(package="hwtf")
class HandwritingModel(keras.Model):
    """Graves's handwriting model: LSTM stack (+ window) and mixture head.

    `window_mixtures=0` gives the prediction (unconditional) model.
    """

    def __init__(
        self,
        lstm_units: int = 400,
        lstm_layers: int = 3,
        window_mixtures: int = 10,
        mixtures: int = 20,
        alphabet_size: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.lstm_units = lstm_units
        self.lstm_layers = lstm_layers
        self.window_mixtures = window_mixtures
        self.mixtures = mixtures
        self.alphabet_size = alphabet_size
        self.stack = LSTMStack(
            lstm_units, lstm_layers, window_mixtures, alphabet_size, name="lstm_stack"
        )
        # The head stays float32 under mixed precision (Keras's advice for
        # output layers): means and sigmas need more than bfloat16's 3 digits.
        self.head = MixtureDensityHead(mixtures, name="mdn_head", dtype="float32")

    @property
    def conditional(self) -> bool:
        return self.stack.conditional

    def build(self, input_shape=None):
        """Creates every weight. The sizes come from the constructor, not from
        `input_shape` (offsets are always 3 wide and the text's length does
        not shape a weight), so this needs no sample input; Keras calls it
        with the saved build config when it loads a `.keras` file."""
        self.stack.build()
        self.head.build((None, self.stack.output_size))
        self.built = True

    def get_build_config(self):
        return {"input_shape": None}

    def build_from_config(self, config):
        self.build()

    def compute_output_shape(self, offsets_shape, chars_shape=None, char_lengths_shape=None):
        stack = self.stack.compute_output_shape(offsets_shape, chars_shape)
        return {
            "head": self.head.compute_output_shape(stack["outputs"]),
            "phi": stack["phi"],
            "kappa": stack["kappa"],
        }

    def call(self, offsets, chars=None, char_lengths=None, initial_state=None):
        """Whole sequences.

        Args:
          offsets: `[B, T, 3]` input offsets (normalised).
          chars, char_lengths: `[B, U]`, `[B]` (synthesis only).

        Returns:
          dict: `head [B, T, 1+6M]` raw parameters of the *next* offset,
          `phi [B, T, U]`, `kappa [B, T, K]`, `state`.
        """
        result = self.stack(offsets, chars, char_lengths, initial_state=initial_state)
        return {
            "head": self.head(result["outputs"]),
            "phi": result["phi"],
            "kappa": result["kappa"],
            "state": result["state"],
        }

    def step(self, x, state: StackState, chars_onehot=None, char_mask=None, weights=None):
        """One step: `x [B, 3]` -> `(head [B, 1+6M], state, phi [B, U])`;
        `weights` from `stack.step_weights()` when stepping in a loop."""
        outputs, state, phi = self.stack.step(x, state, chars_onehot, char_mask, weights)
        return self.head(outputs), state, phi

    def get_config(self):
        return {
            **super().get_config(),
            "lstm_units": self.lstm_units,
            "lstm_layers": self.lstm_layers,
            "window_mixtures": self.window_mixtures,
            "mixtures": self.mixtures,
            "alphabet_size": self.alphabet_size,
        }


def _mix_in_samples(model, inputs, chars, char_lengths, teacher_forcing, seed):
    """Scheduled sampling (Bengio et al. 2015), in parallel form.

    A first, gradient-free pass under teacher forcing predicts every next
    offset; each input step t >= 1 is then, independently per step and per
    line, the ground truth with probability `teacher_forcing` and otherwise the
    model's own sample for it. The choice is per step. The first pass is the
    extra cost, paid only when `teacher_forcing < 1` (Duckworth et al. 2019
    show this one-pass approximation trains like the sequential form).
    """
    first = model(inputs, chars, char_lengths)
    params = distributions.split_head(tf.stop_gradient(first["head"][:, :-1]))
    seed_sample, seed_choice = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    sampled = distributions.sample(params, seed_sample)  # predictions of inputs[:, 1:]
    keep = tf.random.stateless_uniform(tf.shape(sampled)[:2], seed_choice) < teacher_forcing
    mixed = tf.where(keep[..., None], inputs[:, 1:], tf.cast(sampled, inputs.dtype))
    return tf.concat([inputs[:, :1], mixed], 1)


def nll(model: HandwritingModel, batch: dict, teacher_forcing=1.0, seed=None, targets=None) -> dict:
    """Negative log-likelihood of a batch, in nats.

    Each line's points after the first are predicted from the ones before.

    Args:
      batch: from `hwtf.data.dataset.make_dataset`.
      teacher_forcing: probability of feeding the true offset (scheduled
        sampling; 1 = pure teacher forcing, at the cost of one forward pass).
      seed: stateless `[2]` int seed for scheduled sampling.
      targets: `[B, T-1, 3]` normalised offsets to score in place of the
        batch's own next offsets, which are still what the model reads (for
        measuring the density between the data's points, docs/lattice_nll.py).

    Returns:
      dict of scalars: `loss` (mean NLL per predicted point, what is
      optimised), `offset_nll` and `pen_nll` (its parts), `nll_per_line` (the
      mean over lines of the summed NLL, Graves's unit), and the sums
      `nll_sum`, `offset_sum`, `pen_sum`, `points`, `lines` (for adding up
      over batches and replicas); per line `line_nll [B]`, `line_points [B]`;
      and per point `point_nll [B, T-1]` and its pen-lift part `point_pen_nll`
      (zero past each line's end).
    """
    offsets = tf.cast(batch["offsets"], tf.float32)
    inputs = offsets[:, :-1]
    targets = offsets[:, 1:] if targets is None else tf.cast(targets, tf.float32)
    mask = tf.sequence_mask(batch["lengths"] - 1, tf.shape(targets)[1], dtype=tf.float32)
    chars = batch.get("chars") if model.conditional else None
    char_lengths = batch.get("char_lengths") if model.conditional else None
    if not (isinstance(teacher_forcing, float) and teacher_forcing >= 1.0):
        teacher_forcing = tf.convert_to_tensor(teacher_forcing, tf.float32)
        seed = tf.constant([0, 0], tf.int64) if seed is None else seed
        inputs = tf.cond(
            teacher_forcing < 1.0,
            lambda: _mix_in_samples(model, inputs, chars, char_lengths, teacher_forcing, seed),
            lambda: inputs,
        )
    out = model(inputs, chars, char_lengths)
    params = distributions.split_head(out["head"])
    offset_lp, pen_lp = distributions.log_prob(params, targets)
    point_nll = -(offset_lp + pen_lp) * mask  # [B, T-1]
    line_nll = tf.reduce_sum(point_nll, 1)  # [B]
    line_points = tf.reduce_sum(mask, 1)  # [B]
    points = tf.reduce_sum(line_points)
    lines = tf.cast(tf.shape(offsets)[0], tf.float32)
    offset_nll = -tf.reduce_sum(offset_lp * mask)
    pen_nll = -tf.reduce_sum(pen_lp * mask)
    safe_points = tf.maximum(points, 1.0)
    return {
        "loss": (offset_nll + pen_nll) / safe_points,
        "offset_nll": offset_nll / safe_points,
        "pen_nll": pen_nll / safe_points,
        "nll_per_line": (offset_nll + pen_nll) / lines,
        "nll_sum": offset_nll + pen_nll,
        "offset_sum": offset_nll,
        "pen_sum": pen_nll,
        "points": points,
        "lines": lines,
        "line_nll": line_nll,
        "line_points": line_points,
        "point_nll": point_nll,
        "point_pen_nll": -pen_lp * mask,
    }


# Steps a sampling loop runs in one XLA call (`sample_loop`, `prime_state`):
# at Graves size and batch 1 on this project's CPU, 64 at a time took 0.32 to
# 0.40 ms a step against 0.61 to 0.91 for one a call (README, "Speed").
SAMPLE_CHUNK = 64


# The width a sampling loop pads its texts to, in characters (`pad_chars`).
CHAR_BUCKET = 16


def pad_chars(chars):
    """`chars [B, U]` padded with `Alphabet.PAD` to a width past the longest
    text, where `phi(t, U)` is read (the stop rule), rounded up to a multiple
    of CHAR_BUCKET: XLA compiles the sampling loop anew for each width it
    sees, a second or two each on a CPU, so texts of 20 and 25 characters
    should share one. Padding is masked out of the window, so it changes
    nothing written."""
    u = tf.shape(chars)[1]
    width = (u + CHAR_BUCKET) // CHAR_BUCKET * CHAR_BUCKET  # >= u + 1
    return tf.pad(chars, [[0, 0], [0, width - u]], constant_values=strokes_lib.Alphabet.PAD)


def sample_loop(
    model: HandwritingModel,
    batch_size,
    chars=None,
    char_lengths=None,
    bias=0.0,
    seed=None,
    max_steps=1000,
    initial_state: StackState | None = None,
    first_input=None,
):
    """Generates offsets one step at a time in a `tf.while_loop`.

    A synthesis line stops when its attention has passed the last character
    (Graves 2013, section 5.3: `phi(t, U)` exceeds `phi(t, u)` for every
    character u < U), and never later than `max_steps`.

    Args:
      chars, char_lengths: `[B, U]`, `[B]` (synthesis only).
      bias: Graves's sampling bias (>= 0).
      seed: stateless `[2]` int seed; the same seed gives the same strokes,
        and each line's draws depend only on the seed and its row, not on
        the other lines of the batch (`distributions.sample_rows`).
      initial_state, first_input: the state and the first input `[B, 3]`
        (normalised). Training lines start with the offset `(0, 0)`, which
        is `-mean / std` once normalised: unprimed sampling should start
        there (`HandwritingModule` does); after priming, the state before the
        prime's last point and that point (`prime_state`).

    Returns:
      `(offsets [B, T, 3] normalised, lengths [B] int32, phi [B, T, U])`;
      offsets and phi past each line's length are zero.
    """
    seed = tf.constant([0, 0], tf.int64) if seed is None else tf.cast(seed, tf.int64)
    max_steps = tf.cast(max_steps, tf.int32)
    state = initial_state or model.stack.initial_state(batch_size)
    x = tf.zeros([batch_size, 3]) if first_input is None else tf.cast(first_input, tf.float32)
    if model.conditional:
        text_width = tf.shape(chars)[1]
        chars = pad_chars(chars)
        chars_onehot, char_mask = model.stack.encode_chars(chars, char_lengths)
        done = tf.equal(char_lengths, 0)
        u = tf.shape(chars)[1]
    else:
        chars_onehot = char_mask = None
        done = tf.zeros([batch_size], tf.bool)
        u = 0
    lengths = tf.zeros([batch_size], tf.int32)
    xs = tf.TensorArray(tf.float32, size=0, dynamic_size=True, element_shape=[None, 3])
    phis = tf.TensorArray(tf.float32, size=0, dynamic_size=True, element_shape=[None, None])

    weights = model.stack.step_weights()  # once, not at every step
    bias = tf.cast(bias, tf.float32)

    # Up to SAMPLE_CHUNK steps at a time, each run of them one XLA function
    # with its own loop: the step's arithmetic, its random numbers
    # (`row_noise`, from `stateless_fold_in(seed, t)` as before), the draw
    # from its mixture and the stop rule. On a CPU the per-op dispatch of a
    # TensorFlow loop costs more than a small batch's products; XLA runs the
    # steps of a chunk without it. A chunk ends early when every line is done
    # or max_steps is reached, so no step is wasted (README, "Speed").
    @tf.function(jit_compile=True)
    def chunk(t0, x, state, done, lengths, weights, bias, max_steps):
        xs = tf.TensorArray(tf.float32, size=SAMPLE_CHUNK, element_shape=[None, 3])
        phis = tf.TensorArray(tf.float32, size=SAMPLE_CHUNK)

        def step(k, x, state, done, lengths, xs, phis):
            t = t0 + k
            u, z = distributions.row_noise(batch_size, tf.random.experimental.stateless_fold_in(seed, t))
            head, state, phi = model.step(x, state, chars_onehot, char_mask, weights)
            x = distributions.draw_rows(distributions.split_head(head, bias), u, z)
            active = tf.logical_not(done)
            lengths = tf.where(active, t + 1, lengths)
            x = tf.where(active[:, None], x, 0.0)
            if model.conditional:
                past_end = tf.gather(phi, char_lengths, batch_dims=1)  # phi(t, U) [B]
                within = tf.reduce_max(phi * char_mask - (1.0 - char_mask), axis=1)
                done = done | (past_end > within)
                phi = phi * char_mask * tf.cast(active, tf.float32)[:, None]
            return k + 1, x, state, done, lengths, xs.write(k, x), phis.write(k, tf.cast(phi, tf.float32))

        def more(k, x, state, done, *_):
            return (k < SAMPLE_CHUNK) & (t0 + k < max_steps) & tf.logical_not(tf.reduce_all(done))

        k, x, state, done, lengths, xs, phis = tf.while_loop(more, step, (0, x, state, done, lengths, xs, phis))
        # Unwritten rows of a chunk that ended early are zero, as offsets and
        # phi past a line's end must be; they are cut off below.
        return k, x, state, done, lengths, xs.stack(), phis.stack()

    def body(c, t, x, state, done, lengths, xs, phis):
        k, x, state, done, lengths, chunk_xs, chunk_phis = chunk(t, x, state, done, lengths, weights, bias, max_steps)
        return c + 1, t + k, x, state, done, lengths, xs.write(c, chunk_xs), phis.write(c, chunk_phis)

    xs = tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False, element_shape=[None, None, 3])
    phis = tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False, element_shape=[None, None, None])
    _, steps, _, _, _, lengths, xs, phis = tf.while_loop(
        lambda c, t, x, state, done, *_: tf.logical_and(t < max_steps, tf.logical_not(tf.reduce_all(done))),
        body,
        (tf.constant(0), tf.constant(0), x, state, done, lengths, xs, phis),
    )

    def stack(array, width):  # chunks of [K, B, width] -> [B, steps, width]; steps may be 0
        empty = lambda: tf.zeros([0, batch_size, width])
        return tf.transpose(tf.cond(array.size() > 0, array.concat, empty)[:steps], [1, 0, 2])

    offsets = stack(xs, 3)
    phi = stack(phis, u)
    return offsets, lengths, phi[:, :, :text_width] if model.conditional else phi


def prime_state(model: HandwritingModel, offsets, lengths, chars_onehot=None, char_mask=None):
    """Runs the model over priming offsets one step at a time.

    Args:
      offsets: `[B, P, 3]` normalised priming offsets, padded at the end.
      lengths: `[B]` real points in each (>= 1).

    Returns:
      `(state, last [B, 3])`: the state after all but each line's last
      priming point, and that last point: `sample_loop` feeds it first, so
      that every priming point is read exactly once.
    """
    batch = tf.shape(offsets)[0]
    state = model.stack.initial_state(batch)
    weights = model.stack.step_weights()
    offsets = tf.cast(offsets, tf.float32)
    steps = tf.shape(offsets)[1] - 1  # the last point is returned, not read
    # SAMPLE_CHUNK points at a time, each run of them one XLA function, as in
    # `sample_loop`; the points are padded to whole chunks, so that a prime of
    # any length reuses the same compiled chunk.
    chunks = (steps + SAMPLE_CHUNK - 1) // SAMPLE_CHUNK
    padded = tf.pad(offsets[:, :steps], [[0, 0], [0, chunks * SAMPLE_CHUNK - steps], [0, 0]])

    @tf.function(jit_compile=True)
    def chunk(t0, points, state, weights):
        def body(k, state):
            _, new_state, _ = model.step(points[:, k], state, chars_onehot, char_mask, weights)
            active = t0 + k < lengths - 1
            state = tf.nest.map_structure(lambda new, old: tf.where(active[:, None], new, old), new_state, state)
            return k + 1, state

        return tf.while_loop(lambda k, _: k < SAMPLE_CHUNK, body, (0, state))[1]

    def body(c, state):
        t0 = c * SAMPLE_CHUNK
        return c + 1, chunk(t0, padded[:, t0 : t0 + SAMPLE_CHUNK], state, weights)

    _, state = tf.while_loop(lambda c, _: c < chunks, body, (tf.constant(0), state))
    last = tf.gather(offsets, tf.maximum(lengths - 1, 0), batch_dims=1)
    return state, last


# The objects of a training checkpoint that hold the weights' moving average
# and its count of updates (`hwtf.train.Trainer`); a committed checkpoint
# leaves them out (`docs/save_stint.py`, `hwtf.packed.pack`).
EMA_AVERAGE, EMA_UPDATES = "ema", "ema_updates"
EMA_OBJECTS = (EMA_AVERAGE, EMA_UPDATES)
EMA_KEY = EMA_AVERAGE + "/"


def has_ema(path: str) -> bool:
    """Whether training checkpoint `path` holds a moving average of the weights."""
    return any(name.startswith(EMA_KEY) for name, _ in tf.train.list_variables(path))


def read_weights(model, path: str) -> bool:
    """Reads training checkpoint `path`'s weights into `model`: the moving
    average's where the run kept one (what it validated and exports), else
    the weights'. Returns whether it read the average."""
    ema = has_ema(path)
    tf.train.Checkpoint(**{EMA_AVERAGE if ema else "model": model}).read(path).assert_existing_objects_matched().expect_partial()
    return ema


def named_weights(model) -> dict:
    """The synthesis model's weights by `hwtf.jax_stint.weight_names`
    (`hwtf.unit_weights` tells which belong to which units)."""
    from hwtf.jax_stint import weight_names

    stack = model.stack
    if not stack.conditional:
        raise ValueError("only the synthesis model's weights are named (the JAX stint trains it alone)")
    named = {}
    for n in range(stack.lstm_layers):
        named[f"kernel_{n}"] = stack.kernels[n]
        named[f"recurrent_kernel_{n}"] = stack.recurrent_kernels[n]
        named[f"bias_{n}"] = stack.biases[n]
    named["window_kernel"], named["window_bias"] = stack.window.kernel, stack.window.bias
    named["head_kernel"], named["head_bias"] = model.head.dense.kernel, model.head.dense.bias
    assert sorted(named) == sorted(weight_names(stack.lstm_layers))
    return named
