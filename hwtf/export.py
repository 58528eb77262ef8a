"""The serving module: a SavedModel that turns text into strokes.

Loading it needs nothing but TensorFlow:

    model = tf.saved_model.load("saved_models/synthetic-demo")
    out = model.generate(text=tf.constant(["hello world"]), bias=tf.constant(0.5),
                         seed=tf.constant(1, tf.int64), max_steps=tf.constant(1200))
    out["strokes"]   # [batch, T, 3] (dx, dy, pen_up), original units, y up
    out["lengths"]   # [batch]
    out["phi"]       # [batch, T, U] attention over the characters

Signatures (synthesis models): `generate` (also `serving_default`),
`generate_primed`, `generate_best` (best of N candidates), `log_prob`,
`mixture`, `config`; (prediction models):
`scribble` (also `serving_default`), `log_prob`, `mixture`, `config`.

Characters outside the model's alphabet are written as the unknown character
(id 1), which the model was trained to read as "some rare character"; the
CLI names them in a warning. Texts are UTF-8.
"""

from __future__ import annotations

import os

from hwtf.precision import POLICIES


# The command, `python -m hwtf.export`, is defined above TensorFlow's import:
# run as a command this module parses and checks its flags, then imports itself
# as `hwtf.export` (TensorFlow and all) and never reaches the import below.
def define_flags() -> None:
    """`python -m hwtf.export --model=DIR [--out=DIR]`: re-export with this
    version's code (for example after a fix to sampling)."""
    from absl import flags

    flags.DEFINE_string("model", None, "An export of hwtf.", required=True)
    flags.DEFINE_string("out", None, "Where to write the new export (default: replace --model).")
    flags.DEFINE_enum("precision", "keep", ["keep", *POLICIES],
                      "The precision its graphs compute in (keep: the export's own).")
    flags.DEFINE_bool("restyle", False, "Write its built-in styles anew (default: keep them).")


def check_flags() -> None:
    """Refuses a `--model` that is not an export, before TensorFlow loads."""
    from absl import app, flags

    model = flags.FLAGS.model
    if not os.path.exists(os.path.join(model, "saved_model.pb")):
        raise app.UsageError(f"--model={model}: not an exported SavedModel directory")


def main(argv):
    from absl import app, flags, logging

    from hwtf.export import reexport

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    FLAGS = flags.FLAGS
    path = reexport(FLAGS.model, FLAGS.out, None if FLAGS.precision == "keep" else FLAGS.precision, FLAGS.restyle)
    logging.info("re-exported %s to %s", FLAGS.model, path)


if __name__ == "__main__":
    define_flags()
    from hwtf import cli

    cli.run(main, "hwtf.export", info=True, check=check_flags)  # exits

import tensorflow as tf  # noqa: E402

from hwtf.data.strokes import Alphabet
from hwtf.files import CONFIG_FILE, check_export_dir
from hwtf.model import HandwritingModel, ModelConfig, pad_chars, prime_state, sample_loop
from hwtf.writer import (DWELL_FLOOR, SCORE_FEATURES, SCORE_LINEAR, SCORE_SQUARE, STYLES_FILE,
                         UNFINISHED_PENALTY)

# The bound on a generated line's points per character of the longest text in
# its batch (plus 100), whatever `max_steps` asks: IAM-OnDB has about 22.
MAX_STEPS_PER_CHAR = 100
MODEL_CARD = "README.md"


class HandwritingModule(tf.Module):
    """Wraps a trained model, its alphabet and normalisation for serving."""

    def __init__(self, model: HandwritingModel, config: ModelConfig):
        super().__init__(name="handwriting")
        # Keras 3 variables wrap tf.Variables; tracking the tf.Variables
        # themselves lets TF1-style loaders (saved_model_cli run, TF Serving,
        # the C++ API) find and restore them (keras-team/keras#20095). The
        # Keras model is kept out of the tracked attributes, or every weight
        # would be saved twice.
        self.weights = [v.value for v in model.weights]
        self._keras_model = lambda: model
        self._config_json = config.to_json()
        self._conditional = config.model == "synthesis"
        normalizer = config.normalizer_lib
        self._mean = tf.constant(normalizer.mean, tf.float32)
        self._std = tf.constant(normalizer.std, tf.float32)
        if self._conditional:
            alphabet = config.alphabet_lib
            codepoints = [ord(c) for c in alphabet.chars]
            self._table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(codepoints, tf.int32),
                    tf.constant([int(alphabet.encode(c)[0]) for c in alphabet.chars], tf.int32),
                ),
                default_value=Alphabet.UNKNOWN,
            )
        # Only the signatures that fit the model's kind are traced and saved.
        names = ["generate", "generate_primed", "generate_best"] if self._conditional else ["scribble"]
        for name in names + ["log_prob", "mixture", "config"]:
            method = getattr(self, name)
            setattr(self, name, tf.function(method, input_signature=_SIGNATURES[name]))

    # -- helpers (traced into the signatures) -------------------------------

    def _encode(self, text):
        """`text [B]` strings -> ids `[B, U]`, lengths `[B]`."""
        codepoints = tf.strings.unicode_decode(text, "UTF-8", errors="replace")
        ids = tf.ragged.map_flat_values(self._table.lookup, codepoints)
        return ids.to_tensor(Alphabet.PAD), tf.cast(ids.row_lengths(), tf.int32)

    def _normalize(self, strokes):
        return tf.concat([(strokes[..., :2] - self._mean) / self._std, strokes[..., 2:]], -1)

    def _denormalize(self, offsets, lengths):
        mask = tf.sequence_mask(lengths, tf.shape(offsets)[1], dtype=tf.float32)[..., None]
        return tf.concat([offsets[..., :2] * self._std + self._mean, offsets[..., 2:]], -1) * mask

    @staticmethod
    def _seed(seed):
        return tf.stack([tf.cast(seed, tf.int64), tf.constant(0x6877, tf.int64)])

    def _start(self, batch):
        """The first input of an unprimed line: the offset (0, 0), normalised,
        as every training line starts."""
        return self._normalize(tf.zeros([batch, 3]))

    def _generate(self, text, bias, seed, max_steps, prime=None):
        check = tf.debugging.Assert(
            tf.math.is_finite(bias) & (bias >= 0.0), ["bias must be a finite number >= 0, got", bias]
        )
        with tf.control_dependencies([check]):  # before the bias is used
            bias = tf.identity(bias)
        chars, char_lengths = self._encode(text)
        batch = tf.shape(text)[0]
        # No call runs unbounded: at most MAX_STEPS_PER_CHAR points a character
        # of the longest text (real lines have about 22), whatever max_steps.
        longest = tf.reduce_max(tf.concat([char_lengths, [0]], 0))
        max_steps = tf.minimum(max_steps, MAX_STEPS_PER_CHAR * longest + 100)
        state, first = None, self._start(batch)
        extra = {}
        if prime is not None:
            prime_offsets, prime_lengths, prime_chars = prime
            chars_onehot, char_mask = self._keras_model().stack.encode_chars(
                pad_chars(chars), char_lengths
            )
            state, first = prime_state(self._keras_model(), prime_offsets, prime_lengths, chars_onehot, char_mask)
            # Where the attention stands as the prime's last point is read: the
            # centre of phi over the prime text, in characters. A prime whose
            # text is its ink's ends near len(prime_text); one labelled with a
            # longer text ends far short of it.
            _, _, phi = self._keras_model().step(first, state, chars_onehot, char_mask)
            on_prime = tf.sequence_mask(prime_chars, tf.shape(phi)[1], dtype=phi.dtype) * phi
            positions = tf.cast(tf.range(1, tf.shape(phi)[1] + 1), phi.dtype)
            extra["prime_position"] = tf.reduce_sum(on_prime * positions, 1) / tf.maximum(
                tf.reduce_sum(on_prime, 1), 1e-9
            )
        offsets, lengths, phi = sample_loop(
            self._keras_model(), batch, chars, char_lengths, bias, self._seed(seed), max_steps, state, first
        )
        return {"strokes": self._denormalize(offsets, lengths), "lengths": lengths, "phi": phi, **extra}

    # -- signatures ---------------------------------------------------------

    def generate(self, text, bias, seed, max_steps):
        """Writes each text; stops when the attention passes its last character."""
        return self._generate(text, bias, seed, max_steps)

    def generate_primed(self, text, prime_strokes, prime_text, bias, seed, max_steps):
        """Writes each text in the style of a priming line (Graves 2013, 5.5).

        `prime_strokes [B, P, 3]` are offsets in the data's units (y up) of a
        line that says `prime_text`; rows may be padded at the end with
        `(0, 0, 0)`. Each row's last point ends a stroke (its pen-up is set).
        Also returns `prime_position [B]`: where the attention stands over
        `prime_text` as the prime's last point is read (the centre of phi, in
        characters); far below `len(prime_text)`, the ink does not say its
        text (`hwtf.writer` refuses such a style). The model reads the priming line with the text
        `prime_text + " " + text` and then writes on; only the new strokes
        are returned.
        """
        checks = [
            tf.debugging.Assert(tf.shape(prime_strokes)[1] > 0, ["prime_strokes has no points"]),
            tf.debugging.Assert(
                tf.reduce_all(tf.math.is_finite(prime_strokes)), ["prime_strokes has non-finite values"]
            ),
        ]
        with tf.control_dependencies(checks):  # before anything reads the strokes
            prime_strokes = tf.identity(prime_strokes)
        nonzero = tf.reduce_any(tf.not_equal(prime_strokes, 0.0), -1)  # [B, P]
        positions = tf.range(1, tf.shape(prime_strokes)[1] + 1)
        prime_lengths = tf.reduce_max(tf.where(nonzero, positions[None, :], 0), -1)
        prime_lengths = tf.maximum(prime_lengths, 1)
        # A priming line ends with the pen lifted: a prime whose last point
        # has the pen down (one the model wrote and stopped mid-stroke, as
        # the built-in styles were) made it finish that stroke first, a stray
        # mark below and left of the new text.
        last = tf.one_hot(prime_lengths - 1, tf.shape(prime_strokes)[1], dtype=prime_strokes.dtype)  # [B, P]
        prime_strokes = tf.concat(
            [prime_strokes[..., :2], tf.maximum(prime_strokes[..., 2:], last[..., None])], -1
        )
        full_text = tf.strings.join([prime_text, text], separator=" ")
        prime_text_lengths = tf.strings.length(prime_text, unit="UTF8_CHAR") + 1
        prime_chars = prime_text_lengths - 1  # without the joining space
        result = self._generate(
            full_text, bias, seed, max_steps, prime=(self._normalize(prime_strokes), prime_lengths, prime_chars)
        )
        # The attention of the new strokes over each line's new text only: row
        # b's new text starts at its own prime text's length.
        new_lengths = tf.strings.length(text, unit="UTF8_CHAR")
        columns = prime_text_lengths[:, None] + tf.range(tf.reduce_max(new_lengths))[None, :]  # [B, U_new]
        full = result["phi"]
        columns = tf.minimum(columns, tf.shape(full)[2] - 1)
        phi = tf.gather(full, columns, axis=2, batch_dims=1)  # [B, T, U_new]
        keep = tf.sequence_mask(new_lengths, tf.shape(columns)[1], dtype=phi.dtype)
        result["phi"] = phi * keep[:, None, :]
        return result

    def generate_best(self, text, bias, seed, max_steps, candidates):
        """Writes each text `candidates` times in one batch and keeps, per
        text, the version the model's own signals rate best (`_score`):
        outputs as `generate`, plus `score [B]`. Text b's candidates are
        batch rows b*N .. b*N+N-1, so `candidates=1` is `generate`."""
        n = tf.maximum(candidates, 1)
        batch = tf.shape(text)[0]
        repeated = tf.repeat(text, n)
        out = self._generate(repeated, bias, seed, max_steps)
        score = self._score(out, repeated, max_steps)
        best = tf.argmax(tf.reshape(score, [batch, n]), 1, output_type=tf.int32)
        rows = tf.range(batch) * n + best
        lengths = tf.gather(out["lengths"], rows)
        steps = tf.reduce_max(tf.concat([lengths, [0]], 0))
        return {
            "strokes": tf.gather(out["strokes"], rows)[:, :steps],
            "lengths": lengths,
            "phi": tf.gather(out["phi"], rows)[:, :steps],
            "score": tf.gather(score, rows),
        }

    def _score(self, out, text, max_steps):
        """How legible each written line should be, from the model's own
        signals (higher is better): `hwtf.writer.candidate_score` of its
        `candidate_features`, computed in the graph. A quadratic in how
        firmly the attention rested on each character, the line's height
        over width per character, its points, pen lifts and width per
        character, its longest step, the most attention one character got
        against the median character's, and its ink per unit of width,
        fitted to Tesseract's readings of lines the shipped model wrote
        (docs/fit_best_of_n.py), less
        `UNFINISHED_PENALTY` for a line that ran to `max_steps`. The model's
        likelihood of its own ink rose with CER (+0.25), so it is not used."""
        lengths, phi, strokes = out["lengths"], out["phi"], out["strokes"]
        steps, chars_max = tf.shape(phi)[1], tf.shape(phi)[2]
        chars = tf.strings.length(text, unit="UTF8_CHAR")
        n_chars = tf.cast(tf.maximum(chars, 1), tf.float32)
        time_mask = tf.sequence_mask(lengths, steps, dtype=tf.float32)  # [R, T]
        char_mask = tf.sequence_mask(chars, chars_max, dtype=tf.float32)  # [R, U]
        valid = time_mask > 0
        points = tf.cumsum(strokes[..., :2], axis=1)
        big = tf.constant(1e9)
        span = (tf.reduce_max(tf.where(valid[..., None], points, -big), 1)
                - tf.reduce_min(tf.where(valid[..., None], points, big), 1))
        span = tf.maximum(tf.where(lengths[:, None] > 0, span, 1.0), 1e-6)  # [R, 2]: width, height
        step_length = tf.where(valid, tf.norm(strokes[..., :2], axis=-1), big)  # [R, T], padding last
        ordered = tf.sort(step_length, axis=1)
        median = tf.gather(ordered, tf.maximum(lengths - 1, 0) // 2, axis=1, batch_dims=1)
        longest = tf.reduce_max(tf.where(valid, step_length, 0.0), 1)
        lifts = tf.reduce_sum(strokes[..., 2] * time_mask, 1)
        # Each character's attention summed over the points, sorted, padding last.
        dwell = tf.sort(tf.where(char_mask > 0, tf.reduce_sum(phi * time_mask[..., None], 1) + DWELL_FLOOR, big), 1)
        last_char = tf.maximum(chars, 1) - 1
        dwell_spread = (tf.gather(dwell, last_char, axis=1, batch_dims=1)
                        / tf.gather(dwell, last_char // 2, axis=1, batch_dims=1))
        # A step is drawn when the pen was down at the point before it.
        drawn = tf.reduce_sum(tf.norm(strokes[:, 1:, :2], axis=-1) * time_mask[:, 1:]
                              * tf.cast(strokes[:, :-1, 2] < 0.5, tf.float32), 1)
        features = {
            "peak": tf.reduce_sum(tf.reduce_max(phi * time_mask[..., None], 1) * char_mask, 1) / n_chars,
            "log_aspect": tf.math.log(span[:, 1] / (span[:, 0] / n_chars)),
            "log_points_per_char": tf.math.log(tf.maximum(tf.cast(lengths, tf.float32), 1.0) / n_chars),
            "log_strokes_per_char": tf.math.log(tf.maximum(lifts, 1.0) / n_chars),
            "log_width_per_char": tf.math.log(span[:, 0] / n_chars),
            "log_longest_step": tf.math.log(tf.maximum(longest, 1e-6) / tf.maximum(median, 1e-6)),
            "log_dwell_spread": tf.math.log(dwell_spread),
            "log_ink_per_width": tf.math.log(tf.maximum(drawn, 1e-6) / span[:, 0]),
        }
        score = tf.add_n([SCORE_LINEAR[k] * features[k] + SCORE_SQUARE[k] * tf.square(features[k])
                          for k in SCORE_FEATURES])
        score -= UNFINISHED_PENALTY * tf.cast(lengths >= max_steps, tf.float32)
        return tf.where(tf.math.is_finite(score) & (lengths > 0), score, -1e9)

    def scribble(self, num_steps, bias, seed):
        """Unconditional handwriting (prediction models): `num_steps` points."""
        offsets, lengths, _ = sample_loop(
            self._keras_model(), 1, None, None, bias, self._seed(seed), num_steps, first_input=self._start(1)
        )
        return {"strokes": self._denormalize(offsets, lengths), "lengths": lengths}

    def log_prob(self, strokes, lengths, text):
        """Log-likelihood of lines in nats, over normalised offsets (the
        training units, as in Graves's tables): `log_prob [B]` per line and
        `points [B]`, the predicted points (all but the first)."""
        from hwtf import distributions

        offsets = self._normalize(strokes)
        chars = char_lengths = None
        if self._conditional:
            chars, char_lengths = self._encode(text)
        out = self._keras_model()(offsets[:, :-1], chars, char_lengths)
        params = distributions.split_head(out["head"])
        offset_lp, pen_lp = distributions.log_prob(params, offsets[:, 1:])
        mask = tf.sequence_mask(lengths - 1, tf.shape(offsets)[1] - 1, dtype=tf.float32)
        return {
            "log_prob": tf.reduce_sum((offset_lp + pen_lp) * mask, 1),
            "points": tf.reduce_sum(mask, 1),
        }

    def mixture(self, strokes, lengths, text):
        """The predicted distribution of each next offset, in the data's units:
        after point t of each line, mixture `weights [B, T, M]`, `mu` and
        `sigma [B, T, M, 2]`, `rho [B, T, M]`, and `pen_up [B, T]` (the
        probability that the next point ends a stroke). Zero past `lengths`.
        For Graves's density figure (`hwtf.render.plot_density`)."""
        from hwtf import distributions

        offsets = self._normalize(strokes)
        chars = char_lengths = None
        if self._conditional:
            chars, char_lengths = self._encode(text)
        params = distributions.split_head(self._keras_model()(offsets, chars, char_lengths)["head"])
        mask = tf.sequence_mask(lengths, tf.shape(offsets)[1], dtype=tf.float32)
        return {
            "weights": tf.nn.softmax(params.pi_logits) * mask[..., None],
            "mu": (params.mu * self._std + self._mean) * mask[..., None, None],
            "sigma": params.sigma * self._std * mask[..., None, None],
            "rho": params.rho * mask[..., None],
            "pen_up": tf.sigmoid(params.pen_logit) * mask,
        }

    def config(self):
        """The model's configuration as JSON (sizes, alphabet, normalisation)."""
        return {"config": tf.constant(self._config_json)}


_SIGNATURES = {
    "generate": [
        tf.TensorSpec([None], tf.string, name="text"),
        tf.TensorSpec([], tf.float32, name="bias"),
        tf.TensorSpec([], tf.int64, name="seed"),
        tf.TensorSpec([], tf.int32, name="max_steps"),
    ],
    "generate_best": [
        tf.TensorSpec([None], tf.string, name="text"),
        tf.TensorSpec([], tf.float32, name="bias"),
        tf.TensorSpec([], tf.int64, name="seed"),
        tf.TensorSpec([], tf.int32, name="max_steps"),
        tf.TensorSpec([], tf.int32, name="candidates"),
    ],
    "generate_primed": [
        tf.TensorSpec([None], tf.string, name="text"),
        tf.TensorSpec([None, None, 3], tf.float32, name="prime_strokes"),
        tf.TensorSpec([None], tf.string, name="prime_text"),
        tf.TensorSpec([], tf.float32, name="bias"),
        tf.TensorSpec([], tf.int64, name="seed"),
        tf.TensorSpec([], tf.int32, name="max_steps"),
    ],
    "scribble": [
        tf.TensorSpec([], tf.int32, name="num_steps"),
        tf.TensorSpec([], tf.float32, name="bias"),
        tf.TensorSpec([], tf.int64, name="seed"),
    ],
    "log_prob": [
        tf.TensorSpec([None, None, 3], tf.float32, name="strokes"),
        tf.TensorSpec([None], tf.int32, name="lengths"),
        tf.TensorSpec([None], tf.string, name="text"),
    ],
    "mixture": [
        tf.TensorSpec([None, None, 3], tf.float32, name="strokes"),
        tf.TensorSpec([None], tf.int32, name="lengths"),
        tf.TensorSpec([None], tf.string, name="text"),
    ],
    "config": [],
}


def _build_in(config: ModelConfig, precision: str) -> HandwritingModel:
    """A fresh model of `config` whose layers compute in `precision`."""
    import keras

    if precision not in POLICIES:
        raise ValueError(f"precision must be one of {POLICIES}, got {precision!r}")
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        return config.build_model()
    finally:
        keras.mixed_precision.set_global_policy(policy)


def _copy_weights(model: HandwritingModel, weights, source: str) -> None:
    if len(model.weights) != len(weights):
        raise ValueError(f"{source} holds {len(weights)} weights; its configuration needs {len(model.weights)}")
    for variable, value in zip(model.weights, weights):
        if tuple(variable.shape) != tuple(value.shape):
            raise ValueError(f"{source}: weight {variable.path} has shape {tuple(value.shape)}, "
                             f"expected {tuple(variable.shape)}")
        variable.assign(value)


def export(model: HandwritingModel, config: ModelConfig, export_dir: str, precision: str = "float32",
           styles_from: str | None = None) -> str:
    """Saves a SavedModel of `model` to `export_dir` (replaced if present).

    Its graphs compute in `precision`, whatever `model` trained in (the
    weights are float32 either way): float32 by default, as an export moves
    between hosts, and bfloat16 is emulated, twice as slow a sampling step,
    on a CPU without AMX or AVX-512 BF16 (`hwtf.precision`).

    Written to a sibling temporary folder first and moved into place, so an
    interrupted export never leaves a half-written model where one was.
    A synthesis export also gets its built-in priming styles (`hwtf.styles`),
    or those of the export at `styles_from`; a model card (`README.md`) in
    the folder it replaces is kept.
    """
    import shutil

    from hwtf import styles
    from hwtf.writer import Writer

    check_export_dir(export_dir)
    if model.stack.compute_dtype != ("bfloat16" if precision == "mixed_bfloat16" else "float32"):
        rebuilt = _build_in(config, precision)
        _copy_weights(rebuilt, model.weights, "the model")
        model = rebuilt
    module = HandwritingModule(model, config)
    if config.model == "synthesis":
        signatures = {
            "serving_default": module.generate,
            "generate": module.generate,
            "generate_primed": module.generate_primed,
            "generate_best": module.generate_best,
        }
    else:
        signatures = {"serving_default": module.scribble, "scribble": module.scribble}
    signatures.update(log_prob=module.log_prob, mixture=module.mixture, config=module.config)
    export_dir = os.path.abspath(export_dir)
    tmp = export_dir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tf.saved_model.save(module, tmp, signatures=signatures)
    config.save(os.path.join(tmp, CONFIG_FILE))
    kept = styles_from and os.path.join(styles_from, STYLES_FILE)
    if kept and os.path.isfile(kept):
        shutil.copy2(kept, os.path.join(tmp, STYLES_FILE))
    elif config.model == "synthesis":
        styles.save_styles(tmp, styles.make_styles(Writer(module, config)))
    # A model card written beside the weights (README.md) stays with them.
    card = os.path.join(export_dir, MODEL_CARD)
    if os.path.isfile(card):
        shutil.copy2(card, os.path.join(tmp, MODEL_CARD))
    old = export_dir + ".old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(export_dir):
        os.replace(export_dir, old)
    os.replace(tmp, export_dir)
    shutil.rmtree(old, ignore_errors=True)
    return export_dir


def computes_in_bfloat16(export_dir: str) -> bool:
    """Whether an export's graphs compute in bfloat16 (it was exported under
    the mixed_bfloat16 policy, as `hwtf.train --precision=mixed_bfloat16`
    exports)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    bfloat16 = tf.bfloat16.as_datatype_enum
    return any(
        value.type == bfloat16 or bfloat16 in value.list.type
        for graph in saved.meta_graphs
        for function in graph.graph_def.library.function
        for node in function.node_def
        for value in node.attr.values()
    )


def reexport(source: str, export_dir: str | None = None, precision: str | None = None,
             restyle: bool = False) -> str:
    """Exports an exported model again with this version's code: its weights
    and configuration, read from the SavedModel, in a freshly traced module
    (the signatures' graphs are fixed at export, so a fix to sampling reaches
    an old export only this way), at the precision it was exported in, or at
    `precision` ("float32" or "mixed_bfloat16": the weights are float32
    either way). Its styles are kept (the README's pictures prime with them;
    `python -m hwtf.styles` rewrites them), or written anew with
    `restyle`; the model card is kept, or copied to `export_dir`. `export_dir` defaults to
    `source` (replaced in place)."""
    config = ModelConfig.load(os.path.join(source, CONFIG_FILE))
    loaded = tf.saved_model.load(source)
    if precision is None:
        precision = "mixed_bfloat16" if computes_in_bfloat16(source) else "float32"
    model = _build_in(config, precision)
    _copy_weights(model, loaded.weights, source)
    # In place too: the new export is written beside the source, then swapped.
    path = export(model, config, export_dir or source, precision, styles_from=None if restyle else source)
    # The same weights, so the same model card, wherever the export went.
    card = os.path.join(source, MODEL_CARD)
    if os.path.isfile(card) and not os.path.isfile(os.path.join(path, MODEL_CARD)):
        import shutil

        shutil.copy2(card, os.path.join(path, MODEL_CARD))
    return path
