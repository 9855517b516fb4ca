"""What a trained model costs to serve: artifact size, load time, and the time of one
predict call (1 row and 32 rows, probabilities included) through the server's own loader.

    .venv/bin/python bench/training/model_latency.py MODEL_DIR [MODEL_DIR ...]

Each directory is one `perennial-train --output`; rows come from its builtin:// dataset.
One thread, as each server worker process runs. Run the directories side by side on the
same machine and compare the ratios, not the absolute figures.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from perennial_runtime.serve.model import load_predictor, open_model_dir
from perennial_runtime.train import datasets


def main() -> int:
    for arg in sys.argv[1:]:
        path = Path(arg)
        result = json.loads((path / "result.json").read_text())
        uri = result["dataset"]["uri"]
        frame = datasets.load(uri, "auto", Path("/")).frame
        model = open_model_dir(path)
        names = [f.name for f in model.signature.numeric_features]
        X = frame[names].to_numpy(dtype=np.float64)
        started = time.perf_counter()
        predictor = load_predictor(model)
        load_ms = (time.perf_counter() - started) * 1e3
        size = sum(a["bytes"] for a in result["artifacts"].values())
        timings = []
        with threadpool_limits(1):
            for n, calls in ((1, 300), (32, 100)):
                rows = X[:n]
                for _ in range(20):  # warm-up
                    predictor.predict(rows, None, True)
                started = time.perf_counter()
                for _ in range(calls):
                    predictor.predict(rows, None, True)
                timings.append((time.perf_counter() - started) / calls * 1e6)
        print(
            f"{arg}: {result['algorithm']} served from {model.format}, "
            f"artifacts {size / 1e6:.2f} MB, load {load_ms:.0f} ms, "
            f"1 row {timings[0]:.0f} us, 32 rows {timings[1]:.0f} us"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
