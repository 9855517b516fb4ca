"""Run an Argo CD health.lua (manifests/argocd/) on an object, as Argo CD does: the object
as the global `obj` (plain JSON values), in Lua 5.1 (Argo CD runs gopher-lua, a Lua 5.1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lupa.lua51 as lua51

GROUP_DIR = (
    Path(__file__).resolve().parents[2]
    / "manifests" / "argocd" / "resource_customizations" / "perennial.dev"
)  # fmt: skip


def health(kind: str, obj: dict[str, Any]) -> dict[str, str]:
    lua = lua51.LuaRuntime(unpack_returned_tuples=False)
    lua.globals().obj = lua.table_from(json.loads(json.dumps(obj)), recursive=True)
    result = lua.execute((GROUP_DIR / kind / "health.lua").read_text())
    return {key: result[key] for key in ("status", "message")}
