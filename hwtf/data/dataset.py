"""Data sets of preprocessed lines, and the tf.data pipeline that batches them.

`load()` is the one entry point: it reads IAM-OnDB (a folder or archives the
user supplies) or generates the embedded synthetic set, preprocesses the lines
into offsets, and caches the result as a compressed `.npz`. `make_dataset()`
turns a set into padded, bucketed batches for the model.
"""

from __future__ import annotations

import os
import re
from typing import Sequence

import numpy as np
import tensorflow as tf

from hwtf.data import cache as cache_lib
from hwtf.data import strokes as strokes_lib
from hwtf.data.strokes import HandwritingSet

DATASETS = ("synthetic", "iamondb")
IAMONDB_SPLITS = ("trainset", "testset_v", "testset_t", "testset_f")

# The synthetic set's own splits: the seed offset and number of lines of each.
SYNTHETIC_SPLITS = {"train": (0, 2000), "valid": (1_000_003, 200), "test": (2_000_003, 200)}


def default_cache_dir() -> str:
    return os.environ.get(
        "HWTF_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "hwtf")
    )


def load(
    dataset: str = "synthetic",
    splits: Sequence[str] | str = ("train",),
    data_dir: str | None = None,
    cache_dir: str | None = None,
    glitch_step: float | None = strokes_lib.GLITCH_STEP,
    num_lines: int | None = None,
) -> HandwritingSet:
    """Loads a data set, through the cache.

    Args:
      dataset: `synthetic` (embedded, no download) or `iamondb`.
      splits: split names; for IAM-OnDB any of `IAMONDB_SPLITS`, combined; for
        the synthetic set `train`, `valid`, `test`. A comma-separated string is
        accepted too.
      data_dir: IAM-OnDB folder or archive (required for `iamondb`).
      cache_dir: where the `.npz` cache lives; `""` disables caching.
      glitch_step: pen-down jumps longer than this are glitches (None: keep).
      num_lines: synthetic only: lines per split instead of the default.
    """
    if isinstance(splits, str):
        splits = [s for s in splits.split(",") if s]
    splits = list(splits)
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
    if dataset == "synthetic":
        for split in splits:
            if split not in SYNTHETIC_SPLITS:
                raise ValueError(
                    f"unknown synthetic split {split!r}; expected one of "
                    f"{sorted(SYNTHETIC_SPLITS)}"
                )

        def build() -> HandwritingSet:
            from hwtf.data import synthetic

            lines = []
            for split in splits:
                seed, count = SYNTHETIC_SPLITS[split]
                lines.extend(synthetic.generate(num_lines or count, seed=seed))
            return HandwritingSet.from_lines(lines, glitch_step=glitch_step)

        source = {"dataset": "synthetic", "generator": _synthetic_version()}
    else:
        if not data_dir:
            raise ValueError("--dataset=iamondb needs --data_dir (a folder or archive)")
        for split in splits:
            if split not in IAMONDB_SPLITS:
                raise ValueError(
                    f"unknown IAM-OnDB split {split!r}; expected some of {IAMONDB_SPLITS}"
                )

        def build() -> HandwritingSet:
            from hwtf.data import iamondb

            lines, skipped = iamondb.read(data_dir, splits)
            return HandwritingSet.from_lines(lines, skipped, glitch_step=glitch_step)

        source = {"dataset": "iamondb", "reader": _iamondb_version(), "source": data_dir}
    key = {
        **source,
        "splits": splits,
        "glitch_step": glitch_step,
        "num_lines": num_lines,
    }
    if cache_dir == "":
        return build()
    if dataset == "iamondb":
        key.update(cache_lib.source_fingerprint(data_dir))
    return cache_lib.load_or_build(cache_dir or default_cache_dir(), key, build)


def _iamondb_version() -> str:
    from hwtf.data import iamondb

    return iamondb.VERSION


def _synthetic_version() -> str:
    from hwtf.data import synthetic

    return synthetic.VERSION


CAPITAL_RUN = re.compile(r"[A-Z]{2,}")


def has_capital_run(text: str) -> bool:
    """Whether a text has two or more capital letters in a row ("BBC",
    "SCALE WAR"): a capital written after a capital, which IAM-OnDB's
    training lines hold 325 letters of (85 runs in 10,732 lines)."""
    return CAPITAL_RUN.search(text) is not None


def repeat_lines(data: HandwritingSet, keep, times: int) -> HandwritingSet:
    """`data` with every line whose text satisfies `keep` present `times`
    times (each an extra draw of the same line in an epoch); the other lines
    once, in the original order, the repeats after them."""
    if times < 1:
        raise ValueError(f"times={times}: must be at least 1")
    chosen = [i for i, t in enumerate(data.texts) if keep(t)]
    return data.subset(list(range(len(data))) + chosen * (times - 1))


def make_dataset(
    data: HandwritingSet,
    alphabet: strokes_lib.Alphabet,
    normalizer: strokes_lib.Normalizer,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    repeat: bool = True,
    bucket: bool = True,
    chunk_length: int | None = None,
    max_length: int | None = None,
    buckets: int = 16,
    by_length: bool = False,
) -> tf.data.Dataset:
    """Batches of padded lines.

    Each element is a dict:
      offsets: float32 `[batch, T, 3]` normalised `(dx, dy, pen_up)`, zero-padded.
      lengths: int32 `[batch]` points in each line.
      chars: int32 `[batch, U]` character ids (`Alphabet.PAD` padded).
      char_lengths: int32 `[batch]`.
    Masks follow from the lengths (`tf.sequence_mask`).

    Args:
      shuffle, seed: the data order; the same seed gives the same order, epoch
        after epoch, so a resumed run can skip to where it stopped.
      bucket: batch lines of similar length together (less padding): a
        batch costs as much as its longest line times its size.
      buckets: how many length buckets, at quantiles of the lengths. On
        IAM-OnDB's training lines (batch 32) 4 buckets pad a batch to 743
        points on average, 16 to 659 (its lines average 626): 11% less work
        a step for the same lines.
      by_length: without shuffling, batch the lines in order of length
        rather than as they come (validation, whose sum over lines does not
        depend on the order, with the least padding).
      chunk_length: cut lines into pieces of this many points (for truncated
        training of the prediction model; each piece keeps the line's text).
      max_length: drop lines longer than this many points.
    """
    offsets = [normalizer.normalize(o) for o in data.offsets]
    chars = [alphabet.encode(t) for t in data.texts]
    if chunk_length:
        pieces = [
            (o[i : i + chunk_length], c)
            for o, c in zip(offsets, chars)
            for i in range(0, len(o) - 1, chunk_length)
        ]
        offsets = [p[0] for p in pieces if len(p[0]) > 1]
        chars = [p[1] for p in pieces if len(p[0]) > 1]
    if max_length:
        keep = [i for i, o in enumerate(offsets) if len(o) <= max_length]
        offsets = [offsets[i] for i in keep]
        chars = [chars[i] for i in keep]
    if not offsets:
        raise ValueError("no lines left to batch (all longer than max_length?)")

    lengths = np.array([len(o) for o in offsets], np.int32)
    char_lengths = np.array([len(c) for c in chars], np.int32)
    # All lines live in two flat tensors; an element is a slice of each.
    all_offsets = tf.constant(np.concatenate(offsets))  # [sum T, 3]
    all_chars = tf.constant(np.concatenate(chars).astype(np.int32))  # [sum U]
    offset_starts = tf.constant(np.concatenate([[0], np.cumsum(lengths)]), tf.int64)
    char_starts = tf.constant(np.concatenate([[0], np.cumsum(char_lengths)]), tf.int64)

    def element(i):
        return {
            "offsets": all_offsets[offset_starts[i] : offset_starts[i + 1]],
            "chars": all_chars[char_starts[i] : char_starts[i + 1]],
            "lengths": tf.cast(offset_starts[i + 1] - offset_starts[i], tf.int32),
            "char_lengths": tf.cast(char_starts[i + 1] - char_starts[i], tf.int32),
        }

    if by_length and shuffle:
        raise ValueError("by_length orders the lines: it cannot shuffle them too")
    if by_length:
        ds = tf.data.Dataset.from_tensor_slices(np.argsort(lengths, kind="stable").astype(np.int64))
    else:
        ds = tf.data.Dataset.range(len(lengths))
    if shuffle:
        ds = ds.shuffle(len(lengths), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if bucket and len(lengths) >= 4 * batch_size:
        # Boundaries at quantiles of the length distribution, so that buckets
        # fill at similar rates.
        quantiles = np.linspace(0.0, 1.0, max(buckets, 1) + 1)[1:-1]
        boundaries = sorted(set(np.quantile(lengths, quantiles).astype(int) + 1))
        ds = ds.bucket_by_sequence_length(
            lambda e: e["lengths"],
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            pad_to_bucket_boundary=False,
            drop_remainder=repeat,
        )
    else:
        ds = ds.padded_batch(batch_size, drop_remainder=repeat)
    return ds.prefetch(tf.data.AUTOTUNE)
