"""Writing in the user's own hand: a style from InkML or JSON, normalised to
the training data's scale, primes an exported model; ink out as InkML/JSON."""

import os
import subprocess
import sys

import numpy as np
import pytest

from hwtf import inkml
from hwtf.data import synthetic
from hwtf.data.strokes import strokes_to_offsets
from hwtf.model import ModelConfig
from hwtf.writer import POINTS_PER_CHAR, STEP_PER_STD, Writer, load_style, normalise_style, resample_stroke

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = "a quick fox."


@pytest.fixture
def config():
    return ModelConfig(
        lstm_units=16, lstm_layers=2, window_mixtures=3, mixtures=4,
        alphabet="abcdefghijklmnopqrstuvwxyz .", normalizer={"mean": [7.0, 0.0], "std": [32.0, 30.0]},
    )


def _ink(scale=1.0, every=1):
    """A line that says TEXT, as a tablet at another scale and density gives it."""
    strokes = synthetic.write(TEXT, np.random.default_rng(3))
    return [s[::every] * scale for s in strokes]


def _median_step(offsets):
    pen_down = offsets[:-1, 2] < 0.5
    return float(np.median(np.hypot(*offsets[1:, :2].T)[pen_down]))


@pytest.mark.parametrize("scale, density", [(1.0, 1), (0.1, 4), (0.1, 1), (5.0, 1 / 4)])
def test_style_is_brought_to_the_training_scale_and_density(config, scale, density):
    strokes = _ink(scale)
    if density > 1:  # a tablet sampling `density` times more densely
        strokes = [resample_stroke(s, 18 * scale / density) for s in strokes]
    elif density < 1:  # a canvas sampling sparsely
        strokes = [s[:: int(1 / density)] for s in strokes]
    text, offsets = normalise_style(strokes, " " + TEXT + " ", config)
    assert text == TEXT
    points = np.cumsum(offsets[:, :2], 0)
    width_per_char = np.ptp(points[:, 0]) / len(TEXT)
    assert width_per_char == pytest.approx(POINTS_PER_CHAR * 7.0, rel=0.02)  # resampling may cut an extreme
    typical = STEP_PER_STD * np.sqrt((32.0**2 + 30.0**2) / 2)
    assert typical / 1.5 <= _median_step(offsets) <= typical * 1.5
    assert 14 < len(offsets) / len(TEXT) < 35
    if scale == 1.0 and density == 1:  # already at the training scale: points kept as written
        assert len(offsets) == len(strokes_to_offsets(strokes))


@pytest.mark.parametrize(
    "strokes, text, expected",
    [
        ([[[0, 0], [1, 1]], [[5, 0], [6, 1]]], "ab", "at least 2 strokes and 10 points, got 2 stroke.s. and 4 point"),
        ([[[i, np.sin(i)] for i in range(100)]], "ab", "at least 2 strokes and 10 points, got 1 stroke.s. and 100 point"),
        (None, None, "a style needs 'text'"),
        (None, "  ", "a style needs 'text'"),
        (None, "Hi, fox!", "outside the model's alphabet: 'H', ',', '!'"),
        ([[[0, i] for i in range(10)], [[0, 0], [0, 5]]], "ab", "no width"),
    ],
)
def test_styles_that_cannot_serve_are_refused(config, tmp_path, strokes, text, expected):
    strokes = _ink() if strokes is None else strokes
    with pytest.raises(ValueError, match=expected):
        normalise_style(strokes, text, config)
    # The same through the files, InkML and JSON alike, with the file named.
    for path in (tmp_path / "style.inkml", tmp_path / "style.json"):
        (inkml.write_inkml if path.suffix == ".inkml" else inkml.write_json)(strokes, path, text=text)
        with pytest.raises(ValueError, match=f"{path.name}: .*{expected}"):
            load_style(str(path), config)


def test_style_text_comes_from_the_file_unless_given(config, tmp_path):
    path = tmp_path / "style.inkml"
    inkml.write_inkml(_ink(), path, text=TEXT)
    assert load_style(str(path), config)[0] == TEXT
    assert load_style(str(path), config, text="a fox")[0] == "a fox"
    inkml.write_inkml(_ink(), path)
    assert load_style(str(path), config, text=TEXT)[0] == TEXT


@pytest.mark.slow
def test_primed_from_an_inkml_file_writes_finite_strokes(exported, tmp_path):
    model_dir, config = exported
    path = tmp_path / "mine.inkml"
    inkml.write_inkml(_ink(0.05, 1), path, text=TEXT)  # screen pixels, say
    writer = Writer.load(model_dir)
    style = writer.style_from_file(str(path))
    expected = load_style(str(path), config)
    assert style.text == expected.text == TEXT and np.array_equal(style.offsets, expected.offsets)
    ink = writer.write(["in my hand", "too"], 0.5, 1, 10, style, check_style=False)  # an untrained model
    assert len(ink) == 2
    for line in ink:
        assert line.strokes and all(np.all(np.isfinite(s)) for s in line.strokes)
    assert ink[0].phi.shape[1] == len("in my hand")


def _sample(model_dir, *args):
    # The test model is untrained: its attention reads no style as its text.
    return subprocess.run(
        [sys.executable, "-m", "hwtf.sample", f"--model={model_dir}", "--nocheck_style", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.slow
def test_cli_writes_inkml_and_json_and_refuses_bad_styles(exported, tmp_path):
    model_dir = exported[0]
    style = tmp_path / "mine.inkml"
    inkml.write_inkml(_ink(0.05), style, text=TEXT)
    out = tmp_path / "page.inkml"
    proc = _sample(model_dir, "--text=write on", f"--style_file={style}", f"--out={out}", "--steps_per_char=10")
    assert proc.returncode == 0, proc.stderr[-2000:]
    strokes, text = inkml.read_inkml(out)
    assert text == "write on" and strokes and all(np.all(np.isfinite(s)) for s in strokes)

    style_json = tmp_path / "mine.json"
    inkml.write_json(_ink(3.0), style_json)  # no text in the file: --style_text says it
    out = tmp_path / "page.json"
    proc = _sample(model_dir, "--text=and on", f"--style_file={style_json}", f"--style_text={TEXT}", f"--out={out}",
                   "--steps_per_char=10")
    assert proc.returncode == 0, proc.stderr[-2000:]
    strokes, text = inkml.read_json(out)
    assert text == "and on" and strokes and all(np.all(np.isfinite(s)) for s in strokes)

    proc = _sample(model_dir, "--text=x", f"--style_file={style}", "--style_text=Fox!", f"--out={tmp_path / 'x.svg'}")
    assert proc.returncode != 0
    assert "--style_file: " in proc.stderr and "outside the model's alphabet: 'F', '!'" in proc.stderr
