"""Save and load the model safely: skops with an explicit trusted-types list, no pickle.

The server loads models with ``load_model`` (or ``skops.io.load(path,
trusted=trusted_types(path))``): every type skops does not trust by default must be in
``TRUSTED``; anything else (a type the trainer never writes) is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import skops.io as sio

from perennial_runtime import contract

# The one list the server trusts too (contract.py).
TRUSTED = contract.SKOPS_TRUSTED_TYPES


class UntrustedModelError(Exception):
    """The model file holds a type outside TRUSTED; it is not loaded."""


def trusted_types(path: Path) -> list[str]:
    """The untrusted types in ``path``, all of which must be in TRUSTED (else it raises)."""
    found = sio.get_untrusted_types(file=path)
    refused = sorted(set(found) - set(TRUSTED))
    if refused:
        raise UntrustedModelError(f"{path} holds types outside the trusted list: {refused}")
    return list(found)


def load_model(path: Path) -> Any:
    return sio.load(path, trusted=trusted_types(path))


def save_model(model: Any, path: Path) -> None:
    sio.dump(model, path)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")


def artifact_entry(path: Path) -> dict[str, Any]:
    return {"sha256": contract.sha256_file(path), "bytes": path.stat().st_size}
