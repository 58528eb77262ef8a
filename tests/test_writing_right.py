"""Writing the words asked for: priming that reads each point once and
starts clean, attention per line, a line's ink independent of its batch, and
an unprimed start where training lines start. Through the export (the
`exported` tiny model of conftest)."""

import numpy as np
import pytest
import tensorflow as tf

from hwtf.model import sample_loop

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(exported[0])


@pytest.fixture(scope="module")
def keras_model(loaded, exported):
    """The export's network as a Keras model (the export's weights)."""
    model = exported[1].build_model()
    for v, w in zip(model.weights, loaded.weights):
        v.assign(w)
    return model


def _prime(rows=2, points=30):
    rng = np.random.default_rng(0)
    prime = np.zeros([rows, points, 3], np.float32)
    prime[..., 0] = 10.0 + rng.normal(size=(rows, points)) * 3
    prime[..., 1] = rng.normal(size=(rows, points)) * 5
    prime[:, 7::8, 2] = 1.0
    prime[:, -1, 2] = 1.0  # a line ends with the pen lifted
    return prime


def _primed(loaded, texts, prime, prime_texts, seed=4, max_steps=120):
    out = loaded.generate_primed(
        text=tf.constant(texts), prime_strokes=tf.constant(prime), prime_text=tf.constant(prime_texts),
        bias=tf.constant(0.5), seed=tf.constant(seed, tf.int64), max_steps=tf.constant(max_steps),
    )
    return {k: v.numpy() for k, v in out.items()}


def test_a_lines_ink_does_not_depend_on_the_rest_of_the_batch(loaded):
    def generate(texts):
        out = loaded.generate(text=tf.constant(texts), bias=tf.constant(0.5), seed=tf.constant(42, tf.int64),
                              max_steps=tf.constant(150))
        return out["strokes"].numpy(), out["lengths"].numpy()

    alone, n = generate(["hello world"])
    together, m = generate(["hello world", "reproducible?", "a third line."])
    assert n[0] == m[0]
    np.testing.assert_allclose(together[0, : n[0]], alone[0, : n[0]], rtol=1e-4, atol=1e-3)
    # The row index is part of the draw: the same text in row 1 is another line.
    twice, k = generate(["hello world", "hello world"])
    assert not np.allclose(twice[0, :20], twice[1, :20])


def test_primed_attention_is_cut_at_each_lines_own_prime_text(loaded):
    """Each row's phi covers its own new text, whatever the other rows' prime
    texts (it used to be cut at the shortest prime text of the batch)."""
    prime = _prime()
    texts = ["abc", "de fgh"]
    both = _primed(loaded, texts, prime, ["a line of text", "b"])
    assert both["phi"].shape[2] == 6
    # Row 0 alone (the same row index, so the same draws).
    alone = _primed(loaded, texts[:1], prime[:1], ["a line of text"])
    n = alone["lengths"][0]
    assert both["lengths"][0] == n
    np.testing.assert_allclose(both["phi"][0, :n, :3], alone["phi"][0, :n], rtol=1e-4, atol=1e-5)
    assert np.all(both["phi"][0, :, 3:] == 0)
    # Row 1 beside another row 0 with a prime text of another length.
    other = _primed(loaded, texts, prime, ["xyzzy xyzzy xyzzy xyzzy", "b"])
    n = other["lengths"][1]
    assert both["lengths"][1] == n
    np.testing.assert_allclose(both["phi"][1, :n], other["phi"][1, :n], rtol=1e-4, atol=1e-5)
    # The attention has moved onto the new text (not left on the prime's).
    assert both["phi"][1, :n].sum() > 0


def test_unprimed_writing_starts_where_training_lines_start(loaded, keras_model, exported):
    """The first input is the offset (0, 0) normalised, as in training (it was
    a raw zero, the mean offset)."""
    config = exported[1]
    start = config.normalizer_lib.normalize(np.zeros((1, 3), np.float32))
    assert np.any(start[:, :2] != 0)
    out = loaded.generate(text=tf.constant(["abc de"]), bias=tf.constant(0.5), seed=tf.constant(7, tf.int64),
                          max_steps=tf.constant(60))
    chars = tf.constant([config.alphabet_lib.encode("abc de")])
    seed = tf.constant([7, 0x6877], tf.int64)  # the export's seed layout
    want, lengths, _ = sample_loop(keras_model, 1, chars, tf.constant([6]), 0.5, seed, 60, first_input=tf.constant(start))
    n = int(lengths[0])
    assert int(out["lengths"][0]) == n
    got = config.normalizer_lib.normalize(out["strokes"].numpy()[0, :n])
    np.testing.assert_allclose(got, want.numpy()[0, :n], rtol=1e-4, atol=1e-4)


def test_priming_reads_each_prime_point_once(loaded, keras_model, exported):
    """generate_primed = the network run over the prime's points but the last,
    then sampling that starts by reading the last (it used to read it twice)."""
    config = exported[1]
    prime = _prime(1)
    prime_text, text = "a line of text", "abc"
    out = _primed(loaded, [text], prime, [prime_text], seed=9, max_steps=50)
    full = prime_text + " " + text
    chars = tf.constant([config.alphabet_lib.encode(full)])
    lengths = tf.constant([len(full)])
    normalised = config.normalizer_lib.normalize(prime[0])[None]
    padded = tf.pad(chars, [[0, 0], [0, 1]])
    state = keras_model(normalised[:, :-1], padded, lengths)["state"]
    want, n, _ = sample_loop(keras_model, 1, chars, lengths, 0.5, tf.constant([9, 0x6877], tf.int64), 50,
                             initial_state=state, first_input=tf.constant(normalised[:, -1]))
    n = int(n[0])
    assert int(out["lengths"][0]) == n
    got = config.normalizer_lib.normalize(out["strokes"][0, :n])
    np.testing.assert_allclose(got, want.numpy()[0, :n], rtol=1e-3, atol=1e-3)


def test_a_prime_that_stops_mid_stroke_is_read_as_ended(loaded):
    """The built-in styles stopped mid-stroke (pen down on their last point),
    and the model first finished that stroke: a stray mark left of and below
    the new text. The export lifts the pen at the end of every prime."""
    ended = _prime(2)
    open_end = ended.copy()
    open_end[:, -1, 2] = 0.0
    a = _primed(loaded, ["abc", "de"], ended, ["a line", "b"])
    b = _primed(loaded, ["abc", "de"], open_end, ["a line", "b"])
    np.testing.assert_array_equal(a["lengths"], b["lengths"])
    np.testing.assert_allclose(a["strokes"], b["strokes"], rtol=1e-5, atol=1e-4)


def test_shipped_model_primed_with_a_style_starts_on_the_line(tmp_path):
    """`python -m hwtf.sample --style=0 --bias=1 --text="hello world"` began
    with a stroke entirely below the rest of the line (the end of the style's
    last letter); now the first stroke is part of the writing."""
    import json
    import os
    import subprocess
    import sys

    from hwtf.writer import DEFAULT_MODEL

    out = tmp_path / "hello.json"
    proc = subprocess.run(
        [sys.executable, "-m", "hwtf.sample", f"--model={DEFAULT_MODEL}", "--style=0", "--bias=1", "--seed=0",
         "--text=hello world", f"--out={out}"],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    strokes = [np.asarray(s) for s in json.loads(out.read_text())["strokes"]]
    rest = np.concatenate(strokes[1:])
    assert strokes[0][:, 1].max() > rest[:, 1].min() + 0.25 * np.ptp(rest[:, 1])


def _style_json(path, strokes, text):
    import json

    path.write_text(json.dumps({"text": text, "strokes": [s.tolist() for s in strokes]}))
    return path


def _sample_cli(*args):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "hwtf.sample", *args], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


def _first_letters_of_style_0():
    """About five letters of the shipped model's style 0, as absolute strokes."""
    from hwtf.data.strokes import offsets_to_strokes
    from hwtf.writer import DEFAULT_MODEL, get_style

    text, offsets = get_style(DEFAULT_MODEL, 0)
    cut = offsets[: len(offsets) * 5 // len(text)].copy()  # its points for five characters
    cut[-1, 2] = 1.0
    return offsets_to_strokes(cut)


def test_a_style_that_does_not_say_its_text_is_refused(tmp_path):
    """Five letters labelled with a 56-character sentence made the model write
    the sentence instead of --text; now the CLI refuses it and says why."""
    style = _style_json(tmp_path / "five.json", _first_letters_of_style_0(),
                        "it is much longer than what the ink says, by far, really")
    proc = _sample_cli("--text=hello there", f"--style_file={style}", f"--out={tmp_path / 'x.png'}")
    assert proc.returncode != 0 and not (tmp_path / "x.png").exists()
    assert "does not look like it says" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]


def test_the_models_attention_refuses_a_style_it_cannot_read_as_its_text():
    """Five letters labelled with 12 characters: tall, but within the range
    of handwriting, so the shape passes; the model's attention, after
    reading the ink, stands near character 5 of 12, and the writer refuses."""
    from hwtf.writer import DEFAULT_MODEL, Writer

    writer = Writer.load(DEFAULT_MODEL)
    strokes = _first_letters_of_style_0()
    style = writer.style_from_ink(strokes, "the quick br")
    with pytest.raises(ValueError, match="read the style's ink as only the first"):
        writer.write(["hello there"], style=style)
    # The same ink with the text it says writes.
    ink = writer.write(["hello there"], style=writer.style_from_ink(strokes, "the q"))
    assert len(ink[0].offsets) > 20


def test_json_coordinates_beyond_float32_are_refused(tmp_path):
    """A coordinate of 1e300 is finite in float64 but not in float32; it used
    to scale the ink by 0 and the model wrote the style's text."""
    strokes = [np.array([[0.0, 0.0], [10.0, 5.0], [20.0, 0.0]]), np.array([[30.0, 0.0], [1e300, 5.0]])]
    style = _style_json(tmp_path / "huge.json", strokes, "good")
    proc = _sample_cli("--text=good day", f"--style_file={style}", f"--out={tmp_path / 'x.png'}")
    assert proc.returncode != 0 and "beyond float32's range" in proc.stderr, proc.stderr[-2000:]


def test_generate_best_keeps_one_of_its_candidates(loaded):
    texts = ["abc de", "a longer line."]

    def call(name, **extra):
        out = getattr(loaded, name)(text=tf.constant(texts), bias=tf.constant(0.5), seed=tf.constant(5, tf.int64),
                                    max_steps=tf.constant(120), **extra)
        return {k: v.numpy() for k, v in out.items()}

    one = call("generate_best", candidates=tf.constant(1))
    plain = call("generate")
    np.testing.assert_array_equal(one["lengths"], plain["lengths"])
    np.testing.assert_allclose(one["strokes"], plain["strokes"][:, : one["strokes"].shape[1]], atol=1e-4)
    best = call("generate_best", candidates=tf.constant(3))
    assert best["score"].shape == (2,) and np.all(np.isfinite(best["score"]))
    # Text b's candidates are rows 3b .. 3b+2 of the same texts written three times each.
    every = loaded.generate(text=tf.constant([t for t in texts for _ in range(3)]), bias=tf.constant(0.5),
                            seed=tf.constant(5, tf.int64), max_steps=tf.constant(120))
    for b in range(2):
        n = best["lengths"][b]
        matches = [j for j in range(3) if every["lengths"].numpy()[3 * b + j] == n
                   and np.allclose(every["strokes"].numpy()[3 * b + j, :n], best["strokes"][b, :n], atol=1e-4)]
        assert matches, b


def test_generate_best_scores_as_candidate_score_does(loaded):
    """The export's in-graph score is `hwtf.writer.candidate_score`, the
    score docs/fit_best_of_n.py fits: the best of a text's candidates scores
    their largest `candidate_score`, and is the one that has it."""
    from hwtf.writer import candidate_features, candidate_score

    texts, n = ["abc de", "a longer line."], 3
    args = dict(bias=tf.constant(0.5), seed=tf.constant(7, tf.int64), max_steps=tf.constant(160))
    best = loaded.generate_best(text=tf.constant(texts), candidates=tf.constant(n), **args)
    every = loaded.generate(text=tf.constant([t for t in texts for _ in range(n)]), **args)
    lengths, strokes, phi = (every[k].numpy() for k in ("lengths", "strokes", "phi"))
    for b, text in enumerate(texts):
        scores = []
        for row in range(b * n, b * n + n):
            m = lengths[row]
            found = candidate_features(strokes[row, :m], phi[row, :m, : len(text)], len(text), m < 160)
            scores.append(candidate_score(found))
        assert len(set(np.round(scores, 3))) == n, scores  # the candidates differ
        np.testing.assert_allclose(best["score"].numpy()[b], max(scores), rtol=1e-4, atol=1e-4)
        assert best["lengths"].numpy()[b] == lengths[b * n + int(np.argmax(scores))]



def test_primed_best_of_n_keeps_each_texts_best_scored_candidate(loaded, exported):
    """Primed, `Writer.write(candidates=N)` writes text b in rows b*N ..
    b*N+N-1 of one `generate_primed` batch and keeps the row with the
    largest `candidate_score`; one candidate is plain primed writing."""
    from hwtf.writer import Style, Writer, candidate_features, candidate_score

    writer = Writer(loaded, exported[1], exported[0])
    style = Style("ab ab", _prime(1)[0])
    texts, n, steps_per_char = ["abc de", "a longer line."], 3, 10
    max_steps = steps_per_char * max(map(len, texts)) + 40
    args = dict(bias=0.5, seed=6, steps_per_char=steps_per_char, style=style, check_style=False)
    every = _primed(loaded, [t for t in texts for _ in range(n)], np.repeat(style.offsets[None], 2 * n, 0),
                    [style.text] * 2 * n, seed=6, max_steps=max_steps)
    best = writer.write(texts, candidates=n, **args)
    for b, text in enumerate(texts):
        rows = range(b * n, b * n + n)
        scores = [candidate_score(candidate_features(every["strokes"][r, : every["lengths"][r]],
                                                     every["phi"][r, : every["lengths"][r], : len(text)], len(text),
                                                     every["lengths"][r] < max_steps)) for r in rows]
        assert len(set(np.round(scores, 3))) == n, scores  # the candidates differ
        row = rows[int(np.argmax(scores))]
        assert best[b].text == text and len(best[b].offsets) == every["lengths"][row]
        np.testing.assert_allclose(best[b].offsets, every["strokes"][row, : every["lengths"][row]], atol=1e-5)
        np.testing.assert_allclose(best[b].phi, every["phi"][row, : every["lengths"][row], : len(text)], atol=1e-6)
    one = writer.write(texts, candidates=1, **args)
    plain = _primed(loaded, texts, np.repeat(style.offsets[None], 2, 0), [style.text] * 2, seed=6,
                    max_steps=max_steps)
    for b in range(2):
        np.testing.assert_allclose(one[b].offsets, plain["strokes"][b, : plain["lengths"][b]], atol=1e-5)


def test_candidate_features_see_a_letter_written_over_and_over():
    """A line whose attention lingers on one letter while the pen loops over
    it has a larger `log_dwell_spread` and lays more ink per unit of width
    (`log_ink_per_width`) than the same line written once through."""
    from hwtf.writer import candidate_features

    chars, per_char = 5, 6
    clean = np.zeros((chars * per_char, 3), np.float32)
    clean[:, 0] = 2.0  # one straight stroke, left to right
    clean[-1, 2] = 1.0
    phi = np.repeat(np.eye(chars, dtype=np.float32), per_char, 0)
    loop = np.tile(np.array([[0.0, 4.0, 0.0], [0.0, -4.0, 0.0]], np.float32), (12, 1))  # up and down in place
    at = 2 * per_char  # inside the third letter
    scribbled = np.concatenate([clean[:at], loop, clean[at:]])
    scribbled_phi = np.concatenate([phi[:at], np.tile(phi[at : at + 1], (len(loop), 1)), phi[at:]])
    plain, looped = candidate_features(clean, phi, chars), candidate_features(scribbled, scribbled_phi, chars)
    assert plain["log_dwell_spread"] == pytest.approx(0.0, abs=1e-3)  # every letter got 6 points
    assert looped["log_dwell_spread"] == pytest.approx(np.log((per_char + len(loop) + 1e-3) / (per_char + 1e-3)))
    assert looped["log_ink_per_width"] - plain["log_ink_per_width"] == pytest.approx(
        np.log((2.0 * (len(clean) - 1) + 4.0 * len(loop)) / (2.0 * (len(clean) - 1))), rel=1e-4)
    assert plain["log_ink_per_width"] == pytest.approx(0.0, abs=1e-6)  # a straight line: as long as it is wide

def test_cli_candidates(tmp_path, exported):
    out = tmp_path / "best.svg"
    proc = _sample_cli(f"--model={exported[0]}", "--text=abc", "--candidates=3", f"--out={out}")
    assert proc.returncode == 0 and out.exists(), proc.stderr[-2000:]
    # With a style too (the best of a primed batch, Writer.write).
    proc = _sample_cli(f"--model={exported[0]}", "--text=abc", "--candidates=3", "--style=0", "--nocheck_style",
                       f"--out={out}")
    assert proc.returncode == 0 and out.exists(), proc.stderr[-2000:]


def test_an_overlong_line_is_refused(exported):
    from hwtf.writer import MAX_LINE_CHARS, Writer

    writer = Writer.load(exported[0])
    with pytest.raises(ValueError, match=f"line 2 has {MAX_LINE_CHARS + 1} characters"):
        writer.write(["ab", "a" * (MAX_LINE_CHARS + 1)])
