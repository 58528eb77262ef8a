"""Ink written before a refactor, kept to show that the refactor changed
nothing: the shipped demo model, fixed seeds, through the CLI.

`tests/golden/*.json` were written by `python -m hwtf.sample` (the commands in
`CASES`) before the text-to-ink code moved into `hwtf.writer`. Rewrite them
only when a change means to alter sampling, and say so in its commit.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).parents[1]
GOLDEN = Path(__file__).parent / "golden"
CASES = {
    "demo_plain.json": ["--text=hello world, this is a test of writing", "--width=20", "--bias=0.5", "--seed=3",
                        "--candidates=1"],
    "demo_style.json": ["--text=write on in style", "--style=1", "--bias=0.75", "--seed=5"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_cli_writes_the_recorded_ink(tmp_path, name):
    out = tmp_path / name
    subprocess.run(
        [sys.executable, "-m", "hwtf.sample", f"--model={REPO / 'saved_models' / 'synthetic-demo'}",
         *CASES[name], f"--out={out}"],
        check=True, cwd=tmp_path, capture_output=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    got, want = json.loads(out.read_text()), json.loads((GOLDEN / name).read_text())
    assert got["text"] == want["text"]
    assert len(got["strokes"]) == len(want["strokes"])
    for i, (g, w) in enumerate(zip(got["strokes"], want["strokes"])):
        assert len(g) == len(w), f"stroke {i}"
        # The JSON keeps two decimals; sampling is chaotic, so any real change
        # moves later points by far more than this.
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=0.011, err_msg=f"stroke {i}")
