"""`python -m hwtf.serve`: TF Serving's REST API and the page's routes, over
real HTTP against a server on a free loopback port (the synthetic demo
export: small and fast)."""

import concurrent.futures
import http.client
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from hwtf import inkml, rest, writer
from hwtf.data import synthetic
from hwtf.serve import make_server

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(REPO, "saved_models", "synthetic-demo")


def _start(**kwargs):
    server = make_server(MODEL, port=0, **kwargs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture(scope="module")
def server():
    server = _start(workers=2, queue=8)
    yield server
    server.shutdown()
    server.server_close()


def request(server, method, path, body=None, headers=None):
    """`(status, content type, body bytes)` of one request."""
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=60)
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    out = response.status, response.getheader("Content-Type"), response.read()
    connection.close()
    return out


def predict(server, payload):
    status, _, body = request(server, "POST", "/v1/models/hwtf:predict", payload)
    return status, json.loads(body)


GENERATE = {"text": ["hello world"], "bias": 0.5, "seed": 3, "max_steps": 600}


# -- TF Serving's routes ------------------------------------------------------


def test_status_and_metadata(server):
    status, kind, body = request(server, "GET", "/v1/models/hwtf")
    assert (status, kind) == (200, "application/json")
    assert json.loads(body)["model_version_status"][0]["state"] == "AVAILABLE"
    assert request(server, "GET", "/v1/models/hwtf/versions/1")[0] == 200
    status, _, body = request(server, "GET", "/v1/models/hwtf/metadata")
    metadata = json.loads(body)
    assert metadata["model_spec"]["name"] == "hwtf"
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert {"generate", "generate_best", "generate_primed", "serving_default"} <= set(signatures)
    inputs = signatures["generate"]["inputs"]
    assert {k: v["dtype"] for k, v in inputs.items()} == {
        "text": "DT_STRING", "bias": "DT_FLOAT", "seed": "DT_INT64", "max_steps": "DT_INT32"}
    assert inputs["text"]["tensor_shape"]["dim"][0]["size"] == "-1"  # as TF Serving writes int64
    assert set(signatures["generate"]["outputs"]) == {"strokes", "lengths", "phi"}


def test_predict_columnar_is_the_signature_itself(server):
    import tensorflow as tf

    status, answer = predict(server, {"signature_name": "generate", "inputs": GENERATE})
    assert status == 200
    outputs = answer["outputs"]
    direct = server.service.writer.module.signatures["generate"](
        text=tf.constant(GENERATE["text"]), bias=tf.constant(0.5), seed=tf.constant(3, tf.int64),
        max_steps=tf.constant(600))
    assert set(outputs) == set(direct) == {"strokes", "lengths", "phi"}
    for key, value in direct.items():
        np.testing.assert_array_equal(np.asarray(outputs[key], value.dtype.as_numpy_dtype), value.numpy())
    # No signature_name: serving_default, which is generate.
    assert predict(server, {"inputs": GENERATE})[1] == answer


def test_predict_best_and_primed(server):
    status, answer = predict(server, {"signature_name": "generate_best",
                                      "inputs": {**GENERATE, "text": ["ab", "cd"], "candidates": 3}})
    assert status == 200
    assert set(answer["outputs"]) == {"strokes", "lengths", "phi", "score"}
    assert len(answer["outputs"]["score"]) == 2
    style = server.service.writer.builtin_style(0)
    status, answer = predict(server, {"signature_name": "generate_primed", "inputs": {
        **GENERATE, "prime_strokes": [style.offsets.tolist()], "prime_text": [style.text]}})
    assert status == 200
    assert set(answer["outputs"]) == {"strokes", "lengths", "phi", "prime_position"}
    assert answer["outputs"]["prime_position"][0] > 0


def test_predict_rows(server):
    """The row format: one object per row in, one per row out; the
    generating signatures' scalar inputs cannot ride in rows (TF Serving
    would stack them into [rows]), and the answer says what to send."""
    offsets = [[0.0, 0.0, 0.0], [10.0, 2.0, 0.0], [12.0, -3.0, 1.0], [5.0, 1.0, 1.0]]
    rows = [{"strokes": offsets, "lengths": 4, "text": "ab"}, {"strokes": offsets, "lengths": 3, "text": "a"}]
    status, answer = predict(server, {"signature_name": "log_prob", "instances": rows})
    assert status == 200
    assert [sorted(p) for p in answer["predictions"]] == [["log_prob", "points"]] * 2
    assert [p["points"] for p in answer["predictions"]] == [3.0, 2.0]
    _, columns = predict(server, {"signature_name": "log_prob", "inputs": {
        "strokes": [offsets, offsets], "lengths": [4, 3], "text": ["ab", "a"]}})
    assert columns["outputs"]["log_prob"] == [p["log_prob"] for p in answer["predictions"]]
    status, answer = predict(server, {"signature_name": "generate", "instances": [
        {"text": "hi", "bias": 0.5, "seed": 1, "max_steps": 100}]})
    assert status == 400
    assert "columnar" in answer["error"] and "(bias, max_steps, seed)" in answer["error"]


LONG = "a" * 201
BAD_PREDICTS = [
    (b"{not json", "JSON Parse error"),
    (b"[1, 2]", "not an object"),
    (b"\xff\xfe", "not UTF-8"),
    (b'{"inputs": ' + b"[" * 100000 + b"]" * 100000 + b"}", "nested too deeply"),
    (b'{"inputs": {"text": ["hi"], "bias": NaN, "seed": 1, "max_steps": 10}}', "NaN"),
    (b'{"inputs": {"text": ["hi"], "bias": Infinity, "seed": 1, "max_steps": 10}}', "Infinity"),
    ({"inputs": {**GENERATE, "bias": "high"}}, "expected numbers"),
    ({"inputs": {**GENERATE, "bias": True}}, "expected numbers"),
    ({"inputs": {**GENERATE, "text": [5]}}, "expected strings"),
    ({"inputs": {**GENERATE, "text": "hello"}}, "has shape [?]; got []"),
    ({"inputs": {**GENERATE, "max_steps": 1.5}}, "expected integers"),
    ({"inputs": {**GENERATE, "seed": 2**64}}, "int64's range"),
    ({"inputs": {**GENERATE, "bias": 1e39}}, "float32's range"),
    ({"inputs": {**GENERATE, "bias": -1.0}}, "bias=-1"),
    ({"inputs": {**GENERATE, "max_steps": 0}}, "max_steps=0"),
    ({"inputs": {**GENERATE, "max_steps": rest.MAX_STEPS + 1}}, f"1 to {rest.MAX_STEPS}"),
    ({"inputs": {**GENERATE, "text": [LONG]}}, "201 characters"),
    ({"inputs": {**GENERATE, "text": ["a"] * 17}}, "at most 16"),
    ({"inputs": {**GENERATE, "text": ["a" * 200] * 2, "max_steps": 20000}}, "attention values"),
    ({"inputs": {**GENERATE, "text": [[[[[[[[["deep"]]]]]]]]]}}, "nested deeper"),
    ({"inputs": {k: v for k, v in GENERATE.items() if k != "seed"}}, "Missing named input: seed"),
    ({"inputs": {**GENERATE, "temperature": 1}}, "unknown input 'temperature'"),
    ({"inputs": [1, 2]}, "expecting an object"),
    ({"inputs": GENERATE, "instances": [GENERATE]}, "only one of"),
    ({"signature_name": "generate"}, "Missing 'inputs' or 'instances'"),
    ({"signature_name": "nope", "inputs": GENERATE}, "'nope' not found"),
    ({"signature_name": 3, "inputs": GENERATE}, "must be a string"),
    ({"signature_name": "config", "inputs": {}}, "takes no inputs"),
    ({"signature_name": "generate_best", "inputs": {**GENERATE, "candidates": 99}}, "candidates=99"),
    ({"signature_name": "generate_primed", "inputs": {**GENERATE, "prime_strokes": [[]], "prime_text": ["x"]}},
     "has shape [?, ?, 3]; got [1, 0]"),
    ({"signature_name": "generate_primed", "inputs": {**GENERATE, "prime_strokes": [[[1, 2, 0], [1, 2]]],
                                                      "prime_text": ["x"]}}, "ragged"),
    ({"signature_name": "log_prob", "instances": []}, "No values"),
    ({"signature_name": "log_prob", "instances": [{"strokes": [[0, 0, 0]], "lengths": 9, "text": "a"}]},
     "lengths must be 0 to 1"),
    ({"signature_name": "log_prob", "instances": [{"strokes": [[0, 0, 0]], "text": "a"}]}, "keys must be equal"),
]


@pytest.mark.parametrize("payload, message", BAD_PREDICTS, ids=range(len(BAD_PREDICTS)))
def test_bad_predict_is_a_400_saying_why(server, payload, message):
    status, answer = predict(server, payload)
    assert status == 400, answer
    assert list(answer) == ["error"] and message in answer["error"]


def test_bad_requests_to_the_http_layer(server):
    too_big = b"{" + b" " * rest.MAX_BODY_BYTES + b"}"
    status, _, body = request(server, "POST", "/v1/models/hwtf:predict", too_big)
    assert status == 400 and "at most 1048576" in json.loads(body)["error"]
    status, _, body = request(server, "POST", "/v1/models/hwtf:predict", b"",
                              {"Content-Length": "-5"})
    assert status == 400 and "not a size" in json.loads(body)["error"]
    assert request(server, "GET", "/v1/models/other")[0] == 404
    assert "Servable not found" in json.loads(request(server, "GET", "/v1/models/other")[2])["error"]
    assert request(server, "GET", "/v1/models/hwtf:predict")[0] == 405
    assert request(server, "PUT", "/v1/models/hwtf:predict", b"{}")[0] == 405
    assert request(server, "GET", "/nowhere")[0] == 404
    assert request(server, "GET", "/static/../serve.py")[0] == 404


def test_a_client_that_stops_sending_gets_a_400_not_a_hang():
    import socket

    server = _start(timeout=1)
    try:
        with socket.create_connection(server.server_address[:2], timeout=30) as client:
            client.sendall(b"POST /v1/models/hwtf:predict HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"inputs\"")
            answer = client.makefile("rb").read()
        assert answer.startswith(b"HTTP/1.0 400") and b"did not arrive within 1 s" in answer
        with socket.create_connection(server.server_address[:2], timeout=30) as client:
            client.sendall(b"GET / HTTP/1.1\r\n")  # headers never end: closed after the timeout
            assert client.makefile("rb").read() == b""
    finally:
        server.shutdown()
        server.server_close()


def test_concurrent_requests_match_single_ones_seed_for_seed(server):
    def one(seed):
        return predict(server, {"signature_name": "generate", "inputs": {**GENERATE, "seed": seed}})

    alone = [one(seed) for seed in range(8)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        together = list(pool.map(one, range(8)))
    assert [s for s, _ in together] == [200] * 8
    assert together == alone
    assert alone[0][1] != alone[1][1]  # the seeds differ


def test_a_full_queue_answers_503_at_once():
    server = _start(workers=1, queue=0)
    try:
        with server.service.gate.enter():  # the only slot, as a long request would hold it
            status, answer = predict(server, {"inputs": GENERATE})
            assert status == 503 and "busy" in answer["error"]
            assert request(server, "GET", "/write.svg?text=hi")[0] == 503
            assert request(server, "GET", "/v1/models/hwtf")[0] == 200  # status never waits
        assert predict(server, {"inputs": GENERATE})[0] == 200
    finally:
        server.shutdown()
        server.server_close()


# -- the page's routes --------------------------------------------------------


def test_page_and_its_files(server):
    status, kind, body = request(server, "GET", "/")
    assert status == 200 and kind.startswith("text/html")
    page = body.decode()
    for name in ("app.js", "style.css"):
        assert f"/static/{name}" in page
        assert request(server, "GET", f"/static/{name}")[0] == 200
    assert "http://" not in page.replace("http://www.w3.org", "")  # nothing from elsewhere
    info = json.loads(request(server, "GET", "/api/info")[2])
    assert len(info["styles"]) == 6 and info["limits"]["line_chars"] == 200
    # The page writes as `python -m hwtf.sample` does unless asked otherwise.
    assert info["defaults"] == {"bias": writer.DEFAULT_BIAS, "seed": 0, "candidates": writer.DEFAULT_CANDIDATES}
    status, kind, body = request(server, "GET", "/api/styles/0.svg")
    assert status == 200 and kind == "image/svg+xml" and body.count(b"<path") > 5
    assert request(server, "GET", "/api/styles/6.svg")[0] == 404


def test_convenience_routes(server):
    status, kind, svg = request(server, "GET", "/write.svg?text=hello%20world&bias=1&seed=2&candidates=2")
    assert (status, kind) == (200, "image/svg+xml") and svg.count(b"<path") > 3
    assert request(server, "GET", "/write.svg?text=hello%20world&bias=1&seed=2&candidates=2")[2] == svg
    status, kind, styled = request(server, "GET", "/write.svg?text=hello&style=1&candidates=3")  # primed best of 3
    assert status == 200 and styled.count(b"<path") >= 1, styled[:300]
    assert request(server, "GET", "/write.svg?text=hello&style=1&candidates=3")[2] == styled
    # Unasked, it keeps the best of the default number of candidates.
    default = request(server, "GET", "/write.svg?text=hello&seed=5")[2]
    assert default == request(server, "GET", f"/write.svg?text=hello&seed=5&candidates={writer.DEFAULT_CANDIDATES}")[2]
    status, kind, png = request(server, "GET", "/write.png?text=hello&style=1")
    assert (status, kind) == (200, "image/png") and png.startswith(b"\x89PNG")
    status, kind, document = request(server, "GET", "/write.inkml?text=hello")
    assert (status, kind) == (200, "application/inkml+xml")
    strokes, text = inkml.read_inkml(document)
    assert text == "hello" and len(strokes) >= 1
    for query, message in [("", "give the text"), ("text=hi&bias=x", "bias='x'"), ("text=hi&bias=nan", "finite"),
                           ("text=hi&style=99", "style 99 does not exist"), ("text=hi&candidates=9", "1 to 8"),
                           ("text=hi&colour=red", "unknown parameter 'colour'"),
                           ("text=" + "a" * 800, "at most 12 lines")]:
        status, _, body = request(server, "GET", "/write.svg?" + query)
        assert status == 400 and message in json.loads(body)["error"], (query, body)


def test_write_for_the_page(server):
    status, kind, body = request(server, "POST", "/api/write",
                                 {"text": "hello\nworld", "bias": 1.0, "seed": 4, "candidates": 2})
    assert (status, kind) == (200, "application/json")
    answer = json.loads(body)
    assert answer["lines"] == ["hello", "world"]
    assert len(answer["strokes"]) > 2 and all(len(p) == 2 for s in answer["strokes"] for p in s)
    status, kind, body = request(server, "POST", "/api/write", {"text": "hello", "format": "inkml"})
    assert status == 200 and b"<ink" in body


def _drawn(text):
    """A line of ink that says `text`, y down as a canvas gives it."""
    strokes = synthetic.write(text, np.random.default_rng(0))
    return [[[float(x), -float(y)] for x, y in s] for s in strokes]


def test_priming_with_the_users_ink(server):
    # The page flips the canvas's y down to y up before it sends the ink.
    ink = [[[x, -y] for x, y in s] for s in _drawn("hello there")]
    status, _, body = request(server, "POST", "/api/write", {"text": "in my hand", "prime": {
        "text": "hello there", "strokes": ink}, "seed": 1})
    assert status in (200, 400), body
    if status == 400:  # the demo model may not read this ink: then it says so
        assert "the model read the style's ink as only" in json.loads(body)["error"]
    bad = [
        ({"text": "x", "prime": {"text": "hi", "strokes": [[[0, 0], [1, 1]]]}}, "at least 2 strokes"),
        ({"text": "x", "prime": {"text": "a much longer sentence than the ink says, by far", "strokes": ink}},
         "the ink does not say that text"),
        ({"text": "x", "prime": {"text": "far too long " * 15, "strokes": ink}}, "does not look like it says"),
        ({"text": "x", "prime": {"text": "", "strokes": ink}}, "needs 'text'"),
        ({"text": "x", "prime": {"text": "hi", "strokes": [[[0, "a"]]]}}, "expected numbers"),
        ({"text": "x", "prime": {"text": "hi", "strokes": [[[0, 1, 2]]]}}, "[x, y] points"),
        ({"text": "x", "prime": {"text": "hi"}}, "expected {\"text\""),
        ({"text": "x", "prime": {"text": "hi", "strokes": ink}, "style": 1}, "not both"),
        ({"text": "x", "prime": {"text": "hello there", "strokes": ink}, "candidates": 0}, "1 to 8"),
    ]
    for payload, message in bad:
        status, _, body = request(server, "POST", "/api/write", payload)
        assert status == 400 and message in json.loads(body)["error"], (payload, body)


def test_the_command_starts_quietly_and_refuses_a_bad_model(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "hwtf.serve", f"--model={MODEL}", "--port=0"], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("hwtf.serve: ") and "http://127.0.0.1:" in line
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/v1/models/hwtf")
        assert connection.getresponse().status == 200
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert "oneDNN" not in err and "GET /v1" not in err
    result = subprocess.run([sys.executable, "-m", "hwtf.serve", f"--model={tmp_path}"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"hwtf.serve: error: --model={tmp_path}: not an exported SavedModel directory (no saved_model.pb)"]
