r"""`python -m hwtf.data`: load a data set (through the cache) and summarise it.

    python -m hwtf.data --dataset=iamondb --data_dir=/path/to/iamondb.tar.xz \
        --split=trainset,testset_t --json
"""

from __future__ import annotations

import collections
import json

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command's flags, defined when it runs (as in every hwtf command)."""
    flags.DEFINE_enum("dataset", "synthetic", ["synthetic", "iamondb"], "Which data set to load.")
    flags.DEFINE_string("data_dir", None, "IAM-OnDB folder or archive (needed for --dataset=iamondb).")
    flags.DEFINE_string("split", None, "Comma-separated splits; default trainset (iamondb) or train (synthetic).")
    flags.DEFINE_string("cache_dir", None, "Cache folder (default $HWTF_CACHE or ~/.cache/hwtf; '' disables).")
    flags.DEFINE_bool("json", False, "Print one JSON object instead of a summary.")


_DEFAULT_SPLIT = {"iamondb": "trainset", "synthetic": "train"}


def summary(data) -> dict:
    """Counts of a set: lines, points, characters, its alphabet and skips."""
    return {
        "lines": len(data),
        "points": data.num_points,
        "characters": data.num_characters,
        "alphabet": "".join(sorted(set("".join(data.texts)))),
        "skipped": [s.as_dict() for s in data.skipped],
    }


def check_flags() -> None:
    """Refuses a contradictory --dataset and --data_dir before TensorFlow loads."""
    from hwtf import cli

    FLAGS.dataset = cli.dataset_flag()


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from hwtf.data import dataset as dataset_lib

    split = FLAGS.split or _DEFAULT_SPLIT[FLAGS.dataset]
    splits = [s.strip() for s in split.split(",") if s.strip()]
    try:
        data = dataset_lib.load(
            FLAGS.dataset, splits, data_dir=FLAGS.data_dir, cache_dir=FLAGS.cache_dir
        )
    except ValueError as e:
        raise app.UsageError(str(e))
    result = {"dataset": FLAGS.dataset, "splits": splits, **summary(data)}
    if FLAGS.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    print(f"{result['dataset']} {','.join(splits)}: {result['lines']:,} lines, "
          f"{result['points']:,} points, {result['characters']:,} characters")
    print(f"alphabet ({len(result['alphabet'])}): {result['alphabet']}")
    print(f"skipped: {len(data.skipped):,}")
    # Group reasons: a bad form skips each of its lines for the same reason.
    reasons = collections.Counter(s.reason for s in data.skipped)
    for reason, count in reasons.most_common(20):
        example = next(s.id for s in data.skipped if s.reason == reason)
        print(f"  {count:4d} x {reason}  (e.g. {example})")
    if len(reasons) > 20:
        print(f"  ... and {len(reasons) - 20} other reasons (see --json)")


if __name__ == "__main__":
    define_flags()
    from hwtf import cli

    cli.run(main, "hwtf.data", info=True, check=check_flags)
