"""IAM-OnDB reader: a tiny hand-made database in each of the three source
forms (folder, one tar archive, the database's own archives), its defects,
the CLI, and the real archive (../shared/data/iamondb.tar.xz) when it is there."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from hwtf.data import iamondb

ARCHIVE = Path(__file__).parents[1].parent / "shared/data/iamondb.tar.xz"
REPO = Path(__file__).parents[1]


def stroke_xml(strokes) -> bytes:
    """A lineStrokes file; `strokes` are lists of (x, y) with y down."""
    body = "".join(
        '    <Stroke colour="black" start_time="0.0" end_time="1.0">\n'
        + "".join(f'      <Point x="{x}" y="{y}" time="0.0"/>\n' for x, y in stroke)
        + "    </Stroke>\n"
        for stroke in strokes
    )
    return (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<WhiteboardCaptureSession>\n'
        '  <WhiteboardDescription>\n    <SensorLocation corner="top_left"/>\n'
        '    <DiagonallyOppositeCoords x="6512" y="1376"/>\n'
        "  </WhiteboardDescription>\n"
        f"  <StrokeSet>\n{body}  </StrokeSet>\n</WhiteboardCaptureSession>\n"
    ).encode("latin-1")


def ascii_txt(csr: list[str], crlf: bool = False) -> bytes:
    """A transcription: an OCR block that must be ignored, then CSR."""
    text = "OCR:\n\nthe printed text\nwhich is not what was written\n\nCSR:\n\n"
    text += "\n\n".join(csr) + "\n"  # blank lines between CSR lines are skipped
    if crlf:
        text = text.replace("\n", "\r\n")
    return text.encode("latin-1")


def line_strokes(form: str, nn: int) -> list[list[tuple[int, int]]]:
    """Points unique to each line, so a test can tell lines apart."""
    base = 1000 * (sum(map(ord, form)) % 50) + 10 * nn
    return [[(base, 100 + nn), (base + 5, 120 + nn)], [(base + 30, 110)]]


# form -> its CSR lines, one stroke file each.
GOOD = {
    "a01-000u": ["A MOVE to stop Mr . Gaitskell", "from nominating any", "naïve café £3"],
    "a01-001w": ["second form", "of the valid set"],
}


def database_files() -> dict[str, bytes]:
    """Relative path -> content of the fixture database."""
    files: dict[str, bytes] = {}

    def strokes_path(form: str, nn: int) -> str:
        grp, num = form[:3], form.split("-")[1][:3]
        return f"lineStrokes/{grp}/{grp}-{num}/{form}-{nn:02d}.xml"

    def ascii_path(form: str) -> str:
        grp, num = form[:3], form.split("-")[1][:3]
        return f"ascii/{grp}/{grp}-{num}/{form}.txt"

    for form, texts in GOOD.items():
        for nn in range(1, len(texts) + 1):
            files[strokes_path(form, nn)] = stroke_xml(line_strokes(form, nn))
        files[ascii_path(form)] = ascii_txt(texts, crlf=form.endswith("u"))
    # b02-100: line 1 good, 2 truncated XML, 3 not XML at all, 4 no strokes.
    files[strokes_path("b02-100", 1)] = stroke_xml(line_strokes("b02-100", 1))
    files[strokes_path("b02-100", 2)] = stroke_xml(line_strokes("b02-100", 2))[:300]
    files[strokes_path("b02-100", 3)] = b"\x89PNG\r\n\x1a\n\x00\x00 binary junk"
    files[strokes_path("b02-100", 4)] = stroke_xml([])
    files[ascii_path("b02-100")] = ascii_txt(["good one", "truncated", "junk", "empty"])
    # c03-000a: stroke files but no transcription.
    for nn in (1, 2):
        files[strokes_path("c03-000a", nn)] = stroke_xml(line_strokes("c03-000a", nn))
    # d04-000: three stroke files against two CSR lines (like a08-551z).
    for nn in (1, 2, 3):
        files[strokes_path("d04-000", nn)] = stroke_xml(line_strokes("d04-000", nn))
    files[ascii_path("d04-000")] = ascii_txt(["one", "two"])
    # A transcription of a form without stroke files: ignored.
    files[ascii_path("e05-000")] = ascii_txt(["no strokes here"])
    # z99-999 is named by the split but absent.
    files["splits/trainset.txt"] = b" a01-000u\n b02-100\n c03-000a\n d04-000\n z99-999\n"
    files["splits/testset_v.txt"] = b" a01-001w\r\n a01-000u\r\n\r\n"
    return files


def write_folder(root: Path, files: dict[str, bytes], splits_dir: bool = True) -> Path:
    for rel, content in files.items():
        if not splits_dir and rel.startswith("splits/"):
            rel = rel[len("splits/"):]
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def write_tar(path: Path, files: dict[str, bytes], prefix: str = "") -> Path:
    with tarfile.open(path, "w:" + path.suffix.lstrip(".").replace("tar", "")) as tar:
        for rel, content in files.items():
            info = tarfile.TarInfo(prefix + rel)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


def make_source(kind: str, tmp: Path) -> Path:
    files = database_files()
    if kind == "folder":  # split files at the top
        return write_folder(tmp / "db", files, splits_dir=False)
    if kind == "nested_folder":  # everything under iamondb/, splits under splits/
        write_folder(tmp / "outer" / "iamondb", files)
        return tmp / "outer"
    if kind == "tar_xz":  # like the dev archive: nested, split files last
        ordered = dict(sorted(files.items(), key=lambda kv: kv[0].startswith("splits/")))
        return write_tar(tmp / "iamondb.tar.xz", ordered, prefix="iamondb/")
    if kind == "db_archives":  # lineStrokes-all.tar.gz + ascii-all.tar.gz + splits
        root = tmp / "archives"
        root.mkdir()
        for part in ("lineStrokes", "ascii"):
            write_tar(
                root / f"{part}-all.tar.gz",
                {k: v for k, v in files.items() if k.startswith(part + "/")},
            )
        for rel, content in files.items():
            if rel.startswith("splits/"):
                (root / Path(rel).name).write_bytes(content)
        return root
    raise ValueError(kind)


SOURCES = ["folder", "nested_folder", "tar_xz", "db_archives"]


@pytest.fixture(params=SOURCES)
def source(request, tmp_path):
    return make_source(request.param, tmp_path)


def by_id(items):
    return {item.id: item for item in items}


def test_lines_and_texts(source):
    lines, _ = iamondb.read(source, ["trainset"])
    assert [line.id for line in lines] == [
        "a01-000u-01", "a01-000u-02", "a01-000u-03", "b02-100-01"
    ]
    texts = {line.id: line.text for line in lines}
    # The NN-th non-blank CSR line, CRLF stripped, latin-1 decoded.
    assert texts["a01-000u-01"] == "A MOVE to stop Mr . Gaitskell"
    assert texts["a01-000u-02"] == "from nominating any"
    assert texts["a01-000u-03"] == "naïve café £3"
    assert texts["b02-100-01"] == "good one"


def test_points_are_flipped_to_y_up(source):
    lines, _ = iamondb.read(source, ["trainset"])
    line = by_id(lines)["a01-000u-02"]
    expected = line_strokes("a01-000u", 2)
    assert len(line.strokes) == len(expected)
    for got, want in zip(line.strokes, expected):
        assert got.dtype == np.float32 and got.shape == (len(want), 2)
        np.testing.assert_array_equal(got, [(x, -y) for x, y in want])


def test_every_defect_is_skipped_with_its_reason(source):
    lines, skipped = iamondb.read(source, ["trainset"])
    reasons = {s.id: s.reason for s in skipped}
    assert "XML does not parse" in reasons["b02-100-02"]
    assert "XML does not parse" in reasons["b02-100-03"]
    assert "empty stroke set" in reasons["b02-100-04"]
    for nn in (1, 2):
        assert "no transcription for form c03-000a" in reasons[f"c03-000a-{nn:02d}"]
    for nn in (1, 2, 3):  # the whole form, each of its lines
        reason = reasons[f"d04-000-{nn:02d}"]
        assert "3 stroke files" in reason and "2 CSR lines" in reason
    assert "trainset" in reasons["z99-999"] and "no stroke files" in reasons["z99-999"]
    assert len(skipped) == len(reasons) == 3 + 2 + 3 + 1
    # Every stroke file of the requested forms is either a line or a skip.
    assert not {line.id for line in lines} & set(reasons)


def test_splits_combine_in_order_without_duplicates(source):
    lines, skipped = iamondb.read(source, ["testset_v"])
    assert [line.id for line in lines] == [
        "a01-001w-01", "a01-001w-02", "a01-000u-01", "a01-000u-02", "a01-000u-03"
    ]
    assert skipped == []
    lines, skipped = iamondb.read(source, ["trainset", "testset_v"])
    ids = [line.id for line in lines]
    assert ids == [
        "a01-000u-01", "a01-000u-02", "a01-000u-03", "b02-100-01",
        "a01-001w-01", "a01-001w-02",
    ]
    assert len(skipped) == 9


def test_missing_split_file_is_an_error(source):
    with pytest.raises(ValueError, match=r"testset_f\.txt not found; looked in"):
        iamondb.read(source, ["trainset", "testset_f"])


def test_bad_sources_are_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        iamondb.read(tmp_path / "nowhere", ["trainset"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no lineStrokes"):
        iamondb.read(tmp_path / "empty", ["trainset"])
    archive = write_tar(tmp_path / "other.tar.gz", {"splits/trainset.txt": b" a01-000u\n"})
    with pytest.raises(ValueError, match="holds no lineStrokes"):
        iamondb.read(archive, ["trainset"])
    (tmp_path / "junk.tar.xz").write_bytes(b"not an archive at all")
    with pytest.raises(ValueError, match="not a readable tar archive"):
        iamondb.read(tmp_path / "junk.tar.xz", ["trainset"])


def test_csr_lines():
    data = "OCR:\r\n\r\nprinted\r\n\r\nCSR:\r\n\r\n  first \r\n\r\nsecond\x85x\r\n".encode(
        "latin-1")
    assert iamondb.csr_lines(data) == ["first", "second\x85x"]
    assert iamondb.csr_lines(b"OCR:\n\nonly ocr\n") is None


def test_cli_json(tmp_path):
    source = make_source("tar_xz", tmp_path)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-m", "hwtf.data", "--dataset=iamondb", f"--data_dir={source}",
         "--split=trainset,testset_v", f"--cache_dir={tmp_path / 'cache'}", "--json"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=True,
    )
    result = json.loads(out.stdout)
    assert result["dataset"] == "iamondb"
    assert result["splits"] == ["trainset", "testset_v"]
    assert result["lines"] == 6
    assert result["points"] == 6 * 3
    texts = [*GOOD["a01-000u"], "good one", *GOOD["a01-001w"]]
    assert result["characters"] == sum(map(len, texts))
    assert result["alphabet"] == "".join(sorted(set("".join(texts))))
    assert {s["id"] for s in result["skipped"]} >= {"d04-000-01", "z99-999"}
    assert all(set(s) == {"id", "reason"} for s in result["skipped"])
    assert list((tmp_path / "cache").glob("*.npz"))


def test_oversized_stroke_files_are_skipped_unread(source, monkeypatch):
    """A stroke file over the size limit is skipped with its reason, without
    being read (a 78 MB one in an 8 MB archive took 3.2 GB)."""
    monkeypatch.setattr(iamondb, "MAX_STROKE_FILE_BYTES", 50)
    lines, skipped = iamondb.read(source, ["trainset"])
    assert not lines
    assert any("over the limit of 50" in s.reason for s in skipped)


def test_data_dir_means_iamondb_and_contradictions_are_refused(tmp_path):
    """--data_dir used to be ignored without --dataset=iamondb (the synthetic
    set was read instead, silently); a data error used to print the usage
    text first, and an empty selection scored "NLL 0.0"."""
    source = make_source("tar_xz", tmp_path)

    def run(*args):
        return subprocess.run([sys.executable, "-m", *args, f"--cache_dir={tmp_path / 'cache'}"],
                              cwd=REPO, capture_output=True, text=True, timeout=300)

    out = run("hwtf.data", f"--data_dir={source}", "--split=trainset", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["dataset"] == "iamondb", out.stderr[-2000:]
    out = run("hwtf.data", "--dataset=synthetic", f"--data_dir={source}")
    assert out.returncode == 2 and "--data_dir=" in out.stderr and "is for --dataset=iamondb" in out.stderr
    out = run("hwtf.data", f"--data_dir={tmp_path / 'missing'}")
    assert out.returncode == 2 and "missing" in out.stderr and "USAGE" not in out.stderr.upper(), out.stderr[-2000:]
    out = run("hwtf.evaluate", f"--model={REPO}/saved_models/synthetic-demo", "--max_lines=-1")
    assert out.returncode == 2 and "--max_lines=-1: must be 0 (all) or more" in out.stderr


@pytest.fixture(scope="module")
def archive_lines():
    if not ARCHIVE.exists():
        pytest.skip(f"{ARCHIVE} is not there")
    return iamondb.read(ARCHIVE, ["trainset", "testset_f"])


@pytest.mark.slow
def test_archive_trainset_and_testset_f(archive_lines):
    lines, skipped = archive_lines
    # 5,364 stroke files in the 775 trainset forms and 3,859 in the 544
    # testset_f forms: each is a line or a skip.
    assert len(lines) + len(skipped) == 5364 + 3859
    assert len(lines) > 9150
    skipped_ids = {s.id for s in skipped}
    assert {f"a08-551z-{nn:02d}" for nn in range(1, 10)} <= skipped_ids
    assert "8 CSR lines" in next(s.reason for s in skipped if s.id == "a08-551z-01")
    assert len({line.id for line in lines}) == len(lines)
    assert all(line.text and line.strokes for line in lines)
    first = lines[0]
    assert first.id == "a01-020x-01" and first.text.startswith("Mr . Macleod")
    # The file's y is positive and grows downwards: flipped, it is negative.
    assert all(np.all(s[:, 1] <= 0) for s in first.strokes)
    # testset_f's lines come after trainset's, in the splits' order.
    assert lines[-1].id.startswith(tuple(f.strip() for f in _split_forms("testset_f")[-3:]))


def _split_forms(split):
    with tarfile.open(ARCHIVE) as tar:
        member = next(m for m in tar if m.name.endswith(f"splits/{split}.txt"))
        return [line for line in tar.extractfile(member).read().decode().split() if line.strip()]
