"""Serving benchmark: perennial-serve against MLServer and BentoML on the same models,
with a bare in-process predict loop as the physical limit.

    .venv/bin/python bench/serving/run.py [--duration 10] [--runs 3] [--conns 1,16,64]

Models: ``logreg`` and ``forest`` (single pipelines on breast_cancer, served by all three),
and ``default``: the model examples/trainingjob.yaml trains (AutoML, as `make demo` does;
default_model.py), served by us and by MLServer (pandas codec, so the column names reach
the pipeline). Installs the peers into a venv under ~/.cache/perennial/bench and wrk with
apt-get when missing. Loads each server alone (the others stopped) with wrk on 127.0.0.1,
single-row requests, median of the runs; prints req/s, p50, p99, ratios, the servers'
memory per worker process, and the issue-17 goals for the default model.
"""

from __future__ import annotations

import argparse
import json
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
from bench.serving import default_model, peers  # noqa: E402
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
    body.write_text(json.dumps(target.body))
    proc = start(target, port, work / f"{target.server}-{target.model}.log")
    results: dict[int, dict[str, float]] = {}
    try:
        url = f"http://127.0.0.1:{port}{target.path}"
        wrk(url, body, 16, 2)  # warm up
        for c in conns:
            samples = [wrk(url, body, c, seconds) for _ in range(runs)]
            results[c] = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
            r = results[c]
            r.update(memory(proc.pid))
            print(
                f"  {target.server:9} {target.model:7} c={c:<3} {r['rps']:9.0f} req/s  "
                f"p50 {r['p50']:7.3f} ms  p99 {r['p99']:8.3f} ms  non2xx {r['non2xx']:.0f} "
                f"sockerr {r['errors']:.0f}  worker rss {r['rss']:.0f} MB pss {r['pss']:.0f} MB  "
                f"load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    finally:
        stop(proc)
    return results


def memory(pid: int) -> dict[str, float]:
    """The largest RSS and PSS (MB) among the server's worker processes (its descendants;
    the server process itself when it has none). PSS splits pages shared after a fork."""
    tree = descendants(pid) or [pid]
    rss, pss = [], []
    for child in tree:
        try:
            rollup = Path(f"/proc/{child}/smaps_rollup").read_text()
        except OSError:
            continue
        fields = dict(re.findall(r"^(Rss|Pss):\s+(\d+) kB", rollup, re.M))
        rss.append(int(fields.get("Rss", 0)) / 1024)
        pss.append(int(fields.get("Pss", 0)) / 1024)
    return {"rss": max(rss, default=0.0), "pss": max(pss, default=0.0)}


def descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def in_process(case: Any, seconds: float, cpus: int) -> dict[str, float]:
    """The physical limit: onnxruntime on one row in a tight loop, no HTTP, no JSON, on
    every CPU. Rate from the median call (preemption by other load is not the model's
    cost): cpus / median."""
    session = case.onnx_session()
    signature = json.loads((case.path / "signature.json").read_text())
    column_of = dict(zip(signature["onnx"]["input_names"], case.X_test.columns, strict=True))
    feeds = {}
    for item in session.get_inputs():
        dtype = np.float64 if item.type == "tensor(double)" else np.float32
        feeds[item.name] = case.X_test[[column_of[item.name]]].head(1).to_numpy(dtype=dtype)
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
    parser.add_argument("--models", default="logreg,forest,default")
    args = parser.parse_args()
    conns = [int(c) for c in args.conns.split(",")]
    cpus = len(os.sched_getaffinity(0))
    python = peers.ensure_peers_venv()
    work = Path(tempfile.mkdtemp(prefix="perennial-bench-"))
    print(f"cpus {cpus}  load {os.getloadavg()}  work {work}", flush=True)
    table: dict[tuple[str, str], dict[int, dict[str, float]]] = {}
    limits = {}
    for model in args.models.split(","):
        if model == "default":
            case: Any = default_model.train(work)
            print(f"default AutoML model: {describe(case.result)}", flush=True)
        else:
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
                names = list(case.X_test.columns) if model == "default" else None
                target = peers.mlserver(python, model, joblib_file, work, port, row, names)
            elif model == "default":
                continue  # BentoML's service takes a bare array; the pipeline needs names
            else:
                target = peers.bentoml(python, model, joblib_file, port, row, cpus)
            table[(server, model)] = measure(target, port, work, conns, args.duration, args.runs)
    report(table, limits, conns)
    if "default" in limits:
        goals(table, conns)
    return 0


def describe(result: dict[str, Any]) -> str:
    members = (result.get("ensemble") or {}).get("members") or [result]
    names = ", ".join(m["algorithm"] for m in members)
    served = result.get("serving", {})
    return (
        f"{result['algorithm']} ({names}); test {json_compact(result['metrics'])}; "
        f"model.onnx written: {result['onnx'].get('written')}; "
        f"{served.get('msPerRow')} ms per row through {served.get('format')} (trainer)"
    )


def json_compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def goals(table: dict[tuple[str, str], dict[int, dict[str, float]]], conns: list[int]) -> None:
    """Issue 17's figures for the default AutoML model, from this run."""
    ours = table.get(("perennial", "default"), {})
    peer = table.get(("mlserver", "default"), {})
    print("\ndefault AutoML model, issue 17 goals (this run):")
    for c in (c for c in conns if c in (16, 64) and c in ours):
        for single in ("logreg", "forest"):
            base = table.get(("perennial", single), {}).get(c)
            if base:
                share = ours[c]["rps"] / base["rps"]
                print(f"  c={c:<3} {share:6.1%} of single-model ONNX ({single})  goal >= 50%")
        if c in peer:
            ratio = ours[c]["rps"] / max(peer[c]["rps"], 1e-9)
            print(f"  c={c:<3} {ratio:6.1f}x MLServer on the same pipeline  goal >= 10x")
    if 1 in ours:
        print(f"  c=1   p50 {ours[1]['p50']:.3f} ms  goal < 1 ms")
    if ours:
        rss = max(r["rss"] for r in ours.values())
        pss = max(r["pss"] for r in ours.values())
        print(f"  worker RSS {rss:.0f} MB (PSS {pss:.0f} MB)  goal <= 120 MB")


def report(
    table: dict[tuple[str, str], dict[int, dict[str, float]]],
    limits: dict[str, dict[str, float]],
    conns: list[int],
) -> None:
    print(f"\nload average now {os.getloadavg()}")
    print(
        f"{'model':7} {'conns':>5} {'server':10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'x best peer':>11} {'p99/peer':>8} {'of limit':>8} {'RSS MB':>6}"
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
                    f"{r['p99']:8.2f} {ratio:>11} {p99:>8} {share:8.1%} {r['rss']:6.0f}"
                )
        print(
            f"{model:7} {'-':>5} {'in-process':10} {limit['rps']:9.0f} {limit['p50']:8.3f} "
            f"{limit['p99']:8.3f}   (onnxruntime, 1 row per call, x cpus)"
        )


if __name__ == "__main__":
    raise SystemExit(main())
