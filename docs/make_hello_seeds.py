"""Renders the README's first picture: its first command at seeds 0 to 4.

    python docs/make_hello_seeds.py [--model=saved_models/iamondb-synthesis]

Each line is written by `python -m hwtf.sample --text="hello world"
--seed=N` itself (the CLI's defaults: its bias and candidates), as ink
(`--out=*.json`), and the five are drawn at one scale into
`docs/hello_seeds.png`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from hwtf import inkml, render  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model", os.path.join(REPO, "saved_models", "iamondb-synthesis"), "The export to write with.")
flags.DEFINE_string("text", "hello world", "What to write.")
flags.DEFINE_integer("seeds", 5, "Seeds 0 to this - 1, one line each.")
flags.DEFINE_string("out", os.path.join(REPO, "docs", "hello_seeds.png"), "The picture.")


def main(argv):
    del argv
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(FLAGS.seeds):
            path = os.path.join(tmp, f"seed{seed}.json")
            subprocess.run(
                [sys.executable, "-m", "hwtf.sample", f"--model={FLAGS.model}", f"--text={FLAGS.text}",
                 f"--seed={seed}", f"--out={path}"],
                check=True, cwd=REPO,
            )
            strokes, _ = inkml.read_json(path)
            lines.append((f"seed {seed}", strokes))
    render.render_lines_png(lines, FLAGS.out, width_px=1000, linewidth=1.5)
    print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
    app.run(main)
