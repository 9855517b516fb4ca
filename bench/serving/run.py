"""Serving benchmark: perennial-serve against MLServer and BentoML on the same models,
with a bare in-process predict loop as the physical limit.

    .venv/bin/python bench/serving/run.py [--duration 10] [--runs 3] [--conns 1,16,64]

Installs the peers into a venv under ~/.cache/perennial-bench and wrk with apt-get when
missing. Loads each server alone (the others stopped) with wrk on 127.0.0.1, single-row
requests, median of the runs; prints req/s, p50, p99 and ratios.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo: tests' model writer
from bench.serving import peers  # noqa: E402
from tests.support.model_dirs import build  # noqa: E402

LUA = Path(__file__).resolve().parent / "post.lua"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wrk(url: str, body_file: Path, conns: int, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        [peers.ensure_wrk(), "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", str(LUA)]
        + [url],
        capture_output=True,
        text=True,
        env={**os.environ, "BODY_FILE": str(body_file)},
        timeout=seconds + 60,
        check=True,
    )
    text = out.stdout + out.stderr
    latency = {
        q: float(v) * UNITS[u] for q, v, u in re.findall(r"(50|99)%\s+([\d.]+)(us|ms|s)\b", text)
    }
    bad = int(re.search(r"non2xx=(\d+)", text).group(1))  # type: ignore[union-attr]
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    total = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    return {
        "rps": rps * (total - bad) / max(total, 1),  # only answers that were 2xx count
        "p50": latency["50"],
        "p99": latency["99"],
        "non2xx": bad,
        "errors": sum(map(int, errors.groups())) if errors else 0,
    }


def start(target: peers.Target, port: int, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    proc = subprocess.Popen(
        target.command,
        cwd=target.cwd,
        env={**os.environ, **target.env},
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{target.server} exited {proc.returncode}; see {log}")
        try:
            if requests.get(f"http://127.0.0.1:{port}{target.ready_path}", timeout=2).ok:
                answer = requests.post(
                    f"http://127.0.0.1:{port}{target.path}", json=target.body, timeout=30
                )
                answer.raise_for_status()
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.5)
    stop(proc)
    raise RuntimeError(f"{target.server} not ready in 180 s; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def measure(
    target: peers.Target, port: int, work: Path, conns: list[int], seconds: int, runs: int
) -> dict[int, dict[str, float]]:
    body = work / f"{target.server}-{target.model}.json"
    body.write_text(__import__("json").dumps(target.body))
    proc = start(target, port, work / f"{target.server}-{target.model}.log")
    results: dict[int, dict[str, float]] = {}
    try:
        url = f"http://127.0.0.1:{port}{target.path}"
        wrk(url, body, 16, 2)  # warm up
        for c in conns:
            samples = [wrk(url, body, c, seconds) for _ in range(runs)]
            results[c] = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
            r = results[c]
            print(
                f"  {target.server:9} {target.model:7} c={c:<3} {r['rps']:9.0f} req/s  "
                f"p50 {r['p50']:7.3f} ms  p99 {r['p99']:8.3f} ms  non2xx {r['non2xx']:.0f} "
                f"sockerr {r['errors']:.0f}  load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    finally:
        stop(proc)
    return results


def in_process(case: Any, seconds: float, cpus: int) -> dict[str, float]:
    """The physical limit: onnxruntime on one row in a tight loop, no HTTP, no JSON, on
    every CPU. Rate from the median call (preemption by other load is not the model's
    cost): cpus / median."""
    session = case.onnx_session()
    feeds = {}
    for item in session.get_inputs():
        dtype = np.float64 if item.type == "tensor(double)" else np.float32
        feeds[item.name] = case.X_test[[item.name]].head(1).to_numpy(dtype=dtype)
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    median = float(np.median(ms))
    return {"rps": cpus * 1e3 / median, "p50": median, "p99": float(np.percentile(ms, 99))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--conns", default="1,16,64")
    parser.add_argument("--servers", default="perennial,mlserver,bentoml")
    parser.add_argument("--models", default="logreg,forest")
    args = parser.parse_args()
    conns = [int(c) for c in args.conns.split(",")]
    cpus = len(os.sched_getaffinity(0))
    python = peers.ensure_peers_venv()
    work = Path(tempfile.mkdtemp(prefix="perennial-bench-"))
    print(f"cpus {cpus}  load {os.getloadavg()}  work {work}", flush=True)
    table: dict[tuple[str, str], dict[int, dict[str, float]]] = {}
    limits = {}
    for model in args.models.split(","):
        case = build(model, work / "models", trees=100)
        joblib_file = work / f"{model}.joblib"
        joblib.dump(case.pipeline, joblib_file)
        row = case.X_test.head(1).values.tolist()[0]
        limits[model] = in_process(case, 3.0, cpus)
        for server in args.servers.split(","):
            port = free_port()
            if server == "perennial":
                target = peers.ours(model, case.path, port, row, cpus)
            elif server == "mlserver":
                target = peers.mlserver(python, model, joblib_file, work, port, row)
            else:
                target = peers.bentoml(python, model, joblib_file, port, row, cpus)
            table[(server, model)] = measure(target, port, work, conns, args.duration, args.runs)
    report(table, limits, conns)
    return 0


def report(
    table: dict[tuple[str, str], dict[int, dict[str, float]]],
    limits: dict[str, dict[str, float]],
    conns: list[int],
) -> None:
    print(f"\nload average now {os.getloadavg()}")
    print(
        f"{'model':7} {'conns':>5} {'server':10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'x best peer':>11} {'p99/peer':>8} {'of limit':>8}"
    )
    for model, limit in limits.items():
        for c in conns:
            rows = {s: r[c] for (s, m), r in table.items() if m == model and c in r}
            peer = max(
                (r for s, r in rows.items() if s != "perennial"),
                key=lambda r: r["rps"],
                default=None,
            )
            for server, r in rows.items():
                ratio = f"{r['rps'] / peer['rps']:.1f}x" if peer else "-"
                p99 = f"{r['p99'] / peer['p99']:.2f}" if peer else "-"
                share = r["rps"] / limit["rps"]
                print(
                    f"{model:7} {c:5} {server:10} {r['rps']:9.0f} {r['p50']:8.3f} "
                    f"{r['p99']:8.2f} {ratio:>11} {p99:>8} {share:8.1%}"
                )
        print(
            f"{model:7} {'-':>5} {'in-process':10} {limit['rps']:9.0f} {limit['p50']:8.3f} "
            f"{limit['p99']:8.3f}   (onnxruntime, 1 row per call, x cpus)"
        )


if __name__ == "__main__":
    raise SystemExit(main())
