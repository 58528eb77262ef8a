"""A plain (not editable) install writes from any folder: the shipped models
travel in the wheel (setup.cfg's data_files) and hwtf.writer finds them under
the installed prefix, not in a source tree."""

import glob
import os
import subprocess
import sys
import sysconfig
import venv

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow


def test_a_non_editable_install_finds_the_shipped_model(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(wheels), REPO],
        capture_output=True, text=True, timeout=300,
    )
    if build.returncode and "No module named pip" in build.stderr:
        pytest.skip("pip is not installed in this environment")
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = glob.glob(str(wheels / "hwtf-*.whl"))
    # A fresh environment with this one's dependencies (TensorFlow and the
    # rest) but not its hwtf, which is an editable install of the source tree.
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=False)
    python = str(env_dir / "bin" / "python")
    purelib = subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                      text=True).strip()
    with open(os.path.join(purelib, "deps.pth"), "w") as f:
        f.write(sysconfig.get_path("purelib") + "\n")
    # --ignore-installed: or pip would uninstall this environment's hwtf first.
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--ignore-installed", "--prefix", str(env_dir), wheel],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    where = subprocess.run(
        [python, "-c", "import hwtf.writer as w; print(w.__file__); print(w.DEFAULT_MODEL)"],
        cwd=elsewhere, capture_output=True, text=True, timeout=120, env=run_env,
    )
    assert where.returncode == 0, where.stderr[-2000:]
    module, model = where.stdout.split()
    assert module.startswith(str(env_dir)) and not module.startswith(REPO)
    assert model == str(env_dir / "share" / "hwtf" / "saved_models" / "iamondb-synthesis")
    sample = subprocess.run(
        [python, "-m", "hwtf.sample", "--text=hi", "--out=hi.svg", "--seed=0"],
        cwd=elsewhere, capture_output=True, text=True, timeout=300, env=run_env,
    )
    assert sample.returncode == 0, sample.stderr[-2000:]
    assert (elsewhere / "hi.svg").read_text().count("<path") >= 1
    assert "Traceback" not in sample.stderr
