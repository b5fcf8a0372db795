"""Checkpoints as one safetensors file with a JSON header, written atomically; never pickle.

A checkpoint is a single ``.safetensors`` file:

* tensors: ``model.*`` (weights and buffers), ``optim.<param>.<name>`` (optimiser state such as
  AdamW's moments), ``extra.*`` (e.g. RNG state, buffer contents as storage indices);
* metadata ``gta5drive`` (JSON): format version, model name and config, normalisation,
  preprocessing, step, training config, optimiser hyper-parameters and scalar state, scheduler
  state, creation time.

The file is written to a temporary name in the same folder, flushed to disk and renamed over the
target, so a crash leaves either the old or the new checkpoint, never half of one. A copy of the
JSON is written beside it (``.json``) for people and dashboards; loading reads only the
safetensors file. Loading uses ``safetensors`` and ``json`` only, so a checkpoint can never run
code.

Integrity: the header carries ``tensors_sha256``, a SHA-256 over every tensor's name, dtype,
shape and bytes (:func:`tensor_digest`), verified on load, so a flipped bit in the weights is a
:class:`CheckpointError`, never a model that silently drives differently. Every other defect
(invalid JSON, a header that is not an object, a missing ``model_config``/``preprocessing``, an
unknown model name, tensors that do not fit the model) is one :class:`CheckpointError` that says
what is wrong. Loading a *run folder* takes its newest checkpoint that loads, skipping broken
newer ones with a :class:`CheckpointWarning`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch

from imitation.models import DrivingModel, ModelConfig, model_from_config, without_pretrained

FORMAT = "gta5drive-checkpoint/1"
META_KEY = "gta5drive"
SUFFIX = ".safetensors"


DIGEST_KEY = "tensors_sha256"
REQUIRED = {"model_config": dict, "preprocessing": dict, "step": int}
"""Header keys every checkpoint must have, with their JSON types."""

T = TypeVar("T")


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, corrupt or not a gta5drive checkpoint."""


class CheckpointWarning(UserWarning):
    """A broken checkpoint in a run folder was skipped for an older one that loads."""


def tensor_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 (hex) over every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach()
        if t.device.type != "cpu":
            t = t.cpu()
        t = t.contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


@dataclass
class Checkpoint:
    """What a checkpoint file holds.

    Attributes:
        meta: the JSON header (``model_config``, ``step``, ``train_config``, …).
        model: model state dict.
        optimizer: optimiser tensors by ``<param index>.<name>``.
        extra: other tensors by name.
        path: where it was read from.
    """

    meta: dict[str, Any]
    model: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor] = field(default_factory=dict)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    path: Path | None = None

    @property
    def step(self) -> int:
        """Training step the checkpoint was taken at."""
        return int(self.meta["step"])

    @property
    def model_config(self) -> ModelConfig:
        """The model's architecture.

        Raises:
            CheckpointError: If the header's ``model_config`` is not a valid model config.
        """
        try:
            return ModelConfig.from_dict(self.meta["model_config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"checkpoint {self.path} has an invalid model_config ({exc})"
            ) from None

    def build_model(self, device: str | torch.device = "cpu") -> DrivingModel:
        """A model with this checkpoint's architecture and weights (in eval mode).

        Raises:
            CheckpointError: If the architecture is unknown (e.g. a model name this version
                does not have, or a backbone whose extra is missing) or the weights do not fit.
        """
        config = self.model_config
        try:
            model = model_from_config(without_pretrained(config))
        except (KeyError, TypeError, ValueError, ImportError) as exc:
            raise CheckpointError(
                f"checkpoint {self.path} describes a model this version cannot build "
                f"(backbone {config.backbone!r}): {exc}"
            ) from None
        try:
            model.load_state_dict(self.model, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise CheckpointError(
                f"checkpoint {self.path}: its weights do not fit its model_config "
                f"({' '.join(line.strip() for line in first[:3])})"
            ) from None
        return model.to(device).eval()

    def optimizer_state(self) -> dict[str, Any]:
        """The optimiser ``state_dict`` rebuilt from tensors and JSON."""
        opt = self.meta.get("optimizer")
        if opt is None:
            raise CheckpointError(f"checkpoint {self.path} has no optimiser state")
        state: dict[int, dict[str, Any]] = {}
        for key, scalars in opt["scalars"].items():
            state.setdefault(int(key), {}).update(scalars)
        for key, tensor in self.optimizer.items():
            idx, name = key.split(".", 1)
            state.setdefault(int(idx), {})[name] = tensor
        return {"state": state, "param_groups": opt["param_groups"]}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return None  # callables (e.g. LambdaLR's lambdas) are rebuilt by the owner, not stored


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: DrivingModel,
    step: int,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    train_config: Mapping[str, Any] | None = None,
    extra_tensors: Mapping[str, torch.Tensor] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically.

    Args:
        path: target file (``.safetensors`` is appended when missing).
        model: the model (its config and normalisation go into the JSON header).
        step: training step.
        optimizer: optimiser whose state to keep (for exact resume).
        scheduler: learning-rate scheduler whose ``state_dict`` to keep.
        train_config: training configuration (JSON-ready).
        extra_tensors: more tensors to keep (``extra.<name>``).
        extra: more JSON to keep.

    Returns:
        the path written.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != SUFFIX:
        path = path.with_name(path.name + SUFFIX)
    model = getattr(model, "_orig_mod", model)  # torch.compile wrapper
    tensors = {
        f"model.{k}": v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()
    }
    meta: dict[str, Any] = {
        "format": FORMAT,
        "model_name": model.config.backbone,
        "model_config": model.config.to_dict(),
        "normalisation": model.normalisation,
        "preprocessing": model.config.preprocessing().to_dict(),
        "step": int(step),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "train_config": _jsonable(train_config or {}),
        "extra": _jsonable(extra or {}),
    }
    if optimizer is not None:
        sd = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for idx, state in sd["state"].items():
            for name, value in state.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim.{idx}.{name}"] = value.detach().cpu().contiguous().clone()
                else:
                    scalars.setdefault(str(idx), {})[name] = _jsonable(value)
        meta["optimizer"] = {"param_groups": _jsonable(sd["param_groups"]), "scalars": scalars}
    if scheduler is not None:
        meta["scheduler"] = _jsonable(scheduler.state_dict())
    for name, tensor in (extra_tensors or {}).items():
        tensors[f"extra.{name}"] = tensor.detach().cpu().contiguous().clone()
    meta[DIGEST_KEY] = tensor_digest(tensors)
    header = json.dumps(meta)
    _atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={META_KEY: header}))

    def write_json(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(meta, f, indent=2)

    _atomic_write(path.with_suffix(".json"), write_json)
    return path


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read only the JSON header of a checkpoint (cheap)."""
    from safetensors import safe_open

    path = _resolve(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            header = (f.metadata() or {}).get(META_KEY)
    except Exception as exc:  # safetensors raises its own error types
        raise _corrupt(path, exc) from exc
    return _parse_header(path, header)


def _parse_header(path: Path, header: str | None) -> dict[str, Any]:
    if header is None:
        raise CheckpointError(
            f"{path} is a safetensors file but not a gta5drive checkpoint (no header)"
        )
    try:
        meta = json.loads(header)
    except ValueError as exc:
        raise CheckpointError(
            f"checkpoint {path} has an invalid JSON header ({exc}); the file is complete but "
            "its metadata was written wrongly or edited"
        ) from None
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"checkpoint {path} has a header of type {type(meta).__name__}, not a JSON object"
        )
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} has format {meta.get('format')!r}; this version reads {FORMAT!r}"
        )
    for key, kind in REQUIRED.items():
        if key not in meta:
            raise CheckpointError(f"checkpoint {path} has no {key!r} in its header")
        if not isinstance(meta[key], kind) or isinstance(meta[key], bool):
            raise CheckpointError(
                f"checkpoint {path}: header {key!r} must be a {kind.__name__}, "
                f"got {type(meta[key]).__name__}"
            )
    return meta


def _corrupt(path: Path, exc: Exception) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} is truncated or corrupt ({type(exc).__name__}: {exc}); it was probably "
        "cut off while copying or by a full disk: copy it again or pick an earlier checkpoint"
    )


def _resolve(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if path.is_dir():
        latest = latest_checkpoint(path)
        if latest is None:
            raise CheckpointError(f"no checkpoint (*{SUFFIX}) in folder {path}")
        return latest
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return path


def load_newest_good(
    path: str | os.PathLike[str], load: Callable[[Path], T], *, skip: frozenset[Path] = frozenset()
) -> T:
    """``load(file)`` for a checkpoint file, or for a run folder's newest checkpoint that loads.

    In a folder, checkpoints are tried newest first; each that raises :class:`CheckpointError`
    is skipped with a :class:`CheckpointWarning` naming it and why.

    Args:
        path: A checkpoint file or a run folder.
        load: Reads one file (raises :class:`CheckpointError` when it is broken).
        skip: Files not to try (already known to be broken).

    Raises:
        CheckpointError: For a broken file, or a folder with no checkpoint that loads.
    """
    path = Path(path)
    if not path.is_dir():
        return load(_resolve(path))
    candidates = [c for c in checkpoints_newest_first(path) if c not in skip]
    if not candidates:
        raise CheckpointError(f"no checkpoint (*{SUFFIX}) in folder {path}")
    reasons = []
    for candidate in candidates:
        try:
            return load(candidate)
        except CheckpointError as exc:
            reasons.append(str(exc))
            warnings.warn(
                f"skipping broken checkpoint {candidate.name}: {exc}",
                CheckpointWarning,
                stacklevel=2,
            )
    raise CheckpointError(
        f"no checkpoint in {path} loads ({len(reasons)} tried); newest: {reasons[0]}"
    )


def checkpoint_step(path: Path) -> int:
    """Step encoded in a checkpoint file name ``step-<n>.safetensors`` (-1 when none)."""
    stem = path.name[: -len(SUFFIX)]
    digits = stem.rsplit("-", 1)[-1]
    return int(digits) if digits.isdigit() else -1


def checkpoints_newest_first(folder: str | os.PathLike[str]) -> list[Path]:
    """Checkpoints in a run folder (or its ``checkpoints/`` subfolder), newest step first."""
    folder = Path(folder)
    found = []
    for c in [*folder.glob(f"*{SUFFIX}"), *folder.glob(f"checkpoints/*{SUFFIX}")]:
        if c.name.startswith("."):
            continue
        try:
            found.append(((checkpoint_step(c), c.stat().st_mtime), c))
        except FileNotFoundError:  # pruned meanwhile
            continue
    return [c for _, c in sorted(found, key=lambda item: item[0], reverse=True)]


def latest_checkpoint(folder: str | os.PathLike[str]) -> Path | None:
    """Newest checkpoint in a run folder (or its ``checkpoints/`` subfolder), by step."""
    found = checkpoints_newest_first(folder)
    return found[0] if found else None


def load_checkpoint(
    path: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> Checkpoint:
    """Read a checkpoint file (or the newest one of a folder that loads) and verify its digest.

    Raises:
        CheckpointError: missing, truncated, corrupt (digest mismatch) or foreign file, or a
            bad header; for a folder, when no checkpoint in it loads.
    """
    return load_newest_good(path, lambda file: _load_file(file, device))


def _load_file(path: Path, device: str | torch.device) -> Checkpoint:
    from safetensors import safe_open

    model: dict[str, torch.Tensor] = {}
    optim: dict[str, torch.Tensor] = {}
    extra: dict[str, torch.Tensor] = {}
    tensors: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            meta = _parse_header(path, (f.metadata() or {}).get(META_KEY))
            for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                group, _, name = key.partition(".")
                target = {"model": model, "optim": optim, "extra": extra}.get(group)
                if target is None or not name:
                    raise CheckpointError(f"{path} has an unexpected tensor {key!r}")
                target[name] = tensors[key] = f.get_tensor(key)
    except CheckpointError:
        raise
    except Exception as exc:
        raise _corrupt(path, exc) from exc
    want = meta.get(DIGEST_KEY)
    if want is None:
        warnings.warn(
            f"checkpoint {path} has no {DIGEST_KEY} (written by an older version): its weights "
            "cannot be verified",
            CheckpointWarning,
            stacklevel=3,
        )
    elif tensor_digest(tensors) != want:
        raise CheckpointError(
            f"checkpoint {path} fails its weight digest: the tensors were changed after it was "
            "written (a flipped bit on disk or in a copy); copy it again or pick another"
        )
    return Checkpoint(meta=meta, model=model, optimizer=optim, extra=extra, path=path)


def load_model(path: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> DrivingModel:
    """Build the model of a checkpoint with its weights, in eval mode."""
    return load_checkpoint(path, device="cpu").build_model(device)
