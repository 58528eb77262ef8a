"""How legible handwriting is: rendered, read by Tesseract, scored by CER.

`python -m hwtf.evaluate --legibility` writes a split's texts with a model at
several biases, renders each line with `render_line`, reads it with Tesseract
(`read_line`, Debian's `tesseract-ocr` and `tesseract-ocr-eng` called as a
subprocess) and reports the character error rate against the text, beside the
same figure for the split's real ink of the same texts, rendered the same way.

The rendering is fixed by the data's own scale, not fitted to each line: the
model's normalizer gives the mean x advance per point, and a character of the
training data is about `POINTS_PER_CHAR` points, so `CHAR_WIDTH_PX` pixels per
average character sets pixels per ink unit for real and generated ink alike.
A writer who writes small is read small: nothing rescales one line to
flatter it. The size, the pen and Tesseract's page segmentation mode are
those at which Tesseract reads *people's* ink best, measured on lines that
are not the legibility set's (`python benchmarks/legibility_judge.py`: the
first 128 lines of 12 to 60 characters of `testset_t`, real IAM-OnDB ink,
2026-12-03): 48 px an average character and a 10-pixel pen, mean line CER
0.345 with 14 lines over 0.5, against 0.404 and 30 at the 32 px and 3-pixel
pen used until then (24, 32, 40, 48, 56, 64, 80 and 96 px and pens of 3 to 12
px were tried; mode 7 read worse than 13 at every setting). On the
legibility set's own real ink (`testset_v`) the change took the mean line CER
from 0.516 to 0.461 and the lines over 0.5 from 36 to 27 of 64.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import Sequence

import numpy as np

from hwtf.writer import POINTS_PER_CHAR  # the training data's points per character

CHAR_WIDTH_PX = 48.0
LINE_WIDTH_PX = 10.0
MARGIN_PX = 24
TESSERACT = "tesseract"
# Page segmentation mode 13, a raw line: mode 7 (single line) gave up on whole
# lines of cursive that 13 reads.
PSM = "13"


class TesseractMissing(RuntimeError):
    """Tesseract is not installed (Debian: tesseract-ocr tesseract-ocr-eng)."""


def tesseract_available() -> bool:
    """Whether `tesseract` with its English data runs here."""
    if shutil.which(TESSERACT) is None:
        return False
    try:
        out = subprocess.run([TESSERACT, "--list-langs"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "eng" in (out.stdout + out.stderr).split()


def pixels_per_unit(mean_dx: float, char_width: float = CHAR_WIDTH_PX) -> float:
    """Pixels per ink unit at which an average character (`POINTS_PER_CHAR`
    points of mean x advance `mean_dx`) is `char_width` pixels wide."""
    if not mean_dx > 0:
        raise ValueError(f"the data's mean x advance per point must be positive, got {mean_dx}")
    return char_width / (POINTS_PER_CHAR * mean_dx)


def render_line(strokes: Sequence[np.ndarray], path: str, scale: float, line_width: float = LINE_WIDTH_PX) -> None:
    """Writes one line of strokes (y up) as a greyscale PNG at `scale` pixels
    per ink unit, black on white, with a white margin, in a pen `line_width`
    pixels wide."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from hwtf import render

    strokes = render.clean_strokes(strokes)
    x_min, x_max, y_min, y_max = render.stroke_bounds(strokes)
    width = int(np.ceil((x_max - x_min) * scale)) + 2 * MARGIN_PX
    height = int(np.ceil((y_max - y_min) * scale)) + 2 * MARGIN_PX
    if width > 20000 or height > 4000:
        raise ValueError(f"a line of {width}x{height} px is too large to read (runaway ink?)")
    pad = MARGIN_PX / scale
    fig = Figure(figsize=(width / render.DPI, height / render.DPI), dpi=render.DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    # Matplotlib line widths are in points: 72 per inch.
    render.draw_strokes(
        ax, strokes, linewidth=line_width * 72.0 / render.DPI,
        limits=(x_min - pad, x_max + pad, y_min - pad, y_max + pad),
    )
    fig.savefig(path, format="png", dpi=render.DPI, facecolor="white")


def read_line(path: str, psm: str = PSM) -> str:
    """Tesseract's reading of one rendered line (page segmentation mode
    `psm`, a raw line by default; English)."""
    if shutil.which(TESSERACT) is None:
        raise TesseractMissing("tesseract is not installed (Debian: apt-get install tesseract-ocr tesseract-ocr-eng)")
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    out = subprocess.run(
        [TESSERACT, path, "stdout", "-l", "eng", "--psm", psm],
        capture_output=True, text=True, timeout=120, env=env,
    )
    if out.returncode != 0:
        raise RuntimeError(f"tesseract failed on {path}: {out.stderr.strip()}")
    return out.stdout


def _normal(text: str) -> str:
    return " ".join(text.split())


def in_capitals(text: str, share: float = 0.8, min_letters: int = 6) -> bool:
    """Whether a text is written in capitals: at least `share` of its letters,
    and `min_letters` of them, upper case ("SCALE WAR REQUIRED MONEY ,").

    Such lines are a tenth of the legibility set (one `testset_v` writer's
    seven lines, texts 38 to 44 of its 64) but 8 of the 10,732 training lines,
    so they are counted apart: `legibility` reports how many of the lines over
    0.5 are these."""
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= min_letters and sum(c.isupper() for c in letters) >= share * len(letters)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def character_error_rate(readings: Sequence[str], truths: Sequence[str]) -> float:
    """Edits over reference characters, summed over lines (case-sensitive;
    runs of white space count as one space, ends stripped)."""
    if len(readings) != len(truths):
        raise ValueError(f"{len(readings)} readings for {len(truths)} texts")
    edits = sum(edit_distance(_normal(r), _normal(t)) for r, t in zip(readings, truths))
    chars = sum(len(_normal(t)) for t in truths)
    if chars == 0:
        raise ValueError("the texts are empty")
    return edits / chars


def render_and_read(lines: Sequence[Sequence[np.ndarray]], scale: float, keep_dir: str | None = None, prefix: str = "line",
                    line_width: float = LINE_WIDTH_PX, psm: str = PSM) -> list[str]:
    """Renders each line of strokes and reads it; `keep_dir` keeps the PNGs."""
    readings = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = keep_dir or tmp
        os.makedirs(folder, exist_ok=True)
        for i, strokes in enumerate(lines):
            path = os.path.join(folder, f"{prefix}-{i:03d}.png")
            if not any(len(s) for s in strokes):
                readings.append("")
                continue
            render_line(strokes, path, scale, line_width)
            readings.append(read_line(path, psm))
    return readings


def choose_lines(data, count: int, min_chars: int = 12, max_chars: int = 60) -> list[int]:
    """The first `count` lines of a split (in its order) whose text has
    `min_chars` to `max_chars` characters: a fixed, reproducible choice."""
    chosen = [i for i, t in enumerate(data.texts) if min_chars <= len(_normal(t)) <= max_chars]
    if not chosen:
        raise ValueError(f"no line of the split has {min_chars} to {max_chars} characters")
    return chosen[:count]


def score(readings: Sequence[str], texts: Sequence[str]) -> dict:
    """Tesseract's `readings` of lines against their `texts`: `cer` (all
    lines pooled), `mean_cer`, `share_over_half`, `over_half_in_capitals`,
    `line_cers` and the readings."""
    line_cers = [character_error_rate([r], [t]) for r, t in zip(readings, texts)]
    return {
        "cer": character_error_rate(readings, texts),
        "mean_cer": float(np.mean(line_cers)),
        "share_over_half": float(np.mean([c > 0.5 for c in line_cers])),
        "over_half_in_capitals": sum(c > 0.5 for c, t in zip(line_cers, texts) if in_capitals(t)),
        "line_cers": line_cers,
        "readings": [_normal(r) for r in readings],
    }


def neat_print(texts: Sequence[str], seed: int) -> list:
    """The texts in a neat printed hand (`synthetic.NEAT`), as strokes:
    what Tesseract makes of each text when the writing is not at fault."""
    from hwtf.data import synthetic

    return [synthetic.write(t, np.random.default_rng([seed, i]), synthetic.NEAT) for i, t in enumerate(texts)]


def write_lines(writer, texts: Sequence[str], bias: float, seed: int, candidates: int = 1) -> list:
    """Each text's strokes as `writer` (an `hwtf.writer.Writer`) writes it, 16
    texts a batch, 40 steps a character at most."""
    written = []
    for start in range(0, len(texts), 16):
        ink = writer.write(list(texts[start : start + 16]), bias, seed, steps_per_char=40, candidates=candidates)
        written.extend(line.strokes for line in ink)
    return written


def legibility(model_path: str, data, lines: int = 32, biases: Sequence[float] = (0.0, 0.5, 1.0),
               seed: int = 0, keep_dir: str | None = None, candidates: Sequence[int] = (1,)) -> dict:
    """CER of real ink and of the model's writing of the same texts.

    Args:
      model_path: an exported synthesis SavedModel.
      data: a `HandwritingSet` (its texts and real ink).
      lines: how many texts (`choose_lines`).
      biases: sampling biases to write at.
      seed: the sampling seed (the same for every bias).
      keep_dir: keep the rendered PNGs here.
      candidates: best-of-N settings to measure at each bias (1 = plain
        writing; N > 1 writes each text N times and keeps the one the model
        rates best, `Writer.write(candidates=N)`).

    Returns:
      `{"lines", "chars", "pixels_per_unit", "real": {...}, "print": {...},
      "generated": {key: {...}}}` (`print`: the texts in a neat printed
      hand, `synthetic.NEAT`, Tesseract's floor on them); the key is the bias (`"0.5"`) or, for N > 1
      candidates, the bias and N (`"0.5 x4"`); each entry has `cer` (edits
      over characters, all lines pooled), `mean_cer` (the mean of the lines'
      CERs), `share_over_half` (lines with CER > 0.5), `line_cers`,
      `readings`, `over_half_in_capitals` (how many of the lines over 0.5 are
      texts `in_capitals`; the result's `in_capitals` lists those texts'
      indices) and, for writing, `seconds_per_line`.
    """
    import time

    from hwtf.data.strokes import offsets_to_strokes
    from hwtf.writer import Writer

    if not tesseract_available():
        raise TesseractMissing("tesseract with English data is not installed "
                               "(Debian: apt-get install tesseract-ocr tesseract-ocr-eng)")
    writer = Writer.load(model_path)
    config = writer.config
    index = choose_lines(data, lines)
    texts = [_normal(data.texts[i]) for i in index]
    scale = pixels_per_unit(float(config.normalizer_lib.mean[0]))
    capitals = [i for i, t in enumerate(texts) if in_capitals(t)]

    real = render_and_read([offsets_to_strokes(data.offsets[i]) for i in index], scale, keep_dir, "real")
    printed = render_and_read(neat_print(texts, seed), scale, keep_dir, "print")
    result = {
        "model": model_path,
        "lines": len(texts),
        "chars": sum(len(t) for t in texts),
        "pixels_per_unit": scale,
        "seed": seed,
        "texts": texts,
        "in_capitals": capitals,
        "real": score(real, texts),
        "print": score(printed, texts),
        "generated": {},
    }
    for bias in biases:
        for n in candidates:
            key = f"{bias:g}" if n == 1 else f"{bias:g} x{n}"
            start_time = time.perf_counter()
            written = write_lines(writer, texts, bias, seed, n)
            seconds = time.perf_counter() - start_time
            readings = render_and_read(written, scale, keep_dir, f"bias{bias:g}x{n}")
            result["generated"][key] = {**score(readings, texts), "candidates": n, "bias": bias,
                                        "seconds_per_line": seconds / len(texts)}
    return result
