"""The data cache: a preprocessed `HandwritingSet` as one compressed `.npz`.

Reading IAM-OnDB takes seconds (parsing ~300 MB of XML); reloading its cache
takes a fraction of one. A cache file is named after a hash of its key (the
data source, splits and preprocessing options), holds that key to check it,
and holds plain arrays only, so it is read with `allow_pickle=False`:

    key          [1] str       the key as JSON (sorted keys)
    ids, texts   [n] str       line ids and their texts
    lengths      [n] int64     points in each line
    offsets      [sum T_i, 3]  float32 `(dx, dy, pen_up)` of all lines, concatenated
    skipped_ids, skipped_reasons  [k] str   what the reader left out, and why

Files are written to a temporary file in the cache folder and renamed into
place, so a killed process never leaves a half-written cache; a cache file
that cannot be read is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
from absl import logging

from hwtf.data.strokes import HandwritingSet, Skipped
from hwtf.files import atomic_write

# Bump when the file layout above changes.
FORMAT_VERSION = 1


def source_fingerprint(data_dir: str | os.PathLike) -> dict:
    """A cheap fingerprint of a data source, to key its cache.

    For an archive: its absolute path, size and modification time. For a
    folder: its path and the count, total size and latest modification time
    of the files in it (walked with `os.scandir`, nothing is read). Changing,
    adding or removing a file changes the fingerprint.

    Returns:
      `{"source_fingerprint": {...}}`, to merge into a cache key.
    """
    path = Path(data_dir).expanduser().resolve()
    if path.is_file():
        stat = path.stat()
        return {
            "source_fingerprint": {
                "path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns
            }
        }
    count = total = latest = 0
    stack = [str(path)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
                # A folder's mtime changes when a file is added or removed.
                latest = max(latest, entry.stat(follow_symlinks=False).st_mtime_ns)
            elif entry.is_file():
                stat = entry.stat()
                count += 1
                total += stat.st_size
                latest = max(latest, stat.st_mtime_ns)
    return {
        "source_fingerprint": {
            "path": str(path), "files": count, "size": total, "mtime_ns": latest
        }
    }


def cache_path(cache_dir: str | os.PathLike, key: dict) -> Path:
    """`<cache_dir>/<first 16 hex of sha256(key as JSON)>.npz`."""
    digest = hashlib.sha256(_key_json(key).encode("utf-8")).hexdigest()[:16]
    return Path(cache_dir) / f"{digest}.npz"


def load_or_build(
    cache_dir: str | os.PathLike, key: dict, build: Callable[[], HandwritingSet]
) -> HandwritingSet:
    """The cached set for `key`, or `build()`'s, which is then cached.

    Args:
      cache_dir: folder of cache files (made if missing).
      key: JSON-serialisable description of what `build` makes; any change
        to it selects another cache file.
      build: makes the set when there is no usable cache file.
    """
    path = cache_path(cache_dir, key)
    key_json = _key_json(key)
    if path.exists():
        try:
            data = _read(path, key_json)
            logging.info("data cache: loaded %d lines from %s", len(data), path)
            return data
        except Exception as e:  # any unreadable file is rebuilt, never trusted
            logging.warning("data cache %s is unreadable (%s: %s); rebuilding it",
                            path, type(e).__name__, e)
    data = build()
    try:
        _write(path, key_json, data)
        logging.info("data cache: wrote %d lines to %s", len(data), path)
    except OSError as e:
        logging.warning("data cache: could not write %s (%s); continuing without", path, e)
    return data


def _key_json(key: dict) -> str:
    return json.dumps({"cache_format": FORMAT_VERSION, **key}, sort_keys=True)


def _str_array(values: list[str]) -> np.ndarray:
    return np.array(values, dtype=str) if values else np.zeros(0, dtype="<U1")


def _write(path: Path, key_json: str, data: HandwritingSet) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    offsets = [np.asarray(o, np.float32).reshape(-1, 3) for o in data.offsets]
    arrays = {
        "key": np.array([key_json]),
        "ids": _str_array(list(data.ids)),
        "texts": _str_array(list(data.texts)),
        "lengths": np.array([len(o) for o in offsets], np.int64),
        "offsets": np.concatenate(offsets) if offsets else np.zeros((0, 3), np.float32),
        "skipped_ids": _str_array([s.id for s in data.skipped]),
        "skipped_reasons": _str_array([s.reason for s in data.skipped]),
    }
    with atomic_write(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def _read(path: Path, key_json: str) -> HandwritingSet:
    with np.load(path, allow_pickle=False) as npz:
        stored_key = str(npz["key"][0])
        if stored_key != key_json:
            raise ValueError("the file was written for another key")
        ids = npz["ids"].tolist()
        texts = npz["texts"].tolist()
        lengths = npz["lengths"]
        offsets = npz["offsets"]
        skipped_ids = npz["skipped_ids"].tolist()
        skipped_reasons = npz["skipped_reasons"].tolist()
    if not (len(ids) == len(texts) == len(lengths)) or len(skipped_ids) != len(skipped_reasons):
        raise ValueError("arrays of different lengths")
    if offsets.dtype != np.float32 or offsets.ndim != 2 or offsets.shape[1] != 3:
        raise ValueError(f"offsets have dtype {offsets.dtype} and shape {offsets.shape}")
    if np.any(lengths < 0) or int(lengths.sum()) != len(offsets):
        raise ValueError("line lengths do not add up to the offsets")
    return HandwritingSet(
        ids,
        texts,
        np.split(offsets, np.cumsum(lengths)[:-1]) if len(lengths) else [],
        [Skipped(i, r) for i, r in zip(skipped_ids, skipped_reasons)],
    )
