"""Reading serving pods' metrics: list the ready pods of one version, scrape them all."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from perennial_operator.config import OperatorConfig
from perennial_operator.decide.monitoring.samples import Sample, of_version
from perennial_operator.decide.rollout.analysis import PodCounters, pod_counters
from perennial_operator.decide.rollout.observed import ready_pod_ips, ready_pod_starts, ready_pods
from perennial_operator.desired.inferenceservice import SERVE_PORT
from perennial_operator.k8s.kube import KubeApi
from perennial_operator.k8s.scrape import pod_url, scrape

PARALLEL = 8  # pods scraped at once: one slow pod must not hold the rollout tick for long


def pod_urls(
    kube: KubeApi, namespace: str, selector: dict[str, str], version: int, config: OperatorConfig
) -> list[str]:
    labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    pods = kube.list("v1", "Pod", namespace, labels)
    return [pod_url(config.pod_url_template, ip, SERVE_PORT) for ip in ready_pod_ips(pods, version)]


def pod_starts(
    kube: KubeApi, namespace: str, selector: dict[str, str], version: int, config: OperatorConfig
) -> dict[str, float]:
    """When each ready pod of `version` started (epoch seconds), by its URL."""
    labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    starts = ready_pod_starts(kube.list("v1", "Pod", namespace, labels), version)
    return {pod_url(config.pod_url_template, ip, SERVE_PORT): t for ip, t in sorted(starts.items())}


def samples_by_pod(urls: list[str]) -> dict[str, list[Sample]]:
    """The samples of each pod that answered, by its URL (the ones that did not are absent)."""
    if not urls:
        return {}
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(urls))) as pool:
        results = list(pool.map(scrape, urls))
    return {
        url: [Sample(name, labels, value) for name, labels, value in raw]
        for url, raw in zip(urls, results, strict=True)
        if raw is not None
    }


def samples_of(urls: list[str]) -> tuple[list[Sample], int]:
    """All samples of the pods that answered, and how many answered."""
    answered = samples_by_pod(urls)
    return [s for samples in answered.values() for s in samples], len(answered)


def counters_of(
    kube: KubeApi, namespace: str, selector: dict[str, str], version: int, config: OperatorConfig
) -> tuple[list[PodCounters], int]:
    """Each ready pod's request counters for `version`, by pod name (the pods that did not
    answer are left out), and how many pods were asked."""
    labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    pods = ready_pods(kube.list("v1", "Pod", namespace, labels), version)
    if not pods:
        return [], 0
    urls = [pod_url(config.pod_url_template, p.ip, SERVE_PORT) for p in pods]
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(urls))) as pool:
        results = list(pool.map(scrape, urls))
    counters = [
        pod_counters(p.name, p.restarts, of_version((Sample(*s) for s in raw), version))
        for p, raw in zip(pods, results, strict=True)
        if raw is not None
    ]
    return counters, len(pods)
