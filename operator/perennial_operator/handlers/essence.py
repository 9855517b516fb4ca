"""No copy of the body for kinds whose handlers never diff it.

kopf builds an object's essence (a deep copy of the body, less status and system fields) on
every event of every watched kind, to diff it against the last handled one, even when the
kind only has event handlers, which never look at that diff. In a burst of 1,000
TrainingJobs py-spy put that copy at about a tenth of the operator's busy samples
(TrainingJob, Job and Pod events; those three kinds have since left kopf's watches:
handlers/watches.py); the operator's CPU for the burst went from 11.5 to 11.1 s,
one run each. The kinds below have event handlers only; the test `test_handlers_essence.py`
holds that against kopf's registry, so a create/update/field handler or a timer added to one
of them fails the test instead of silently never firing.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType
from typing import Final

import kopf

from perennial_operator.api.group import GROUP
from perennial_operator.api.traffic import GATEWAY_GROUP

# (API group, kind) -> plural, of the kinds watched by event handlers only.
EVENTS_ONLY: Final = MappingProxyType(
    {
        (GROUP, "ModelVersion"): "modelversions",
        ("apps", "Deployment"): "deployments",
        (GATEWAY_GROUP, "HTTPRoute"): "httproutes",
    }
)


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


class DiffedOnlyStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's annotation storage of the last handled essence, which builds no essence (an
    empty one) for the kinds in EVENTS_ONLY."""

    def build(
        self,
        *,
        body: kopf.Body,
        extra_fields: Iterable[kopf.FieldSpec] | None = None,
    ) -> kopf.BodyEssence:
        if (_group(str(body.get("apiVersion", ""))), body.get("kind")) in EVENTS_ONLY:
            return kopf.BodyEssence()
        return super().build(body=body, extra_fields=extra_fields)
