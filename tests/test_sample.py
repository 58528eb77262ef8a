"""`python -m hwtf.sample`: text to SVG and PNG through an exported model."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from lxml import etree

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_dir(exported):
    return exported[0]


def _sample(model_dir, *args):
    # The test model is untrained: its attention reads no style as its text.
    return subprocess.run(
        [sys.executable, "-m", "hwtf.sample", f"--model={model_dir}", "--nocheck_style", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )


def test_svg_has_one_path_per_stroke_and_png_is_written(model_dir, tmp_path):
    svg = tmp_path / "hello.svg"
    proc = _sample(model_dir, "--text=hello world, again and again", "--width=12", f"--out={svg}",
                   f"--plot_attention={tmp_path / 'phi.png'}", f"--plot_density={tmp_path / 'density.png'}",
                   "--seed=3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == f"wrote 3 lines to {svg}\nwrote the attention figure to {tmp_path / 'phi.png'}\n" \
        f"wrote the density figure to {tmp_path / 'density.png'}\n"
    assert "outside the model's alphabet" in proc.stderr and "','" in proc.stderr
    root = etree.parse(str(svg)).getroot()
    paths = list(root.iter("{http://www.w3.org/2000/svg}path"))
    assert len(paths) > 3 and all(p.get("d").startswith("M") for p in paths)
    assert (tmp_path / "phi.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "density.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_style_primes_the_model_and_bad_styles_are_refused(model_dir, tmp_path):
    rng = np.random.default_rng(0)
    strokes = [(np.cumsum(rng.normal(10, 5, size=(30, 2)), 0) + [200 * k, 0]).tolist() for k in range(3)]
    style = tmp_path / "style.json"
    style.write_text(json.dumps({"text": "abc", "strokes": strokes}))
    proc = _sample(model_dir, "--text=in style", f"--style_file={style}", f"--out={tmp_path / 's.svg'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Refused, the file named (the command's one-line refusal of a style
    # file it cannot read: test_sample_style's command test).
    from hwtf.files import CONFIG_FILE
    from hwtf.model import ModelConfig
    from hwtf.writer import load_style

    config = ModelConfig.load(os.path.join(model_dir, CONFIG_FILE))
    short = tmp_path / "short.json"
    short.write_text(json.dumps({"text": "a", "strokes": [[[0, 0], [1, 1]]]}))
    with pytest.raises(ValueError, match=f"{short}: .*at least 2 strokes"):
        load_style(str(short), config)
    textless = tmp_path / "textless.json"
    textless.write_text(json.dumps({"strokes": strokes}))
    with pytest.raises(ValueError, match="needs 'text'"):
        load_style(str(textless), config)


def test_bad_arguments_are_named(model_dir, tmp_path):
    proc = _sample(model_dir, "--text=x", f"--out={tmp_path / 'x.gif'}")
    assert proc.returncode != 0 and "expected a .svg or .png" in proc.stderr
    proc = _sample(str(tmp_path / "nope"), "--text=x")
    assert proc.returncode != 0 and "no such SavedModel" in proc.stderr


def test_shipped_demo_model_is_the_default_and_serves(tmp_path):
    from hwtf.writer import DEFAULT_MODEL

    assert os.path.isfile(os.path.join(DEFAULT_MODEL, "saved_model.pb"))
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    show = subprocess.run([cli, "show", "--all", "--dir", DEFAULT_MODEL], capture_output=True, text=True, timeout=300)
    assert show.returncode == 0, show.stderr[-2000:]
    for name in ("generate", "generate_primed", "log_prob", "mixture", "config"):
        assert f"signature_def['{name}']" in show.stdout
    run = subprocess.run(
        [cli, "run", "--dir", DEFAULT_MODEL, "--tag_set", "serve", "--signature_def", "generate",
         "--input_exprs", 'text=["hello"];bias=1.0;seed=1;max_steps=400', "--outdir", str(tmp_path), "--overwrite"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lengths = np.load(tmp_path / "lengths.npy", allow_pickle=False)
    assert 20 < lengths[0] < 400  # a trained model stops after the text, well before the bound
    svg = tmp_path / "hello.svg"
    proc = subprocess.run(
        [sys.executable, "-m", "hwtf.sample", "--text=hello world", f"--out={svg}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list(etree.parse(str(svg)).getroot().iter("{http://www.w3.org/2000/svg}path"))) > 3


def test_builtin_styles_ship_with_the_export_and_prime_the_model(model_dir, tmp_path):
    from hwtf import styles, writer

    stored = writer.load_styles(model_dir)
    assert len(stored) == styles.STYLE_COUNT
    assert all(s["text"] == styles.STYLE_TEXT and len(s["offsets"]) > 10 for s in stored)
    text, offsets = writer.get_style(model_dir, 1)
    assert text == styles.STYLE_TEXT and offsets.shape[1] == 3
    svgs = {}
    for style in ("0", "1", "1"):
        out = tmp_path / f"style{style}-{len(svgs)}.svg"
        proc = _sample(model_dir, "--text=in style", f"--style={style}", "--seed=4", f"--out={out}")
        assert proc.returncode == 0, proc.stderr[-2000:]
        svgs[out.name] = out.read_text()
    a, b, c = svgs.values()
    assert b == c  # the same style and seed write the same ink
    assert a != b  # the style changes the ink
    # (The export's own determinism, unprimed: test_export's same seed test.)
    proc = _sample(model_dir, "--text=x", f"--style={styles.STYLE_COUNT}", f"--out={tmp_path / 'x.svg'}")
    assert proc.returncode != 0 and f"has styles 0 to {styles.STYLE_COUNT - 1}" in proc.stderr
    proc = _sample(model_dir, "--text=x", "--style=0", f"--style_file={tmp_path / 'x.json'}", f"--out={tmp_path / 'x.svg'}")
    assert proc.returncode != 0 and "not both" in proc.stderr


def test_a_model_without_styles_says_how_to_make_them(tmp_path):
    from hwtf import writer

    with pytest.raises(ValueError, match="python -m hwtf.styles"):
        writer.get_style(str(tmp_path), 0)
    (tmp_path / writer.STYLES_FILE).write_text(json.dumps({"version": 99}))
    with pytest.raises(ValueError, match="not a version-1 styles file"):
        writer.load_styles(str(tmp_path))


@pytest.mark.parametrize("flag, message", [
    ("--width=0", "--width=0: must be at least 1"),
    ("--steps_per_char=0", "--steps_per_char=0: must be at least 1"),
    ("--bias=nan", "--bias=nan: must be a number"),
    ("--bias=-1", "--bias=-1.0: must be a number"),
    ("--bias=inf", "--bias=inf: must be a number"),
    (f"--seed={2**64}", "must fit in 64 bits"),
    ("--colour=notacolour", "--colour=notacolour: not a colour"),
    ("--candidates=0", "--candidates=0: must be at least 1"),
    ("--width=2000", "--width=2000: a line may have at most 200 characters"),
])
def test_bad_flags_are_refused_in_one_line_before_writing(tmp_path, flag, message):
    out = tmp_path / "x.png"
    proc = subprocess.run([sys.executable, "-m", "hwtf.sample", "--text=hi", flag, f"--out={out}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not out.exists()


def test_an_output_that_cannot_be_written_is_refused_before_generating(tmp_path):
    """A folder that takes no new file (procfs refuses even root, for whom
    os.access says yes) and, for other users, a read-only folder and file."""
    places = ["/proc/hi.png"]
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        (locked / "old.png").write_bytes(b"old")
        (locked / "old.png").chmod(0o444)
        locked.chmod(0o555)
        places += [str(locked / "new.png"), str(locked / "old.png")]
    for out in places:
        for flag in ("--out", "--plot_attention"):
            args = [f"--out={tmp_path / 'x.png'}"] if flag != "--out" else []
            proc = subprocess.run([sys.executable, "-m", "hwtf.sample", "--text=hi", f"{flag}={out}", *args],
                                  cwd=REPO, capture_output=True, text=True, timeout=300)
            assert proc.returncode == 2, proc.stderr[-2000:]
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and f"{flag}={out}: not writable" in lines[0], proc.stderr[-2000:]
            assert not (tmp_path / "x.png").exists()


def test_output_folders_are_made_and_a_training_folder_points_to_its_export(model_dir, tmp_path):
    out = tmp_path / "new" / "folder" / "hi.png"
    attention = tmp_path / "other" / "attention.png"
    proc = _sample(model_dir, "--text=hi", f"--out={out}", f"--plot_attention={attention}")
    assert proc.returncode == 0 and attention.exists(), proc.stderr[-2000:]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    train_dir = tmp_path / "run"
    (train_dir / "export").mkdir(parents=True)
    for name in os.listdir(model_dir):
        os.symlink(os.path.join(model_dir, name), train_dir / "export" / name)
    proc = _sample(str(train_dir), "--text=hi", f"--out={tmp_path / 'y.svg'}")
    assert proc.returncode != 0 and f"its export is --model={train_dir / 'export'}" in proc.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _sample(str(empty), "--text=hi", f"--out={tmp_path / 'y.svg'}")
    assert proc.returncode != 0 and "not an exported SavedModel" in proc.stderr


def test_newlines_break_lines_and_blank_lines_paragraphs():
    from hwtf.writer import wrap_text

    assert wrap_text("one two three\nfour\n\nfive", 8) == ["one two", "three", "four", "", "five"]
    assert wrap_text("a\n\n", 10) == ["a"] and wrap_text("", 10) == [""]


def test_a_plain_run_prints_nothing_but_its_result_line(tmp_path):
    """No TensorFlow start-up log, no INFO lines: one line on stdout, nothing
    on stderr; --verbose shows the rest."""
    out = tmp_path / "hi.png"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-m", "hwtf.sample", "--text=hi", f"--out={out}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == f"wrote 1 line to {out}\n" and proc.stderr == ""
    proc = subprocess.run([sys.executable, "-m", "hwtf.sample", "--text=hi", f"--out={out}", "--verbose"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0 and proc.stderr.strip()


def test_a_damaged_export_is_named(model_dir, tmp_path):
    """A cut-short variables file ("Read less bytes than requested") used to
    end in a traceback; now one line names the export."""
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(model_dir, damaged)
    data = damaged / "variables" / "variables.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:100])
    proc = _sample(str(damaged), "--text=hi", f"--out={tmp_path / 'x.svg'}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"{damaged}: the export is damaged" in proc.stderr and "Traceback" not in proc.stderr


def _line_offsets(stray_depth: float = 0.0):
    """A line of ten 10-unit-tall strokes; with `stray_depth`, the sixth
    runs that far below the line and back up, as a strayed pen does."""
    from hwtf.data.strokes import strokes_to_offsets

    strokes = []
    for i in range(10):
        x = 20.0 * i
        stroke = [[x, 0.0], [x + 3, 10.0], [x + 6, 0.0]]
        if i == 5 and stray_depth:
            stroke = [[x, 0.0], [x + 20, -stray_depth], [x + 40, 0.0]]
        strokes.append(np.asarray(stroke, np.float32))
    return strokes_to_offsets(strokes)


def test_stray_ratio_tells_a_strayed_pen_from_a_line_of_writing():
    from hwtf import styles

    assert styles.stray_ratio(_line_offsets()) == pytest.approx(1.0)
    assert styles.stray_ratio(_line_offsets(stray_depth=25.0)) == pytest.approx(2.5)
    assert styles.stray_ratio(_line_offsets(stray_depth=60.0)) > styles.MAX_STRAY
    assert styles.stray_ratio(np.zeros([0, 3], np.float32)) == 0.0


def _walk(points, chars, reach=1.0):
    """An attention `[points, chars]` that moves along the first `reach` of
    the characters, one at a time."""
    phi = np.zeros([points, chars], np.float32)
    phi[np.arange(points), (np.arange(points) * int(chars * reach) // points)] = 1.0
    return phi


class _StrayingWriter:
    """Writes unprimed rows whose first offset's dx is the row number, and
    primed lines that stray when the style's row is in `leads_astray` and
    skip the second half of their text when it is in `skips`."""

    def __init__(self, leads_astray, skips=()):
        self.leads_astray, self.skips = set(leads_astray), set(skips)

    def write(self, texts, bias=0.5, seed=0, steps_per_char=40, style=None, check_style=True):
        from hwtf.writer import Ink

        if style is None:
            rows = []
            for i, t in enumerate(texts):
                offsets = _line_offsets().copy()
                offsets[0, 0] = i
                rows.append(Ink(t, offsets, np.zeros([len(offsets), len(t)], np.float32)))
            return rows
        assert not check_style and bias == 1.0
        row = int(round(float(style.offsets[0, 0])))
        offsets = np.concatenate([_line_offsets(60.0 if row in self.leads_astray else 0.0)] * 3)  # a point a character
        reach = 0.5 if row in self.skips else 1.0
        return [Ink(t, offsets, _walk(len(offsets), len(t), reach)) for t in texts]


def test_styles_that_lead_the_model_astray_are_passed_over():
    from hwtf import styles
    from hwtf.writer import Ink

    kept = styles.make_styles(_StrayingWriter(leads_astray={1, 4}), count=6)
    assert [s["row"] for s in kept] == [0, 2, 3, 5, 6, 7]
    # Styles that make it skip words are passed over too.
    kept = styles.make_styles(_StrayingWriter(leads_astray={1}, skips={0, 3}), count=6)
    assert [s["row"] for s in kept] == [2, 4, 5, 6, 7, 8]
    # Too few pass: those that did come first, then those that skip least.
    kept = styles.make_styles(_StrayingWriter(leads_astray={0, 2, 4, 5, 6, 7, 8, 9}, skips={1, 3}), count=6)
    assert [s["row"] for s in kept] == [10, 11, 0, 2, 4, 5]
    assert styles.line_coverage(Ink("abcd", _line_offsets(), _walk(len(_line_offsets()), 4, 0.5))) == 0.5
    assert all(s["offsets"][0][0] == s["row"] for s in kept)  # each record is its own row's ink
    # Too few pass: the least astray fill the places (all stray alike: the first rows, in order).
    kept = styles.make_styles(_StrayingWriter(leads_astray=range(12)), count=6)
    assert [s["row"] for s in kept] == [0, 1, 2, 3, 4, 5]
    assert [s["row"] for s in styles.make_styles(_StrayingWriter(leads_astray={0}), count=3, check=False)] == [0, 1, 2]
