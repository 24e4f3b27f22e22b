"""Reading and writing the files one lesson hands to the next.

Every artifact is written atomically (to a temporary file in the same folder, then renamed), so
an interrupted run never leaves a half-written file that a later run, or a resume, would trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name ends with the target's name, so libraries that pick a format by file
    # suffix (Keras' ".weights.h5", parquet, ...) treat it exactly like the target.
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=f"-{target.name}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        tmp.chmod(0o666 & ~_umask())  # mkstemp makes 0600 files; artifacts are ordinary files
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _json_default(value: Any) -> Any:
    """Let numpy scalars/arrays and paths reach JSON as plain numbers, lists and strings."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def write_json(data: Any, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def write_parquet(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(path)


def read_parquet(path: str | os.PathLike, *, produced_by: str) -> pd.DataFrame:
    """Read an artifact, saying which lesson to run first when it is missing."""
    return pd.read_parquet(require(path, produced_by=produced_by))


def write_arrays(arrays: dict[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Save named numpy arrays in one ``.npz`` file."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
    return Path(path)


def read_arrays(path: str | os.PathLike, *, produced_by: str) -> dict[str, np.ndarray]:
    with np.load(require(path, produced_by=produced_by)) as archive:
        return {name: archive[name] for name in archive.files}


def require(path: str | os.PathLike, *, produced_by: str) -> Path:
    """Return ``path`` if it exists, else fail naming the notebook that writes it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist: it is written by {produced_by}; run that notebook first "
            "with the same artifacts_dir."
        )
    return path


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def frame_hash(frame: pd.DataFrame) -> str:
    """A content hash of a data frame, stable across runs: used to prove two splits are identical."""
    row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(row_hashes.tobytes()).hexdigest()
