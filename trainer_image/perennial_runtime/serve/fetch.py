"""A model directory in an object store (s3://, gs://), copied to local disk to be served.

Only result.json and the files it lists are copied, each by its plain name; the server
then verifies result.json against the ModelVersion's digest and every file against
result.json (model.open_model_dir) before it binds its port, so an unready pod is all a
tampered or half-written object store can cause. Credentials are fsspec's own (AWS_*,
GOOGLE_APPLICATION_CREDENTIALS, workload identity); nothing here prints them.
"""

from __future__ import annotations

from pathlib import Path

from perennial_runtime import contract

REMOTE_SCHEMES = ("s3://", "gs://", "gcs://")


class FetchError(Exception):
    """The model directory could not be copied; the message names the URI, not secrets."""


def is_remote(uri: str) -> bool:
    return uri.startswith(REMOTE_SCHEMES)


def fetch_model_dir(uri: str, dest: Path) -> Path:
    """Copy result.json and the artifacts it lists from `uri` into `dest`; return dest."""
    import fsspec  # only remote models need it (and its s3fs/gcsfs backends)

    root = uri.rstrip("/")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        fs, path = fsspec.core.url_to_fs(root)
        fs.get_file(f"{path}/{contract.RESULT}", str(dest / contract.RESULT))
        result = contract.read_json(dest / contract.RESULT)
        names = list((result.get("artifacts") or {}).keys())
        for name in names:
            if Path(name).name != name:
                raise FetchError(f"{uri}: artifact name {name!r} is not a plain file name")
            fs.get_file(f"{path}/{name}", str(dest / name))
    except FetchError:
        raise
    except ImportError as exc:
        raise FetchError(f"{uri}: needs the perennial 's3' or 'gcs' extra ({exc.name})") from exc
    except (OSError, ValueError) as exc:
        raise FetchError(f"{uri}: cannot be copied: {type(exc).__name__}: {exc}") from exc
    return dest
