"""Renders the README's pictures of the training data.

    python docs/make_figures.py [--num_lines=6] [--out_dir=/tmp/hwtf-figures]

Writes `docs/synthetic_lines.png` (synthetic lines, committed with the
project). When the IAM-OnDB archive is there (`--iamondb`, by default
`../shared/data/iamondb.tar.xz` beside the repository), also writes
`iamondb_lines.png` (real lines) and `data_lines.png` (both, at one scale) to
`--out_dir`, which is outside the repository: IAM-OnDB's licence forbids
shipping extracts of it, pictures included.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from hwtf import render  # noqa: E402
from hwtf.data import synthetic  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_lines", 6, "Lines in each picture.")
flags.DEFINE_integer("seed", 0, "Seed of the synthetic lines (0 is the training split's).")
flags.DEFINE_string(
    "iamondb",
    os.path.join(REPO, "..", "shared", "data", "iamondb.tar.xz"),
    "IAM-OnDB folder or archive; skipped when absent.",
)
flags.DEFINE_string("iamondb_split", "testset_v", "IAM-OnDB split to take lines from.")
flags.DEFINE_string("docs_dir", os.path.join(REPO, "docs"), "Where the synthetic picture goes.")
flags.DEFINE_string(
    "out_dir", "/tmp/hwtf-figures", "Where pictures of IAM-OnDB go (never the repository)."
)


def iamondb_lines(source: str, split: str, count: int):
    """The first `count` lines of `split`, or None when they cannot be read."""
    if not os.path.exists(source):
        logging.info("no IAM-OnDB at %s; only the synthetic picture", source)
        return None
    try:
        from hwtf.data import iamondb
    except ImportError as e:
        logging.warning("hwtf.data.iamondb is not available (%s); only the synthetic picture", e)
        return None
    lines, _ = iamondb.read(source, [split])
    return sorted(lines, key=lambda line: line.id)[:count]


def main(argv):
    del argv
    synthetic_lines = synthetic.generate(FLAGS.num_lines, FLAGS.seed)
    synthetic_rows = [(f"synthetic: {line.text}", line.strokes) for line in synthetic_lines]
    os.makedirs(FLAGS.docs_dir, exist_ok=True)
    path = os.path.join(FLAGS.docs_dir, "synthetic_lines.png")
    render.render_lines_png(synthetic_rows, path)
    logging.info("wrote %s", path)

    real = iamondb_lines(FLAGS.iamondb, FLAGS.iamondb_split, FLAGS.num_lines)
    if not real:
        return
    real_rows = [(f"IAM-OnDB {line.id}: {line.text}", line.strokes) for line in real]
    if os.path.abspath(FLAGS.out_dir).startswith(REPO + os.sep):
        logging.warning("--out_dir=%s is inside the repository: do not commit IAM-OnDB pictures", FLAGS.out_dir)
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    path = os.path.join(FLAGS.out_dir, "iamondb_lines.png")
    render.render_lines_png(real_rows, path)
    logging.info("wrote %s", path)
    rows = [row for pair in zip(synthetic_rows, real_rows) for row in pair]
    path = os.path.join(FLAGS.out_dir, "data_lines.png")
    render.render_lines_png(rows, path)
    logging.info("wrote %s", path)


if __name__ == "__main__":
    app.run(main)
