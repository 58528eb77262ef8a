"""IAM-OnDB loading speed: a cold read of every development line, straight
from the archive, and a reload of the preprocessed set from the cache.

    python benchmarks/data_load.py [path/to/iamondb.tar.xz]

Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hwtf.data import cache as cache_lib  # noqa: E402
from hwtf.data import iamondb  # noqa: E402
from hwtf.data.dataset import HandwritingSet  # noqa: E402

DEFAULT_ARCHIVE = Path(__file__).parents[1].parent / "shared/data/iamondb.tar.xz"
SPLITS = ["trainset", "testset_v", "testset_t"]


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_ARCHIVE)
    start = time.perf_counter()
    lines, skipped = iamondb.read(source, SPLITS)
    read_s = time.perf_counter() - start

    start = time.perf_counter()
    data = HandwritingSet.from_lines(lines, skipped)
    preprocess_s = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as cache_dir:
        key = {"dataset": "iamondb", "splits": SPLITS, **cache_lib.source_fingerprint(source)}
        start = time.perf_counter()
        cache_lib.load_or_build(cache_dir, key, lambda: data)
        write_s = time.perf_counter() - start
        size = sum(p.stat().st_size for p in Path(cache_dir).iterdir())

        def never() -> HandwritingSet:
            raise AssertionError("the cache was not used")

        start = time.perf_counter()
        reloaded = cache_lib.load_or_build(cache_dir, key, never)
        reload_s = time.perf_counter() - start

    print(json.dumps({
        "source": str(source),
        "splits": SPLITS,
        "lines_read": len(lines),
        "skipped": len(skipped),
        "lines": len(reloaded),
        "points": reloaded.num_points,
        "cold_read_s": round(read_s, 2),
        "preprocess_s": round(preprocess_s, 2),
        "cache_write_s": round(write_s, 2),
        "cache_mb": round(size / 2**20, 1),
        "cached_reload_s": round(reload_s, 3),
        "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
