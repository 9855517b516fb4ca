"""`perennial validate`: what the API server would refuse, found offline.

Only objects of our CRDs' group are checked; anything else is counted as skipped (the API
server, not this tool, knows the built-in kinds). A later document for the same object
(kind, namespace, name) is checked as an *update* of the earlier one, so transition rules
(immutable fields) apply; objects given with ``--previous`` (e.g. the base branch of a pull
request) are the earlier versions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from perennial_cli.crdcheck import Checker
from perennial_cli.manifests import Document


@dataclass(frozen=True)
class Problem:
    source: str
    line: int
    title: str  # Kind/name
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.title}: {self.message}"


@dataclass
class Outcome:
    checked: int = 0
    skipped: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check(docs: Iterable[Document], checker: Checker, previous: Iterable[Document] = ()) -> Outcome:
    """Check every document of ours; an earlier version of the same object makes it an update."""
    outcome = Outcome()
    accepted = {d.identity: d for d in previous if checker.kind_of(d.obj) is not None}
    for doc in docs:
        if checker.kind_of(doc.obj) is None:
            outcome.skipped += 1
            continue
        outcome.checked += 1
        before = accepted.get(doc.identity)
        findings = checker.findings(doc.obj, before.obj if before is not None else None)
        outcome.problems += [
            Problem(doc.source, doc.line_of(f.path), doc.title, f.message) for f in findings
        ]
        if not findings:  # the server would have stored it: a later document updates it
            accepted[doc.identity] = doc
    return outcome
