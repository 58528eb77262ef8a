"""hwtf.inkml: InkML and JSON ink, read and written, and refused when unsafe."""

import json

import numpy as np
import pytest

from hwtf import inkml

NS = 'xmlns="http://www.w3.org/2003/InkML"'


def _strokes(seed=0, n=3):
    rng = np.random.default_rng(seed)
    return [(np.cumsum(rng.normal(5, 20, size=(rng.integers(1, 40), 2)), 0) + [300 * k, 0]).astype(np.float32)
            for k in range(n)]


@pytest.mark.parametrize("precision", [0, 2, 3])
def test_inkml_round_trip_is_exact_to_the_precision(tmp_path, precision):
    strokes = _strokes()
    path = tmp_path / "line.inkml"
    document = inkml.write_inkml(strokes, path, text="hello <world> & co", precision=precision)
    assert document == path.read_text()
    assert 'type="truth"' in document and '<channel name="X" type="decimal"/>' in document
    read, text = inkml.read_inkml(path)
    assert text == "hello <world> & co"
    assert len(read) == len(strokes)
    for got, want in zip(read, strokes):
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(got, np.round(want.astype(np.float64), precision), atol=1e-4)
    # y is up in hwtf and down in the file.
    assert inkml.read_inkml(inkml.write_inkml([[[0, 5], [1, 7]]]).encode())[0][0][1, 1] == 7
    assert "0 -5" in inkml.write_inkml([[[0, 5], [1, 7]]], precision=0)


def test_no_text_means_no_annotation():
    document = inkml.write_inkml(_strokes())
    assert "annotation" not in document
    assert inkml.read_inkml(document.encode())[1] is None


def test_channel_order_time_channel_and_nested_trace_groups():
    document = f"""<?xml version="1.0" encoding="UTF-8"?>
<ink {NS}>
  <definitions>
    <traceFormat xml:id="yxt">
      <channel name="Y" type="decimal"/>
      <channel name="X" type="decimal"/>
      <channel name="T" type="integer"/>
    </traceFormat>
  </definitions>
  <annotation type="writer">someone</annotation>
  <annotation type="truth">ab</annotation>
  <traceGroup>
    <traceGroup>
      <trace xml:id="first">10 1 0, 20 2 5</trace>
    </traceGroup>
    <trace>30 3 10,40 4 15</trace>
    <traceGroup><traceGroup><trace>50 5 20</trace></traceGroup></traceGroup>
  </traceGroup>
  <trace>60 6 25, 70 7 30</trace>
  <trace type="penUp">80 8 35, 90 9 40</trace>
</ink>"""
    strokes, text = inkml.read_inkml(document.encode())
    assert text == "ab"
    assert [s.tolist() for s in strokes] == [
        [[1, -10], [2, -20]], [[3, -30], [4, -40]], [[5, -50]], [[6, -60], [7, -70]]
    ]


def test_inline_trace_format_default_format_and_contexts(tmp_path):
    inline = f'<ink {NS}><traceFormat><channel name="X"/><channel name="Y"/><channel name="T"/></traceFormat>' \
             '<trace>1 2 3, 4 5 6</trace></ink>'
    assert inkml.read_inkml(inline.encode())[0][0].tolist() == [[1, -2], [4, -5]]
    plain = f"<ink {NS}><trace>1 2, 3 4</trace></ink>"  # InkML's default format: X Y
    assert inkml.read_inkml(plain.encode())[0][0].tolist() == [[1, -2], [3, -4]]
    # A trace follows its context's format; brushRef is ignored.
    contexts = f"""<ink {NS}><definitions>
      <traceFormat xml:id="xy"><channel name="X"/><channel name="Y"/></traceFormat>
      <context xml:id="c2"><traceFormat><channel name="Y"/><channel name="X"/></traceFormat></context>
      <brush xml:id="b"/></definitions>
      <trace>1 2</trace><trace contextRef="#c2" brushRef="#b">1 2</trace></ink>"""
    strokes, _ = inkml.read_inkml(contexts.encode())
    assert [s.tolist() for s in strokes] == [[[1, -2]], [[2, -1]]]


def test_difference_encoding_and_explicit_values():
    # Y: 10, +2 = 12, then second differences: 12 + 2 + 1 = 15, 15 + 3 + 4 = 22,
    # then explicit 3. X is explicit throughout; `3-4` is two values.
    document = f"""<ink {NS}><traceFormat><channel name="Y"/><channel name="X"/><channel name="T"/></traceFormat>
      <trace>10 1 0, '2 3 1, "1 1 1, 4 5 6, !3-4 7</trace></ink>"""
    strokes, _ = inkml.read_inkml(document.encode())
    assert strokes[0].tolist() == [[1, -10], [3, -12], [1, -15], [5, -22], [-4, -3]]
    # The InkML specification's own example form: prefixes as separators.
    spec = f"<ink {NS}><trace>1125 18432,'23'43,\"7\"-8,3-5</trace></ink>"
    strokes, _ = inkml.read_inkml(spec.encode())
    assert strokes[0].tolist() == [[1125, -18432], [1148, -18475], [1178, -18510], [1211, -18540]]


@pytest.mark.parametrize(
    "trace, expected",
    [
        ('<trace xml:id="bad">1 2, 3 four</trace>', r"trace 'bad': point 1 has a non-numeric value"),
        ("<trace>1 2</trace><trace>1 2 3, 4 5</trace>", r"trace #1: point 0 has 3 values, expected 2"),
        ('<trace xml:id="one">1</trace>', r"trace 'one': point 0 has 1 values, expected 2"),
        ("<trace>1 2,, 3 4</trace>", r"trace #0: point 1 has 0 values"),
        ("<trace>'1 2</trace>", r"trace #0: point 0: a first difference"),
        ('<trace>1 2, "1 2</trace>', r"trace #0: point 1: a second difference"),
        ("<trace>1 T</trace>", r"trace #0: point 0 has 'T' for channel Y"),
    ],
)
def test_malformed_traces_are_named(trace, expected):
    with pytest.raises(ValueError, match=expected):
        inkml.read_inkml(f"<ink {NS}>{trace}</ink>".encode())


@pytest.mark.parametrize(
    "document, expected",
    [
        (b"<ink><trace>1 2</trace>", "not a readable XML document"),
        (b"<svg><trace>1 2</trace></svg>", "expected an InkML <ink>"),
        (b"<ink><annotation type='truth'>x</annotation></ink>", "no <trace> elements"),
        (b"<ink><traceFormat><channel name='X'/><channel name='F'/></traceFormat><trace>1 2</trace></ink>",
         "X and Y are needed"),
    ],
)
def test_documents_that_are_not_ink_are_refused(document, expected):
    with pytest.raises(ValueError, match=expected):
        inkml.read_inkml(document)


def test_too_large_files_are_refused_before_parsing(tmp_path, monkeypatch):
    monkeypatch.setattr(inkml, "MAX_BYTES", 1000)
    path = tmp_path / "big.inkml"
    path.write_text(f"<ink {NS}><trace>" + ", ".join(["1 2"] * 400) + "</trace></ink>")
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match=r"big.inkml: \d+ bytes is over the limit of 1000 bytes"):
        inkml.read_inkml(path)
    with pytest.raises(ValueError, match="over the limit"):
        inkml.read_inkml(path.read_bytes())
    with pytest.raises(ValueError, match="over the limit"):
        inkml.read_json(path)


def test_deeply_nested_xml_is_refused_cleanly():
    depth = 5000
    document = f"<ink {NS}>" + "<traceGroup>" * depth + "<trace>1 2</trace>" + "</traceGroup>" * depth + "</ink>"
    with pytest.raises(ValueError, match="not a readable XML document.*[Dd]epth"):
        inkml.read_inkml(document.encode())
    # Nesting within the limit is fine.
    document = f"<ink {NS}>" + "<traceGroup>" * 100 + "<trace>1 2</trace>" + "</traceGroup>" * 100 + "</ink>"
    assert len(inkml.read_inkml(document.encode())[0]) == 1


def test_entities_are_not_expanded():
    laughs = "\n".join(
        ['<!ENTITY lol0 "lol">']
        + [f'<!ENTITY lol{i} "{("&lol%d;" % (i - 1)) * 10}">' for i in range(1, 10)]
    )
    document = f"""<?xml version="1.0"?><!DOCTYPE ink [{laughs}]>
<ink {NS}><annotation type="truth">&lol9;</annotation><trace>1 2, 3 4</trace></ink>"""
    # Refused, by libxml2's amplification guard or by hwtf's own check.
    with pytest.raises(ValueError, match="declares XML entities|entity amplification"):
        inkml.read_inkml(document.encode())
    external = f"""<?xml version="1.0"?><!DOCTYPE ink [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<ink {NS}><annotation type="truth">&secret;</annotation><trace>1 2</trace></ink>"""
    with pytest.raises(ValueError, match="declares XML entities"):
        inkml.read_inkml(external.encode())


def test_json_round_trip(tmp_path):
    strokes = _strokes(1)
    path = tmp_path / "line.json"
    document = inkml.write_json(strokes, path, text="héllo")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert document == path.read_text(encoding="utf-8") and doc["text"] == "héllo"
    assert np.allclose(doc["strokes"][0][0], strokes[0][0], atol=0.005)  # y up, as written
    read, text = inkml.read_json(path)
    assert text == "héllo" and len(read) == len(strokes)
    for got, want in zip(read, strokes):
        np.testing.assert_allclose(got, np.round(want.astype(np.float64), 2), atol=1e-4)
    assert inkml.read_json(inkml.write_json(strokes).encode())[1] is None
    # Either form by extension, or sniffed.
    inkml.write_inkml(strokes, tmp_path / "line.ink", text="x")
    assert inkml.read_ink(tmp_path / "line.ink")[1] == "x"
    assert inkml.read_ink(path)[1] == "héllo"


@pytest.mark.parametrize(
    "document, expected",
    [
        ("{", "not valid JSON"),
        ("[[[0, 0]]]", "expected an object"),
        ('{"text": "a"}', "expected an object"),
        ('{"text": 3, "strokes": []}', "'text' must be a string"),
        ('{"strokes": {"a": 1}}', "'strokes' must be a list"),
        ('{"strokes": [[[0, 0]], 5]}', "stroke 1 must be a list"),
        ('{"strokes": [[[0, 0], [1, 2, 3]]]}', r"stroke 0, point 1 must be \[x, y\]"),
        ('{"strokes": [[[0, "a"]]]}', r"stroke 0, point 0 must be \[x, y\]"),
        ('{"strokes": [[[0, NaN]]]}', "stroke 0 has non-finite"),
    ],
)
def test_malformed_json_is_refused(tmp_path, document, expected):
    path = tmp_path / "bad.json"
    path.write_text(document)
    with pytest.raises(ValueError, match=expected):
        inkml.read_json(path)


def test_a_stream_is_read_once(tmp_path):
    """`--style_file=-` or /dev/stdin: the stream used to be read twice (once
    to guess its form) and valid JSON reported as invalid."""
    import subprocess
    import sys

    doc = json.dumps({"text": "hi", "strokes": [[[0, 0], [1, 1]], [[2, 0], [3, 1]]]})
    code = "from hwtf import inkml; s, t = inkml.read_ink(sys.argv[1]); print(len(s), t)"
    for name in ("-", "/dev/stdin"):
        out = subprocess.run([sys.executable, "-c", "import sys; " + code, name], input=doc, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0 and out.stdout.strip() == "2 hi", out.stderr[-2000:]
