"""Object-store credentials the way a cluster gives them: a Secret, referenced by the
TrainingJob's and the InferenceService's envFrom. A TrainingJob trains on s3:// data from
an S3-compatible server (moto, on an address of this host the pods can reach); a
ModelVersion whose artifact lives at s3:// is copied, verified and served. The keys then
appear nowhere: not in any status, event, operator log, pod log or node log.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_iris
from skops.io import get_untrusted_types
from skops.io import load as skops_load

from perennial_operator.api.group import API_VERSION
from perennial_operator.k8s.kube import Kube
from perennial_runtime import contract
from support import s3
from support.poll import until
from support.remote_dataset import iris_csv

pytestmark = pytest.mark.e2e
SECRET = "s3-credentials"
ENV_FROM = [{"secretRef": {"name": SECRET}}]


@pytest.fixture
def store(pod_runtime: Any) -> Iterator[dict[str, str]]:
    with s3.moto_server(pod_runtime.host_address) as env:
        client = s3.client(env)
        for bucket in ("datasets", "models"):
            client.create_bucket(Bucket=bucket)
        client.put_object(Bucket="datasets", Key="iris.csv", Body=iris_csv())
        yield env


class World:
    def __init__(self, kube: Kube, ns: str, operator: Any, runtime: Any, cluster: Any) -> None:
        self.kube, self.ns, self.operator, self.runtime = kube, ns, operator, runtime
        self.cluster = cluster

    def create(self, kind: str, name: str, spec: dict[str, Any]) -> None:
        meta = {"name": name, "namespace": self.ns}
        self.kube.create({"apiVersion": API_VERSION, "kind": kind, "metadata": meta, "spec": spec})

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return self.kube.get(API_VERSION, kind, self.ns, name) or {}

    def everything(self) -> str:
        """Every object of ours, every pod and event of the namespace, and every log."""
        objects = [
            o
            for kind in ("TrainingJob", "ModelVersion", "InferenceService")
            for o in self.kube.list(API_VERSION, kind, self.ns)
        ]
        pods = self.kube.list("v1", "Pod", self.ns)
        events = self.cluster.kubectl("get", "events", "-n", self.ns, "-o", "json").stdout
        logs = [
            self.runtime.container_log(self.ns, p["metadata"]["name"], c["name"])
            for p in pods
            for c in p["spec"].get("initContainers", []) + p["spec"]["containers"]
        ]
        return "\n".join(
            [
                json.dumps(objects),
                json.dumps(pods),
                events,
                self.operator.log_tail(100_000),
                self.runtime.log_tail(100_000),
                *logs,
            ]
        )

    def describe(self) -> str:
        return self.everything()[-6000:]


def test_secrets_by_envfrom_train_on_s3_and_serve_from_s3_and_leak_nowhere(
    kube: Kube,
    core: Any,
    cluster: Any,
    namespace: str,
    operator: Any,
    pod_runtime: Any,
    artifacts: Path,
    store: dict[str, str],
) -> None:
    world = World(kube, namespace, operator, pod_runtime, cluster)
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": SECRET}, "type": "Opaque", "stringData": store}
    )
    world.create(
        "TrainingJob",
        "iris-s3",
        {
            "model": "iris",
            "task": "classification",
            "algorithm": "logistic_regression",
            "dataset": {"uri": "s3://datasets/iris.csv", "target": "target"},
            "envFrom": ENV_FROM,
            "resources": {"cpu": "200m", "memory": "512Mi"},
            "backoffLimit": 0,
        },
    )

    def finished() -> dict[str, Any] | None:
        status = world.get("TrainingJob", "iris-s3").get("status", {})
        done = status.get("phase") == "Failed" or status.get("modelVersion")
        return status if done else None

    status = until(finished, timeout=300, message="iris-s3 finished", describe=world.describe)
    assert status["phase"] == "Succeeded", world.describe()
    assert status["dataset"]["rows"] == 150

    # The registered model, copied to the object store and registered again from there.
    trained = world.get("ModelVersion", status["modelVersion"])["spec"]
    claim, _, path = trained["artifact"]["uri"].removeprefix("pvc://").partition("/")
    folder = pod_runtime.claim_folder(namespace, claim) / path
    client = s3.client(store)
    for file in folder.iterdir():
        client.put_object(Bucket="models", Key=f"iris/v1/{file.name}", Body=file.read_bytes())
    kept = {k: v for k, v in trained.items() if k not in ("version", "artifact", "stage")}
    artifact = {**trained["artifact"], "uri": "s3://models/iris/v1"}
    world.create("ModelVersion", "iris-v2", {**kept, "version": 2, "artifact": artifact})
    world.create(
        "InferenceService",
        "iris",
        {
            "model": {"name": "iris", "version": 2},
            "replicas": 1,
            "envFrom": ENV_FROM,
            "resources": {"cpu": "500m", "memory": "512Mi"},
        },
    )
    until(
        lambda: world.get("InferenceService", "iris").get("status", {}).get("phase") == "Ready",
        timeout=300,
        message="iris served from s3",
        describe=world.describe,
    )
    (pod,) = [
        p
        for p in kube.list("v1", "Pod", namespace, "perennial.dev/inferenceservice=iris")
        if p["status"].get("podIP")
    ]
    rows = load_iris(as_frame=True).data.iloc[::30]
    request = urllib.request.Request(
        f"http://{pod['status']['podIP']}:8080/v1/models/iris:predict",
        data=json.dumps({"instances": rows.to_numpy().tolist()}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        answer = json.loads(resp.read())
    skops_file = folder / contract.MODEL_SKOPS
    model = skops_load(skops_file, trusted=get_untrusted_types(file=skops_file))
    assert [int(x) for x in answer["predictions"]] == [int(x) for x in model.predict(rows)]

    seen = world.everything()
    assert "s3://models/iris/v1" in seen and "iris-s3" in seen  # the grep reads real text
    for value in (store["AWS_ACCESS_KEY_ID"], store["AWS_SECRET_ACCESS_KEY"]):
        assert value not in seen
