"""The `perennial` command (also installed as `kubectl-perennial`, so `kubectl perennial`).

Offline: `validate`, `check-data`. Against a cluster, with your kubeconfig and your rights:
`status`, `lineage`, `compare`, `promote`, `rollback`, `retry`, `logs`, `watch`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from perennial_cli import actions, render, views
from perennial_cli.crdcheck import CRD_DIR, Checker
from perennial_cli.errors import KubeError
from perennial_cli.manifests import Document, ManifestError, read_files, render_kustomization
from perennial_cli.validate import check

if TYPE_CHECKING:
    from perennial_cli.kube import Kube

F = TypeVar("F", bound=Callable[..., Any])
EXIT_FAILED = 1  # a check failed, an action was refused, a job failed
EXIT_USAGE = 2  # click's own code for bad arguments


def cluster_options(fn: F) -> F:
    """kubectl's flags for choosing the cluster and namespace."""
    fn = click.option("--kubeconfig", envvar="KUBECONFIG", help="kubeconfig file")(fn)
    fn = click.option("--context", help="kubeconfig context")(fn)
    fn = click.option("-n", "--namespace", help="namespace (default: the context's)")(fn)
    return fn


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Kube:
    from perennial_cli.kube import Kube  # the client takes a second to import: not for validate

    if kubeconfig and ":" in kubeconfig:  # KUBECONFIG may list several files; kubectl merges
        kubeconfig = kubeconfig.split(":")[0]
    try:
        return Kube.connect(kubeconfig, context, namespace)
    except Exception as exc:  # the client raises several types for a bad kubeconfig
        raise click.ClickException(f"cannot use the kubeconfig: {exc}") from exc


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_FAILED)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="perennial")
def cli() -> None:
    """Perennial: validate manifests offline; inspect, promote and roll back models."""


# ---- offline -----------------------------------------------------------------------------


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--kustomize",
    "-k",
    is_flag=True,
    help="each PATH is a kustomization directory: check what it renders",
)
@click.option(
    "--previous",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="earlier versions of the objects (e.g. the base branch): checked as updates",
)
@click.option(
    "--crds",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=CRD_DIR,
    show_default="the CRDs this CLI ships",
    help="CRD directory",
)
@click.option("--quiet", "-q", is_flag=True, help="print problems only")
def validate(
    paths: tuple[Path, ...], kustomize: bool, previous: tuple[Path, ...], crds: Path, quiet: bool
) -> None:
    """Check manifests against the CRD schemas and CEL rules, as the API server would.

    Offline (no cluster). Prints FILE:LINE: Kind/name: message for every problem and exits 1
    if there is any; objects of other API groups are skipped.
    """  # fmt: skip
    checker = Checker.load(crds)
    try:
        docs = _documents(paths, kustomize)
        earlier = read_files(list(previous)) if previous else []
    except ManifestError as exc:
        fail(str(exc))
    outcome = check(docs, checker, earlier)
    for problem in outcome.problems:
        click.echo(str(problem))
    if not quiet or not outcome.ok:
        verdict = "ok" if outcome.ok else f"{len(outcome.problems)} problem(s)"
        click.echo(
            f"{outcome.checked} object(s) checked, {outcome.skipped} of other kinds skipped: "
            f"{verdict}",
            err=True,
        )
    if not outcome.ok:
        sys.exit(EXIT_FAILED)
    if outcome.checked == 0 and not quiet:
        click.echo("warning: no perennial.dev objects found", err=True)


def _documents(paths: tuple[Path, ...], kustomize: bool) -> list[Document]:
    if not kustomize:
        return read_files(list(paths))
    docs: list[Document] = []
    for path in paths:
        docs += render_kustomization(path)
    return docs


@cli.command("check-data")
@click.option("-f", "--file", "manifest", required=True, help="TrainingJob manifest ('-': stdin)")
@click.option("--pvc-root", help="where pvc://<claim>/ datasets are (default /mnt/pvc)")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def check_data(manifest: str, pvc_root: str | None, as_json: bool) -> None:
    """Run the TrainingJob's data checks on its dataset, here (the pod's validate step).

    Same report and exit codes as the training pod: 0 passed, 2 invalid spec, 3 data checks
    failed, 4 dataset unavailable.
    """
    from perennial_cli import check_data as runner

    try:
        code, message = runner.run(manifest, pvc_root)
    except runner.RuntimeMissing as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(message, indent=2, sort_keys=True, default=str))
    else:
        render.report(render.console(), message)
    sys.exit(code)


# ---- read --------------------------------------------------------------------------------


@cli.command()
@click.argument("model", required=False)
@cluster_options
def status(model: str | None, kubeconfig: str | None, context: str | None,
           namespace: str | None) -> None:  # fmt: skip
    """Versions, stages, serving services (rollout, drift) and retraining, on one screen."""
    kube = connect(kubeconfig, context, namespace)
    try:
        found = {k: kube.list_kind(k) for k in ("ModelVersion", "InferenceService", "RetrainPolicy",
                                            "TrainingJob")}  # fmt: skip
    except KubeError as exc:
        fail(str(exc))
    view = views.status_view(found["ModelVersion"], found["InferenceService"],
                             found["RetrainPolicy"], found["TrainingJob"], model)  # fmt: skip
    out = render.console()
    out.print(f"namespace {kube.namespace}" + (f", model {model}" if model else ""))
    render.view(out, view)


@cli.command()
@click.argument("modelversion")
@cluster_options
def lineage(modelversion: str, kubeconfig: str | None, context: str | None,
            namespace: str | None) -> None:  # fmt: skip
    """Dataset -> TrainingJob -> ModelVersion -> InferenceServices, and what started it."""
    kube = connect(kubeconfig, context, namespace)
    try:
        mv = kube.need("ModelVersion", modelversion)
        job_name = (mv["spec"].get("source") or {}).get("trainingJob")
        job = kube.get("TrainingJob", job_name) if job_name else None
        owner = ((job or {}).get("metadata", {}).get("labels") or {}).get(views.RETRAIN_LABEL)
        policy = kube.get("RetrainPolicy", owner) if owner else None
        isvcs = kube.list_kind("InferenceService")
    except KubeError as exc:
        fail(str(exc))
    render.view(render.console(), views.lineage_view(mv, job, policy, isvcs))


@cli.command()
@click.argument("first")
@click.argument("second")
@cluster_options
def compare(first: str, second: str, kubeconfig: str | None, context: str | None,
            namespace: str | None) -> None:  # fmt: skip
    """Two ModelVersions side by side: metrics, algorithm, hyperparameters, data."""
    kube = connect(kubeconfig, context, namespace)
    try:
        a, b = kube.need("ModelVersion", first), kube.need("ModelVersion", second)
    except KubeError as exc:
        fail(str(exc))
    render.view(render.console(), views.compare_view(a, b))


# ---- write -------------------------------------------------------------------------------


@cli.command()
@click.argument("modelversion")
@click.option("--stage", required=True, type=click.Choice(actions.STAGES))
@cluster_options
def promote(modelversion: str, stage: str, kubeconfig: str | None, context: str | None,
            namespace: str | None) -> None:  # fmt: skip
    """Set a ModelVersion's stage (a merge patch of spec.stage, as kubectl patch would).

    The operator records the change as an Event and, for Production, archives the version
    that held it. In a GitOps repository, change the stage there instead.
    """
    kube = connect(kubeconfig, context, namespace)
    try:
        change = actions.promote(kube, modelversion, stage)
    except (KubeError, actions.Refused) as exc:
        fail(str(exc))
    if change.before == change.after:
        click.echo(f"modelversion/{modelversion} already in stage {stage}: nothing to do")
    else:
        click.echo(str(change))


@cli.command()
@click.argument("inferenceservice")
@click.option("--to", "to", help="the ModelVersion to return to (default: the previous holder)")
@cluster_options
def rollback(inferenceservice: str, to: str | None, kubeconfig: str | None,
             context: str | None, namespace: str | None) -> None:  # fmt: skip
    """Return a stage-tracking InferenceService to the version that held its stage before.

    The previous holder is the most recently archived Ready version of the model. A service
    that pins spec.model.version is refused: change the pin in Git.
    """
    kube = connect(kubeconfig, context, namespace)
    try:
        changes = actions.rollback(kube, inferenceservice, to=to)
    except (KubeError, actions.Refused) as exc:
        fail(str(exc))
    for change in changes:
        click.echo(str(change))
    if not changes:
        click.echo("nothing to change")


@cli.command()
@click.argument("inferenceservice")
@click.argument("version")
@cluster_options
def retry(inferenceservice: str, version: str, kubeconfig: str | None, context: str | None,
          namespace: str | None) -> None:  # fmt: skip
    """Let an InferenceService try a version it rolled back (VERSION: churn-v2 or 2).

    The operator's record of the rollback (annotation rejected.perennial.dev/SERVICE on the
    ModelVersion) stays; this sets your own annotation retry.perennial.dev/SERVICE to the
    rollback's time, as kubectl annotate would. A later rollback records a new time.
    """
    kube = connect(kubeconfig, context, namespace)
    try:
        plan = actions.retry(kube, inferenceservice, version)
    except (KubeError, actions.Refused) as exc:
        fail(str(exc))
    click.echo(str(plan))


# ---- training jobs -----------------------------------------------------------------------


@cli.command()
@click.argument("trainingjob")
@click.option("-f", "--follow", is_flag=True, help="stream until training ends")
@click.option("-c", "--container", help="validate or train (default: both, as they ran)")
@cluster_options
def logs(trainingjob: str, follow: bool, container: str | None, kubeconfig: str | None,
         context: str | None, namespace: str | None) -> None:  # fmt: skip
    """The training pod's logs: the data checks (validate), then training (train)."""
    from perennial_cli.follow import print_logs

    kube = connect(kubeconfig, context, namespace)
    try:
        print_logs(kube, trainingjob, follow=follow, container=container)
    except KubeError as exc:
        fail(str(exc))


@cli.command()
@click.argument("trainingjob")
@click.option("--timeout", default=0, type=int, help="give up after this many seconds (0: never)")
@cluster_options
def watch(trainingjob: str, timeout: int, kubeconfig: str | None, context: str | None,
          namespace: str | None) -> None:  # fmt: skip
    """Phase and a progress bar until the TrainingJob succeeds (exit 0) or fails (exit 1)."""
    from perennial_cli.follow import watch_job

    kube = connect(kubeconfig, context, namespace)
    try:
        last = watch_job(kube, trainingjob, render.console(), timeout_s=timeout)
    except KubeError as exc:
        fail(str(exc))
    if not last.succeeded:
        sys.exit(EXIT_FAILED)


def main() -> None:
    cli(prog_name="perennial")
