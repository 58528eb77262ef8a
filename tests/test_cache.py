"""The data cache: exact round trips, rebuilds (new key, corrupt file, pickled
arrays), atomic writes, source fingerprints, and `dataset.load` through it."""

from __future__ import annotations

import logging
import os
import zipfile

import numpy as np
import pytest

from hwtf.data import cache as cache_lib
from hwtf.data import dataset as dataset_lib
from hwtf.data.dataset import HandwritingSet
from hwtf.data.strokes import Skipped


def make_set(n: int = 5, seed: int = 0) -> HandwritingSet:
    rng = np.random.default_rng(seed)
    offsets = []
    for i in range(n):
        o = rng.normal(scale=30, size=(int(rng.integers(2, 40)), 3)).astype(np.float32)
        o[:, 2] = rng.random(len(o)) < 0.2
        offsets.append(o)
    texts = ["naïve café £3", "‘quoted’ — dash", "trailing space ", " lead", "x"][:n]
    texts += [f"line {i}" for i in range(len(texts), n)]
    return HandwritingSet(
        [f"a01-000u-{i + 1:02d}" for i in range(n)],
        texts,
        offsets,
        [Skipped("a08-551z-01", "form a08-551z has 9 stroke files but 8 CSR lines"),
         Skipped("z99-999", "no stroke files")],
    )


class Builder:
    """Counts its calls, so a test can tell a cache hit from a rebuild."""

    def __init__(self, data: HandwritingSet):
        self.data, self.calls = data, 0

    def __call__(self) -> HandwritingSet:
        self.calls += 1
        return self.data


def assert_same(a: HandwritingSet, b: HandwritingSet) -> None:
    assert a.ids == b.ids and a.texts == b.texts and a.skipped == b.skipped
    assert all(type(t) is str for t in b.ids + b.texts)
    assert len(a.offsets) == len(b.offsets)
    for x, y in zip(a.offsets, b.offsets):
        assert y.dtype == np.float32
        np.testing.assert_array_equal(x, y)


KEY = {"dataset": "iamondb", "splits": ["trainset"], "glitch_step": 500.0}


def test_round_trip_is_exact(tmp_path):
    data = make_set()
    build = Builder(data)
    first = cache_lib.load_or_build(tmp_path, KEY, build)
    second = cache_lib.load_or_build(tmp_path, KEY, build)
    assert build.calls == 1
    assert_same(data, first)
    assert_same(data, second)
    assert [p.name for p in tmp_path.iterdir()] == [cache_lib.cache_path(tmp_path, KEY).name]


def test_empty_set_round_trip(tmp_path):
    build = Builder(HandwritingSet([], [], [], []))
    cache_lib.load_or_build(tmp_path, KEY, build)
    data = cache_lib.load_or_build(tmp_path, KEY, build)
    assert build.calls == 1 and len(data) == 0 and data.skipped == []


def test_new_key_rebuilds(tmp_path):
    build = Builder(make_set())
    cache_lib.load_or_build(tmp_path, KEY, build)
    cache_lib.load_or_build(tmp_path, {**KEY, "splits": ["trainset", "testset_t"]}, build)
    assert build.calls == 2
    assert len(list(tmp_path.glob("*.npz"))) == 2
    # Key order does not matter.
    cache_lib.load_or_build(tmp_path, dict(reversed(list(KEY.items()))), build)
    assert build.calls == 2


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other_key", "pickled"])
def test_unreadable_file_is_rebuilt(tmp_path, caplog, damage):
    data = make_set()
    build = Builder(data)
    cache_lib.load_or_build(tmp_path, KEY, build)
    path = cache_lib.cache_path(tmp_path, KEY)
    if damage == "garbage":
        path.write_bytes(b"\x00not a zip file" * 10)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "other_key":  # a hash collision, or a file copied by hand
        other = cache_lib.cache_path(tmp_path, {"other": 1})
        cache_lib.load_or_build(tmp_path, {"other": 1}, Builder(make_set(2, seed=1)))
        os.replace(other, path)
    elif damage == "pickled":  # an object array must never be unpickled
        with zipfile.ZipFile(path) as z:
            arrays = {n[:-4]: np.load(z.open(n)) for n in z.namelist()}
        arrays["ids"] = np.array(data.ids, dtype=object)
        np.savez(path.with_suffix(""), **arrays)  # np.savez appends ".npz"
    with caplog.at_level(logging.WARNING):
        reloaded = cache_lib.load_or_build(tmp_path, KEY, build)
    assert build.calls == 2
    assert_same(data, reloaded)
    assert any("rebuilding" in r.getMessage() for r in caplog.records)
    # And the rebuilt file is good again.
    assert_same(data, cache_lib.load_or_build(tmp_path, KEY, build))
    assert build.calls == 2


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def half_written(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt  # as if killed mid-write

    monkeypatch.setattr(np, "savez_compressed", half_written)
    with pytest.raises(KeyboardInterrupt):
        cache_lib.load_or_build(tmp_path, KEY, Builder(make_set()))
    assert list(tmp_path.iterdir()) == []


def test_source_fingerprint(tmp_path):
    archive = tmp_path / "db.tar.xz"
    archive.write_bytes(b"x" * 10)
    first = cache_lib.source_fingerprint(archive)
    assert first["source_fingerprint"]["path"] == str(archive.resolve())
    assert cache_lib.source_fingerprint(archive) == first
    archive.write_bytes(b"x" * 11)
    assert cache_lib.source_fingerprint(archive) != first

    folder = tmp_path / "db"
    (folder / "lineStrokes" / "a01").mkdir(parents=True)
    (folder / "lineStrokes" / "a01" / "a01-000u-01.xml").write_bytes(b"<a/>")
    first = cache_lib.source_fingerprint(folder)
    assert cache_lib.source_fingerprint(folder) == first
    (folder / "trainset.txt").write_bytes(b" a01-000u\n")
    second = cache_lib.source_fingerprint(folder)
    assert second != first
    (folder / "trainset.txt").write_bytes(b" a01-000x\n")  # same size
    os.utime(folder / "trainset.txt", ns=(1, 1))
    assert cache_lib.source_fingerprint(folder) != second


def test_load_iamondb_through_the_cache(tmp_path, monkeypatch):
    from test_iamondb import make_source

    from hwtf.data import iamondb

    source = make_source("tar_xz", tmp_path)
    cache_dir = tmp_path / "cache"
    data = dataset_lib.load("iamondb", "trainset,testset_v", data_dir=str(source),
                            cache_dir=str(cache_dir))
    assert len(data) == 6 and len(data.skipped) == 9

    def fail(*args):
        raise AssertionError("read again instead of using the cache")

    monkeypatch.setattr(iamondb, "read", fail)
    again = dataset_lib.load("iamondb", "trainset,testset_v", data_dir=str(source),
                             cache_dir=str(cache_dir))
    assert_same(data, again)
    # A changed archive is read again.
    os.utime(source, ns=(1, 1))
    with pytest.raises(AssertionError, match="read again"):
        dataset_lib.load("iamondb", "trainset,testset_v", data_dir=str(source),
                         cache_dir=str(cache_dir))
