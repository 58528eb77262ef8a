"""Reader for the IAM On-Line Handwriting Database (IAM-OnDB).

The user supplies the database (its licence forbids shipping it), in any of
three forms:

  * an extracted folder holding `lineStrokes/`, `ascii/` and the split files
    (`<split>.txt` at the top or under `splits/`), possibly nested one level
    down (e.g. `<source>/iamondb/lineStrokes/...`);
  * one tar archive (`.tar.xz`, `.tar.gz`, `.tar`) of such a folder;
  * a folder holding the database's own archives, `lineStrokes-all.tar.gz`
    and `ascii-all.tar.gz`, with the split files beside them.

Archives are streamed once and never extracted to disk.

Each stroke file `<form>-<NN>.xml` is one line of handwriting; its text is the
NN-th non-blank line after `CSR:` in `ascii/.../<form>.txt`. A split file lists
form ids, and a form id selects all of that form's stroke files.

Defects in the data never abort a read: a line that cannot be used is left out
and reported as a `Skipped`. Its id is the line id (`a08-551z-03`), one per
stroke file left out, so that `lines + skipped` accounts for every stroke file
of the requested forms. Only a form that has no stroke files at all is
reported under its form id. When a form's stroke files and CSR lines do not
pair up one to one (`a08-551z`: 9 files, 8 lines) the mapping is ambiguous, so
every line of that form is skipped.

Mistakes of the user (a source that does not exist or holds no lineStrokes, a
split file that is not there) raise `ValueError` instead.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tarfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from lxml import etree

from hwtf.data.strokes import Line, Skipped

# Bump when what `read` returns changes: it keys the preprocessed-data cache.
VERSION = "1"

# The database's own archive names (the folder form that holds them).
STROKES_ARCHIVE = "lineStrokes-all.tar.gz"
ASCII_ARCHIVE = "ascii-all.tar.gz"

# `a01-020x-05.xml` -> form `a01-020x`, line 5.
_STROKE_FILE = re.compile(r"^(?P<form>.+)-(?P<nn>\d+)\.xml$")

# No entity expansion, no network, no unbounded trees: the files come from
# wherever the user got them.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
_POINT_X = etree.XPath("Point/@x", smart_strings=False)
_POINT_Y = etree.XPath("Point/@y", smart_strings=False)


def read(
    source: str | os.PathLike, splits: Sequence[str]
) -> tuple[list[Line], list[Skipped]]:
    """Reads the lines of the forms named in `splits`.

    Args:
      source: an IAM-OnDB folder or archive (see the module docstring).
      splits: split file names without `.txt` (e.g. `trainset`, `testset_v`);
        their forms are combined in order, each form once.

    Returns:
      `(lines, skipped)`: lines in split-file order (stroke files of a form by
      number), with strokes as float32 `[n_i, 2]` absolute points in the
      file's units, y pointing up; and what was left out, with the reason.

    Raises:
      ValueError: `source` does not exist, is not a folder or tar archive, or
        holds no lineStrokes; or a split file is missing.
    """
    path = Path(source).expanduser()
    if isinstance(splits, str):
        splits = [splits]
    splits = list(splits)
    if not splits:
        raise ValueError("no splits given; expected e.g. ['trainset']")
    for split in splits:
        if not split or "/" in split or "\\" in split or split in (".", ".."):
            raise ValueError(f"bad split name {split!r}; expected e.g. 'trainset'")
    if not path.exists():
        raise ValueError(f"IAM-OnDB source {str(path)!r} does not exist")

    if path.is_file():
        files = _Files(str(path))
        _scan_archive(path, files, wanted=None)
        _require_strokes(files, path)
        form_lists = {s: files.split_texts.get(s) for s in splits}
        looked = f"the archive {path} (any member named <split>.txt)"
    elif (path / STROKES_ARCHIVE).is_file():
        files = _Files(str(path))
        form_lists = {s: _read_split_file(_split_candidates([path], s)) for s in splits}
        looked = f"{path}/<split>.txt and {path}/splits/<split>.txt"
        _check_splits(form_lists, looked)
        wanted = set(_combine(form_lists))
        for name in (STROKES_ARCHIVE, ASCII_ARCHIVE):
            if (path / name).is_file():
                _scan_archive(path / name, files, wanted)
        _require_strokes(files, path)
    elif path.is_dir():
        root = _find_root(path)
        dirs = list(dict.fromkeys([root, path]))
        form_lists = {s: _read_split_file(_split_candidates(dirs, s)) for s in splits}
        looked = " and ".join(f"{d}/<split>.txt, {d}/splits/<split>.txt" for d in dirs)
        files = _Files(str(path))
        _scan_folder(root, files)
    else:
        raise ValueError(f"IAM-OnDB source {str(path)!r} is neither a folder nor a file")

    _check_splits(form_lists, looked)
    return _assemble(files, form_lists)


@dataclasses.dataclass
class _Files:
    """What a source holds: stroke files and transcriptions by form, each
    either its bytes (from an archive) or its path (in a folder)."""

    source: str
    strokes: dict[str, dict[int, bytes | Path]] = dataclasses.field(default_factory=dict)
    ascii: dict[str, bytes | Path] = dataclasses.field(default_factory=dict)
    split_texts: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    num_stroke_files: int = 0


# The largest stroke file read. IAM-OnDB's largest line file is far smaller
# (about 200 KB); an archive could hold a 78 MB one that, parsed, took 3.2 GB.
MAX_STROKE_FILE_BYTES = 4 << 20


class _TooLarge(int):
    """A stroke file left unread in an archive: its size in bytes."""


def _read_bytes(content: bytes | Path) -> bytes:
    return content if isinstance(content, bytes) else content.read_bytes()


def _read_stroke_file(content: bytes | Path | _TooLarge) -> bytes:
    """A stroke file's bytes; ValueError (a skip, with its reason) when it is
    over `MAX_STROKE_FILE_BYTES`."""
    size = content if isinstance(content, _TooLarge) else (
        len(content) if isinstance(content, bytes) else content.stat().st_size
    )
    if size > MAX_STROKE_FILE_BYTES:
        raise ValueError(f"stroke file of {size:,} bytes is over the limit of {MAX_STROKE_FILE_BYTES:,}")
    return _read_bytes(content)


def _parse_split(data: bytes) -> list[str]:
    """Form ids of a split file: one a line, leading spaces stripped."""
    text = data.decode("latin-1")
    return [line.strip() for line in text.split("\n") if line.strip()]


def _split_candidates(dirs: Iterable[Path], split: str) -> list[Path]:
    return [p for d in dirs for p in (d / f"{split}.txt", d / "splits" / f"{split}.txt")]


def _read_split_file(candidates: list[Path]) -> list[str] | None:
    for candidate in candidates:
        if candidate.is_file():
            return _parse_split(candidate.read_bytes())
    return None


def _check_splits(form_lists: dict[str, list[str] | None], looked: str) -> None:
    missing = [s for s, forms in form_lists.items() if forms is None]
    if missing:
        raise ValueError(
            f"split file(s) {', '.join(f'{s}.txt' for s in missing)} not found; "
            f"looked in {looked}"
        )


def _combine(form_lists: dict[str, list[str] | None]) -> list[str]:
    """The forms of all splits, in order, each once."""
    return list(dict.fromkeys(f for forms in form_lists.values() for f in forms or ()))


def _find_root(path: Path) -> Path:
    """The folder holding `lineStrokes/`: `path` itself or a folder inside it."""
    if (path / "lineStrokes").is_dir():
        return path
    inner = sorted(
        entry.path for entry in os.scandir(path)
        if entry.is_dir() and os.path.isdir(os.path.join(entry.path, "lineStrokes"))
    )
    if not inner:
        raise ValueError(
            f"IAM-OnDB source {str(path)!r} holds no lineStrokes/ folder (nor one "
            f"level down) and no {STROKES_ARCHIVE}"
        )
    return Path(inner[0])


def _require_strokes(files: _Files, path: Path) -> None:
    if not files.num_stroke_files:
        raise ValueError(
            f"IAM-OnDB source {str(path)!r} holds no lineStrokes stroke files "
            f"(<form>-<NN>.xml under a lineStrokes/ folder)"
        )


def _add_stroke_file(files: _Files, name: str, content) -> None:
    match = _STROKE_FILE.match(name)
    if match:
        form = match["form"]
        files.strokes.setdefault(form, {})[int(match["nn"])] = content
        files.num_stroke_files += 1


def _scan_folder(root: Path, files: _Files) -> None:
    """Lists `root/lineStrokes` and `root/ascii`; reads nothing yet."""
    for top, _, names in os.walk(root / "lineStrokes"):
        for name in names:
            if name.endswith(".xml"):
                _add_stroke_file(files, name, Path(top, name))
    for top, _, names in os.walk(root / "ascii"):
        for name in names:
            if name.endswith(".txt"):
                files.ascii[name[:-4]] = Path(top, name)
    _require_strokes(files, root)


def _scan_archive(path: Path, files: _Files, wanted: set[str] | None) -> None:
    """One streaming pass over a tar archive, keeping the bytes of the members
    that are needed: stroke files and transcriptions of `wanted` forms (all of
    them when None, since split files may come last in the archive), and
    split files (any `<name>.txt` outside lineStrokes/ and ascii/)."""
    try:
        archive = tarfile.open(path, "r|*")
    except (tarfile.TarError, OSError) as e:
        raise ValueError(f"IAM-OnDB source {str(path)!r} is not a readable tar archive: {e}")
    with archive:
        try:
            for member in archive:
                if not member.isfile():
                    continue
                parts = member.name.replace("\\", "/").split("/")
                name = parts[-1]
                if "lineStrokes" in parts[:-1]:
                    match = _STROKE_FILE.match(name)
                    if match and (wanted is None or match["form"] in wanted):
                        content = (_TooLarge(member.size) if member.size > MAX_STROKE_FILE_BYTES
                                   else archive.extractfile(member).read())
                        _add_stroke_file(files, name, content)
                    elif match:
                        files.num_stroke_files += 1  # present, just not wanted
                elif "ascii" in parts[:-1]:
                    if name.endswith(".txt") and (wanted is None or name[:-4] in wanted):
                        files.ascii[name[:-4]] = archive.extractfile(member).read()
                elif name.endswith(".txt") and member.size < 1 << 20:
                    files.split_texts.setdefault(
                        name[:-4], _parse_split(archive.extractfile(member).read())
                    )
        except (tarfile.TarError, OSError, EOFError) as e:
            raise ValueError(f"IAM-OnDB archive {str(path)!r} is damaged: {e}")


def csr_lines(data: bytes) -> list[str] | None:
    """The transcribed lines of an ascii file: non-blank lines after `CSR:`,
    stripped (None when there is no `CSR:` block)."""
    # Split on "\n" only: str.splitlines would also split on latin-1 "\x85".
    lines = [line.strip() for line in data.decode("latin-1").split("\n")]
    try:
        start = lines.index("CSR:")
    except ValueError:
        return None
    return [line for line in lines[start + 1 :] if line]


def parse_strokes(data: bytes) -> tuple[np.ndarray, ...]:
    """The strokes of a lineStrokes XML file: float32 `[n_i, 2]` each, y up.

    Raises:
      ValueError: the XML does not parse, or a point's coordinates are
        missing or not numbers.
    """
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as e:
        raise ValueError(f"XML does not parse: {e}") from None
    strokes = []
    for stroke in root.iterfind("StrokeSet/Stroke"):
        xs, ys = _POINT_X(stroke), _POINT_Y(stroke)
        if len(xs) != len(ys):
            raise ValueError("a Point lacks its x or y attribute")
        if not xs:
            continue
        try:
            points = np.array([xs, ys], np.float32).T  # [n, 2]
        except ValueError as e:
            raise ValueError(f"bad Point coordinates: {e}") from None
        if not np.all(np.isfinite(points)):
            raise ValueError("Point coordinates are not finite")
        points[:, 1] *= -1.0  # the file's y grows downwards
        strokes.append(np.ascontiguousarray(points))
    return tuple(strokes)


def _assemble(
    files: _Files, form_lists: dict[str, list[str] | None]
) -> tuple[list[Line], list[Skipped]]:
    lines: list[Line] = []
    skipped: list[Skipped] = []
    form_split = {}
    for split, forms in form_lists.items():
        for form in forms or ():
            form_split.setdefault(form, split)
    for form, split in form_split.items():
        numbers = files.strokes.get(form)
        if not numbers:
            skipped.append(Skipped(
                form, f"split {split} names form {form}, which has no stroke files "
                f"in {files.source}"))
            continue
        line_ids = [f"{form}-{nn:02d}" for nn in sorted(numbers)]

        def skip_form(reason: str) -> None:
            skipped.extend(Skipped(line_id, reason) for line_id in line_ids)

        if form not in files.ascii:
            skip_form(f"no transcription for form {form} (ascii/.../{form}.txt missing)")
            continue
        texts = csr_lines(_read_bytes(files.ascii[form]))
        if texts is None:
            skip_form(f"transcription of form {form} has no CSR: block")
            continue
        if sorted(numbers) != list(range(1, len(texts) + 1)):
            skip_form(
                f"form {form} has {len(numbers)} stroke files (numbered "
                f"{min(numbers):02d}-{max(numbers):02d}) but {len(texts)} CSR lines; "
                "the line-to-text mapping is ambiguous, so the whole form is skipped"
            )
            continue
        for (nn, content), line_id in zip(sorted(numbers.items()), line_ids):
            try:
                strokes = parse_strokes(_read_stroke_file(content))
            except (ValueError, OSError) as e:
                skipped.append(Skipped(line_id, str(e)))
                continue
            if not strokes:
                skipped.append(Skipped(line_id, "empty stroke set: no Stroke with a Point"))
                continue
            lines.append(Line(line_id, texts[nn - 1], strokes))
    return lines, skipped
