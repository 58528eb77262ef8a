"""How many points Graves's "interpolating to fill in for missing readings"
could add to IAM-OnDB's lines.

    python docs/count_missing_readings.py --data_dir=../shared/data/iamondb.tar.xz --split=testset_v

Graves (2013, section 4) gives IAM-OnDB's lines as "around 700" points after
interpolation; hwtf reads the points as recorded (616 a line on `testset_v`),
and the NLL per line grows with the points a line has. This reads every
stroke file of `--split` (from an archive in one streaming pass, or from a
folder), takes the time between successive points of a stroke, and prints
one JSON object: the lines, recorded points a line, the sampling interval,
the share of steps that are gaps, and the points a line that
filling each gap at that interval would add (gaps of up to `--max_gap`
intervals; longer ones are pauses, not missing readings) and the points a
line that would make. It prints counts only, nothing of the data.

The time stamps tick in 10 ms, and successive points are 10 or 20 ms apart
(45% and 47% of steps), so the median step says nothing of the pen's rate:
the interval is the mean of the steps of more than 0 and up to `--normal_step` (20 ms;
about 15 ms on `testset_v`, 67 points a second), and a longer step is a gap
of `round(step / interval) - 1` missing readings (at least one).
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
from pathlib import Path

import numpy as np
from absl import app, flags
from lxml import etree

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from hwtf.data.iamondb import _PARSER, _STROKE_FILE, _parse_split  # noqa: E402  the loader's own rules

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", os.path.join(REPO, "..", "shared", "data", "iamondb.tar.xz"),
                    "IAM-OnDB archive or folder.")
flags.DEFINE_string("split", "testset_v", "The split whose lines to count.")
flags.DEFINE_float("normal_step", 0.02, "Longest step, in seconds, of an unbroken recording (the clock ticks in 10 ms).")
flags.DEFINE_float("max_gap", 10.0, "Longest gap, in sampling intervals, counted as missing readings.")

def line_times(data: bytes) -> list[np.ndarray]:
    """Each stroke's point times of one lineStrokes file."""
    root = etree.fromstring(data, _PARSER)
    return [np.array([float(p.get("time")) for p in stroke.iterfind("Point")])
            for stroke in root.iterfind("StrokeSet/Stroke")]


def _files(path: Path):
    """`(name, bytes)` of the stroke files and split lists under `path`."""
    if path.is_dir():
        for f in sorted(path.rglob("*")):
            if f.is_file() and (_STROKE_FILE.match(f.name) or f.parent.name == "splits"):
                yield f.name, f.read_bytes()
        return
    with tarfile.open(path, "r|*") as archive:
        for member in archive:
            name = os.path.basename(member.name)
            if member.isfile() and (_STROKE_FILE.match(name) or "/splits/" in member.name):
                yield name, archive.extractfile(member).read()


def main(argv):
    del argv
    path = Path(FLAGS.data_dir)
    if not path.exists():
        raise app.UsageError(f"--data_dir={FLAGS.data_dir} does not exist")
    by_form: dict[str, list[list[np.ndarray]]] = {}
    forms = None
    for name, content in _files(path):
        if name == f"{FLAGS.split}.txt":
            forms = set(_parse_split(content))
        elif (match := _STROKE_FILE.match(name)):
            by_form.setdefault(match["form"], []).append(line_times(content))
    if forms is None:
        raise app.UsageError(f"no split list {FLAGS.split}.txt in {FLAGS.data_dir}")
    lines = [times for form in sorted(forms & by_form.keys()) for times in by_form[form]]
    if not lines:
        raise app.UsageError(f"no stroke files of {FLAGS.split} in {FLAGS.data_dir}")
    steps = np.concatenate([np.diff(t) for line in lines for t in line if len(t) > 1])
    # Some time stamps run backwards or repeat (the data's known defects):
    # only forward steps say how fast the pen was read.
    interval = float(steps[(steps > 0) & (steps <= FLAGS.normal_step + 1e-6)].mean())
    gap = steps > FLAGS.normal_step + 1e-6
    missing = np.maximum(np.round(steps / interval) - 1, 1)
    added = np.where(gap & (steps <= FLAGS.max_gap * interval), missing, 0).sum()
    points = sum(len(t) for line in lines for t in line)
    print(json.dumps({
        "split": FLAGS.split, "lines": len(lines), "points_per_line": round(points / len(lines), 1),
        "interval_s": round(interval, 4),
        "share_of_gaps": round(float(gap.mean()), 4),
        "points_added_per_line": round(float(added) / len(lines), 1),
        "points_per_line_filled": round((points + float(added)) / len(lines), 1),
    }))


if __name__ == "__main__":
    app.run(main)
