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
brought to the training data's scale and density
(`hwtf.writer.normalise_style`). The writing itself is `hwtf.writer`'s.
"""

from __future__ import annotations

import os
import tempfile

from absl import app, flags, logging

from hwtf.writer import DEFAULT_BIAS, DEFAULT_CANDIDATES, DEFAULT_MODEL, STEPS_PER_CHAR

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command's flags; defined when it runs, not on import, so that the
    library parts of several commands can share one process (tests)."""
    flags.DEFINE_string("model", DEFAULT_MODEL, "SavedModel directory exported by hwtf.train.")
    flags.DEFINE_string("text", "hello world", "Text to write.")
    flags.DEFINE_float("bias", DEFAULT_BIAS, "Sampling bias (Graves 5.4): 0 = as trained, larger = neater.")
    flags.DEFINE_integer("seed", 0, "Random seed; the same seed writes the same strokes.")
    flags.DEFINE_string("style_file", None, "A line of your handwriting to write in the style of: .inkml, or JSON "
                        "{\"text\": ..., \"strokes\": [[[x, y], ...], ...]} with y up (see hwtf.inkml).")
    flags.DEFINE_integer("style", None, "Write in the model's built-in style N (hwtf.styles; its styles.json holds them).")
    flags.DEFINE_string("style_text", None, "What --style_file says (default: its truth annotation or \"text\").")
    flags.DEFINE_bool("check_style", True, "Refuse a style whose ink the model does not read as its text "
                      "(--nocheck_style writes anyway, e.g. with an untrained model).")
    flags.DEFINE_integer("candidates", DEFAULT_CANDIDATES, "Write each line this many times and keep the version "
                         "the model rates best (best of N; with a style too).")
    flags.DEFINE_string("out", "handwriting.svg", "Output file: .svg or .png picture, or .inkml or .json ink.")
    flags.DEFINE_integer("width", 60, "Wrap the text into lines of at most this many characters.")
    flags.DEFINE_integer("steps_per_char", STEPS_PER_CHAR, "Bound on points per character (max_steps = this x characters + 40).")
    flags.DEFINE_string("plot_attention", None, "Also write the attention figure (phi over time) of the first line here (.png).")
    flags.DEFINE_string("plot_density", None, "Also write Graves's density figure of the first line here (.png).")
    flags.DEFINE_float("stroke_width", 2.0, "Stroke width (SVG units / points).")
    flags.DEFINE_string("colour", "black", "Stroke colour.")


def _check_output(flag: str, path: str) -> None:
    """Creates `path`'s folder, and refuses a path that cannot be written,
    before anything is generated."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise app.UsageError(f"--{flag}={path}: cannot create its folder ({e.strerror})") from e
    if os.path.isdir(path):
        raise app.UsageError(f"--{flag}={path}: is a folder; give a file name")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise app.UsageError(f"--{flag}={path}: not writable (the file is read-only)")
    # Files are written beside their path and renamed into place
    # (`files.atomic_write`), so the folder must take a new file: try one, as
    # os.access says yes to root even on a read-only file system.
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".hwtf-probe-")
    except OSError as e:
        raise app.UsageError(f"--{flag}={path}: not writable ({e.strerror} in {folder})") from e
    os.close(fd)
    os.unlink(probe)


def check_flags() -> None:
    """Refuses flag values that cannot write, in one line naming the flag,
    before the model is loaded."""
    import math

    from matplotlib.colors import is_color_like

    ext = os.path.splitext(FLAGS.out)[1].lower()
    if ext not in (".svg", ".png", ".inkml", ".json"):
        raise app.UsageError(f"--out={FLAGS.out}: expected a .svg or .png picture, or .inkml or .json ink")
    if FLAGS.style is not None and FLAGS.style_file:
        raise app.UsageError("give --style (a built-in style) or --style_file (your ink), not both")
    if not (math.isfinite(FLAGS.bias) and FLAGS.bias >= 0):
        raise app.UsageError(f"--bias={FLAGS.bias}: must be a number from 0 (as trained) up")
    if not -(2**63) <= FLAGS.seed < 2**63:
        raise app.UsageError(f"--seed={FLAGS.seed}: must fit in 64 bits (-2**63 to 2**63 - 1)")
    from hwtf.writer import MAX_LINE_CHARS

    if FLAGS.width > MAX_LINE_CHARS:
        raise app.UsageError(f"--width={FLAGS.width}: a line may have at most {MAX_LINE_CHARS} characters")
    for name in ("width", "steps_per_char", "candidates"):
        if getattr(FLAGS, name) is not None and getattr(FLAGS, name) < 1:
            raise app.UsageError(f"--{name}={getattr(FLAGS, name)}: must be at least 1")
    if not (math.isfinite(FLAGS.stroke_width) and FLAGS.stroke_width > 0):
        raise app.UsageError(f"--stroke_width={FLAGS.stroke_width}: must be a positive number")
    if not is_color_like(FLAGS.colour):
        raise app.UsageError(f"--colour={FLAGS.colour}: not a colour (a name such as 'navy', or '#1f3a93')")
    check_model(FLAGS.model)
    if FLAGS.style is not None:  # the export's styles.json, read without TensorFlow
        from hwtf.writer import get_style

        try:
            get_style(FLAGS.model, FLAGS.style)
        except ValueError as e:
            raise app.UsageError(f"--style={FLAGS.style}: {e}") from e
    for flag in ("out", "plot_attention", "plot_density"):
        if getattr(FLAGS, flag):
            _check_output(flag, getattr(FLAGS, flag))


def check_model(path: str) -> None:
    """A one-line error saying what `--model`'s folder is, unless it holds an
    export."""
    if not os.path.isdir(path):
        raise app.UsageError(f"--model={path}: no such SavedModel directory")
    if not os.path.exists(os.path.join(path, "saved_model.pb")):
        export = os.path.join(path, "export")
        if os.path.exists(os.path.join(export, "saved_model.pb")):
            raise app.UsageError(f"--model={path} is a training folder; its export is --model={export}")
        raise app.UsageError(f"--model={path}: not an exported SavedModel (no saved_model.pb)")


def load_writer(path: str):
    """The export at `--model` (which `check_flags` has checked), or a
    one-line error saying why it cannot be loaded."""
    from hwtf.writer import Writer

    try:
        return Writer.load(path)
    except (ValueError, OSError) as e:
        raise app.UsageError(f"--model: {e}") from e


def main(argv):
    del argv
    from hwtf import inkml, render
    from hwtf.writer import layout_page, wrap_text

    writer = load_writer(FLAGS.model)
    lines = wrap_text(FLAGS.text, FLAGS.width)
    unknown = writer.unknown_chars(FLAGS.text.replace("\n", ""))
    if unknown:
        logging.warning("characters outside the model's alphabet, written as 'unknown': %r", unknown)
    style = None
    if FLAGS.style is not None:
        try:
            style = writer.builtin_style(FLAGS.style)
        except ValueError as e:
            raise app.UsageError(f"--style={FLAGS.style}: {e}") from e
    elif FLAGS.style_file:
        try:
            style = writer.style_from_file(FLAGS.style_file, FLAGS.style_text)
        except (OSError, ValueError) as e:
            raise app.UsageError(f"--style_file: {e}") from e

    try:
        ink = writer.write(lines, FLAGS.bias, FLAGS.seed, FLAGS.steps_per_char, style, FLAGS.check_style,
                           FLAGS.candidates)
    except ValueError as e:
        where = "--candidates" if "candidates" in str(e) else f"--style{'_file' if FLAGS.style_file else ''}"
        raise app.UsageError(f"{where}: {e}") from e
    for number, line in enumerate(ink, 1):
        if line.text and not line.finished:
            logging.warning("line %d (%r) was cut at --steps_per_char=%d points a character before the model "
                            "finished it", number, line.text, FLAGS.steps_per_char)
    page = layout_page([line.strokes for line in ink])
    if not page:
        raise app.UsageError("nothing was written (empty text?)")
    if FLAGS.out.lower().endswith(".svg"):
        render.strokes_to_svg(page, FLAGS.out, stroke_width=FLAGS.stroke_width, colour=FLAGS.colour)
    elif FLAGS.out.lower().endswith(".inkml"):
        inkml.write_inkml(page, FLAGS.out, text=FLAGS.text)
    elif FLAGS.out.lower().endswith(".json"):
        inkml.write_json(page, FLAGS.out, text=FLAGS.text)
    else:
        render.save_png(page, FLAGS.out, height_px=120 * len(lines) + 40, linewidth=FLAGS.stroke_width, colour=FLAGS.colour)
    print(f"wrote {len(lines)} line{'s' * (len(lines) != 1)} to {FLAGS.out}")
    first = next((line for line in ink if line.text), ink[0])
    if FLAGS.plot_attention:
        render.plot_attention(first.phi, first.text, first.strokes, FLAGS.plot_attention)
        print(f"wrote the attention figure to {FLAGS.plot_attention}")
    if FLAGS.plot_density:
        params = writer.mixture(first)
        render.plot_density(first.offsets, params["weights"], params["mu"], params["sigma"], params["rho"],
                            FLAGS.plot_density)
        print(f"wrote the density figure to {FLAGS.plot_density}")


if __name__ == "__main__":
    define_flags()
    from hwtf import cli

    cli.run(main, "hwtf.sample", check=check_flags)
