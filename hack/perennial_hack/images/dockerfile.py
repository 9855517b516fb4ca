"""What a Dockerfile says about the image it builds: pure, from the file's text.

Enough of the Dockerfile grammar for our own files: line continuations, comments, `ARG`
defaults before the first `FROM`, and the final stage's `ENTRYPOINT`, `CMD`, `USER`,
`WORKDIR` and `ENV`. The built image is the truth (`oci.image_config`, `oci.env`); tests
check that the two agree, so the host-process runtime can honour ENTRYPOINT/CMD and ENV
without building anything.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

_ARG = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$")


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an image's config that decide what a container runs and as whom."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    user: str = ""
    workdir: str = ""


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, rest) per logical line: continuations joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical = (pending + line).strip()
        pending = ""
        if logical:
            word, _, rest = logical.partition(" ")
            out.append((word.upper(), rest.strip()))
    if pending.strip():
        word, _, rest = pending.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _exec_form(rest: str) -> tuple[str, ...]:
    """["a", "b"] (exec form) as is; anything else is shell form: /bin/sh -c."""
    if rest.startswith("["):
        value = json.loads(rest)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"not a JSON array of strings: {rest}")
        return tuple(value)
    return ("/bin/sh", "-c", rest)


def build_args(text: str) -> dict[str, str]:
    """ARG defaults declared before the first FROM (what FROM lines may use)."""
    args: dict[str, str] = {}
    for word, rest in instructions(text):
        if word == "FROM":
            break
        if word == "ARG":
            match = _ARG.match(rest)
            if match and match.group(2) is not None:
                args[match.group(1)] = match.group(2).strip().strip('"')
    return args


def final_stage(text: str) -> list[tuple[str, str]]:
    steps = instructions(text)
    starts = [i for i, (word, _) in enumerate(steps) if word == "FROM"]
    if not starts:
        raise ValueError("no FROM instruction")
    return steps[starts[-1] :]


def image_config(text: str) -> ImageConfig:
    """ENTRYPOINT, CMD, USER and WORKDIR as the final stage declares them (last one wins).

    As in Docker, an ENTRYPOINT set in the stage drops a CMD declared before it.
    """
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    user = workdir = ""
    for word, rest in final_stage(text)[1:]:
        if word == "ENTRYPOINT":
            entrypoint, cmd = _exec_form(rest), ()
        elif word == "CMD":
            cmd = _exec_form(rest)
        elif word == "USER":
            user = rest
        elif word == "WORKDIR":
            workdir = rest
    return ImageConfig(entrypoint=entrypoint, cmd=cmd, user=user, workdir=workdir)


def declared_env(text: str) -> dict[str, str]:
    """The environment the final stage's ENV instructions set (later ones win), as the
    image's config carries it: `ENV K=V K2="a b"`, or the legacy `ENV K the rest`.
    Variables are taken literally (no `$VAR` expansion: our files use none)."""
    env: dict[str, str] = {}
    for word, rest in final_stage(text)[1:]:
        if word != "ENV":
            continue
        if not rest.strip():
            raise ValueError("ENV with nothing to set")
        if "=" not in rest.split(None, 1)[0]:
            # The legacy form: one variable, the rest of the line its value.
            key, _, value = rest.partition(" ")
            env[key] = value.strip()
            continue
        for pair in shlex.split(rest):
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise ValueError(f"ENV {rest!r}: {pair!r} is not KEY=VALUE")
            env[key] = value
    return env
