"""What the commands share (`hwtf.cli`): a bad flag value is named in one
line, with exit status 2, before TensorFlow is imported (which takes ten
seconds of a slow host), and nothing is written."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("command, message", [
    (["hwtf.sample", "--text=hi", "--width=0"], "--width=0: must be at least 1"),
    (["hwtf.sample", "--text=hi", "--out={tmp}/x.gif"], "expected a .svg or .png picture"),
    (["hwtf.sample", "--text=hi", "--model={tmp}/nope"], "--model={tmp}/nope: no such SavedModel directory"),
    (["hwtf.sample", "--text=hi", "--style=99"], "--style=99: style 99 does not exist"),
    (["hwtf.train", "--flagfile=flags/ci.cfg", "--mixtures=0"], "--mixtures=0: must be at least 1"),
    (["hwtf.train", "--flagfile=flags/ci.cfg", "--strategy=multi_worker"], "needs TF_CONFIG"),
    (["hwtf.train", "--flagfile=flags/ci.cfg", "--ema_decay=1"], "--ema_decay=1: must be in [0, 1) (0 = no average)"),
    (["hwtf.train", "--flagfile=flags/ci.cfg", "--weight_noise=-0.1"], "--weight_noise=-0.1: must be a standard deviation"),
    (["hwtf.train", "--flagfile=flags/ci.cfg", "--export_dir={tmp}/notes"], "holds files that are not an hwtf export (x.txt)"),
    (["hwtf.data", "--data_dir={tmp}/missing"], "--data_dir={tmp}/missing: no such"),
    (["hwtf.evaluate", "--model=saved_models/synthetic-demo", "--batch_size=0"], "--batch_size=0: must be at"),
    (["hwtf.evaluate", "--model={tmp}", "--legibility"], "--legibility needs an exported SavedModel"),
    (["hwtf.data", "--dataset=synthetic", "--data_dir={tmp}"], "is for --dataset=iamondb"),
    (["hwtf.serve", "--model={tmp}"], "--model={tmp}: not an exported SavedModel directory"),
    (["hwtf.serve", "--port=70000"], "--port=70000: expected 0 to 65535"),
    (["hwtf.styles", "--model={tmp}/nope"], "--model={tmp}/nope: not a SavedModel directory"),
    (["hwtf.styles", "--model=saved_models/synthetic-demo", "--count=0"], "--count=0: must be at least 1"),
    (["hwtf.export", "--model={tmp}/nope"], "--model={tmp}/nope: not an exported SavedModel directory"),
])
def test_a_bad_flag_is_refused_before_tensorflow_loads(tmp_path, command, message):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "x.txt").write_text("mine")
    args = [a.format(tmp=tmp_path) for a in command]
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["HWTF_CACHE"] = str(tmp_path / "cache")
    if args[0] == "hwtf.train":
        args.append(f"--train_dir={tmp_path / 'run'}")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=env)
    imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    said = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    assert proc.returncode == 2 and len(said) == 1 and said[0].startswith(f"{args[0]}: error: "), said
    assert message.format(tmp=tmp_path) in said[0], said
    assert "hwtf.cli" in imported and "tensorflow" not in imported and "keras" not in imported
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"]


@pytest.mark.parametrize("command", ["hwtf.styles", "hwtf.widen", "hwtf.stint_state", "hwtf.sample", "hwtf.train",
                                     "hwtf.export"])
def test_a_flag_absl_cannot_parse_is_refused_before_tensorflow_loads(tmp_path, command):
    # A stand-in tensorflow first on the path leaves a mark if anything
    # imports it (the quiet import hides the real one from -X importtime).
    fake = tmp_path / "path" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\nraise ImportError('fake')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "path"), REPO]))
    proc = subprocess.run([sys.executable, "-m", command, "--no_such_flag=1"], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode != 0 and "no_such_flag" in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "imported").exists()
