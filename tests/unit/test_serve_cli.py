"""Command-line defaults that the operator relies on."""

from __future__ import annotations

import os

import pytest

from perennial_runtime.serve import cli

pytestmark = pytest.mark.unit


def test_defaults_listen_on_every_interface_with_one_worker_per_cpu(monkeypatch, tmp_path):
    monkeypatch.delenv("PERENNIAL_MODEL_VERSION", raising=False)
    config = cli.parse_args(["--model-dir", str(tmp_path)])
    assert (config.host, config.port, config.model_version) == ("0.0.0.0", 8080, None)
    assert 1 <= config.workers <= len(os.sched_getaffinity(0))
    assert (config.max_batch_size, config.max_latency_ms) == (64, 2.0)


def test_version_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PERENNIAL_MODEL_VERSION", "7")
    assert cli.parse_args(["--model-dir", str(tmp_path)]).model_version == "7"


@pytest.mark.parametrize("flag", ["--max-batch-size=0", "--max-latency-ms=-1", "--workers=-2"])
def test_nonsense_limits_are_refused(tmp_path, flag):
    with pytest.raises(SystemExit):
        cli.parse_args(["--model-dir", str(tmp_path), flag])
