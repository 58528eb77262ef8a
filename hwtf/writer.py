"""Text in, ink out: writing with an exported model, the library behind every
command that writes (`hwtf.sample`, `hwtf.styles`, `hwtf.legibility`).

    from hwtf.writer import Writer

    writer = Writer.load("saved_models/iamondb-synthesis")
    ink = writer.write(["hello world", "second line"], bias=0.5, seed=0)
    ink[0].strokes   # absolute strokes, a list of [n, 2] arrays, y up
    ink[0].offsets   # [T, 3] (dx, dy, pen_up) in the data's units
    ink[0].phi       # [T, U] the attention over the line's characters

    style = writer.builtin_style(2)                       # the model's own hand
    style = writer.style_from_file("mine.inkml")          # the user's hand
    writer.write(["in that hand"], style=style, candidates=4)   # the best of 4

A `Writer` wraps a loaded SavedModel (`Writer.load`) or the in-memory
`hwtf.export.HandwritingModule` that is about to be saved (`Writer(module,
config)`), so that an export can record its styles before it is written.

Priming ink from a user (`style_from_ink`, `style_from_file`) is brought to
the training data's scale and density first (`normalise_style`): the model
only knows handwriting at IAM-OnDB's size and pen speed.
"""

from __future__ import annotations

import json
import os
import sys
from typing import NamedTuple, Sequence

import numpy as np
from absl import logging

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
# A line's height over its width per character: 0.73 to 6.86 on all 1,438
# lines of IAM-OnDB testset_v (median 3.0; 1st-99th percentile 1.4-5.4). Ink
# outside twice that range does not say its text: five letters labelled with
# a 56-character sentence come to about 34.
STYLE_ASPECT = (0.4, 12.0)
# After reading a style, the model's attention should stand near the end of
# its text: at 42 to 43 of 43 characters for the shipped model's own styles
# (one style 35), at 5 of 56 for five letters labelled with a sentence.
# Below this share of the text, the style is refused.
MIN_PRIME_COVERAGE = 0.6
# Bound on a line's points: this many per character of its text, plus 40.
STEPS_PER_CHAR = 40
# The longest line written in one piece. The attention's memory grows with
# characters times points (about 22 a character), so with the square of a
# line's length: a 2,000-character line took 2.4 GB and 36 s. Longer texts are
# wrapped into lines (`wrap_text`); a longer line is refused.
MAX_LINE_CHARS = 200
# What `python -m hwtf.sample` and the server write at when not asked
# otherwise. From the README's best-of-N table (64 testset_v texts,
# Tesseract): at bias 0.75 with 4 candidates the shipped model's mean line
# CER was 0.304, against 0.405 at bias 0.5 with one, for 0.7 s a line.
DEFAULT_BIAS = 0.75
DEFAULT_CANDIDATES = 4
# Best-of-N writing's score (the export's `generate_best`; primed, `best_rows`): a quadratic in
# these features of each candidate, higher for the line Tesseract should read
# better (`candidate_features` defines them; the export computes the same in
# its graph). Fitted by `docs/fit_best_of_n.py` on 192 testset_v texts
# written 8 times each by the shipped model (step 6,500) at bias 0.75, none
# of them the legibility set's 64 (README, "Writing the words asked for").
SCORE_FEATURES = ("peak", "log_aspect", "log_points_per_char", "log_strokes_per_char", "log_width_per_char",
                  "log_longest_step", "log_dwell_spread", "log_ink_per_width")
SCORE_LINEAR = {
    "peak": 0.1178,
    "log_aspect": 0.05207,
    "log_points_per_char": 0.1449,
    "log_strokes_per_char": 0.1658,
    "log_width_per_char": 0.4395,
    "log_longest_step": 0.04763,
    "log_dwell_spread": -0.1997,
    "log_ink_per_width": 0.3718,
}
SCORE_SQUARE = {
    "peak": -0.004151,
    "log_aspect": -0.1411,
    "log_points_per_char": -0.03871,
    "log_strokes_per_char": 0.1134,
    "log_width_per_char": -0.03863,
    "log_longest_step": -0.002528,
    "log_dwell_spread": 0.0948,
    "log_ink_per_width": -0.002893,
}
# `log_dwell_spread` adds this to each character's summed attention.
DWELL_FLOOR = 1e-3
# A line that ran to its bound on points never finished: this much is taken
# off its score (a rule, not fitted: the 55 of the fit's 2,048 candidates that
# ran out read at a mean line CER of 0.66, the others at 0.29).
UNFINISHED_PENALTY = 4.0
# An export's built-in styles (`hwtf.styles` writes them): lines the model
# wrote itself, kept beside the SavedModel.
STYLES_FILE = "styles.json"
STYLES_VERSION = 1

def _saved_models_dirs() -> list:
    """Where the shipped models are: the source tree's `saved_models/` (a
    checkout, an editable install), then `<prefix>/share/hwtf/saved_models`
    where `pip install .` puts them (setup.cfg's data_files; --user too)."""
    import site
    import sysconfig

    source = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models")
    prefixes = [sysconfig.get_path("data"), sys.prefix, getattr(site, "USER_BASE", None) or ""]
    installed = [os.path.join(prefix, "share", "hwtf", "saved_models") for prefix in prefixes if prefix]
    return list(dict.fromkeys([source, *installed]))


SAVED_MODELS = _saved_models_dirs()[0]
# The shipped model, trained on IAM-OnDB (non-commercial research use only,
# saved_models/iamondb-synthesis/README.md); the tiny synthetic demo model
# where that one is absent (an install without it).
DEFAULT_MODEL = next(
    (path for name in ("iamondb-synthesis", "synthetic-demo") for path in
     (os.path.join(folder, name) for folder in _saved_models_dirs())
     if os.path.exists(os.path.join(path, "saved_model.pb"))),
    os.path.join(SAVED_MODELS, "iamondb-synthesis"),
)


class Style(NamedTuple):
    """A priming line: what it says and its offsets `[P, 3]` in the data's
    units (y up), ready for the model."""

    text: str
    offsets: np.ndarray


class Ink(NamedTuple):
    """One written line."""

    text: str
    offsets: np.ndarray  # [T, 3] (dx, dy, pen_up), the data's units, y up
    phi: np.ndarray  # [T, len(text)] the attention of each point
    finished: bool = True  # False: cut at the bound on points before the model ended it

    @property
    def strokes(self) -> list[np.ndarray]:
        """Absolute strokes, one `[n, 2]` array per pen-down run, y up."""
        from hwtf.data.strokes import offsets_to_strokes

        return offsets_to_strokes(self.offsets)


def candidate_features(offsets: np.ndarray, phi: np.ndarray, chars: int, finished: bool = True) -> dict:
    """What best-of-N writing knows of one written line: its offsets `[T, 3]`
    (data units), its attention `phi [T, chars]`, and its text's length.

    - `peak`: how firmly the attention rested on each character, the mean
      over characters of the largest phi any point gave it;
    - `coverage`: the share of characters the attention rested on most at
      some point (skipped words lower it);
    - `log_aspect`: ln(height / width per character) (cramped lines);
    - `log_points_per_char`, `log_strokes_per_char` (pen lifts: printed
      letters lift more than joined ones), `log_width_per_char`;
    - `log_longest_step`: ln(longest step / the lower median step), a
      runaway stroke;
    - `backward`: the share of steps where the most-attended character went
      back; `last_on_end`: whether the last point attends the last character;
    - `log_dwell_spread`: ln of the most attention any one character got,
      summed over the points, over the (lower) median character's (each +
      0.001): a letter written over and over, or a scribble;
    - `log_ink_per_width`: ln(the pen-down path's length / the line's width):
      loops and scribbles lay more ink per unit of line;
    - `unfinished`: 1 if the line ran to its bound on points.
    """
    n = max(int(chars), 1)
    offsets = np.asarray(offsets, np.float64).reshape(-1, 3)
    phi = np.asarray(phi, np.float64).reshape(len(offsets), -1)
    if len(offsets) == 0:
        return dict.fromkeys(("peak", "coverage", "log_aspect", "log_points_per_char", "log_strokes_per_char",
                              "log_width_per_char", "log_longest_step", "backward", "last_on_end",
                              "log_dwell_spread", "log_ink_per_width"), 0.0) | {
            "unfinished": float(not finished)}
    focus = phi.argmax(1) if phi.shape[1] else np.zeros(len(offsets), int)
    points = np.cumsum(offsets[:, :2], 0)
    width, height = np.maximum(points.max(0) - points.min(0), 1e-6)
    steps = np.hypot(offsets[:, 0], offsets[:, 1])
    median = np.sort(steps)[(len(steps) - 1) // 2]
    dwell = np.sort(phi.sum(0)[:n]) + DWELL_FLOOR if phi.shape[1] else np.ones(1)
    drawn = steps[1:] * (offsets[:-1, 2] < 0.5)  # a step is drawn when the pen was down before it
    return {
        "peak": float(phi.max(0).sum() / n) if phi.shape[1] else 0.0,
        "coverage": len(set(focus.tolist())) / n if phi.shape[1] else 0.0,
        "log_aspect": float(np.log(height / (width / n))),
        "log_points_per_char": float(np.log(len(offsets) / n)),
        "log_strokes_per_char": float(np.log(max(offsets[:, 2].sum(), 1.0) / n)),
        "log_width_per_char": float(np.log(width / n)),
        "log_longest_step": float(np.log(max(steps.max(), 1e-6) / max(median, 1e-6))),
        "backward": float(np.mean(np.diff(focus) < 0)) if len(focus) > 1 else 0.0,
        "last_on_end": float(focus[-1] == n - 1),
        "log_dwell_spread": float(np.log(dwell[-1] / dwell[(len(dwell) - 1) // 2])),
        "log_ink_per_width": float(np.log(max(drawn.sum(), 1e-6) / width)),
        "unfinished": float(not finished),
    }


def candidate_score(features: dict) -> float:
    """Best-of-N's score of a line from its `candidate_features` (higher:
    should read better); what the export's `generate_best` computes."""
    score = sum(SCORE_LINEAR[k] * features[k] + SCORE_SQUARE[k] * features[k] ** 2 for k in SCORE_FEATURES)
    return float(score - UNFINISHED_PENALTY * features["unfinished"])


def ink_score(ink: "Ink") -> float:
    """`candidate_score` of a written line."""
    return candidate_score(candidate_features(ink.offsets, ink.phi, len(ink.text), ink.finished))


def best_rows(ink: Sequence["Ink"], candidates: int) -> list["Ink"]:
    """Each text's best-scored line (`ink_score`) of lines written
    `candidates` times each, text b's in rows `b*candidates ..
    b*candidates+candidates-1` (the layout of the export's `generate_best`,
    here for writing the export does not choose in its graph: primed)."""
    return [max(ink[i : i + candidates], key=ink_score) for i in range(0, len(ink), candidates)]


def resample_stroke(stroke, spacing: float):
    """A stroke `[n, 2]` resampled at equal arc-length `spacing` (ends kept,
    repeated points dropped): `[m, 2]`, m = round(length / spacing) + 1, at
    least 2; a stroke without length stays one point."""
    steps = np.hypot(*np.diff(stroke, axis=0).T)  # [n - 1]
    stroke = stroke[np.concatenate([[True], steps > 0])]  # repeated points add nothing
    if len(stroke) < 2:
        return stroke
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(stroke, axis=0).T))])  # [n]
    at = np.linspace(0.0, arc[-1], max(2, int(round(arc[-1] / spacing)) + 1))
    return np.stack([np.interp(at, arc, stroke[:, 0]), np.interp(at, arc, stroke[:, 1])], 1).astype(np.float32)


def normalise_style(strokes, text: str | None, config) -> Style:
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
      A `Style`: the text and offsets `[P, 3]` in the training data's units.

    Raises:
      ValueError: no text, characters outside the model's alphabet (named),
        fewer than `MIN_STYLE_STROKES` strokes or `MIN_STYLE_POINTS` points, no
        width.
    """
    from hwtf.data.strokes import strokes_to_offsets

    text = (text or "").strip()
    if not text:
        raise ValueError("a style needs 'text', what the ink says: give --style_text, a truth annotation "
                         "(InkML) or \"text\" (JSON)")
    unknown = config.alphabet_lib.unknown_chars(text)
    if unknown:
        raise ValueError(f"the style's text {text!r} has characters outside the model's alphabet: "
                         f"{', '.join(map(repr, unknown))} (the model knows {config.alphabet!r})")
    with np.errstate(over="ignore"):
        strokes = [np.asarray(s, np.float32).reshape(-1, 2) for s in strokes]
    strokes = [s for s in strokes if len(s)]
    if not all(np.all(np.isfinite(s)) for s in strokes):
        raise ValueError("the style's ink has non-finite coordinates (or ones beyond float32's range, 3.4e38)")
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
    if not (np.isfinite(width) and np.isfinite(scale) and scale > 0):
        raise ValueError(f"the style's ink cannot be scaled to the training data's size (width {width:g} units "
                         f"for {len(text)} characters)")
    height = float(np.ptp(np.concatenate(strokes)[:, 1]))
    aspect = height / (width / len(text))
    if not STYLE_ASPECT[0] <= aspect <= STYLE_ASPECT[1]:
        raise ValueError(
            f"the style's ink does not look like it says {text!r}: it is {aspect:.2g} times as tall as its width "
            f"per character ({len(text)} characters), where handwriting is {STYLE_ASPECT[0]:g} to "
            f"{STYLE_ASPECT[1]:g}; give the text the ink says"
        )
    strokes = [s * np.float32(scale) for s in strokes]
    if not all(np.all(np.isfinite(s)) for s in strokes):
        raise ValueError("the style's ink overflows once scaled to the training data's size (coordinates too large)")
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
    return Style(text, offsets)


def load_style(path: str, config, text: str | None = None) -> Style:
    """A priming line from an InkML or JSON file (`hwtf.inkml.read_ink`),
    normalised for the model of `config` (`normalise_style`); `text` (what the
    ink says) overrides the file's own.

    Raises:
      OSError, ValueError: the file cannot be read, or its ink cannot prime
        (the message names the file).
    """
    from hwtf import inkml

    strokes, file_text = inkml.read_ink(path)
    try:
        return normalise_style(strokes, text or file_text, config)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def save_styles(model_dir: str, styles: list[dict]) -> str:
    """Writes `styles.json` into `model_dir` atomically."""
    from hwtf.files import atomic_write

    path = os.path.join(model_dir, STYLES_FILE)
    with atomic_write(path) as f:
        json.dump({"version": STYLES_VERSION, "styles": styles}, f, separators=(",", ":"))
    return path


def load_styles(model_dir: str) -> list[dict]:
    """The styles stored beside a SavedModel; `[]` if it has none."""
    path = os.path.join(model_dir, STYLES_FILE)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if data.get("version") != STYLES_VERSION or not isinstance(data.get("styles"), list):
        raise ValueError(f"{path}: not a version-{STYLES_VERSION} styles file")
    return data["styles"]


def style_from_record(record: dict) -> Style:
    """A `styles.json` record (`hwtf.styles`) as a `Style` ready for priming."""
    import numpy as np

    return Style(record["text"], np.asarray(record["offsets"], np.float32).reshape(-1, 3))


def get_style(model_dir: str, number: int) -> Style:
    """Style `number` of a model as `(text, offsets [P, 3])` for priming.

    Raises:
      ValueError: the model has no styles, or no style of that number.
    """
    styles = load_styles(model_dir)
    if not styles:
        raise ValueError(f"{model_dir} has no built-in styles ({STYLES_FILE}); "
                         f"write them with python -m hwtf.styles --model={model_dir}")
    if not 0 <= number < len(styles):
        raise ValueError(f"style {number} does not exist: {model_dir} has styles 0 to {len(styles) - 1}")
    return style_from_record(styles[number])


def check_prime(style: Style, position: float) -> None:
    """Refuses a style whose ink the model did not read as its text: after
    the ink, its attention stood at character `position` (the export's
    `prime_position`), short of `MIN_PRIME_COVERAGE` of the text.

    Raises:
      ValueError: naming how far the model read.
    """
    if position < MIN_PRIME_COVERAGE * len(style.text):
        raise ValueError(
            f"the model read the style's ink as only the first {position:.0f} of the {len(style.text)} "
            f"characters of {style.text!r}: the ink does not say that text (give the text it says)"
        )


def wrap_text(text: str, width: int) -> list[str]:
    """A text as the lines of a page: each of its own lines wrapped at `width`
    characters; a blank line (a new paragraph) stays an empty line, which
    `layout_page` leaves as a gap. At least one line."""
    import textwrap

    lines = []
    for paragraph_line in text.splitlines():
        lines.extend(textwrap.wrap(paragraph_line, width) or [""])
    while lines and not lines[-1]:
        lines.pop()
    return lines or [""]


def layout_page(lines_strokes: Sequence[Sequence[np.ndarray]], line_height: float | None = None) -> list[np.ndarray]:
    """Stacks lines of strokes top to bottom, left-aligned, as a page."""
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


class Writer:
    """Writes texts with a synthesis model.

    Args:
      module: a loaded SavedModel of `hwtf.export`, or the in-memory
        `HandwritingModule` being exported.
      config: the model's `ModelConfig`.
      path: the export's folder, where its built-in styles live (none for an
        in-memory module).
    """

    def __init__(self, module, config, path: str | None = None):
        if config.model != "synthesis":
            where = path or "the model"
            raise ValueError(f"{where} is a {config.model} model; writing text needs a synthesis model")
        self.module = module
        self.config = config
        self.path = path

    @classmethod
    def load(cls, path: str) -> "Writer":
        """The export in folder `path`.

        Raises:
          ValueError: `path` is not a SavedModel folder, or not a synthesis model.
        """
        import tensorflow as tf

        from hwtf.model import ModelConfig

        if not os.path.isdir(path):
            raise ValueError(f"{path}: no such SavedModel directory")
        try:
            module = tf.saved_model.load(path)
            config = ModelConfig.from_json(module.config()["config"].numpy().decode())
        except (tf.errors.OpError, OSError, ValueError, IndexError, AttributeError, KeyError) as e:
            detail = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise ValueError(f"{path}: the export is damaged and cannot be loaded ({detail}); "
                             "export it again (python -m hwtf.train, or python -m hwtf.export from a good copy)") from e
        return cls(module, config, path)

    def unknown_chars(self, text: str) -> list[str]:
        """The characters of `text` outside the model's alphabet (written as
        its unknown character)."""
        return self.config.alphabet_lib.unknown_chars(text)

    # -- styles -------------------------------------------------------------

    def builtin_style(self, number: int) -> Style:
        """Built-in style `number` (`hwtf.styles`), from the export's folder.

        Raises:
          ValueError: the model has no styles, or none of that number.
        """
        if self.path is None:
            raise ValueError("an in-memory model has no built-in styles")
        return get_style(self.path, number)

    def style_from_ink(self, strokes, text: str | None) -> Style:
        """A user's line of ink (`[n_i, 2]` strokes, y up, any units) and what
        it says, normalised for this model (`normalise_style`)."""
        return normalise_style(strokes, text, self.config)

    def style_from_file(self, path: str, text: str | None = None) -> Style:
        """A priming line from an InkML or JSON file, normalised for this
        model (`load_style`)."""
        return load_style(path, self.config, text)

    # -- writing ------------------------------------------------------------

    def write(self, texts: Sequence[str], bias: float = 0.5, seed: int = 0,
              steps_per_char: int = STEPS_PER_CHAR, style: Style | None = None,
              check_style: bool = True, candidates: int = 1) -> list[Ink]:
        """Writes each text as one line, all in one batch.

        Args:
          texts: the lines to write.
          bias: Graves's sampling bias (0: as trained; larger: neater).
          seed: the sampling seed; the same seed writes the same ink.
          steps_per_char: bound on points per character (the batch stops at
            `steps_per_char x the longest text + 40` points).
          style: a priming line to write on from, in its hand.
          check_style: refuse a style whose ink the model does not read as its
            text (`check_prime`); an untrained model reads nothing.
          candidates: write each text this many times and keep the one the
            model rates best (`candidate_score`): unprimed, the export's
            `generate_best`; primed, `generate_primed` writes them in one
            batch and they are scored here (`best_rows`).

        Returns:
          One `Ink` per text.

        Raises:
          ValueError: the style's ink does not say its text; fewer than 1
            candidate.
        """
        import tensorflow as tf

        texts = list(texts)
        max_steps = steps_per_char * max(len(t) for t in texts) + 40
        common = dict(
            text=tf.constant(texts), bias=tf.constant(bias, tf.float32),
            seed=tf.constant(seed, tf.int64), max_steps=tf.constant(max_steps, tf.int32),
        )
        if candidates < 1:
            raise ValueError(f"candidates must be at least 1, got {candidates}")
        too_long = [i for i, t in enumerate(texts) if len(t) > MAX_LINE_CHARS]
        if too_long:
            raise ValueError(f"line {too_long[0] + 1} has {len(texts[too_long[0]])} characters; a line may have at "
                             f"most {MAX_LINE_CHARS} (wrap longer texts: wrap_text, or the CLI's --width)")
        if candidates > 1 and style is None:
            out = self.module.generate_best(**common, candidates=tf.constant(candidates, tf.int32))
        elif style is None:
            out = self.module.generate(**common)
        else:
            # Text b's candidates are rows b*N .. b*N+N-1, as in generate_best.
            texts = [t for t in texts for _ in range(candidates)]
            out = self.module.generate_primed(
                prime_strokes=tf.constant(np.repeat(style.offsets[None], len(texts), 0)),
                prime_text=tf.constant([style.text] * len(texts)),
                **{**common, "text": tf.constant(texts)},
            )
            if check_style and "prime_position" in out:  # exports before 2026-11-26 lack it
                check_prime(style, float(out["prime_position"].numpy().min()))
        lengths = out["lengths"].numpy()
        offsets, phi = out["strokes"].numpy(), out["phi"].numpy()
        ink = [Ink(t, offsets[i, : lengths[i]], phi[i, : lengths[i], : len(t)], bool(lengths[i] < max_steps))
               for i, t in enumerate(texts)]
        return best_rows(ink, candidates) if style is not None and candidates > 1 else ink

    def mixture(self, ink: Ink) -> dict:
        """The model's predicted distribution of each next offset along a
        written line (the export's `mixture` signature, one line): `weights
        [T, M]`, `mu`, `sigma [T, M, 2]`, `rho [T, M]`, `pen_up [T]`, in the
        data's units. For Graves's density figure (`render.plot_density`)."""
        import tensorflow as tf

        out = self.module.mixture(
            strokes=tf.constant(ink.offsets[None]), lengths=tf.constant([len(ink.offsets)]),
            text=tf.constant([ink.text]),
        )
        return {k: v.numpy()[0] for k, v in out.items()}
