"""The embedded default data set: online handwriting written with Hershey fonts.

Each line is an English fragment (from `sentences.txt`, written for this
project) set in a single-stroke Hershey font (the `hershey-fonts` package, MIT)
by a random "writer", who has their own font, size, slant, letter and word
spacing, baseline drift and pen speed. The glyph outlines are then sampled the
way a tablet samples a moving pen: at equal time steps, so that points crowd
where the pen slows down (corners, the start and end of a stroke) and spread
out on straight runs.

The output is in IAM-OnDB's units and orientation (y up), with IAM-OnDB's
statistics, so that one preprocessing serves both. Medians over lines, this
set (2,000 lines) against 600 lines of IAM-OnDB's dev archive:

                          synthetic   IAM-OnDB
    pen-down step             19        18-19
    points per character      22.5      21.4
    width per character      164       177
    ink per character        406       399
    points per line          649       626
    characters per line       29        30.5

with an x-height of 95-160 units (see `tests/test_synthetic.py`).

Line `i` of `generate(n, seed)` depends only on `(seed, i)`.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import string

import numpy as np

from hwtf.data.strokes import Line

# Bump when the output of `generate` changes: it keys the data cache.
VERSION = "2"

# Single-stroke fonts a writer may use, and how often. `cursive` and `scripts`
# are joined script (they differ only in digits and punctuation); `futural`
# and `rowmans` are print (they differ only in punctuation).
FONTS = ("cursive", "scripts", "futural", "rowmans")
FONT_WEIGHTS = (0.35, 0.15, 0.3, 0.2)
CURSIVE_FONTS = ("cursive", "scripts")
PRINT_FONTS = tuple(f for f in FONTS if f not in CURSIVE_FONTS)

MIN_CHARS, MAX_CHARS = 15, 60
# What `capitals` writes: the sentences' own words (3,622 Es to 25 Xs and 14
# Zs in 1,000 lines), or words drawn letter by letter, so that every letter
# of A to Z is as common a reason to draw a word as E.
CAPITALS_TEXTS = ("sentences", "letters")
STEP = (24.0, 44.0)
SPEED_NOISE = (0.1, 0.45)
CURVE = 0.7


@dataclasses.dataclass(frozen=True)
class _Glyph:
    """One character of a font, in x-heights: x from the glyph's left side, y
    up from the baseline.

    Attributes:
      points: float64 `[n, 2]`, the glyph's strokes one after the other.
      stroke: int `[n]`, which of the glyph's strokes each point belongs to.
      advance: the pen's advance to the next character.
    """

    points: np.ndarray
    stroke: np.ndarray
    advance: float


@functools.lru_cache(maxsize=None)
def _font(name: str) -> dict[str, _Glyph]:
    """The glyphs of a Hershey font, smoothed, in x-heights (cached)."""
    from HersheyFonts import HersheyFonts

    font = HersheyFonts()
    font.load_default_font(name)
    glyphs = font.all_glyphs
    base = float(glyphs["x"].base_line)
    x_height = base - glyphs["x"].draw_box[0][1]
    result = {}
    for char, glyph in glyphs.items():
        strokes = [
            np.array([(x - glyph.left_offset, base - y) for x, y in s], np.float64)
            / x_height
            for s in glyph.strokes
            if len(s)
        ]
        if name in CURSIVE_FONTS:
            # The script fonts dot an i or j before writing it; a writer dots
            # after, so the letter's body joins the previous letter.
            strokes.sort(key=_is_dot)
        strokes = [_densify(_chaikin(s, 2), 0.05) for s in strokes]
        if strokes:
            points = np.concatenate(strokes)
            stroke = np.repeat(np.arange(len(strokes)), [len(s) for s in strokes])
        else:
            points, stroke = np.zeros((0, 2)), np.zeros(0, np.int64)
        result[char] = _Glyph(points, stroke, glyph.char_width / x_height)
    return result


def _is_dot(stroke: np.ndarray) -> bool:
    extent = np.ptp(stroke, axis=0).max()
    return bool(extent < 0.35 and stroke[:, 1].min() > 1.0)


def _chaikin(stroke: np.ndarray, iterations: int) -> np.ndarray:
    """Corner cutting (Chaikin 1974), keeping the end points: Hershey's
    polygons become curves, as a pen draws them."""
    for _ in range(iterations):
        if len(stroke) < 3:
            return stroke
        q = 0.75 * stroke[:-1] + 0.25 * stroke[1:]
        r = 0.25 * stroke[:-1] + 0.75 * stroke[1:]
        middle = np.stack([q, r], axis=1).reshape(-1, 2)[1:-1]
        stroke = np.concatenate([stroke[:1], middle, stroke[-1:]])
    return stroke


def _densify(stroke: np.ndarray, max_step: float) -> np.ndarray:
    """Splits segments longer than `max_step`, so that the pen's speed, set at
    vertices, can vary along a long straight line."""
    if len(stroke) < 2:
        return stroke
    lengths = np.hypot(*np.diff(stroke, axis=0).T)
    pieces = np.maximum(1, np.ceil(lengths / max_step)).astype(int)
    segment = np.repeat(np.arange(len(lengths)), pieces)
    fraction = (np.arange(len(segment)) - np.repeat(np.cumsum(pieces) - pieces, pieces)) / np.repeat(pieces, pieces)
    inner = stroke[segment] + fraction[:, None] * (stroke[segment + 1] - stroke[segment])
    return np.concatenate([inner, stroke[-1:]])


@functools.lru_cache(maxsize=None)
def sentences() -> tuple[str, ...]:
    """The English sentences lines are drawn from (package data)."""
    text = importlib.resources.files("hwtf.data").joinpath("sentences.txt").read_text(
        encoding="utf-8"
    )
    return tuple(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def _text(rng: np.random.Generator) -> str:
    """A fragment of 15 to 60 characters: whole sentences, or a run of words
    that may start and end mid-sentence, as lines of a page do."""
    corpus = sentences()
    # Around IAM-OnDB's median of 29 characters a line.
    target = int(np.clip(rng.normal(32.0, 10.0), MIN_CHARS, MAX_CHARS))
    words = " ".join(corpus[j] for j in rng.integers(0, len(corpus), 4)).split(" ")
    start = 0 if rng.random() < 0.5 else int(rng.integers(0, len(words) // 2))
    text = words[start]
    for word in words[start + 1 :]:
        if len(text) + 1 + len(word) > target and len(text) >= MIN_CHARS:
            break
        text += " " + word
    return text[:MAX_CHARS].rstrip()


@functools.lru_cache(maxsize=None)
def _words_with_letter() -> dict[str, tuple[str, ...]]:
    """For each letter A to Z, the sentences' words (upper-cased, without
    the punctuation around them) that hold it."""
    words = sorted({w.strip(string.punctuation).upper() for line in sentences() for w in line.split()} - {""})
    return {letter: tuple(w for w in words if letter in w) for letter in map(chr, range(ord("A"), ord("Z") + 1))}


def _letters_text(rng: np.random.Generator) -> str:
    """Words in capitals, each drawn for a letter drawn uniformly from A to
    Z (a random word of the sentences that holds it): a line of about
    `_text`'s length in which X, Z, Q and J are as likely as E to be why a
    word is there."""
    by_letter = _words_with_letter()
    target = int(np.clip(rng.normal(32.0, 10.0), MIN_CHARS, MAX_CHARS))
    words = []
    while len(" ".join(words)) < target:
        choices = by_letter[chr(ord("A") + int(rng.integers(0, 26)))]
        word = choices[int(rng.integers(0, len(choices)))]
        if len(" ".join([*words, word])) > MAX_CHARS:
            break
        words.append(word)
    return " ".join(words)


@dataclasses.dataclass(frozen=True)
class _Writer:
    """How one writer writes: sizes in IAM-OnDB units."""

    font: str
    x_height: float  # height of a lowercase x
    width: float  # horizontal stretch of the glyphs
    slant: float  # shear, x += slant * y
    letter_gap: float  # extra space between letters, in x-heights
    word_gap: float  # a space's advance, in x-heights
    tilt: float  # the baseline's angle, radians
    wave: tuple[float, float, float]  # baseline sine: amplitude (x-heights), wavelength, phase
    step: float  # pen-down step at full speed (sampling interval x speed)
    speed_noise: float  # spread of the slowly varying log speed
    jitter: float  # standard deviation of the tablet's noise on each point

    @classmethod
    def sample(cls, rng: np.random.Generator, fonts: tuple[str, ...] = FONTS) -> "_Writer":
        weights = np.array([FONT_WEIGHTS[FONTS.index(f)] for f in fonts])
        font = fonts[rng.choice(len(fonts), p=weights / weights.sum())]
        cursive = font in CURSIVE_FONTS
        # Sizes that give IAM-OnDB's width and ink per character: the print
        # fonts are narrow for their x-height, the script fonts wide.
        x_height = rng.uniform(95.0, 138.0) if cursive else rng.uniform(115.0, 160.0)
        return cls(
            font=font,
            x_height=x_height,
            width=rng.uniform(0.85, 1.15) if cursive else rng.uniform(0.95, 1.25),
            # The script fonts lean right already.
            slant=rng.normal(-0.05, 0.12) if cursive else rng.normal(0.15, 0.15),
            # The print fonts' glyphs have wide side bearings already.
            letter_gap=rng.uniform(-0.05, 0.2) if cursive else rng.uniform(-0.2, 0.05),
            word_gap=rng.uniform(0.9, 1.6) if cursive else rng.uniform(0.6, 1.2),
            tilt=rng.normal(0.0, 0.015),
            wave=(rng.uniform(0.0, 0.25), rng.uniform(10.0, 30.0), rng.uniform(0, 2 * np.pi)),
            step=rng.uniform(STEP[0], STEP[1]),
            speed_noise=rng.uniform(SPEED_NOISE[0], SPEED_NOISE[1]),
            jitter=rng.uniform(0.3, 1.5),
        )


def _layout(text: str, writer: _Writer, rng: np.random.Generator):
    """Places the glyphs of `text`.

    Returns:
      points: float64 `[n, 2]` in IAM units, y up.
      stroke: int `[n]`, a running stroke number (merged strokes share one).
    """
    font = _font(writer.font)
    missing = sorted(set(c for c in text if c not in font))
    if missing:
        raise ValueError(f"characters {missing} have no glyph in font {writer.font!r}")
    pieces, strokes, chars = [], [], []
    origins = np.zeros(len(text))  # where each character starts
    x, y_walk, n_strokes = 0.0, 0.0, 0
    for i, char in enumerate(text):
        glyph = font[char]
        if char == " ":
            x += writer.word_gap * rng.uniform(0.75, 1.25)
            continue
        origins[i] = x
        if len(glyph.points):
            pieces.append(glyph.points + (x, y_walk))
            strokes.append(glyph.stroke + n_strokes)
            chars.append(np.full(len(glyph.points), i))
            n_strokes += int(glyph.stroke[-1]) + 1
        x += glyph.advance + writer.letter_gap + rng.normal(0.0, 0.04)
        y_walk += rng.normal(0.0, 0.025)
    points = np.concatenate(pieces)  # [n, 2] in x-heights
    stroke = np.concatenate(strokes)
    char = np.concatenate(chars)

    # Each character a little bigger or smaller, turned a little, about its
    # own left baseline point.
    scale = rng.normal(1.0, 0.06, len(text))[char]
    angle = rng.normal(0.0, 0.05, len(text))[char]
    # The baseline drifts up and down along the line, each character riding it.
    amplitude, wavelength, phase = writer.wave
    baseline = amplitude * np.sin(2 * np.pi * origins / wavelength + phase)
    origin = np.stack([origins[char], np.zeros(len(char))], 1)
    local = points - origin
    cos, sin = np.cos(angle), np.sin(angle)
    local = scale[:, None] * np.stack(
        [cos * local[:, 0] - sin * local[:, 1], sin * local[:, 0] + cos * local[:, 1]], 1
    )
    points = local + origin + np.stack([np.zeros(len(char)), baseline[char]], 1)

    px, py = points[:, 0] * writer.width, points[:, 1]
    px = px + writer.slant * py
    py = py + writer.tilt * px
    points = np.stack([px, py], 1) * writer.x_height

    stroke = _join(points, stroke, writer)
    return points, stroke


def _join(points: np.ndarray, stroke: np.ndarray, writer: _Writer) -> np.ndarray:
    """Merges a stroke into the one before when it starts where that one
    ended: script letters join, and a writer does not lift the pen for a
    short jump within a letter."""
    starts = np.flatnonzero(np.diff(stroke, prepend=-1))
    ends = np.append(starts[1:] - 1, len(stroke) - 1)
    gap = np.hypot(*(points[starts[1:]] - points[ends[:-1]]).T) / writer.x_height
    tolerance = 0.45 if writer.font in CURSIVE_FONTS else 0.12
    # Never join across a word: the gap there is a space, over a x-height.
    merge = np.concatenate([[False], gap < tolerance])
    new_id = np.cumsum(~merge) - 1
    return new_id[stroke]


def _sample_pen(points: np.ndarray, stroke: np.ndarray, writer: _Writer, rng) -> list[np.ndarray]:
    """Samples the drawn outline at equal time steps of a pen whose speed
    drops at sharp turns and at the start and end of each stroke, and drifts
    slowly; then adds the tablet's noise."""
    n = len(points)
    same = stroke[1:] == stroke[:-1]  # [n - 1] segments inside a stroke
    seg = np.diff(points, axis=0)  # [n - 1, 2]
    ds = np.hypot(seg[:, 0], seg[:, 1]) * same

    # Curvature at each vertex (turning angle per length, in 1/x-heights): by
    # the two-thirds power law the pen slows in tight curves and nearly stops
    # at cusps.
    heading = np.arctan2(seg[:, 1], seg[:, 0])
    turn = np.zeros(n)
    turn[1:-1] = np.abs(np.angle(np.exp(1j * (heading[1:] - heading[:-1])))) * same[1:] * same[:-1]
    around = np.zeros(n)
    around[1:] += 0.5 * ds
    around[:-1] += 0.5 * ds
    curvature = turn / (around / writer.x_height + 0.02)
    # Arc length from the stroke's start and to its end.
    s = np.concatenate([[0.0], np.cumsum(ds)])
    starts = np.flatnonzero(np.diff(stroke, prepend=-1))
    ends = np.append(starts[1:] - 1, n - 1)
    from_start = s - s[starts][stroke]
    to_end = s[ends][stroke] - s
    ramp = np.clip(np.minimum(from_start, to_end) / (0.3 * writer.x_height), 0.0, 1.0)
    wavelengths = writer.x_height * rng.uniform(1.0, 8.0, 3)
    drift = writer.speed_noise * np.sin(
        2 * np.pi * s[:, None] / wavelengths + rng.uniform(0, 2 * np.pi, 3)
    ).sum(1) / np.sqrt(3)
    speed = np.exp(drift) * (0.15 + 0.85 * ramp) / np.sqrt(1.0 + curvature / CURVE)  # [n], 1 = full speed

    # Time along the outline; a pen lift costs 3 steps, and no sample falls in it.
    dt = np.where(same, ds / (0.5 * (speed[1:] + speed[:-1])), 3.0 * writer.step)
    t = np.concatenate([[0.0], np.cumsum(dt)]) / writer.step  # in sampling steps
    t_start, t_end = t[starts], t[ends]
    grid = np.arange(rng.uniform(0, 1), t[-1], 1.0)
    owner = np.searchsorted(t_start, grid, side="right") - 1
    inside = grid < t_end[owner]
    # Drop grid samples too close to a stroke's ends, which are always kept.
    near = np.minimum(grid - t_start[owner], t_end[owner] - grid) < 0.3
    grid = grid[inside & ~near]
    samples = np.sort(np.concatenate([grid, t_start, t_end]))
    which = np.searchsorted(t_start, samples, side="right") - 1
    # Strokes of a single point keep one.
    keep = np.ones(len(samples), bool)
    keep[1:] = ~((samples[1:] == samples[:-1]) & (which[1:] == which[:-1]))
    samples, which = samples[keep], which[keep]
    xy = np.stack([np.interp(samples, t, points[:, 0]), np.interp(samples, t, points[:, 1])], 1)
    xy += rng.normal(0.0, writer.jitter, xy.shape)
    cuts = np.flatnonzero(np.diff(which)) + 1
    return [piece.astype(np.float32) for piece in np.split(xy, cuts)]


# A neat printed hand: the print font upright on a straight baseline, at the
# middle of the sampled sizes and speeds, with the least tablet noise. The
# legibility report (`hwtf.legibility`) writes its texts in it, to show how
# well Tesseract reads each text when nothing is wrong with the writing.
NEAT = _Writer(
    font="futural", x_height=135.0, width=1.1, slant=0.0, letter_gap=-0.05, word_gap=0.9, tilt=0.0,
    wave=(0.0, 20.0, 0.0), step=sum(STEP) / 2, speed_noise=SPEED_NOISE[0], jitter=0.3,
)


def write(text: str, rng: np.random.Generator, writer: _Writer | None = None) -> tuple[np.ndarray, ...]:
    """Strokes of `text` in a random writer's hand (or `writer`'s, such as
    `NEAT`): float32 `[n_i, 2]` each, IAM-OnDB units, y up."""
    writer = writer or _Writer.sample(rng)
    points, stroke = _layout(text, writer, rng)
    return tuple(_sample_pen(points, stroke, writer, rng))


def capitals(num_lines: int, seed: int, text: str = "sentences") -> list[Line]:
    """`num_lines` synthetic lines in capitals ("THE TIME, BECAUSE"), each in
    a random writer's hand; line `i` depends only on `(seed, i)`.

    What IAM-OnDB's training lines barely hold: they have 8 lines in
    capitals and 196 capital Es (`train --synthetic_capitals`). The print
    fonts only: the script fonts' capitals are flourished beyond reading.
    `text` (`CAPITALS_TEXTS`): the sentences upper-cased, or `"letters"`,
    words drawn letter by letter ("JUG QUIETLY BOX FROZEN"), so that the
    letters the sentences rarely use are learned too.

    Returns:
      `Line`s with ids `capitals-<seed>-<i>` (`letters-<seed>-<i>`), strokes
      as `generate`'s.
    """
    if text not in CAPITALS_TEXTS:
        raise ValueError(f"text={text!r}: must be one of {', '.join(CAPITALS_TEXTS)}")
    prefix = "capitals" if text == "sentences" else "letters"
    lines = []
    for i in range(num_lines):
        rng = np.random.default_rng([seed, i])
        words = _text(rng).upper() if text == "sentences" else _letters_text(rng)
        writer = _Writer.sample(rng, PRINT_FONTS)
        lines.append(Line(f"{prefix}-{seed}-{i}", words, write(words, rng, writer)))
    return lines


def generate(num_lines: int, seed: int) -> list[Line]:
    """`num_lines` synthetic lines; line `i` depends only on `(seed, i)`.

    Returns:
      `Line`s with ids `synthetic-<seed>-<i>`, English text of 15 to 60
      characters, strokes float32 `[n_i, 2]` in IAM-OnDB units with y up.
    """
    lines = []
    for i in range(num_lines):
        rng = np.random.default_rng([seed, i])
        text = _text(rng)
        lines.append(Line(f"synthetic-{seed}-{i}", text, write(text, rng)))
    return lines
