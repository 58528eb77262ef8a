"""`python -m hwtf.sample`: text in, handwriting out (SVG, PNG, InkML or JSON).

    python -m hwtf.sample --text="hello world" --out=hello.svg
    python -m hwtf.sample --text="$(cat letter.txt)" --width=40 --bias=1 --out=page.png
    python -m hwtf.sample --text="hello world" --style=2 --out=hello.png
    python -m hwtf.sample --text="in my hand" --style_file=mine.inkml --style_text="what I wrote" --out=mine.png

The model is a SavedModel exported by `hwtf.train` (default: the shipped
IAM-OnDB model, `saved_models/iamondb-synthesis`, else the synthetic demo).
Long texts are wrapped at `--width` characters and laid out as a page, one
generated line per text line. Characters outside the model's
alphabet are written as its unknown character, with a warning naming them.
`--out=page.inkml` or `--out=page.json` writes the ink itself (`hwtf.inkml`),
with the text as its truth annotation.

`--style=N` writes in the model's built-in style N: a line the model wrote
itself, stored beside it (`hwtf.styles`), which primes it (Graves 2013,
section 5.5). Writing in your own hand: `--style_file` is one line of your
handwriting, as InkML or as hwtf's JSON form (`hwtf.inkml`), and
`--style_text` what it says (else the file's truth annotation / "text"). The
model reads it, then writes `--text` on in the same hand. Your ink is first
brought to the training data's scale and density (`normalise_style`).
"""

from __future__ import annotations

import os
import textwrap

from absl import app, flags, logging

FLAGS = flags.FLAGS

# The training data's points per character: IAM-OnDB and the synthetic set
# both have about 22 (README, "Data"). With the normalizer's mean dx (the x
# advance per point) it gives the training data's character width.
POINTS_PER_CHAR = 22.0
# The training data's median pen-down step over the root mean square of the
# normalizer's std (dx, dy): 18.2 / 31.4 = 0.58 on the synthetic set. The std
# is over all offsets, pen-up jumps included, so the ratio is a property of
# handwriting at IAM-OnDB density rather than an identity.
STEP_PER_STD = 0.58
# A style whose median step (after scaling) is off the training data's by more
# than this factor, either way, is resampled along each stroke.
RESAMPLE_FACTOR = 1.5
MIN_STYLE_POINTS = 10
MIN_STYLE_STROKES = 2

SAVED_MODELS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models")
# The shipped model, trained on IAM-OnDB (non-commercial research use only,
# saved_models/iamondb-synthesis/README.md); the tiny synthetic demo model
# where that one is absent (an install without it).
DEFAULT_MODEL = next(
    (path for path in (os.path.join(SAVED_MODELS, name) for name in ("iamondb-synthesis", "synthetic-demo"))
     if os.path.exists(os.path.join(path, "saved_model.pb"))),
    os.path.join(SAVED_MODELS, "iamondb-synthesis"),
)


def define_flags() -> None:
    """The command's flags; defined when it runs, not on import, so that the
    library parts of several commands can share one process (tests)."""
    flags.DEFINE_string("model", DEFAULT_MODEL, "SavedModel directory exported by hwtf.train.")
    flags.DEFINE_string("text", "hello world", "Text to write.")
    flags.DEFINE_float("bias", 0.5, "Sampling bias (Graves 5.4): 0 = as trained, larger = neater.")
    flags.DEFINE_integer("seed", 0, "Random seed; the same seed writes the same strokes.")
    flags.DEFINE_string("style_file", None, "A line of your handwriting to write in the style of: .inkml, or JSON "
                        "{\"text\": ..., \"strokes\": [[[x, y], ...], ...]} with y up (see hwtf.inkml).")
    flags.DEFINE_integer("style", None, "Write in the model's built-in style N (hwtf.styles; its styles.json holds them).")
    flags.DEFINE_string("style_text", None, "What --style_file says (default: its truth annotation or \"text\").")
    flags.DEFINE_string("out", "handwriting.svg", "Output file: .svg or .png picture, or .inkml or .json ink.")
    flags.DEFINE_integer("width", 60, "Wrap the text into lines of at most this many characters.")
    flags.DEFINE_integer("steps_per_char", 40, "Bound on points per character (max_steps = this x characters + 40).")
    flags.DEFINE_string("plot_attention", None, "Also write the attention figure (phi over time) of the first line here (.png).")
    flags.DEFINE_string("plot_density", None, "Also write Graves's density figure of the first line here (.png).")
    flags.DEFINE_float("stroke_width", 2.0, "Stroke width (SVG units / points).")
    flags.DEFINE_string("colour", "black", "Stroke colour.")


def resample_stroke(stroke, spacing: float):
    """A stroke `[n, 2]` resampled at equal arc-length `spacing` (ends kept,
    repeated points dropped): `[m, 2]`, m = round(length / spacing) + 1, at
    least 2; a stroke without length stays one point."""
    import numpy as np

    steps = np.hypot(*np.diff(stroke, axis=0).T)  # [n - 1]
    stroke = stroke[np.concatenate([[True], steps > 0])]  # repeated points add nothing
    if len(stroke) < 2:
        return stroke
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(stroke, axis=0).T))])  # [n]
    at = np.linspace(0.0, arc[-1], max(2, int(round(arc[-1] / spacing)) + 1))
    return np.stack([np.interp(at, arc, stroke[:, 0]), np.interp(at, arc, stroke[:, 1])], 1).astype(np.float32)


def normalise_style(strokes, text: str | None, config):
    """Brings a line of the user's ink to the training data's scale and density.

    The rule (all training figures come from the model's normalizer, the one
    source of truth, and two constants of this module):

    1. Size: the ink is scaled, x and y alike (slant and proportions are
       kept), so that its width per character, `x extent / len(text)`, is the
       training data's, `POINTS_PER_CHAR x mean dx`.
    2. Density: the training data's typical (median) pen-down step is
       `STEP_PER_STD x rms(std dx, std dy)`. When the scaled ink's median step
       is more than `RESAMPLE_FACTOR` times larger or smaller (a tablet that
       samples densely, a web canvas that samples sparsely, repeated points),
       each stroke is resampled at that step along its arc length; otherwise
       the points are kept as written, speed variations and all.

    Args:
      strokes: the ink, float `[n_i, 2]` per stroke, y up, any units.
      text: what it says.
      config: the model's `ModelConfig` (alphabet and normalizer).

    Returns:
      `(text, offsets [P, 3])`, offsets in the training data's units.

    Raises:
      ValueError: no text, characters outside the model's alphabet (named),
        fewer than `MIN_STYLE_STROKES` strokes or `MIN_STYLE_POINTS` points, no
        width.
    """
    import numpy as np

    from hwtf.data.strokes import strokes_to_offsets

    text = (text or "").strip()
    if not text:
        raise ValueError("a style needs 'text', what the ink says: give --style_text, a truth annotation "
                         "(InkML) or \"text\" (JSON)")
    unknown = config.alphabet_lib.unknown_chars(text)
    if unknown:
        raise ValueError(f"the style's text {text!r} has characters outside the model's alphabet: "
                         f"{', '.join(map(repr, unknown))} (the model knows {config.alphabet!r})")
    strokes = [np.asarray(s, np.float32).reshape(-1, 2) for s in strokes]
    strokes = [s for s in strokes if len(s)]
    points = sum(len(s) for s in strokes)
    if len(strokes) < MIN_STYLE_STROKES or points < MIN_STYLE_POINTS:
        raise ValueError(
            f"a style needs at least {MIN_STYLE_STROKES} strokes and {MIN_STYLE_POINTS} points, got "
            f"{len(strokes)} stroke(s) and {points} point(s) (a line of writing lifts the pen between letters or words)"
        )
    width = float(np.ptp(np.concatenate(strokes)[:, 0]))
    normalizer = config.normalizer_lib
    if not width > 0:
        raise ValueError("the style's ink has no width (all points at one x)")
    if not normalizer.mean[0] > 0:
        raise ValueError(f"the model's normalizer has mean dx {normalizer.mean[0]}; a left-to-right hand has > 0")
    scale = POINTS_PER_CHAR * normalizer.mean[0] / (width / len(text))
    strokes = [s * np.float32(scale) for s in strokes]
    step = STEP_PER_STD * float(np.sqrt(np.mean(np.square(normalizer.std))))
    steps = np.concatenate([np.hypot(*np.diff(s, axis=0).T) for s in strokes])
    median = float(np.median(steps)) if len(steps) else 0.0
    resample = not step / RESAMPLE_FACTOR <= median <= step * RESAMPLE_FACTOR
    if resample:
        strokes = [resample_stroke(s, step) for s in strokes]
    offsets = strokes_to_offsets(strokes)
    logging.info(
        "style %r: scaled by %.3g; median step %.1f against the training data's %.1f: %s; %d points, %.1f a character",
        text, scale, median, step, "resampled" if resample else "kept", len(offsets), len(offsets) / len(text),
    )
    return text, offsets


def load_style(path: str, config, text: str | None = None):
    """A priming line from an InkML or JSON file (`hwtf.inkml.read_ink`),
    normalised for the model (`normalise_style`): `(text, offsets [P, 3])`.
    `text` (what the ink says) overrides the file's own."""
    from hwtf import inkml

    strokes, file_text = inkml.read_ink(path)
    try:
        return normalise_style(strokes, text or file_text, config)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def write(model, lines: list[str], bias: float, seed: int, steps_per_char: int, style=None):
    """Generates one stroke sequence per line of text.

    Returns:
      `(strokes, phis)`: per line, absolute strokes (list of `[n, 2]`, y up)
      and the attention `[T, U]`.
    """
    import numpy as np
    import tensorflow as tf

    from hwtf.data.strokes import offsets_to_strokes

    max_steps = steps_per_char * max(len(t) for t in lines) + 40
    common = dict(
        text=tf.constant(lines), bias=tf.constant(bias, tf.float32),
        seed=tf.constant(seed, tf.int64), max_steps=tf.constant(max_steps, tf.int32),
    )
    if style is None:
        out = model.generate(**common)
    else:
        style_text, offsets = style
        out = model.generate_primed(
            prime_strokes=tf.constant(np.repeat(offsets[None], len(lines), 0)),
            prime_text=tf.constant([style_text] * len(lines)),
            **common,
        )
    lengths = out["lengths"].numpy()
    strokes = [offsets_to_strokes(out["strokes"].numpy()[i, : lengths[i]]) for i in range(len(lines))]
    phis = [out["phi"].numpy()[i, : lengths[i], : len(lines[i])] for i in range(len(lines))]
    return strokes, phis


def write_density(model, strokes, text: str, path: str) -> None:
    """Graves's density figure of one written line, from the export's
    `mixture` signature."""
    import tensorflow as tf

    from hwtf import render
    from hwtf.data.strokes import strokes_to_offsets

    offsets = strokes_to_offsets(strokes)
    out = model.mixture(
        strokes=tf.constant(offsets[None]), lengths=tf.constant([len(offsets)]), text=tf.constant([text])
    )
    params = {k: v.numpy()[0] for k, v in out.items()}
    render.plot_density(offsets, params["weights"], params["mu"], params["sigma"], params["rho"], path)


def layout_page(lines_strokes, line_height: float | None = None):
    """Stacks lines of strokes top to bottom, left-aligned, as a page."""
    import numpy as np

    heights = [np.ptp(np.concatenate(s)[:, 1]) for s in lines_strokes if s]
    step = line_height or (1.6 * float(np.median(heights)) if heights else 1.0)
    page = []
    for i, strokes in enumerate(lines_strokes):
        if not strokes:
            continue
        points = np.concatenate(strokes)
        shift = np.array([-points[:, 0].min(), -points[:, 1].mean() - i * step], np.float32)
        page.extend(s + shift for s in strokes)
    return page


def main(argv):
    del argv
    import tensorflow as tf

    from hwtf import inkml, render
    from hwtf.model import ModelConfig

    if not os.path.isdir(FLAGS.model):
        raise app.UsageError(f"--model={FLAGS.model}: no such SavedModel directory")
    ext = os.path.splitext(FLAGS.out)[1].lower()
    if ext not in (".svg", ".png", ".inkml", ".json"):
        raise app.UsageError(f"--out={FLAGS.out}: expected a .svg or .png picture, or .inkml or .json ink")
    model = tf.saved_model.load(FLAGS.model)
    config = ModelConfig.from_json(model.config()["config"].numpy().decode())
    if config.model != "synthesis":
        raise app.UsageError(f"{FLAGS.model} is a {config.model} model; hwtf.sample needs a synthesis model")
    lines = textwrap.wrap(FLAGS.text, FLAGS.width) or [""]
    unknown = config.alphabet_lib.unknown_chars(FLAGS.text)
    if unknown:
        logging.warning("characters outside the model's alphabet, written as 'unknown': %r", unknown)
    if FLAGS.style is not None and FLAGS.style_file:
        raise app.UsageError("give --style (a built-in style) or --style_file (your ink), not both")
    style = None
    if FLAGS.style is not None:
        from hwtf import styles

        try:
            style = styles.get_style(FLAGS.model, FLAGS.style)
        except ValueError as e:
            raise app.UsageError(f"--style={FLAGS.style}: {e}") from e
    elif FLAGS.style_file:
        try:
            style = load_style(FLAGS.style_file, config, FLAGS.style_text)
        except (OSError, ValueError) as e:
            raise app.UsageError(f"--style_file: {e}") from e

    strokes, phis = write(model, lines, FLAGS.bias, FLAGS.seed, FLAGS.steps_per_char, style)
    page = layout_page(strokes)
    if not page:
        raise app.UsageError("nothing was written (empty text?)")
    if ext == ".svg":
        render.strokes_to_svg(page, FLAGS.out, stroke_width=FLAGS.stroke_width, colour=FLAGS.colour)
    elif ext == ".inkml":
        inkml.write_inkml(page, FLAGS.out, text=FLAGS.text)
    elif ext == ".json":
        inkml.write_json(page, FLAGS.out, text=FLAGS.text)
    else:
        render.save_png(page, FLAGS.out, height_px=120 * len(lines) + 40, linewidth=FLAGS.stroke_width, colour=FLAGS.colour)
    logging.info("wrote %d line(s) to %s", len(lines), FLAGS.out)
    if FLAGS.plot_attention:
        render.plot_attention(phis[0], lines[0], strokes[0], FLAGS.plot_attention)
        logging.info("wrote the attention figure to %s", FLAGS.plot_attention)
    if FLAGS.plot_density:
        write_density(model, strokes[0], lines[0], FLAGS.plot_density)
        logging.info("wrote the density figure to %s", FLAGS.plot_density)


if __name__ == "__main__":
    define_flags()
    app.run(main)
