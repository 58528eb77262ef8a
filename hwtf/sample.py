"""`python -m hwtf.sample`: text in, handwriting out (SVG or PNG).

    python -m hwtf.sample --text="hello world" --out=hello.svg
    python -m hwtf.sample --text="$(cat letter.txt)" --width=40 --bias=1 --out=page.png
    python -m hwtf.sample --text="in my hand" --style=mine.json --out=mine.png

The model is a SavedModel exported by `hwtf.train` (default: the shipped
demo model). Long texts are wrapped at `--width` characters and laid out as a
page, one generated line per text line. Characters outside the model's
alphabet are written as its unknown character, with a warning naming them.
"""

from __future__ import annotations

import json
import os
import textwrap

from absl import app, flags, logging

FLAGS = flags.FLAGS

DEFAULT_MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models", "synthetic-demo")


def define_flags() -> None:
    """The command's flags; defined when it runs, not on import, so that the
    library parts of several commands can share one process (tests)."""
    flags.DEFINE_string("model", DEFAULT_MODEL, "SavedModel directory exported by hwtf.train.")
    flags.DEFINE_string("text", "hello world", "Text to write.")
    flags.DEFINE_float("bias", 0.5, "Sampling bias (Graves 5.4): 0 = as trained, larger = neater.")
    flags.DEFINE_integer("seed", 0, "Random seed; the same seed writes the same strokes.")
    flags.DEFINE_string("style", None, "Priming line: a JSON file {\"text\": ..., \"strokes\": [[[x, y], ...], ...]} (y up).")
    flags.DEFINE_string("out", "handwriting.svg", "Output file: .svg or .png.")
    flags.DEFINE_integer("width", 60, "Wrap the text into lines of at most this many characters.")
    flags.DEFINE_integer("steps_per_char", 40, "Bound on points per character (max_steps = this x characters + 40).")
    flags.DEFINE_string("plot_attention", None, "Also write the attention figure (phi over time) of the first line here (.png).")
    flags.DEFINE_string("plot_density", None, "Also write Graves's density figure of the first line here (.png).")
    flags.DEFINE_float("stroke_width", 2.0, "Stroke width (SVG units / points).")
    flags.DEFINE_string("colour", "black", "Stroke colour.")


def load_style(path: str):
    """A priming line from JSON: `(text, offsets [P, 3])` in the data's units."""
    import numpy as np

    from hwtf.data.strokes import strokes_to_offsets

    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict) or "strokes" not in data or not data.get("text", "").strip():
        raise ValueError(f"{path}: a style needs 'text' (non-empty) and 'strokes'")
    strokes = [np.asarray(s, np.float32).reshape(-1, 2) for s in data["strokes"]]
    offsets = strokes_to_offsets(strokes)
    if len(offsets) < 10 or len(strokes) < 2:
        raise ValueError(f"{path}: a style needs at least 2 strokes and 10 points, got {len(strokes)} and {len(offsets)}")
    return data["text"], offsets


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

    from hwtf import render
    from hwtf.model import ModelConfig

    if not os.path.isdir(FLAGS.model):
        raise app.UsageError(f"--model={FLAGS.model}: no such SavedModel directory")
    ext = os.path.splitext(FLAGS.out)[1].lower()
    if ext not in (".svg", ".png"):
        raise app.UsageError(f"--out={FLAGS.out}: expected a .svg or .png file")
    model = tf.saved_model.load(FLAGS.model)
    config = ModelConfig.from_json(model.config()["config"].numpy().decode())
    if config.model != "synthesis":
        raise app.UsageError(f"{FLAGS.model} is a {config.model} model; hwtf.sample needs a synthesis model")
    lines = textwrap.wrap(FLAGS.text, FLAGS.width) or [""]
    unknown = config.alphabet_lib.unknown_chars(FLAGS.text)
    if unknown:
        logging.warning("characters outside the model's alphabet, written as 'unknown': %r", unknown)
    try:
        style = load_style(FLAGS.style) if FLAGS.style else None
    except (OSError, ValueError) as e:
        raise app.UsageError(f"--style: {e}") from e

    strokes, phis = write(model, lines, FLAGS.bias, FLAGS.seed, FLAGS.steps_per_char, style)
    page = layout_page(strokes)
    if not page:
        raise app.UsageError("nothing was written (empty text?)")
    if ext == ".svg":
        render.strokes_to_svg(page, FLAGS.out, stroke_width=FLAGS.stroke_width, colour=FLAGS.colour)
    else:
        render.save_png(page, FLAGS.out, linewidth=FLAGS.stroke_width, colour=FLAGS.colour)
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
