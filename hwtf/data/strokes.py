"""Lines of online handwriting, their preprocessing into offsets, and sets of
preprocessed lines (`HandwritingSet`).

A `Line` is what every reader (IAM-OnDB, the synthetic generator) yields: an id,
its text, and its strokes as absolute points with y pointing up. Preprocessing
turns a line into the network's form, the offsets `(dx, dy, pen_up)` of Graves
(2013) section 4, where `pen_up = 1` marks the last point of each stroke.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import numpy as np

# A pen-down step longer than this (in IAM-OnDB's whiteboard units, about
# 1/1000 of the board's height per 1.3 units) is a recording glitch: the
# median step is 17 units and the 99th percentile 360 (measured on the dev
# archive). The data README calls jumps over 500 units glitches.
GLITCH_STEP = 500.0


@dataclasses.dataclass(frozen=True)
class Line:
    """One line of handwriting.

    Attributes:
      id: the line's id, e.g. `a01-000u-01`.
      text: what was written.
      strokes: pen-down runs, each a float32 array `[n_i, 2]` of absolute
        `(x, y)` with y pointing up, in the source's own units.
    """

    id: str
    text: str
    strokes: tuple[np.ndarray, ...]


@dataclasses.dataclass(frozen=True)
class Skipped:
    """A line (or form) left out of a data set, and why."""

    id: str
    reason: str

    def as_dict(self) -> dict:
        return {"id": self.id, "reason": self.reason}


def remove_glitches(
    strokes: Sequence[np.ndarray], max_step: float = GLITCH_STEP
) -> list[np.ndarray]:
    """Splits strokes at pen-down jumps longer than `max_step` and drops the
    isolated points such splits leave behind.

    A glitch is a single sample far from its neighbours; splitting at each jump
    turns it into a one-point stroke, which is removed. Genuine one-point
    strokes (dots on i and j) are kept when they were one point to begin with.
    """
    cleaned = []
    for stroke in strokes:
        if len(stroke) < 2:
            cleaned.append(stroke)
            continue
        steps = np.hypot(*np.diff(stroke, axis=0).T)
        cuts = np.flatnonzero(steps > max_step) + 1
        if len(cuts) == 0:
            cleaned.append(stroke)
            continue
        cleaned.extend(piece for piece in np.split(stroke, cuts) if len(piece) > 1)
    return cleaned


def strokes_to_offsets(strokes: Sequence[np.ndarray]) -> np.ndarray:
    """Absolute strokes to offsets.

    Args:
      strokes: pen-down runs, each `[n_i, 2]`.

    Returns:
      float32 `[sum n_i, 3]`: `(dx, dy, pen_up)`; the first offset is
      `(0, 0, .)`, and `pen_up` is 1 on the last point of each stroke.
    """
    strokes = [np.asarray(s, np.float32).reshape(-1, 2) for s in strokes]
    strokes = [s for s in strokes if len(s)]
    if not strokes:
        return np.zeros((0, 3), np.float32)
    points = np.concatenate(strokes)  # [n, 2]
    pen_up = np.zeros(len(points), np.float32)
    pen_up[np.cumsum([len(s) for s in strokes]) - 1] = 1.0
    deltas = np.diff(points, axis=0, prepend=points[:1])  # [n, 2]
    return np.concatenate([deltas, pen_up[:, None]], axis=1)


def offsets_to_strokes(offsets: np.ndarray) -> list[np.ndarray]:
    """Offsets `[n, 3]` back to absolute strokes (each `[n_i, 2]`)."""
    offsets = np.asarray(offsets, np.float32)
    points = np.cumsum(offsets[:, :2], axis=0)
    ends = np.flatnonzero(offsets[:, 2] > 0.5) + 1
    return [s for s in np.split(points, ends) if len(s)]


@dataclasses.dataclass(frozen=True)
class Normalizer:
    """Per-coordinate scaling of offsets: `(d - mean) / std` for dx and dy.

    Computed on training lines only and kept with the data and every model.
    """

    mean: tuple[float, float]
    std: tuple[float, float]

    @classmethod
    def fit(cls, offsets: Sequence[np.ndarray]) -> "Normalizer":
        deltas = np.concatenate([o[:, :2] for o in offsets]).astype(np.float64)
        std = deltas.std(axis=0)
        if not np.all(std > 0):
            raise ValueError(f"offsets have zero spread (std={std}); no data to fit?")
        return cls(tuple(map(float, deltas.mean(axis=0))), tuple(map(float, std)))

    def normalize(self, offsets: np.ndarray) -> np.ndarray:
        out = np.array(offsets, np.float32, copy=True)
        out[..., :2] = (out[..., :2] - np.float32(self.mean)) / np.float32(self.std)
        return out

    def denormalize(self, offsets: np.ndarray) -> np.ndarray:
        out = np.array(offsets, np.float32, copy=True)
        out[..., :2] = out[..., :2] * np.float32(self.std) + np.float32(self.mean)
        return out

    def as_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        return cls(tuple(d["mean"]), tuple(d["std"]))


class Alphabet:
    """Characters the model knows, and the policy for the others.

    Id 0 is padding; id 1 is the unknown character, which every character
    outside the alphabet maps to (in training data, in the CLI and inside the
    exported model alike). Ids 2.. are the alphabet's characters, sorted.
    """

    PAD = 0
    UNKNOWN = 1

    def __init__(self, chars: str):
        if len(set(chars)) != len(chars):
            raise ValueError(f"alphabet has repeated characters: {chars!r}")
        self.chars = "".join(sorted(chars))
        self._ids = {c: i + 2 for i, c in enumerate(self.chars)}

    @classmethod
    def from_texts(cls, texts: Sequence[str], min_count: int = 1) -> "Alphabet":
        """The characters appearing at least `min_count` times in `texts`."""
        counts: dict[str, int] = {}
        for text in texts:
            for c in text:
                counts[c] = counts.get(c, 0) + 1
        return cls("".join(c for c, n in counts.items() if n >= min_count))

    def __len__(self) -> int:
        """Number of ids, padding and unknown included."""
        return len(self.chars) + 2

    def __eq__(self, other) -> bool:
        return isinstance(other, Alphabet) and self.chars == other.chars

    def encode(self, text: str) -> np.ndarray:
        """int32 `[len(text)]` ids; characters outside the alphabet -> UNKNOWN."""
        return np.array([self._ids.get(c, self.UNKNOWN) for c in text], np.int32)

    def unknown_chars(self, text: str) -> str:
        """The distinct characters of `text` outside the alphabet, in order."""
        return "".join(dict.fromkeys(c for c in text if c not in self._ids))

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(
            self.chars[i - 2] if i >= 2 else ("?" if i == self.UNKNOWN else "")
            for i in ids
        )


@dataclasses.dataclass
class HandwritingSet:
    """Preprocessed lines: raw (not normalised) offsets and their texts.

    Attributes:
      ids: `[n]` line ids.
      texts: `[n]` what each line says.
      offsets: `n` float32 arrays `[T_i, 3]` of `(dx, dy, pen_up)`, y up.
      skipped: lines left out, with the reason.
    """

    ids: list[str]
    texts: list[str]
    offsets: list[np.ndarray]
    skipped: list[Skipped] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_points(self) -> int:
        return int(sum(len(o) for o in self.offsets))

    @property
    def num_characters(self) -> int:
        return int(sum(len(t) for t in self.texts))

    def subset(self, indices: Iterable[int]) -> "HandwritingSet":
        indices = list(indices)
        return HandwritingSet(
            [self.ids[i] for i in indices],
            [self.texts[i] for i in indices],
            [self.offsets[i] for i in indices],
            list(self.skipped),
        )

    @classmethod
    def from_lines(
        cls,
        lines: Iterable[Line],
        skipped: Sequence[Skipped] = (),
        glitch_step: float | None = GLITCH_STEP,
    ) -> "HandwritingSet":
        """Preprocesses lines into offsets (Graves 2013: no resampling, no
        smoothing; only recording glitches removed, see `remove_glitches`)."""
        result = cls([], [], [], list(skipped))
        for line in lines:
            strokes = line.strokes
            if glitch_step:
                strokes = remove_glitches(strokes, glitch_step)
            offsets = strokes_to_offsets(strokes)
            if len(offsets) < 2:
                result.skipped.append(Skipped(line.id, "fewer than 2 points"))
                continue
            if not line.text.strip():
                result.skipped.append(Skipped(line.id, "empty transcription"))
                continue
            result.ids.append(line.id)
            result.texts.append(line.text)
            result.offsets.append(offsets)
        return result
