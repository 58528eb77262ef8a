"""Legibility: CER arithmetic, the fixed-scale rendering, and Tesseract
reading real (synthetic) ink but not scrambled ink."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from hwtf import legibility
from hwtf.data import dataset
from hwtf.data.strokes import offsets_to_strokes

needs_tesseract = pytest.mark.skipif(
    not legibility.tesseract_available(),
    reason="tesseract with English data is not installed (Debian: tesseract-ocr tesseract-ocr-eng)",
)


def test_edit_distance_and_cer():
    assert legibility.edit_distance("kitten", "sitting") == 3
    assert legibility.edit_distance("", "abc") == 3
    assert legibility.edit_distance("abc", "abc") == 0
    # White space runs count as one space; case counts.
    assert legibility.character_error_rate(["the  cat\n"], ["the cat"]) == 0.0
    assert legibility.character_error_rate(["The cat", "dog"], ["the cat", "dig"]) == pytest.approx(2 / 10)
    with pytest.raises(ValueError, match="2 readings for 1 texts"):
        legibility.character_error_rate(["a", "b"], ["a"])


def test_scale_comes_from_the_data_and_bad_scale_is_refused():
    assert legibility.pixels_per_unit(2.0) == pytest.approx(legibility.CHAR_WIDTH_PX / (legibility.POINTS_PER_CHAR * 2.0))
    with pytest.raises(ValueError, match="mean x advance"):
        legibility.pixels_per_unit(0.0)


def test_render_line_is_the_ink_at_a_fixed_scale(tmp_path):
    from matplotlib import image

    strokes = [np.array([[0.0, 0.0], [100.0, 50.0]]), np.array([[150.0, 0.0], [200.0, 0.0]])]
    path = str(tmp_path / "line.png")
    legibility.render_line(strokes, path, scale=2.0)
    pixels = image.imread(path)
    m = legibility.MARGIN_PX
    assert pixels.shape[:2] == (100 + 2 * m, 400 + 2 * m)
    dark = pixels[..., :3].mean(-1) < 0.5
    rows, cols = np.nonzero(dark)
    # Ink spans the strokes' box (give or take half the pen's width), not the margins.
    pen = legibility.LINE_WIDTH_PX / 2 + 1
    assert abs(cols.min() - m) <= pen and abs(cols.max() - (400 + m)) <= pen
    assert abs(rows.min() - m) <= pen and abs(rows.max() - (100 + m)) <= pen
    with pytest.raises(ValueError, match="too large"):
        legibility.render_line([np.array([[0.0, 0.0], [1e6, 0.0]])], path, scale=1.0)


def test_in_capitals_is_a_text_whose_letters_are_upper_case():
    assert legibility.in_capitals("SCALE WAR REQUIRED MONEY ,")
    assert legibility.in_capitals("BERTRAND RUSSELL , the")  # 15 of 18 letters
    assert not legibility.in_capitals("Bertrand Russell , THE")
    assert not legibility.in_capitals("I AM")  # too few letters to say
    assert not legibility.in_capitals("1944 , 1945 .")


def test_the_legibility_table_counts_lines_over_half_and_those_in_capitals():
    from hwtf.evaluate import legibility_table

    def entry(cers, in_capitals):
        return {"cer": 0.5, "mean_cer": float(np.mean(cers)), "line_cers": cers, "over_half_in_capitals": in_capitals}

    result = {"lines": 3, "chars": 40, "in_capitals": [2], "real": entry([0.1, 0.6, 0.7], 1),
              "print": entry([0.0, 0.0, 0.0], 0),
              "generated": {"0.75 x4": {**entry([0.9, 0.2, 0.8], 1), "seconds_per_line": 0.25}}}
    table = legibility_table(result)
    assert table[0] == "3 lines (40 characters; 1 of the lines in capitals)"
    assert "lines over 0.5: 2 of 3 (1 in capitals)" in table[1] and table[1].strip().startswith("real ink")
    assert "lines over 0.5: 0 of 3 (0 in capitals)" in table[2]
    assert table[3].strip().startswith("bias 0.75 x4") and table[3].endswith("(1 in capitals)  0.25 s/line")


def test_choose_lines_is_fixed_and_bounded():
    data = dataset.load("synthetic", ["valid"], cache_dir="")
    index = legibility.choose_lines(data, 5, min_chars=20, max_chars=40)
    assert index == legibility.choose_lines(data, 5, min_chars=20, max_chars=40)
    assert len(index) == 5 and all(20 <= len(" ".join(data.texts[i].split())) <= 40 for i in index)
    with pytest.raises(ValueError, match="no line"):
        legibility.choose_lines(data, 5, min_chars=500, max_chars=600)


@needs_tesseract
def test_tesseract_reads_real_ink_and_not_scrambled_ink(tmp_path):
    data = dataset.load("synthetic", ["valid"], cache_dir="")
    index = legibility.choose_lines(data, 6)
    texts = [data.texts[i] for i in index]
    scale = legibility.pixels_per_unit(float(np.mean(np.concatenate(data.offsets)[:, 0])))
    real = [offsets_to_strokes(data.offsets[i]) for i in index]
    readings = legibility.render_and_read(real, scale, str(tmp_path))
    assert legibility.character_error_rate(readings, texts) < 0.3, readings
    # The same strokes, each moved to a random place: no longer writing.
    rng = np.random.default_rng(0)
    scrambled = []
    for strokes in real:
        box = np.ptp(np.concatenate(strokes), axis=0)
        scrambled.append([s - s.mean(0) + rng.uniform(0, 1, 2) * box for s in strokes])
    readings = legibility.render_and_read(scrambled, scale)
    assert legibility.character_error_rate(readings, texts) > 0.6, readings


@needs_tesseract
def test_evaluate_legibility_command(exported, tmp_path):
    model_dir, _ = exported
    out = subprocess.run(
        [sys.executable, "-m", "hwtf.evaluate", "--legibility", f"--model={model_dir}", "--legibility_lines=3",
         "--biases=0,2", "--candidates=1,2", f"--legibility_dir={tmp_path}", "--json", "--cache_dir="],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["lines"] == 3 and set(result["generated"]) == {"0", "2", "0 x2", "2 x2"}
    assert result["generated"]["2 x2"]["candidates"] == 2 and result["generated"]["2 x2"]["seconds_per_line"] > 0
    assert len(result["real"]["readings"]) == 3
    for r in [result["real"], result["print"], *result["generated"].values()]:
        # Each CER is what its readings score against the texts.
        assert len(r["readings"]) == 3
        assert r["cer"] == pytest.approx(legibility.character_error_rate(r["readings"], result["texts"]))
        assert r["mean_cer"] == pytest.approx(np.mean(r["line_cers"]))
        assert r["share_over_half"] == pytest.approx(np.mean([c > 0.5 for c in r["line_cers"]]))
        assert r["over_half_in_capitals"] == sum(r["line_cers"][i] > 0.5 for i in result["in_capitals"])
    assert result["in_capitals"] == [i for i, t in enumerate(result["texts"]) if legibility.in_capitals(t)]
    assert len(os.listdir(tmp_path)) >= 3  # the real lines at least were kept
    # An untrained model's scribbles are far less legible than real ink, and
    # the same texts in a neat print are read best of all.
    assert result["generated"]["0"]["cer"] > result["real"]["cer"]
    assert len(result["print"]["readings"]) == 3
    assert result["print"]["cer"] < min(0.3, result["real"]["cer"])


def test_evaluate_legibility_refuses_a_training_directory(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    out = subprocess.run(
        [sys.executable, "-m", "hwtf.evaluate", "--legibility", f"--model={tmp_path}", "--cache_dir="],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode != 0 and "needs an exported SavedModel" in out.stderr
