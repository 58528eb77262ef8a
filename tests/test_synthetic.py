"""The synthetic data set: deterministic, readable text, IAM-OnDB's scale."""

import string

import numpy as np
import pytest

from hwtf.data import strokes as strokes_lib
from hwtf.data import synthetic


def _steps(line):
    return np.concatenate([np.hypot(*np.diff(s, axis=0).T) for s in line.strokes if len(s) > 1])


def _same(a, b):
    return (
        a.id == b.id
        and a.text == b.text
        and len(a.strokes) == len(b.strokes)
        and all(np.array_equal(x, y) for x, y in zip(a.strokes, b.strokes))
    )


def test_same_seed_same_lines():
    first, second = synthetic.generate(4, seed=7), synthetic.generate(4, seed=7)
    assert all(_same(a, b) for a, b in zip(first, second))


def test_line_depends_only_on_seed_and_index():
    short, long = synthetic.generate(2, seed=3), synthetic.generate(5, seed=3)
    assert all(_same(a, b) for a, b in zip(short, long))
    assert [line.id for line in long] == [f"synthetic-3-{i}" for i in range(5)]


def test_different_seeds_differ():
    a, b = synthetic.generate(3, seed=0), synthetic.generate(3, seed=1)
    assert [line.text for line in a] != [line.text for line in b]
    assert not any(_same(x, y) for x, y in zip(a, b))


def test_text_comes_from_the_corpus():
    corpus = " ".join(synthetic.sentences())
    assert len(synthetic.sentences()) >= 300
    for line in synthetic.generate(50, seed=11):
        assert synthetic.MIN_CHARS <= len(line.text) <= synthetic.MAX_CHARS, line.text
        assert line.text == line.text.strip()
        assert all(word in corpus for word in line.text.split(" ")), line.text


def test_every_corpus_character_has_a_glyph_in_every_font():
    chars = set("".join(synthetic.sentences()))
    for font in synthetic.FONTS:
        assert chars <= set(synthetic._font(font)), font


def test_strokes_are_finite_float32_points():
    for line in synthetic.generate(20, seed=5):
        assert line.strokes
        for stroke in line.strokes:
            assert stroke.dtype == np.float32 and stroke.ndim == 2 and stroke.shape[1] == 2
            assert len(stroke) >= 1 and np.all(np.isfinite(stroke))
        # Written left to right.
        starts = [s[0, 0] for s in line.strokes]
        assert starts[-1] > starts[0] + 40 * len(line.text)
        # No pen-down jump that preprocessing would take for a glitch.
        assert _steps(line).max() < strokes_lib.GLITCH_STEP


@pytest.mark.parametrize("seed", range(6))
def test_y_points_up(seed):
    # The same writer (same seed): ascenders rise above the baseline,
    # descenders hang below it.
    def y(text):
        return np.concatenate(synthetic.write(text, np.random.default_rng(seed)))[:, 1]

    ascenders, descenders = y("lhdkb blk"), y("gjpqy gyp")
    assert ascenders.mean() > descenders.mean() + 15
    assert ascenders.min() > descenders.min() + 15


def test_scale_matches_iam_ondb():
    # IAM-OnDB (dev archive): median step 17-19 units, 21 points and 177
    # units a character, 620 points a line.
    lines = synthetic.generate(200, seed=0)
    step = np.median(np.concatenate([_steps(line) for line in lines]))
    chars = np.array([len(line.text) for line in lines])
    points = np.array([sum(len(s) for s in line.strokes) for line in lines])
    width = np.array([np.ptp(np.concatenate(line.strokes)[:, 0]) for line in lines])
    assert 14 < step < 22, step
    assert 16 < np.median(points / chars) < 28, np.median(points / chars)
    assert 130 < np.median(width / chars) < 220, np.median(width / chars)
    assert 400 < np.median(points) < 900, np.median(points)


def test_unknown_character_is_an_error():
    with pytest.raises(ValueError, match="no glyph"):
        synthetic.write("caf\u00e9", np.random.default_rng(0))


def test_capitals_are_print_lines_in_capitals_from_seed_and_index():
    short, long = synthetic.capitals(2, seed=4), synthetic.capitals(6, seed=4)
    assert all(_same(a, b) for a, b in zip(short, long))
    assert [line.id for line in long] == [f"capitals-4-{i}" for i in range(6)]
    corpus = " ".join(synthetic.sentences()).upper()
    for line in long:
        letters = [c for c in line.text if c.isalpha()]
        assert letters and all(c.isupper() for c in letters), line.text
        assert all(word in corpus for word in line.text.split(" ")), line.text
        assert _steps(line).max() < strokes_lib.GLITCH_STEP
    # The print fonts' capitals, not the script fonts' flourishes.
    fonts = [synthetic._Writer.sample(np.random.default_rng([4, i]), synthetic.PRINT_FONTS).font for i in range(40)]
    assert set(fonts) == set(synthetic.PRINT_FONTS)
    assert not set(synthetic.PRINT_FONTS) & set(synthetic.CURSIVE_FONTS)


def test_letters_capitals_draw_every_letter_as_often_as_e():
    """`capitals(text="letters")`: words of the sentences in capitals, drawn
    letter by letter, so that the letters the sentences rarely use (X, Z,
    Q, J) come about as often as a word's reason as E does."""
    lines = synthetic.capitals(300, seed=7, text="letters")
    assert [line.id for line in lines[:2]] == ["letters-7-0", "letters-7-1"]
    assert _same(lines[5], synthetic.capitals(6, seed=7, text="letters")[5])
    corpus = {w.strip(string.punctuation).upper() for t in synthetic.sentences() for w in t.split()}
    words = [w for line in lines for w in line.text.split(" ")]
    assert set(words) <= corpus
    assert all(synthetic.MIN_CHARS <= len(line.text) <= synthetic.MAX_CHARS for line in lines)
    with_letter = {letter: sum(letter in w for w in words) for letter in string.ascii_uppercase}
    assert min(with_letter.values()) >= 0.5 * len(words) / 26, with_letter
    sentences = " ".join(line.text for line in synthetic.capitals(300, seed=7))
    assert sentences.count("X") * 4 < "".join(words).count("X")
    with pytest.raises(ValueError, match="text='cursive'"):
        synthetic.capitals(1, seed=7, text="cursive")
