"""perennial-serve --model-uri s3://...: the model folder is copied from an S3-compatible
server (moto on 127.0.0.1) and verified before the server is ready; a changed object is
refused, a missing one fails, and the credentials never reach the logs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from perennial_runtime import contract
from perennial_runtime.serve.fetch import FetchError, fetch_model_dir, is_remote
from support import model_dirs, s3
from support.server_process import ServerProcess, run_to_exit

pytestmark = pytest.mark.unit
BUCKET = "models"


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[str, str], model_dirs.ModelCase]]:
    case = model_dirs.build("logreg", tmp_path_factory.mktemp("model"), onnx=False)
    with s3.moto_server() as env:
        client = s3.client(env)
        client.create_bucket(Bucket=BUCKET)
        for path in case.path.iterdir():
            client.put_object(Bucket=BUCKET, Key=f"bc/v3/{path.name}", Body=path.read_bytes())
            tampered = b"x" + path.read_bytes() if path.name == "model.skops" else None
            client.put_object(
                Bucket=BUCKET, Key=f"bad/v3/{path.name}", Body=tampered or path.read_bytes()
            )
        client.put_object(Bucket=BUCKET, Key="bc/v3/unlisted.txt", Body=b"not copied")
        yield env, case


@pytest.fixture
def aws_env(store, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env, _ = store
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_only_listed_files_are_copied(store, aws_env, tmp_path: Path) -> None:
    source = store[1].path
    copied = fetch_model_dir(f"s3://{BUCKET}/bc/v3/", tmp_path / "m")
    assert sorted(p.name for p in copied.iterdir()) == sorted(p.name for p in source.iterdir())
    assert contract.verify_artifacts(copied)["model"] == "bc-logreg"
    assert is_remote("gs://b/m") and not is_remote("/mnt/pvc/m")


def test_the_server_copies_verifies_and_serves(store, aws_env, tmp_path: Path) -> None:
    case = store[1]
    digest = contract.sha256_file(case.path / contract.RESULT)
    server = ServerProcess(
        tmp_path / "copy",
        "--model-uri",
        f"s3://{BUCKET}/bc/v3",
        "--expected-sha256",
        digest,
        "--workers",
        "1",
    )
    try:
        server.wait_ready()
        rows = case.X_test.iloc[:5]
        answer = server.post(
            "/v1/models/bc-logreg:predict", {"instances": rows.to_numpy().tolist()}
        ).json()
        assert answer["predictions"] == [int(x) for x in case.pipeline.predict(rows)]
    finally:
        server.stop()
    assert (tmp_path / "copy" / contract.RESULT).is_file()
    text = "".join(server.lines)
    assert s3.SECRET_KEY not in text and s3.ACCESS_KEY not in text


def test_a_changed_object_is_refused_and_a_missing_one_fails(store, aws_env, tmp_path):
    code, err = run_to_exit(tmp_path / "bad", "--model-uri", f"s3://{BUCKET}/bad/v3")
    assert code == 2 and "model.skops" in err and "does not match" in err
    code, err = run_to_exit(tmp_path / "none", "--model-uri", f"s3://{BUCKET}/absent")
    assert code == 3 and f"s3://{BUCKET}/absent" in err
    assert s3.SECRET_KEY not in err
    with pytest.raises(FetchError, match="cannot be copied"):
        fetch_model_dir(f"s3://{BUCKET}/absent", tmp_path / "x")
