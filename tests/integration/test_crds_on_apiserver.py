"""Our CRDs on the real API server: every example is accepted, every invalid manifest is
rejected with the message its first line promises (`# expect: <substring>`).

An invalid manifest with several documents tests a transition rule: all but the last are
created for real, and the last is applied as an update (server-side dry run).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
INVALID = sorted((REPO / "tests" / "manifests" / "invalid").glob("*.yaml"))
EXPECT = "# expect:"


def expected_message(path: Path) -> str:
    first = path.read_text().splitlines()[0] if path.read_text() else ""
    if not first.startswith(EXPECT):
        raise AssertionError(f"{path.name}: first line must be '{EXPECT} <substring>'")
    return first[len(EXPECT) :].strip()


def _params(paths: list[Path]) -> list[object]:
    # An empty corpus must fail, not pass by testing nothing.
    return [pytest.param(p, id=p.stem) for p in paths] or [pytest.param(None, id="empty")]


@pytest.mark.parametrize("path", _params(EXAMPLES))
def test_example_is_accepted(cluster, namespace, path):
    assert path is not None, "examples/ has no *.yaml"
    result = cluster.kubectl(
        "create", "--dry-run=server", "-n", namespace, "-f", str(path), check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", _params(INVALID))
def test_invalid_manifest_is_rejected_with_its_message(cluster, namespace, path):
    assert path is not None, "tests/manifests/invalid/ has no *.yaml"
    expected = expected_message(path)
    *earlier, last = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for doc in earlier:
        cluster.kubectl("create", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
    verb = ["apply", "--server-side", "--force-conflicts"] if earlier else ["create"]
    result = cluster.kubectl(
        *verb,
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=yaml.safe_dump(last),
        check=False,
    )
    assert result.returncode != 0, f"{path.name} was accepted"
    assert expected in result.stderr
