"""TensorFlow Serving's REST API over an hwtf export, and the writing behind
the server's page: the library that `python -m hwtf.serve` stands on.

    from hwtf.rest import Predictor, BadRequest

    predictor = Predictor(writer)              # a loaded `hwtf.writer.Writer`
    predictor.metadata("hwtf")                 # GET /v1/models/hwtf/metadata
    body = predictor.predict(request_bytes)    # POST /v1/models/hwtf:predict

`predict` reads a request as `tensorflow_model_server` does
(https://www.tensorflow.org/tfx/serving/api_rest): `signature_name`
(default `serving_default`), then either the columnar `inputs` (an object of
named inputs, answered with `outputs`) or the row `instances` (a list of
objects, one per row; every input gains a leading dimension of the number of
rows; answered with `predictions`, one object per row). Each input is checked
against the export's own SignatureDef (its dtype and shape), so what this
server accepts, TF Serving accepts for the same export. The generating
signatures take scalar `bias`, `seed` and `max_steps`, which the row format
cannot carry (it gives them a batch dimension), so they take the columnar
format; `log_prob` and `mixture`, whose inputs are all batched, take either.

Bad requests raise `BadRequest` (HTTP 400) naming what is wrong: malformed
JSON, NaN or Infinity, wrong types or shapes, and anything over the limits
below, which keep every request's time and memory bounded.
"""

from __future__ import annotations

import base64
import json
import math
import os
from typing import NamedTuple

import numpy as np

from hwtf.export import MAX_STEPS_PER_CHAR
from hwtf.writer import DEFAULT_BIAS, DEFAULT_CANDIDATES, MAX_LINE_CHARS, Ink, Style, Writer, layout_page, wrap_text

# Limits. A request body over MAX_BODY_BYTES is refused before it is read.
MAX_BODY_BYTES = 1 << 20  # 1 MiB
MAX_BATCH = 16  # texts (rows) in one request
MAX_CANDIDATES = 8  # generate_best's candidates, and the page's
# max_steps beyond what the export allows any line (it caps a call at
# MAX_STEPS_PER_CHAR points a character of the longest text, plus 100).
MAX_STEPS = MAX_STEPS_PER_CHAR * MAX_LINE_CHARS + 100
MAX_PRIME_POINTS = 5000  # generate_primed's prime_strokes per row
MAX_POINTS = 20000  # log_prob / mixture: rows x points
# A generating call's attention output, rows x points x characters, bounds its
# answer (about 20 bytes of JSON a value).
MAX_OUTPUT_VALUES = 4_000_000
MAX_DEPTH = 8  # nesting of an input's lists
MAX_INK_POINTS = 20000  # a drawn priming line, before it is resampled
# The page: texts are wrapped at LINE_WIDTH characters, at most MAX_PAGE_LINES lines.
LINE_WIDTH = 60
MAX_PAGE_LINES = 12
FORMATS = {
    "svg": "image/svg+xml",
    "png": "image/png",
    "inkml": "application/inkml+xml",
    "json": "application/json",
}

_DTYPES = {"DT_STRING": "string", "DT_FLOAT": "float32", "DT_INT32": "int32", "DT_INT64": "int64"}


class BadRequest(ValueError):
    """A request that cannot be served as sent (HTTP 400); the message says why."""


def signature_defs(model_dir: str) -> dict:
    """The export's SignatureDefs as TF Serving's metadata gives them: a dict
    by signature name of `{"inputs", "outputs", "method_name"}`, each tensor
    `{"dtype", "tensor_shape", "name"}` (`saved_model.pb`, the one source)."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(model_dir, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    graph = next(g for g in saved.meta_graphs if "serve" in g.meta_info_def.tags)
    return {
        name: json_format.MessageToDict(
            signature, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
        for name, signature in sorted(graph.signature_def.items())
    }


def _shape(info: dict) -> list[int] | None:
    """A TensorInfo's shape, -1 for unknown sizes; None for unknown rank."""
    shape = info.get("tensor_shape", {})
    if shape.get("unknown_rank"):
        return None
    return [int(d.get("size", -1)) for d in shape.get("dim", [])]


def _reject_constant(name: str):
    raise BadRequest(f"JSON Parse error: {name} is not a number this API accepts (NaN and Infinity are refused)")


def parse_json(body: bytes) -> object:
    """A request body as JSON; NaN, Infinity, bad UTF-8 or nesting refused."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as e:
        raise BadRequest(f"JSON Parse error: the body is not UTF-8 ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise BadRequest(f"JSON Parse error: {e.msg} at offset {e.pos}") from None
    except RecursionError:
        raise BadRequest("JSON Parse error: nested too deeply") from None


def _nested_shape(value, where: str, depth: int = 0) -> list[int]:
    """The shape of a rectangular nested JSON list (a scalar: [])."""
    if not isinstance(value, list):
        return []
    if depth >= MAX_DEPTH:
        raise BadRequest(f"{where}: lists nested deeper than {MAX_DEPTH}")
    if not value:
        return [0]
    shapes = [_nested_shape(v, where, depth + 1) for v in value]
    if any(s != shapes[0] for s in shapes):
        raise BadRequest(f"{where}: a ragged list (rows of different shapes); pad the rows to one shape")
    return [len(value), *shapes[0]]


def _scalars(value):
    if isinstance(value, list):
        for v in value:
            yield from _scalars(v)
    else:
        yield value


def _to_array(value, dtype: str, where: str) -> np.ndarray:
    """A JSON value as a numpy array of `dtype`, refusing wrong types."""
    shape = _nested_shape(value, where)
    items = list(_scalars(value))
    if dtype == "string":
        out = []
        for item in items:
            if isinstance(item, dict) and set(item) == {"b64"} and isinstance(item["b64"], str):
                try:
                    out.append(base64.b64decode(item["b64"], validate=True))
                except ValueError:
                    raise BadRequest(f"{where}: {{\"b64\": ...}} is not valid base64") from None
            elif isinstance(item, str):
                out.append(item.encode("utf-8", "surrogatepass"))
            else:
                raise BadRequest(f"{where}: expected strings, got {type(item).__name__} {_short(item)}")
        return np.array(out, dtype=object).reshape(shape)
    if dtype == "float32":
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
            bad = next(v for v in items if not isinstance(v, (int, float)) or isinstance(v, bool))
            raise BadRequest(f"{where}: expected numbers, got {type(bad).__name__} {_short(bad)}")
        with np.errstate(over="ignore"):
            array = np.array(items, np.float64).astype(np.float32).reshape(shape)
        if not np.all(np.isfinite(array)):
            raise BadRequest(f"{where}: a number beyond float32's range (3.4e38)")
        return array
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        bad = next(v for v in items if not isinstance(v, int) or isinstance(v, bool))
        raise BadRequest(f"{where}: expected integers, got {type(bad).__name__} {_short(bad)}")
    info = np.iinfo(dtype)
    if any(not info.min <= v <= info.max for v in items):
        raise BadRequest(f"{where}: an integer outside {dtype}'s range ({info.min} to {info.max})")
    return np.array(items, dtype).reshape(shape)


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Predictor:
    """TF Serving's predict and metadata over a loaded export.

    Args:
      writer: the loaded export (`Writer.load`).
    """

    def __init__(self, writer: Writer):
        if writer.path is None:
            raise ValueError("the REST API needs an export loaded from its folder")
        self.writer = writer
        self.signatures = signature_defs(writer.path)

    def status(self) -> dict:
        """`GET /v1/models/<name>`, as TF Serving answers it."""
        return {"model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]}

    def metadata(self, name: str) -> dict:
        """`GET /v1/models/<name>/metadata`: the export's SignatureDefs."""
        return {
            "model_spec": {"name": name, "signature_name": "", "version": "1"},
            "metadata": {"signature_def": {"signature_def": self.signatures}},
        }

    # -- predict ------------------------------------------------------------

    def parse(self, body: bytes) -> tuple[str, dict[str, np.ndarray], bool]:
        """A predict request: `(signature name, inputs by name, row format?)`.

        Raises:
          BadRequest: naming what is wrong.
        """
        request = parse_json(body)
        if not isinstance(request, dict):
            raise BadRequest("JSON Value: the request is not an object; expected {\"signature_name\": ..., "
                             "\"inputs\": {...}} or {\"instances\": [...]}")
        name = request.get("signature_name", "serving_default")
        if not isinstance(name, str):
            raise BadRequest("'signature_name' must be a string")
        if name not in self.signatures:
            raise BadRequest(f"Serving signature name: {name!r} not found in signature def "
                             f"(the export has {', '.join(sorted(self.signatures))})")
        inputs_info = self.signatures[name]["inputs"]
        if not inputs_info:
            raise BadRequest(f"Failed to get input map for signature: {name} (it takes no inputs; "
                             "GET /v1/models/hwtf/metadata shows every signature)")
        unknown = sorted(set(request) - {"signature_name", "inputs", "instances"})
        if unknown:
            raise BadRequest(f"unexpected keys {unknown} in the request; expected signature_name and "
                             "inputs or instances")
        if ("inputs" in request) == ("instances" in request):
            raise BadRequest("Missing 'inputs' or 'instances' key" if "inputs" not in request else
                             "expecting only one of 'inputs' or 'instances' keys to exist")
        row = "instances" in request
        scalars = sorted(k for k, info in inputs_info.items() if _shape(info) == [])
        if row and scalars:
            raise BadRequest(
                f"signature {name!r} takes scalar inputs ({', '.join(scalars)}), which the row format "
                "('instances') cannot carry: it gives every input a leading batch dimension, as TF Serving does; "
                "send them in the columnar format, {\"signature_name\": ..., \"inputs\": {...}}"
            )
        values = self._rows(request["instances"], inputs_info) if row else self._columns(request["inputs"], inputs_info)
        inputs = {}
        for key, info in sorted(inputs_info.items()):
            where = f"input {key!r} of signature {name!r}"
            dtype = _DTYPES.get(info["dtype"])
            if dtype is None:
                raise BadRequest(f"{where}: dtype {info['dtype']} is not served")
            array = _to_array(values[key], dtype, where)
            expected = _shape(info)
            if expected is not None and (
                len(expected) != array.ndim or any(e not in (-1, g) for e, g in zip(expected, array.shape))
            ):
                raise BadRequest(f"{where} has shape {_shape_text(expected)}; got {list(array.shape)}")
            inputs[key] = array
        self._check_limits(name, inputs)
        return name, inputs, row

    @staticmethod
    def _columns(value, inputs_info: dict) -> dict:
        if not isinstance(value, dict) or set(value) == {"b64"}:
            if len(inputs_info) > 1:
                raise BadRequest("inputs is a plain value/list, but expecting an object as multiple input tensors "
                                 f"required ({', '.join(sorted(inputs_info))})")
            return {next(iter(inputs_info)): value}
        missing = [k for k in sorted(inputs_info) if k not in value]
        if missing:
            raise BadRequest(f"Missing named input: {missing[0]} in 'inputs' object "
                             f"(expected {', '.join(sorted(inputs_info))})")
        extra = sorted(set(value) - set(inputs_info))
        if extra:
            raise BadRequest(f"unknown input {extra[0]!r} in 'inputs' (expected {', '.join(sorted(inputs_info))})")
        return value

    @staticmethod
    def _rows(value, inputs_info: dict) -> dict:
        if not isinstance(value, list):
            raise BadRequest("Excepting 'instances' to be an list/array")
        if not value:
            raise BadRequest("No values in 'instances' array")
        if len(value) > MAX_BATCH:
            raise BadRequest(f"'instances' has {len(value)} rows; at most {MAX_BATCH} a request")
        names = sorted(inputs_info)
        columns = {k: [] for k in names}
        for i, row in enumerate(value):
            if not isinstance(row, dict) or set(row) == {"b64"}:
                if len(names) > 1:
                    raise BadRequest("instances is a plain list, but expecting list of objects as multiple input "
                                     f"tensors required ({', '.join(names)})")
                columns[names[0]].append(row)
                continue
            if sorted(row) != names:
                raise BadRequest(f"Failed to process element: {i} of 'instances' list: its keys must be equal to: "
                                 f"{','.join(names)}")
            for k in names:
                columns[k].append(row[k])
        return columns

    def _check_limits(self, name: str, inputs: dict) -> None:
        where = f"signature {name!r}"
        for key in ("text", "prime_text"):
            if key in inputs:
                texts = inputs[key].reshape(-1)
                if len(texts) > MAX_BATCH:
                    raise BadRequest(f"{where}: {key} has {len(texts)} rows; at most {MAX_BATCH} a request")
                for i, raw in enumerate(texts):
                    try:
                        text = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        raise BadRequest(f"{where}: {key}[{i}] is not UTF-8 text") from None
                    if len(text) > MAX_LINE_CHARS:
                        raise BadRequest(f"{where}: {key}[{i}] has {len(text)} characters; a line may have at "
                                         f"most {MAX_LINE_CHARS} (send longer texts as several lines)")
        if "max_steps" in inputs and not 1 <= int(inputs["max_steps"]) <= MAX_STEPS:
            raise BadRequest(f"{where}: max_steps={int(inputs['max_steps'])}; expected 1 to {MAX_STEPS}")
        if "max_steps" in inputs:
            lengths = [len(t.decode("utf-8")) for t in inputs["text"].reshape(-1)] or [0]
            steps = min(int(inputs["max_steps"]), MAX_STEPS_PER_CHAR * max(lengths) + 100)
            values = len(lengths) * steps * max(lengths)
            if values > MAX_OUTPUT_VALUES:
                raise BadRequest(f"{where}: the answer could hold {values} attention values (texts x max_steps x "
                                 f"characters); at most {MAX_OUTPUT_VALUES}: send fewer texts or a smaller max_steps "
                                 "(a line needs about 25 points a character)")
        if "candidates" in inputs and not 1 <= int(inputs["candidates"]) <= MAX_CANDIDATES:
            raise BadRequest(f"{where}: candidates={int(inputs['candidates'])}; expected 1 to {MAX_CANDIDATES}")
        if "candidates" in inputs and len(inputs["text"]) * int(inputs["candidates"]) > MAX_BATCH * MAX_CANDIDATES // 2:
            raise BadRequest(f"{where}: {len(inputs['text'])} texts x {int(inputs['candidates'])} candidates; at "
                             f"most {MAX_BATCH * MAX_CANDIDATES // 2} lines a request")
        if "bias" in inputs and not float(inputs["bias"]) >= 0:
            raise BadRequest(f"{where}: bias={float(inputs['bias']):g}; expected a number from 0 (as trained) up")
        if "prime_strokes" in inputs:
            strokes = inputs["prime_strokes"]
            if strokes.shape[1] == 0 or strokes.shape[1] > MAX_PRIME_POINTS:
                raise BadRequest(f"{where}: prime_strokes has {strokes.shape[1]} points a row; expected 1 to "
                                 f"{MAX_PRIME_POINTS}")
            if len(inputs["prime_text"]) != len(inputs["text"]) or len(strokes) != len(inputs["text"]):
                raise BadRequest(f"{where}: text, prime_text and prime_strokes need one row each per line; got "
                                 f"{len(inputs['text'])}, {len(inputs['prime_text'])} and {len(strokes)}")
        if "strokes" in inputs:
            strokes, lengths = inputs["strokes"], inputs["lengths"]
            if strokes.shape[0] * strokes.shape[1] > MAX_POINTS:
                raise BadRequest(f"{where}: strokes has {strokes.shape[0]} x {strokes.shape[1]} points; at most "
                                 f"{MAX_POINTS} a request")
            if not (len(lengths) == len(strokes) == len(inputs["text"])):
                raise BadRequest(f"{where}: strokes, lengths and text need one row each; got {len(strokes)}, "
                                 f"{len(lengths)} and {len(inputs['text'])}")
            if np.any(lengths < 0) or np.any(lengths > strokes.shape[1]):
                raise BadRequest(f"{where}: lengths must be 0 to {strokes.shape[1]} (the strokes' points)")

    def run(self, name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs signature `name` of the export on checked inputs."""
        import tensorflow as tf

        tensors = {}
        for key, array in inputs.items():
            dtype = tf.as_dtype(_DTYPES[self.signatures[name]["inputs"][key]["dtype"]])
            tensors[key] = tf.constant(array.tolist() if dtype == tf.string else array, dtype)
        try:
            out = self.writer.module.signatures[name](**tensors)
        except tf.errors.InvalidArgumentError as e:
            raise BadRequest(_first_line(e.message)) from None
        return {k: v.numpy() for k, v in out.items()}

    def predict(self, body: bytes) -> dict:
        """A predict request's JSON answer, in the request's format."""
        name, inputs, row = self.parse(body)
        return format_outputs(self.run(name, inputs), row)


def _shape_text(shape: list[int]) -> str:
    return "[" + ", ".join("?" if d < 0 else str(d) for d in shape) + "]"


def _first_line(message: str) -> str:
    lines = [line.strip() for line in str(message).strip().splitlines() if line.strip()]
    return (lines[0] if lines else "invalid argument")[:500]


def _jsonable(array: np.ndarray):
    if array.dtype == object:
        return np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(array).tolist()
    return array.tolist()


def format_outputs(outputs: dict[str, np.ndarray], row: bool) -> dict:
    """A signature's outputs as TF Serving writes them: columnar
    `{"outputs": {name: value}}` (the bare value for a single output), or
    row `{"predictions": [{name: value_i}, ...]}` split along the batch."""
    if not row:
        if len(outputs) == 1:
            return {"outputs": _jsonable(next(iter(outputs.values())))}
        return {"outputs": {k: _jsonable(v) for k, v in sorted(outputs.items())}}
    sizes = {k: (v.shape[0] if v.ndim else None) for k, v in outputs.items()}
    batch = next(iter(sizes.values()), None)
    if any(s is None or s != batch for s in sizes.values()):
        raise BadRequest("Tensors have inconsistent batch sizes for the row format "
                         f"({', '.join(f'{k}: {s}' for k, s in sorted(sizes.items()))}); use the columnar format")
    if len(outputs) == 1:
        return {"predictions": _jsonable(next(iter(outputs.values())))}
    rows = {k: _jsonable(v) for k, v in sorted(outputs.items())}
    return {"predictions": [{k: rows[k][i] for k in rows} for i in range(batch)]}


# -- the page's writing -----------------------------------------------------


class WriteRequest(NamedTuple):
    """What the page (or a convenience route) asks to have written."""

    text: str
    bias: float = DEFAULT_BIAS
    seed: int = 0
    candidates: int = DEFAULT_CANDIDATES
    style: int | None = None  # a built-in style
    prime: Style | None = None  # the user's own ink
    format: str = "json"


def _number(params: dict, key: str, default, kind, low, high):
    value = params.get(key, default)
    if value is None or value == "":
        return default
    if isinstance(value, str):
        try:
            value = kind(value)
        except ValueError:
            raise BadRequest(f"{key}={value!r}: expected {'an integer' if kind is int else 'a number'}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise BadRequest(f"{key}={_short(value)}: expected {'an integer' if kind is int else 'a number'}")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRequest(f"{key}={value}: expected a finite number")
    if not low <= value <= high:
        raise BadRequest(f"{key}={value}: expected {low} to {high}")
    return kind(value)


def parse_write(params: dict, writer: Writer, format: str | None = None) -> WriteRequest:
    """A write request from a JSON body or a query string's parameters:
    `text`, `bias`, `seed`, `candidates`, `style` (a built-in style's
    number), `prime` (`{"text": ..., "strokes": [[[x, y], ...], ...]}`, y
    up, the user's own line; JSON only) and `format` (json, svg, png, inkml).

    Raises:
      BadRequest: naming the parameter and what it should be.
    """
    if not isinstance(params, dict):
        raise BadRequest("expected a JSON object {\"text\": ..., \"bias\": ..., ...}")
    known = {"text", "bias", "seed", "candidates", "style", "prime", "format"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise BadRequest(f"unknown parameter {unknown[0]!r} (expected {', '.join(sorted(known))})")
    text = params.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("text: give the text to write (a non-empty string)")
    lines = wrap_text(text, LINE_WIDTH)
    if len(text) > MAX_PAGE_LINES * LINE_WIDTH or len(lines) > MAX_PAGE_LINES:
        raise BadRequest(f"text: {len(text)} characters in {len(lines)} lines; at most {MAX_PAGE_LINES} lines of "
                         f"{LINE_WIDTH} characters ({MAX_PAGE_LINES * LINE_WIDTH} characters)")
    fmt = format or params.get("format", "json")
    if fmt not in FORMATS:
        raise BadRequest(f"format={_short(fmt)}: expected one of {', '.join(FORMATS)}")
    style = _number(params, "style", None, int, 0, 10**6)
    prime = params.get("prime")
    if style is not None and prime is not None:
        raise BadRequest("give a built-in style or your own ink (prime), not both")
    if style is not None:
        try:
            prime_style = writer.builtin_style(style)
        except ValueError as e:
            raise BadRequest(f"style: {e}") from None
    elif prime is not None:
        prime_style = parse_prime(prime, writer)
    else:
        prime_style = None
    return WriteRequest(
        text=text,
        bias=_number(params, "bias", DEFAULT_BIAS, float, 0.0, 100.0),
        seed=_number(params, "seed", 0, int, -(2**63), 2**63 - 1),
        candidates=_number(params, "candidates", DEFAULT_CANDIDATES, int, 1, MAX_CANDIDATES),
        style=style,
        prime=prime_style,
        format=fmt,
    )


def parse_prime(prime, writer: Writer) -> Style:
    """The user's priming line, `{"text": ..., "strokes": [[[x, y], ...]]}`
    (y up, any units), normalised for the model (`Writer.style_from_ink`).

    Raises:
      BadRequest: malformed ink, or ink that cannot prime (too short, no
        width, a text it does not look like), with `normalise_style`'s words.
    """
    if not isinstance(prime, dict) or not isinstance(prime.get("strokes"), list):
        raise BadRequest("prime: expected {\"text\": what the ink says, \"strokes\": [[[x, y], ...], ...]}")
    strokes = []
    for i, stroke in enumerate(prime["strokes"]):
        array = _to_array(stroke, "float32", f"prime: stroke {i}")
        if array.ndim != 2 or array.shape[1] != 2:
            raise BadRequest(f"prime: stroke {i} must be a list of [x, y] points; got shape {list(array.shape)}")
        strokes.append(array)
    points = sum(len(s) for s in strokes)
    if points > MAX_INK_POINTS:
        raise BadRequest(f"prime: {points} points; at most {MAX_INK_POINTS}")
    text = prime.get("text")
    if text is not None and not isinstance(text, str):
        raise BadRequest("prime: text must be a string, what the ink says")
    if text and len(text) > MAX_LINE_CHARS:
        raise BadRequest(f"prime: text has {len(text)} characters; a line may have at most {MAX_LINE_CHARS}")
    try:
        return writer.style_from_ink(strokes, text)
    except ValueError as e:
        raise BadRequest(f"your ink: {e}") from None


def write(writer: Writer, request: WriteRequest) -> tuple[list[Ink], list[np.ndarray]]:
    """Writes a request's text as a page: its lines' `Ink` and the page's
    strokes (y up, `layout_page`).

    Raises:
      BadRequest: the style's ink does not say its text, and the like.
    """
    import tensorflow as tf

    lines = wrap_text(request.text, LINE_WIDTH)
    try:
        ink = writer.write(lines, request.bias, request.seed, style=request.prime, candidates=request.candidates)
    except ValueError as e:
        if request.style is not None:
            raise BadRequest(f"style {request.style}: {e}") from None
        raise BadRequest(f"your ink: {e}" if request.prime is not None else str(e)) from None
    except tf.errors.InvalidArgumentError as e:
        raise BadRequest(_first_line(e.message)) from None
    return ink, layout_page([line.strokes for line in ink])


def render(page: list[np.ndarray], text: str, fmt: str, lines: int = 1) -> bytes:
    """A written page as `fmt` (svg, png, inkml): the file's bytes."""
    from hwtf import inkml, render as draw

    if fmt == "svg":
        return draw.strokes_to_svg(page).encode("utf-8")
    if fmt == "inkml":
        return inkml.write_inkml(page, text=text).encode("utf-8")
    if fmt == "png":
        return draw.png_bytes(page, height_px=120 * lines + 40, linewidth=2.0)
    raise BadRequest(f"format={fmt!r}: expected svg, png or inkml")


def page_json(ink: list[Ink], page: list[np.ndarray], writer: Writer) -> dict:
    """The page's answer: its strokes in order (y up, 1 decimal), for drawing
    them as a pen would, and what the model could not write."""
    unfinished = [line.text for line in ink if line.text and not line.finished]
    unknown = writer.unknown_chars("".join(line.text for line in ink))
    return {
        "lines": [line.text for line in ink],
        "strokes": [np.round(stroke, 1).tolist() for stroke in page],
        "unfinished": unfinished,
        "unknown_chars": unknown,
    }


def style_svg(writer: Writer, number: int) -> bytes:
    """Built-in style `number` drawn as a small SVG, for picking it."""
    from hwtf import render as draw
    from hwtf.data.strokes import offsets_to_strokes

    style = writer.builtin_style(number)
    return draw.strokes_to_svg(offsets_to_strokes(style.offsets), stroke_width=3.0, scale=0.12).encode("utf-8")
