"""Latency of `python -m hwtf.serve` per written line, alone and under load.

    python benchmarks/serve_load.py                      # the shipped model, --workers=2
    python benchmarks/serve_load.py --model=saved_models/synthetic-demo --clients=8 --requests=3

Starts the server as its command (a subprocess on a free loopback port),
then writes one line a request through both front doors: TF Serving's
`:predict` (the `generate` signature, columnar) and the page's
`POST /api/write` (JSON strokes, what the browser asks for). First one
client alone (batch 1), then `--clients` clients at once, each sending
`--requests` requests back to back. Prints a Markdown table: median and
90th-percentile seconds per line, and lines per second.
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# Lines of about 40 characters, as a page's lines are.
TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "handwriting synthesis with recurrent networks",
    "a soft window reads the text as it writes",
    "every line is written one pen movement at a time",
    "she sells sea shells by the sea shore today",
    "pack my box with five dozen liquor jugs now",
    "how vexingly quick daft zebras jump at night",
    "the five boxing wizards jump quickly away",
]


def start(model: str, workers: int, queue: int):
    process = subprocess.Popen(
        [sys.executable, "-m", "hwtf.serve", f"--model={model}", "--port=0", f"--workers={workers}",
         f"--queue={queue}"], cwd=REPO, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    if "http://127.0.0.1:" not in line:
        process.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return process, int(line.split("http://127.0.0.1:")[1].split("/")[0])


def post(port: int, path: str, payload: dict) -> float:
    """Seconds for one request (connect, write, read the whole answer)."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.request("POST", path, json.dumps(payload), {"Content-Type": "application/json"})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    if response.status != 200:
        raise SystemExit(f"{path}: {response.status} {body[:200]!r}")
    return time.perf_counter() - started


def payload(route: str, i: int, bias: float) -> tuple[str, dict]:
    text = TEXTS[i % len(TEXTS)]
    if route == "predict":
        return "/v1/models/hwtf:predict", {"signature_name": "generate", "inputs": {
            "text": [text], "bias": bias, "seed": i, "max_steps": 40 * len(text) + 40}}
    return "/api/write", {"text": text, "bias": bias, "seed": i}


def measure(port: int, route: str, clients: int, requests: int, bias: float):
    jobs = [payload(route, i, bias) for i in range(clients * requests)]

    def client(c):
        return [post(port, *jobs[c * requests + r]) for r in range(requests)]

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        times = [t for result in pool.map(client, range(clients)) for t in result]
    wall = time.perf_counter() - started
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.9 * len(times)))], len(times) / wall


def main():
    from hwtf.writer import DEFAULT_MODEL

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=3, help="requests per client under load")
    parser.add_argument("--alone", type=int, default=8, help="requests of the lone client")
    parser.add_argument("--bias", type=float, default=0.75)
    args = parser.parse_args()
    process, port = start(args.model, args.workers, queue=max(32, args.clients))
    try:
        for route in ("predict", "page"):  # warm up: the first call traces nothing, but pages in the weights
            post(port, *payload(route, 0, args.bias))
        rows = []
        for route, name in (("predict", "`:predict` (generate)"), ("page", "`POST /api/write` (the page)")):
            alone = measure(port, route, 1, args.alone, args.bias)
            loaded = measure(port, route, args.clients, args.requests, args.bias)
            rows.append((name, alone, loaded))
    finally:
        process.terminate()
        process.wait(timeout=60)
    print(f"model {os.path.basename(os.path.normpath(args.model))}, --workers={args.workers}, one line of about 40 "
          f"characters a request, bias {args.bias}, {os.cpu_count()} CPU cores\n")
    print(f"| route | alone: median s/line | alone: p90 | {args.clients} clients: median s/line | p90 | "
          f"lines/s alone | lines/s, {args.clients} clients |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, alone, loaded in rows:
        print(f"| {name} | {alone[0]:.2f} | {alone[1]:.2f} | {loaded[0]:.2f} | {loaded[1]:.2f} | {alone[2]:.2f} | "
              f"{loaded[2]:.2f} |")


if __name__ == "__main__":
    main()
