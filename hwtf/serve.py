"""`python -m hwtf.serve`: handwriting in the browser, and TF Serving's REST
API for programs, from one export.

    python -m hwtf.serve                          # the shipped model, http://127.0.0.1:8000/
    python -m hwtf.serve --model=saved_models/synthetic-demo --port=8080

Routes:

    GET  /                              the page: type, pick a style or write your own line, watch it written
    GET  /v1/models/hwtf                the model's status            (TF Serving)
    GET  /v1/models/hwtf/metadata       its signatures                (TF Serving)
    POST /v1/models/hwtf:predict        run a signature               (TF Serving's REST format)
    GET  /write.svg?text=...            convenience: the text written as SVG (also .png, .inkml);
                                        bias, seed, candidates and style as parameters
    POST /api/write                     the page's writing: JSON in, strokes (or a file) out
    GET  /api/info                      styles, limits and defaults, for the page
    GET  /api/styles/N.svg              built-in style N, drawn

The server is the standard library's `ThreadingHTTPServer` (a thread per
connection) with a gate in front of the model: at most `--workers` calls run
at once, at most `--queue` more wait, and a request beyond that is answered
503 at once. Bad requests get 400 with TF Serving's `{"error": "..."}` body
(`hwtf.rest` says what is refused); every socket has a timeout, so a client
that stops sending cannot hold a thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from absl import app, flags, logging

from hwtf.writer import DEFAULT_MODEL

FLAGS = flags.FLAGS
STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
STATIC_FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
                "style.css": "text/css; charset=utf-8"}
# Bodies up to this size are read and dropped before a 400 for being over
# the limit, so that the client, still sending, reads the answer; larger ones
# are answered and the connection closed.
DRAIN_BYTES = 16 << 20
SOCKET_TIMEOUT_S = 30
SECURITY_HEADERS = {
    # Nothing is fetched from anywhere but this server.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'",
    "X-Content-Type-Options": "nosniff",
}


def define_flags() -> None:
    flags.DEFINE_string("model", DEFAULT_MODEL, "SavedModel directory exported by hwtf.train.")
    flags.DEFINE_string("host", "127.0.0.1", "Address to listen on (0.0.0.0: every interface).")
    flags.DEFINE_integer("port", 8000, "Port to listen on (0: any free port).")
    flags.DEFINE_integer("workers", 2, "Model calls that run at once.")
    flags.DEFINE_integer("queue", 32, "Requests that may wait for a worker; beyond that the server answers 503.")
    flags.DEFINE_string("model_name", "hwtf", "The model's name in TF Serving's routes (/v1/models/NAME).")


class Busy(Exception):
    """Every worker is busy and the queue is full (HTTP 503)."""


class Gate:
    """At most `workers` model calls at once and `queue` waiting; a request
    beyond that is refused at once (`Busy`), never left to hang."""

    def __init__(self, workers: int, queue: int):
        if workers < 1 or queue < 0:
            raise ValueError(f"workers must be at least 1 and queue at least 0, got {workers} and {queue}")
        self.workers, self.queue = workers, queue
        self._slots = threading.BoundedSemaphore(workers + queue)
        self._running = threading.Semaphore(workers)

    @contextlib.contextmanager
    def enter(self):
        if not self._slots.acquire(blocking=False):
            raise Busy(f"the server is busy: {self.workers} requests are being written and {self.queue} wait; "
                       "try again shortly")
        try:
            with self._running:
                yield
        finally:
            self._slots.release()


class Service:
    """What the handler serves: the loaded export, its REST predictor, the gate."""

    def __init__(self, model: str, workers: int = 2, queue: int = 32, name: str = "hwtf"):
        from hwtf.rest import Predictor
        from hwtf.writer import Writer, load_styles

        self.writer = Writer.load(model)
        self.predictor = Predictor(self.writer)
        self.styles = load_styles(model)
        self.gate = Gate(workers, queue)
        self.name = name
        self.model = model
        self.render_lock = threading.Lock()  # matplotlib's font cache is not thread-safe

    def info(self) -> dict:
        from hwtf import rest
        from hwtf.writer import MAX_LINE_CHARS

        return {
            "model": os.path.basename(os.path.normpath(self.model)),
            "styles": [{"number": i, "text": s["text"]} for i, s in enumerate(self.styles)],
            "alphabet": self.writer.config.alphabet,
            "defaults": {"bias": rest.DEFAULT_BIAS, "seed": 0, "candidates": rest.DEFAULT_CANDIDATES},
            "limits": {
                "body_bytes": rest.MAX_BODY_BYTES, "line_chars": MAX_LINE_CHARS, "batch": rest.MAX_BATCH,
                "max_steps": rest.MAX_STEPS, "candidates": rest.MAX_CANDIDATES,
                "page_lines": rest.MAX_PAGE_LINES, "line_width": rest.LINE_WIDTH,
                "prime_points": rest.MAX_PRIME_POINTS, "ink_points": rest.MAX_INK_POINTS,
            },
        }

    def write(self, request) -> tuple[bytes, str]:
        """A write request's answer: `(body, content type)`."""
        from hwtf import rest

        with self.gate.enter():
            ink, page = rest.write(self.writer, request)
            if not page:
                raise rest.BadRequest("nothing was written (an empty text?)")
            if request.format == "json":
                return json.dumps(rest.page_json(ink, page, self.writer)).encode(), rest.FORMATS["json"]
            if request.format == "png":
                with self.render_lock:
                    return rest.render(page, request.text, "png", len(ink)), rest.FORMATS["png"]
            return rest.render(page, request.text, request.format), rest.FORMATS[request.format]

    def predict(self, body: bytes) -> dict:
        name, inputs, row = self.predictor.parse(body)
        with self.gate.enter():
            outputs = self.predictor.run(name, inputs)
        from hwtf.rest import format_outputs

        return format_outputs(outputs, row)


class Handler(BaseHTTPRequestHandler):
    """One request; `server.service` is the `Service`."""

    server_version = "hwtf"
    timeout = SOCKET_TIMEOUT_S

    # -- answers ------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def log_message(self, format, *args):  # noqa: A002 (the standard library's name)
        logging.info("%s %s", self.address_string(), format % args)

    # -- reading ------------------------------------------------------------

    def _body(self) -> bytes:
        from hwtf.rest import MAX_BODY_BYTES, BadRequest

        if self.headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
            self.close_connection = True
            raise BadRequest("send the body with a Content-Length (chunked transfer encoding is not accepted)")
        length = self.headers.get("Content-Length")
        if length is None:
            raise BadRequest("a POST needs a body with a Content-Length")
        try:
            length = int(length)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise BadRequest(f"Content-Length: {length!r} is not a size") from None
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            if length <= DRAIN_BYTES:
                remaining = length
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 1 << 16))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            raise BadRequest(f"the body has {length} bytes; a request may have at most {MAX_BODY_BYTES} (1 MiB)")
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            self.close_connection = True
            raise BadRequest(f"the body's {length} bytes did not arrive within {self.timeout} s") from None
        if len(body) < length:
            self.close_connection = True
            raise BadRequest(f"the body ended after {len(body)} of its {length} bytes")
        return body

    # -- routes -------------------------------------------------------------

    def _model_route(self, path: str) -> str | None:
        """The rest of a /v1/models/NAME[/versions/1] path ("", "/metadata",
        ":predict"), None for another model's path (404)."""
        prefix = "/v1/models/"
        rest_of = path[len(prefix):]
        name, sep, tail = rest_of.partition("/")
        if ":" in name:
            name, tail = name.split(":", 1)
            tail = ":" + tail
        elif sep:
            tail = "/" + tail
        if tail.startswith("/versions/1"):
            tail = tail[len("/versions/1"):]
        if name != self.server.service.name:
            return None
        return tail

    def _route(self, method: str) -> None:
        from hwtf import rest

        service = self.server.service
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        try:
            if path.startswith("/v1/models/"):
                tail = self._model_route(path)
                if tail is None:
                    name = path[len("/v1/models/"):].split("/")[0].split(":")[0]
                    return self._error(404, f"Servable not found for request: Latest({name})")
                if method == "GET" and tail == "":
                    return self._json(200, service.predictor.status())
                if method == "GET" and tail == "/metadata":
                    return self._json(200, service.predictor.metadata(service.name))
                if method == "POST" and tail == ":predict":
                    return self._json(200, service.predict(self._body()))
                if tail in ("", "/metadata", ":predict"):
                    return self._error(405, f"{method} is not served for {path}")
                return self._error(404, f"no route {path} (models have '', '/metadata' and ':predict')")
            if method == "GET" and path in ("/", "/index.html"):
                return self._static("index.html")
            if method == "GET" and path.startswith("/static/"):
                return self._static(path[len("/static/"):])
            if method == "GET" and path == "/api/info":
                return self._json(200, service.info())
            if method == "GET" and path.startswith("/api/styles/") and path.endswith(".svg"):
                number = path[len("/api/styles/"):-len(".svg")]
                if not number.isdigit() or int(number) >= len(service.styles):
                    return self._error(404, f"no style {number!r}: the model has {len(service.styles)} styles")
                return self._send(200, rest.style_svg(service.writer, int(number)), rest.FORMATS["svg"],
                                  {"Cache-Control": "max-age=3600"})
            if method == "GET" and path.startswith("/write."):
                fmt = path[len("/write."):]
                if fmt not in ("svg", "png", "inkml"):
                    return self._error(404, f"no route {path} (write.svg, write.png, write.inkml)")
                params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
                request = rest.parse_write(params, service.writer, format=fmt)
                body, content_type = service.write(request)
                return self._send(200, body, content_type,
                                  {"Content-Disposition": f'inline; filename="handwriting.{fmt}"'})
            if method == "POST" and path == "/api/write":
                request = rest.parse_write(rest.parse_json(self._body()), service.writer)
                body, content_type = service.write(request)
                return self._send(200, body, content_type)
            if path in ("/", "/index.html", "/api/info", "/api/write") or path.startswith(("/static/", "/write.")):
                return self._error(405, f"{method} is not served for {path}")
            return self._error(404, f"no route {path}")
        except rest.BadRequest as e:
            return self._error(400, str(e))
        except Busy as e:
            return self._error(503, str(e))
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as e:  # a fault of the server's own, not of the request
            logging.exception("internal error on %s %s", method, path)
            return self._error(500, f"internal error: {type(e).__name__}")

    def _static(self, name: str) -> None:
        if name not in STATIC_FILES:
            return self._error(404, f"no file {name!r}")
        with open(os.path.join(STATIC, name), "rb") as f:
            return self._send(200, f.read(), STATIC_FILES[name])

    def do_GET(self):
        self._route("GET")

    def do_HEAD(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def _not_allowed(self):
        self._error(405, f"{self.command} is not served")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address, service: Service, timeout: float = SOCKET_TIMEOUT_S):
        self.service = service
        super().__init__(address, type("Handler", (Handler,), {"timeout": timeout}))


def make_server(model: str, host: str = "127.0.0.1", port: int = 0, workers: int = 2, queue: int = 32,
                name: str = "hwtf", timeout: float = SOCKET_TIMEOUT_S) -> Server:
    """A server for the export at `model`, bound (port 0: a free one) but
    not yet serving: call `serve_forever` (in a thread, for tests).
    `timeout`: seconds a client may leave its socket silent."""
    return Server((host, port), Service(model, workers, queue, name), timeout)


def check_flags() -> None:
    """Refuses flag values the server cannot start with, in one line naming
    the flag, before TensorFlow is imported (`cli.run`'s `check`)."""
    if not 0 <= FLAGS.port < 65536:
        raise app.UsageError(f"--port={FLAGS.port}: expected 0 to 65535")
    if FLAGS.workers < 1 or FLAGS.queue < 0:
        raise app.UsageError("--workers must be at least 1 and --queue at least 0")
    if not FLAGS.model_name or not all(c.isalnum() or c in "-_." for c in FLAGS.model_name):
        raise app.UsageError(f"--model_name={FLAGS.model_name!r}: letters, digits, '-', '_' and '.' only")
    if not os.path.exists(os.path.join(FLAGS.model, "saved_model.pb")):
        raise app.UsageError(f"--model={FLAGS.model}: not an exported SavedModel directory (no saved_model.pb)")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        server = make_server(FLAGS.model, FLAGS.host, FLAGS.port, FLAGS.workers, FLAGS.queue, FLAGS.model_name)
    except ValueError as e:
        raise app.UsageError(f"--model: {e}") from e
    except OSError as e:
        raise app.UsageError(f"cannot listen on {FLAGS.host}:{FLAGS.port} ({e.strerror or e})") from e
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"hwtf.serve: {FLAGS.model} at http://{shown}:{port}/ (the page) and "
          f"http://{shown}:{port}/v1/models/{FLAGS.model_name} (TF Serving's REST API); Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    define_flags()
    from hwtf import cli

    cli.run(main, "hwtf.serve", check=check_flags)
