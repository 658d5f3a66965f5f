"""The console at a thousand simulated payments a second: how soon a new event shows in the
browser's transaction stream, and whether the browser keeps up.

Prints one JSON line per figure:
  {"bench": "console", "workload": ..., "value": ..., "unit": ..., "baseline": ...,
   "baseline_value": ..., "ratio": ...}

Method. A fresh SQLite pool (examples/pool.toml) is served by `fundpool serve --console
` in a second process while `fundpool simulate --rate RATE --speed 1` writes to the same
SQLite file from a third (the server only serves, as beside other writers).
Headless Chromium (Playwright, /usr/bin/chromium) signs in and opens the stream page. In the
page, a MutationObserver stamps every new or changed grid row's time cell (`HH:MM:SS.mmm`, the
moment the payment reached its state, UTC) with the browser's clock on arrival; a frame
counter (requestAnimationFrame) and a long-task observer run alongside. After a warm-up of
`--warmup` seconds, `--duration` seconds are measured:
- **show latency**: arrival minus the event's own time, p50 and p99, over the rows the grid
  received (one per payment per tick: the page folds a payment's transitions within a tick);
- **frames per second** the browser painted, and the share of time in long tasks (> 50 ms);
- **rows in the grid** at the end (bounded by `ROWS_MAX`).
Baseline, in the same run and against the same server: a plain WebSocket client of
`/v1/stream?type=payment.transitioned` (the API's own stream, with the same credentials),
receive time minus the event's time, p50 and p99, measured over the same window. The ratio is
the console's p99 over the raw stream's.
The server, the simulator, the browser and the baseline client share the machine's 2 cores.

Usage: python bench/console.py [--rate 1000/s] [--warmup 10] [--duration 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson
import websockets

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "bench-console-pass"

OBSERVER = """
() => {
  window.__fp = {arrivals: [], frames: 0, longMs: 0, t0: performance.now()};
  const grid = document.querySelector('[data-testid="stream-grid"]');
  const seen = new WeakMap();
  const stamp = (cell) => {
    const text = cell.textContent;
    if (!text || seen.get(cell) === text) return;
    seen.set(cell, text);
    const now = new Date();
    const [h, m, rest] = text.split(':');
    const [s, ms] = rest.split('.');
    const eventMs = ((+h * 60 + +m) * 60 + +s) * 1000 + +ms;
    const nowMs = ((now.getUTCHours() * 60 + now.getUTCMinutes()) * 60 + now.getUTCSeconds())
                  * 1000 + now.getUTCMilliseconds();
    let lag = nowMs - eventMs;
    if (lag < -43200000) lag += 86400000;
    window.__fp.arrivals.push(lag);
  };
  new MutationObserver((records) => {
    for (const r of records) {
      const nodes = r.type === 'characterData' ? [r.target.parentElement] : [r.target];
      for (const n of nodes) {
        if (!n || !n.closest) continue;
        const cell = n.closest('[col-id="time"]');
        if (cell && cell.closest('.ag-row')) stamp(cell);
        if (n.querySelectorAll) n.querySelectorAll('.ag-row [col-id="time"]').forEach(stamp);
      }
    }
  }).observe(grid, {subtree: true, childList: true, characterData: true});
  const tick = () => { window.__fp.frames++; requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__fp.longMs += e.duration;
  }).observe({type: 'longtask', buffered: false});
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def line(workload: str, value: float, unit: str, baseline: str | None = None,
         baseline_value: float | None = None) -> None:
    print(json.dumps({"bench": "console", "workload": workload, "value": round(value, 2),
                      "unit": unit, "baseline": baseline,
                      "baseline_value": None if baseline_value is None
                      else round(baseline_value, 2),
                      "ratio": None if not baseline_value else round(value / baseline_value,
                                                                      3)}), flush=True)


def start_server(data: Path, port: int, rate: str) -> subprocess.Popen[bytes]:
    fundpool = str(Path(sys.executable).parent / "fundpool")
    env = {**os.environ, "FUNDPOOL_DATA_DIR": str(data),
           "FUNDPOOL_CONFIG": str(ROOT / "examples" / "pool.toml")}
    subprocess.run([fundpool, "pool", "init"], env=env, check=True, capture_output=True)
    subprocess.run([fundpool, "users", "add", "bench", "--role", "viewer", "--password-stdin"],
                   env=env, check=True, capture_output=True, input=PASSWORD.encode())
    env.update({"FUNDPOOL_CONSOLE": "true", "FUNDPOOL_PORT": str(port),
                "FUNDPOOL_LOG_LEVEL": "warning", "FUNDPOOL_ACCESS_LOG": "false"})
    server = subprocess.Popen([fundpool, "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    # The traffic comes from a simulator process of its own on the same SQLite file, as load
    # from other writers would: the server only serves.
    subprocess.Popen([fundpool, "simulate", "--rate", rate, "--duration", "10m", "--speed", "1"],
                     env={**env, "FUNDPOOL_CONSOLE": "false"}, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(200):
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        time.sleep(0.1)
    server.kill()
    raise SystemExit("the server did not start")


def raw_stream(port: int, token: str, start: threading.Event, stop: threading.Event,
               lags_ms: list[float]) -> None:
    async def run() -> None:
        url = f"ws://127.0.0.1:{port}/v1/stream?type=payment.transitioned"
        async with websockets.connect(url, additional_headers={
                "Authorization": f"Bearer {token}"}, max_queue=None) as ws:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    text = await asyncio.wait_for(ws.recv(), 0.5)
                    body = orjson.loads(text)
                    if start.is_set() and "at_us" in body:
                        lags_ms.append(time.time() * 1000 - body["at_us"] / 1000)

    asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", default="1000/s")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=20.0)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    data = Path(tempfile.mkdtemp(prefix="fundpool-bench-console-"))
    port = free_port()
    server = start_server(data, port, args.rate)
    base = f"http://127.0.0.1:{port}"
    try:
        token = httpx.post(f"{base}/v1/sessions", json={"username": "bench",
                                                        "password": PASSWORD}).json()["token"]
        started, stop, raw_lags = threading.Event(), threading.Event(), []
        baseline = threading.Thread(target=raw_stream, args=(port, token, started, stop,
                                                             raw_lags), daemon=True)
        baseline.start()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--disable-sync"])
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{base}/console/login")
            page.get_by_test_id("username").fill("bench")
            page.get_by_test_id("password").fill(PASSWORD)
            page.get_by_test_id("submit").click()
            page.wait_for_url("**/console/")
            page.goto(f"{base}/console/stream")
            page.get_by_test_id("stream-grid").wait_for()
            page.wait_for_timeout(args.warmup * 1000)
            page.evaluate(OBSERVER)
            started.set()
            payments_before = _payments_total(base, token)
            page.wait_for_timeout(args.duration * 1000)
            payments_after = _payments_total(base, token)
            result = page.evaluate("""() => ({arrivals: window.__fp.arrivals,
                frames: window.__fp.frames, longMs: window.__fp.longMs,
                elapsed: performance.now() - window.__fp.t0,
                rows: document.querySelectorAll('[data-testid="stream-grid"] .ag-row').length,
                rate: document.querySelector('[data-testid="stream-rate"]').textContent})""")
            stop.set()
            browser.close()
        baseline.join(timeout=5)
        elapsed_s = result["elapsed"] / 1000
        arrivals = result["arrivals"]
        line("simulated payments created per second (projections)",
             (payments_after - payments_before) / args.duration, "payments/s")
        line(f"rows shown per second in the stream at {args.rate}", len(arrivals) / elapsed_s,
             "rows/s")
        line("event to browser p50", quantile(arrivals, 0.5), "ms",
             "raw /v1/stream WebSocket p50", quantile(raw_lags, 0.5))
        line("event to browser p99", quantile(arrivals, 0.99), "ms",
             "raw /v1/stream WebSocket p99", quantile(raw_lags, 0.99))
        line("browser frames per second", result["frames"] / elapsed_s, "fps")
        line("browser time in long tasks", 100 * result["longMs"] / result["elapsed"], "%")
        line("rows in the grid at the end (bounded)", result["rows"], "rows")
    finally:
        subprocess.run(["pkill", "-f", f"fundpool simulate --rate {args.rate}"], check=False)
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=15)
        shutil.rmtree(data, ignore_errors=True)


def _payments_total(base: str, token: str) -> int:
    figures = httpx.get(f"{base}/v1/monitoring/pools/main/figures",
                        headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    return sum(int(v) for v in figures["payments_by_state"].values())


if __name__ == "__main__":
    main()
