"""Every page's stable URL, in one place (templates and views build links only here)."""

from __future__ import annotations

from urllib.parse import quote, urlencode

KIND_PATHS = {
    "TrainingJob": "trainingjobs",
    "ModelVersion": "modelversions",
    "InferenceService": "inferenceservices",
    "RetrainPolicy": "retrainpolicies",
}


def overview(namespace: str | None = None) -> str:
    return f"/?{urlencode({'namespace': namespace})}" if namespace else "/"


def model(namespace: str, name: str) -> str:
    return f"/ns/{quote(namespace)}/models/{quote(name)}"


def compare(namespace: str, model_name: str, a: str, b: str) -> str:
    return f"{model(namespace, model_name)}/compare?{urlencode({'a': a, 'b': b})}"


def resource(kind: str, namespace: str, name: str) -> str:
    """The page of one object; a ModelVersion's is its model page, at its row."""
    if kind == "ComputePool":
        return computepool(name)
    return f"/ns/{quote(namespace)}/{KIND_PATHS[kind]}/{quote(name)}"


def modelversion(namespace: str, model_name: str, name: str) -> str:
    return f"{model(namespace, model_name)}#{quote(name)}"


def trainingjob(namespace: str, name: str) -> str:
    return resource("TrainingJob", namespace, name)


def inferenceservice(namespace: str, name: str) -> str:
    return resource("InferenceService", namespace, name)


def retrainpolicy(namespace: str, name: str) -> str:
    return resource("RetrainPolicy", namespace, name)


def computepools() -> str:
    return "/computepools"


def computepool(name: str) -> str:
    return f"/computepools#{quote(name)}"


def trainingjobs(namespace: str | None = None) -> str:
    return "/trainingjobs" + (f"?{urlencode({'namespace': namespace})}" if namespace else "")
