"""Bring your own ink: InkML (W3C) and a plain JSON form, in and out.

Both forms hold one piece of handwriting: its strokes and, when known, what it
says. In Python the strokes are what the rest of hwtf uses: a list of float32
`[n_i, 2]` arrays of absolute `(x, y)`, **y pointing up**, one per pen-down
run.

InkML (https://www.w3.org/TR/InkML/) counts y downwards, like a screen;
`read_inkml` and `write_inkml` flip it. What is read:

- `<trace>` elements anywhere under `<ink>`, nested `<traceGroup>`s included,
  in document order; one stroke each (empty traces and `type="penUp"`
  hover traces are skipped);
- the channels of a `<traceFormat>` (declared in `<definitions>`, a
  `<context>` or directly in `<ink>`), in their declared order (`Y X T` is
  fine); X and Y are kept, any other channel (T, F, ...) is read and ignored;
  `<intermittentChannels>` may be left out of a point. A trace uses the
  format of the `<context>` its `contextRef` names when that has one, else the
  document's first `<traceFormat>`, else InkML's default `X Y`;
- values in explicit (`!`), first-difference (`'`) and second-difference
  (`"`) form; as in the InkML grammar, a prefix stays in force for its
  channel until another replaces it, and `3-5` is two values;
- the text from `<annotation type="truth">` (the first one), else None.

Malformed traces raise `ValueError` naming the trace (its `xml:id`, else its
index in document order) and what is wrong. Files are parsed without entity
expansion, DTD loading or network access, must be at most `MAX_BYTES`, and
may not nest deeper than libxml2's default limit (256 levels).

The JSON form, for web front ends (an HTML canvas gives y down: flip it
before writing), is

    {"text": "what the ink says", "strokes": [[[x, y], [x, y], ...], ...]}

with **y up**, as in the rest of hwtf; `"text"` may be absent or null.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import NamedTuple, Sequence, Union

import numpy as np
from lxml import etree

INKML_NS = "http://www.w3.org/2003/InkML"
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"

# Files above this size are refused before parsing: a page of ink at IAM-OnDB
# density is well under 1 MB.
MAX_BYTES = 20 * 1024 * 1024

PathOrBytes = Union[str, os.PathLike, bytes]

# One value of a trace: an optional difference prefix, then a number (or
# one of InkML's symbols for boolean channels, unknown `?` and wildcard `*`).
_VALUE = re.compile(r"\s*([!'\"]?)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[TF?*])")


def _local(tag) -> str:
    """`{namespace}name` -> `name`; comments and entities -> ''."""
    return etree.QName(tag).localname if isinstance(tag, str) else ""


class _Loaded(NamedTuple):
    """A file's content, read once (a stream such as standard input cannot
    be read twice), and its name for messages."""

    data: bytes
    name: str


def _read_bytes(source: PathOrBytes, max_bytes: int | None = None) -> tuple[bytes, str]:
    """The content of a path (or bytes) and a name for messages, refusing
    anything larger than `max_bytes` (default `MAX_BYTES`) before reading it."""
    limit = MAX_BYTES if max_bytes is None else max_bytes
    if isinstance(source, _Loaded):
        return source.data, source.name
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), "<bytes>"
    elif os.fspath(source) == "-":
        data, name = sys.stdin.buffer.read(limit + 1), "<stdin>"
    else:
        name = os.fspath(source)
        size = os.path.getsize(name)
        if size > limit:
            raise ValueError(f"{name}: {size} bytes is over the limit of {limit} bytes for ink files")
        with open(name, "rb") as f:
            data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{name}: {len(data)} bytes is over the limit of {limit} bytes for ink files")
    return data, name


def _parse_xml(data: bytes, name: str):
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False, remove_comments=True
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        # Among others: nesting deeper than 256 levels ("Excessive depth"),
        # entity loops, truncated files.
        raise ValueError(f"{name}: not a readable XML document: {e}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None and any(True for _ in docinfo.internalDTD.iterentities()):
        # InkML has no use for entities; a document that declares them is
        # refused rather than read with them half-expanded.
        raise ValueError(f"{name}: declares XML entities in a DOCTYPE; InkML files have none, refused")
    return root


def _channels(trace_format) -> tuple[list[str], int]:
    """A `<traceFormat>`'s channel names, in order (regular, then
    intermittent), and how many are regular (always present)."""
    regular, optional = [], []
    for child in trace_format:
        if _local(child.tag) == "channel":
            regular.append(child.get("name", ""))
        elif _local(child.tag) == "intermittentChannels":
            optional.extend(c.get("name", "") for c in child if _local(c.tag) == "channel")
    return regular + optional, len(regular)


def _formats(root, name: str):
    """The document's trace formats: `(default, by context id)`."""
    by_id, first = {}, None
    for element in root.iter():
        if _local(element.tag) == "traceFormat":
            channels = _channels(element)
            first = first or channels
            if element.get(XML_ID):
                by_id[element.get(XML_ID)] = channels
    contexts = {}
    for context in root.iter():
        if _local(context.tag) != "context" or not context.get(XML_ID):
            continue
        inline = [c for c in context if _local(c.tag) == "traceFormat"]
        if inline:
            contexts[context.get(XML_ID)] = _channels(inline[0])
        elif context.get("traceFormatRef"):
            ref = context.get("traceFormatRef").lstrip("#")
            if ref in by_id:
                contexts[context.get(XML_ID)] = by_id[ref]
    default = first or (["X", "Y"], 2)
    for channels, _ in [default, *contexts.values()]:
        if "X" not in channels or "Y" not in channels:
            raise ValueError(f"{name}: a traceFormat has channels {channels}; X and Y are needed")
    return default, contexts


def _parse_trace(text: str, channels: list[str], regular: int, label: str) -> np.ndarray:
    """A trace's text -> float64 `[n, 2]` of `(X, Y)` as written (y down)."""
    text = text.strip()
    if not text:
        return np.zeros((0, 2))
    x_index, y_index = channels.index("X"), channels.index("Y")
    n = len(channels)
    mode = ["!"] * n
    previous = [None] * n  # last value per channel
    velocity = [None] * n  # last first difference per channel
    points = []
    for p, point in enumerate(text.split(",")):
        tokens, pos = [], 0
        point = point.rstrip()
        while pos < len(point):
            match = _VALUE.match(point, pos)
            if not match:
                raise ValueError(f"trace {label}: point {p} has a non-numeric value near {point[pos:pos + 20].strip()!r}")
            tokens.append(match.groups())
            pos = match.end()
        if not regular <= len(tokens) <= n:
            expected = f"{regular}" if regular == n else f"{regular} to {n}"
            raise ValueError(
                f"trace {label}: point {p} has {len(tokens)} values, expected {expected} (channels {' '.join(channels)})"
            )
        values = []
        for c, (prefix, token) in enumerate(tokens):
            mode[c] = prefix or mode[c]
            if token in "TF?*":
                if c in (x_index, y_index):
                    raise ValueError(f"trace {label}: point {p} has {token!r} for channel {channels[c]}, expected a number")
                values.append(np.nan)
                continue
            v = float(token)
            if mode[c] == "'":
                if previous[c] is None:
                    raise ValueError(f"trace {label}: point {p}: a first difference (') needs a previous point")
                v = previous[c] + v
            elif mode[c] == '"':
                if velocity[c] is None:
                    raise ValueError(f'trace {label}: point {p}: a second difference (") needs two previous points')
                v = previous[c] + velocity[c] + v
            if previous[c] is not None:
                velocity[c] = v - previous[c]
            previous[c] = v
            values.append(v)
        if not np.isfinite(values[x_index]) or not np.isfinite(values[y_index]):
            raise ValueError(f"trace {label}: point {p} has a non-finite coordinate")
        points.append((values[x_index], values[y_index]))
    return np.asarray(points, np.float64)


def read_inkml(source: PathOrBytes) -> tuple[list[np.ndarray], str | None]:
    """Reads an InkML document (a path, or its bytes).

    Returns:
      `(strokes, text)`: float32 `[n_i, 2]` per trace, y up; the truth
      annotation or None.

    Raises:
      ValueError: a file over `MAX_BYTES`, XML that does not parse (or nests
        too deep, or declares entities), a root other than `<ink>`, no
        traces, or a malformed trace (named).
    """
    data, name = _read_bytes(source)
    root = _parse_xml(data, name)
    if _local(root.tag) != "ink":
        raise ValueError(f"{name}: the root element is <{_local(root.tag)}>, expected an InkML <ink>")
    default, contexts = _formats(root, name)
    strokes = []
    traces = [e for e in root.iter() if _local(e.tag) == "trace"]
    if not traces:
        raise ValueError(f"{name}: no <trace> elements")
    for index, trace in enumerate(traces):
        if trace.get("type") == "penUp":  # the pen hovering: not ink
            continue
        label = repr(trace.get(XML_ID)) if trace.get(XML_ID) else f"#{index}"
        context = (trace.get("contextRef") or "").lstrip("#")
        channels, regular = contexts.get(context, default)
        try:
            points = _parse_trace(trace.text or "", channels, regular, label)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
        if len(points):
            points[:, 1] = 0.0 - points[:, 1]  # InkML's y grows downwards
            with np.errstate(over="ignore"):
                points = points.astype(np.float32)
            if not np.all(np.isfinite(points)):
                raise ValueError(f"trace {label}: coordinates beyond float32's range (3.4e38)")
            strokes.append(points)
    text = None
    for annotation in root.iter():
        if _local(annotation.tag) == "annotation" and annotation.get("type") == "truth":
            text = (annotation.text or "").strip() or None
            break
    return strokes, text


def _rounded(strokes: Sequence[np.ndarray], precision: int) -> list[np.ndarray]:
    out = []
    for i, stroke in enumerate(strokes):
        stroke = np.asarray(stroke, np.float64).reshape(-1, 2)
        if not np.all(np.isfinite(stroke)):
            raise ValueError(f"stroke {i} has non-finite coordinates")
        if len(stroke):
            out.append(np.round(stroke, precision))
    return out


def _fmt(value: float, precision: int) -> str:
    text = f"{value:.{precision}f}"
    return "0" if float(text) == 0 else text  # no "-0.00"


def write_inkml(
    strokes: Sequence[np.ndarray], path: str | os.PathLike | None = None, text: str | None = None, precision: int = 2
) -> str:
    """An InkML document of `strokes` (each `[n_i, 2]`, y up), one `<trace>`
    a stroke, values rounded to `precision` decimals and y flipped to InkML's
    y down; `text` becomes the `<annotation type="truth">`.

    Returns the document; also writes it to `path` when given. `read_inkml`
    reads back the strokes rounded to `precision`.
    """
    ink = etree.Element(f"{{{INKML_NS}}}ink", nsmap={None: INKML_NS})
    definitions = etree.SubElement(ink, f"{{{INKML_NS}}}definitions")
    trace_format = etree.SubElement(definitions, f"{{{INKML_NS}}}traceFormat", {XML_ID: "xy"})
    for channel in ("X", "Y"):
        etree.SubElement(trace_format, f"{{{INKML_NS}}}channel", name=channel, type="decimal")
    etree.SubElement(definitions, f"{{{INKML_NS}}}context", {XML_ID: "ctx0", "traceFormatRef": "#xy"})
    if text is not None:
        annotation = etree.SubElement(ink, f"{{{INKML_NS}}}annotation", type="truth")
        annotation.text = text
    for i, stroke in enumerate(_rounded(strokes, precision)):
        trace = etree.SubElement(ink, f"{{{INKML_NS}}}trace", {XML_ID: f"t{i}", "contextRef": "#ctx0"})
        trace.text = ", ".join(f"{_fmt(x, precision)} {_fmt(-y, precision)}" for x, y in stroke)
    document = etree.tostring(ink, pretty_print=True, xml_declaration=True, encoding="UTF-8").decode()
    if path is not None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(document)
    return document


def read_json(source: PathOrBytes) -> tuple[list[np.ndarray], str | None]:
    """Reads the JSON form `{"text": ..., "strokes": [[[x, y], ...], ...]}`
    (y up; a path or the bytes).

    Returns:
      `(strokes, text)`: float32 `[n_i, 2]` per stroke (empty ones dropped),
      the text or None.

    Raises:
      ValueError: a file over `MAX_BYTES`, invalid JSON, or anything but the
        form above (the first bad stroke or point is named).
    """
    data, name = _read_bytes(source)
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{name}: not valid JSON: {e}") from None
    if not isinstance(doc, dict) or "strokes" not in doc:
        raise ValueError(f'{name}: expected an object {{"text": ..., "strokes": [[[x, y], ...], ...]}}')
    text = doc.get("text")
    if text is not None and not isinstance(text, str):
        raise ValueError(f"{name}: 'text' must be a string, got {type(text).__name__}")
    if not isinstance(doc["strokes"], list):
        raise ValueError(f"{name}: 'strokes' must be a list of strokes, got {type(doc['strokes']).__name__}")
    strokes = []
    for i, stroke in enumerate(doc["strokes"]):
        if not isinstance(stroke, list):
            raise ValueError(f"{name}: stroke {i} must be a list of [x, y] points, got {type(stroke).__name__}")
        for j, point in enumerate(stroke):
            if (
                not isinstance(point, list) or len(point) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point)
            ):
                raise ValueError(f"{name}: stroke {i}, point {j} must be [x, y] numbers, got {point!r}")
        # Checked as float32, the precision kept: 1e300 is finite in float64.
        with np.errstate(over="ignore"):
            points = np.asarray(stroke, np.float64).reshape(-1, 2).astype(np.float32)
        if not np.all(np.isfinite(points)):
            raise ValueError(f"{name}: stroke {i} has non-finite coordinates or ones beyond float32's range (3.4e38)")
        if len(points):
            strokes.append(points)
    return strokes, (text.strip() or None) if text is not None else None


def write_json(
    strokes: Sequence[np.ndarray], path: str | os.PathLike | None = None, text: str | None = None, precision: int = 2
) -> str:
    """The JSON form of `strokes` (each `[n_i, 2]`, y up), values rounded to
    `precision` decimals; `"text"` only when `text` is given. Returns the
    document; also writes it to `path` when given."""
    doc = {} if text is None else {"text": text}
    doc["strokes"] = [[[round(float(x), precision), round(float(y), precision)] for x, y in s] for s in _rounded(strokes, precision)]
    document = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    if path is not None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(document)
    return document


def read_ink(source: str | os.PathLike) -> tuple[list[np.ndarray], str | None]:
    """Reads a file in either form, by its extension (`.json` is JSON,
    `.inkml`/`.xml` InkML) or, for any other (`-` for standard input), by its
    first character."""
    ext = os.path.splitext(os.fspath(source))[1].lower()
    if ext == ".json":
        return read_json(source)
    if ext in (".inkml", ".xml"):
        return read_inkml(source)
    loaded = _Loaded(*_read_bytes(source))  # read once: it may be a stream ("-", /dev/stdin)
    return read_json(loaded) if loaded.data.lstrip()[:1] in (b"{", b"[") else read_inkml(loaded)
