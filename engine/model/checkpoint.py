"""Checkpoints: our own self-describing format, and import of official detectron2-style weights (spec §10).

Our format is one `torch.save` dict that rebuilds its model from the stored config alone:
    {"format": "syncvis-studio", "version": 1, "config": to_dict(ModelConfig), "class_names": [...],
     "provenance": {...}, "state_dict": {...}, "fp16": bool, "extra": {...}}
It is read with `torch.load(weights_only=True)`, so a checkpoint cannot run code when opened.

Official Mask2Former / Mask2Former-VIS / VITA / SyncVIS checkpoints (`{"model": state_dict, ...}` in .pth, or
pickles of numpy arrays in detectron2 .pkl files) are mapped onto a model built from a config with
`load_official_state_dict` / `load_official_checkpoint`, following the key map of spec §10.4. `load_checkpoint`
opens them like ours: the architecture is read from the tensors (`config_from_official`) and the class names
from the dataset the class count names (engine/data/vocabularies.py; 40 classes = YouTube-VIS 2019 or 2021 needs
`classes=`, a file-name hint or the names of the data it will meet).
"""
from __future__ import annotations

import importlib
import os
import pickle
import re
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.config import ModelConfig, from_dict, to_dict
from engine.errors import CheckpointError

FORMAT = "syncvis-studio"
VERSION = 1
NOT_A_CHECKPOINT = "not a SyncVIS Studio or detectron2 checkpoint"

# ModelConfig fields that change parameter shapes or names; the others (mode, sync settings, normalisation,
# padding) only change how the same weights are used.
ARCHITECTURE_FIELDS = ("backbone", "hidden_dim", "nheads", "dim_feedforward", "dec_layers",
                       "num_frame_queries", "num_video_queries", "mask_dim", "enc_layers",
                       "enc_dim_feedforward", "enc_n_points", "conv_dim")

_PRED = "sem_seg_head.predictor."
_CLASS_KEYS = (_PRED + "class_embed.weight", _PRED + "class_embed.bias")


# ---------------------------------------------------------------------------------------------- our format
def save_checkpoint(path: str | Path, model: nn.Module, class_names: list[str], provenance: dict,
                    fp16: bool = False, extra: dict | None = None) -> Path:
    """Write `model` with its config and vocabulary; atomic (a crash never leaves half a file under `path`).

    fp16 halves the file by storing floating tensors as float16; `load_checkpoint` turns them back to float32.
    """
    path = Path(path)
    model = unwrap_model(model)
    cfg = model.cfg
    class_names = [str(c) for c in class_names]
    if len(class_names) != cfg.num_classes:
        raise ValueError(f"{len(class_names)} class names for a model with {cfg.num_classes} classes")
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        state[k] = v.half() if fp16 and v.is_floating_point() else v.clone()
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": to_dict(cfg),
        "class_names": class_names,
        "provenance": dict(provenance),
        "fp16": bool(fp16),
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "extra": dict(extra) if extra else {},
        "state_dict": state,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def unwrap_model(model: nn.Module) -> nn.Module:
    """The SyncVIS inside a DistributedDataParallel / torch.compile wrapper (names without the prefix)."""
    while not hasattr(model, "cfg"):
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            raise TypeError(f"{type(model).__name__} has no model config (.cfg); is it a SyncVIS model?")
        model = inner
    return model


def read_checkpoint(path: str | Path) -> dict:
    """The validated raw dict of one of our checkpoints (state dict included, float16 left as stored)."""
    path = Path(path)
    kind, obj = read_checkpoint_file(path)
    if kind == "official":
        raise CheckpointError(path, "this is a detectron2-style checkpoint (official Mask2Former/VITA/"
                                    "SyncVIS layout) with no model config; open it with load_checkpoint "
                                    "(the architecture is read from its tensors) or import it into a model "
                                    "(load_official_checkpoint)")
    return obj


def read_checkpoint_file(path: str | Path) -> tuple[str, dict]:
    """Read a file once -> ("ours", validated checkpoint dict) or ("official", its unwrapped detectron2-style
    state dict). Anything else is a CheckpointError."""
    path = Path(path)
    obj = _load_file(path)
    if not isinstance(obj, dict):
        raise CheckpointError(path, NOT_A_CHECKPOINT)
    if obj.get("format") != FORMAT:
        if _looks_like_official(obj):
            return "official", unwrap_state_dict(obj)
        raise CheckpointError(path, NOT_A_CHECKPOINT)
    return "ours", _validated(path, obj)


def _validated(path: Path, obj: dict) -> dict:
    version = obj.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(path, f"checkpoint format version {version!r} is newer than this program reads "
                                    f"(up to {VERSION})")
    for key, kind in (("config", dict), ("class_names", list), ("state_dict", dict)):
        if not isinstance(obj.get(key), kind):
            raise CheckpointError(path, f"checkpoint is damaged: its {key!r} entry is missing or not a "
                                        f"{kind.__name__}")
    return obj


def read_meta(path: str | Path) -> dict:
    """Everything but the weights: format, version, config (dict), class_names, provenance, fp16, saved_at,
    extra."""
    return {k: v for k, v in read_checkpoint(path).items() if k != "state_dict"}


def checkpoint_config(path: str | Path, meta: dict | None = None) -> ModelConfig:
    """The ModelConfig stored in a checkpoint."""
    meta = read_meta(path) if meta is None else meta
    try:
        cfg = from_dict(ModelConfig, meta["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(path, f"its model config is not understood by this version ({e})") from None
    if len(meta["class_names"]) != cfg.num_classes:
        raise CheckpointError(path, f"checkpoint is damaged: {len(meta['class_names'])} class names for "
                                    f"{cfg.num_classes} classes")
    return cfg


def check_compatible(path: str | Path, stored: ModelConfig, expected: ModelConfig) -> None:
    """Raise CheckpointError when weights of `stored` cannot serve a model built from `expected`."""
    if stored.num_classes != expected.num_classes:
        raise CheckpointError(path, f"checkpoint has {stored.num_classes} classes but the model expects "
                                    f"{expected.num_classes}")
    diffs = [f"{name} {getattr(stored, name)!r} (model: {getattr(expected, name)!r})"
             for name in ARCHITECTURE_FIELDS if getattr(stored, name) != getattr(expected, name)]
    if diffs:
        raise CheckpointError(path, "checkpoint is of another architecture: " + ", ".join(diffs))


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu", mode: str | None = None,
                    expect: ModelConfig | None = None, classes: str | Path | None = None,
                    target_names: list[str] | None = None) -> tuple[nn.Module, dict]:
    """Rebuild the model from the stored config and load its weights -> (model in eval mode, meta).

    `mode` reads the same weights as another view (sync / video / frame: every mode has the same parameters);
    `expect` makes a checkpoint of another class count or architecture fail with a CheckpointError.

    An official Mask2Former / Mask2Former-VIS / VITA / SyncVIS file (.pth, detectron2 .pkl) opens too: the model
    is built from the architecture its tensors describe (`config_from_official`), the weights are mapped onto it
    (`load_official_state_dict`), and the class names come from the dataset its class count names
    (engine.data.vocabularies: `classes` = the --classes option, `target_names` = category names of the data it
    will meet, to settle 40 classes = YouTube-VIS 2019 or 2021; AmbiguousClassesError when nothing does). Its meta
    has the same keys as ours, "format": "official", and the provenance says the source file, layout,
    vocabulary and what the import did.
    """
    path = Path(path)
    kind, obj = read_checkpoint_file(path)
    if kind == "official":
        return _load_official_file(path, obj, device, mode, expect, classes, target_names)
    meta = {k: v for k, v in obj.items() if k != "state_dict"}
    model = _build_checked(path, checkpoint_config(path, meta), expect, mode, "cannot build the model it describes: ")
    _load_own_state(path, model, obj["state_dict"])
    return model.to(device).eval(), meta


def _build_checked(path: Path, cfg: ModelConfig, expect: ModelConfig | None, mode: str | None,
                   error_prefix: str) -> nn.Module:
    """The model a checkpoint's config describes (ours or an official file's): checked against `expect`, read
    in `mode`; a config the code cannot build is a CheckpointError starting with `error_prefix`."""
    from engine.model.syncvis import build_model

    if expect is not None:
        check_compatible(path, cfg, expect)
    if mode is not None:
        cfg.mode = mode
    try:
        return build_model(cfg)
    except (ValueError, NotImplementedError) as e:
        raise CheckpointError(path, f"{error_prefix}{e}") from None


@dataclass
class OfficialCheckpoint:
    """An official file read and understood: its state dict, the architecture of its tensors and its classes."""

    path: Path
    state: dict
    config: ModelConfig
    facts: dict
    classes: Any                     # engine.data.vocabularies.ClassNames

    @property
    def layout(self) -> str:
        return f"official detectron2-style ({self.facts['layout']})"


def open_official(path: str | Path, classes: str | Path | None = None, target_names: list[str] | None = None,
                  state: dict | None = None, target_what: str = "data") -> OfficialCheckpoint:
    """Read an official file (or use its already read `state`) -> OfficialCheckpoint; CheckpointError when it is
    not one or its architecture is not understood; AmbiguousClassesError / InputError from the class names."""
    from engine.data.vocabularies import resolve_classes

    path = Path(path)
    if state is None:
        kind, state = read_checkpoint_file(path)
        if kind != "official":
            raise CheckpointError(path, "a SyncVIS Studio checkpoint, not an official detectron2-style one")
    try:
        cfg, facts = config_from_official(state)
    except ValueError as e:
        raise CheckpointError(path, f"detectron2-style checkpoint, but {e}") from None
    names = resolve_classes(cfg.num_classes, path, classes, target_names, target_what)
    facts["vocabulary"] = names.describe()
    return OfficialCheckpoint(path, state, cfg, facts, names)


def _load_official_file(path: Path, state: dict, device, mode: str | None, expect: ModelConfig | None,
                        classes, target_names) -> tuple[nn.Module, dict]:
    off = open_official(path, classes, target_names, state=state)
    cfg = off.config
    model = _build_checked(path, cfg, expect, mode, "")
    try:
        report = load_official_state_dict(model, state)
    except (ValueError, NotImplementedError) as e:
        raise CheckpointError(path, str(e)) from None
    provenance = {"source": str(path), "format": path.suffix.lstrip(".") or "file", "layout": off.layout,
                  "trunk": off.facts.get("trunk"), "vocabulary": off.classes.key,
                  "vocabulary_title": off.classes.title, "vocabulary_reason": off.classes.reason,
                  "import": report.summary(), "missing": len(report.missing),
                  "unexpected": len(report.unexpected), "mismatched": len(report.mismatched)}
    meta = {"format": "official", "version": None, "config": to_dict(cfg), "class_names": list(off.classes.names),
            "category_ids": list(off.classes.ids), "provenance": provenance, "fp16": False, "saved_at": None,
            "extra": {}}
    return model.to(device).eval(), meta


def peek_classes(path: str | Path, classes: str | Path | None = None):
    """The ClassNames an official file would open with (None for one of ours): for a caller that asks the user
    before loading. Raises AmbiguousClassesError when it has to ask, CheckpointError when the file is neither."""
    path = Path(path)
    kind, obj = read_checkpoint_file(path)
    if kind == "ours":
        return None
    return open_official(path, classes, state=obj).classes


def load_weights(model: nn.Module, path: str | Path) -> dict:
    """Load one of our checkpoints into an existing model (e.g. to resume or fine-tune) -> meta."""
    path = Path(path)
    model = unwrap_model(model)
    obj = read_checkpoint(path)
    meta = {k: v for k, v in obj.items() if k != "state_dict"}
    check_compatible(path, checkpoint_config(path, meta), model.cfg)
    _load_own_state(path, model, obj["state_dict"])
    return meta


def _load_own_state(path: Path, model: nn.Module, state: dict) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
             if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if keys:
                parts.append(f"{len(keys)} {what} (e.g. {', '.join(keys[:3])})")
        raise CheckpointError(path, "weights do not fit the architecture in its config: " + "; ".join(parts))
    converted = {k: v.to(own[k].dtype) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(converted, strict=True)


# ---------------------------------------------------------------------------------------------- file reading
class _NumpyUnpickler(pickle.Unpickler):
    """Reads detectron2 .pkl weight files (dicts of numpy arrays) without letting the file name other code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module[len("numpy.core."):]
        return getattr(importlib.import_module(module), name)


def _load_file(path: Path) -> Any:
    """torch.load (weights only), falling back to a numpy-only unpickler for detectron2 .pkl files.

    torch.load is given the path, not the file's bytes: from a path its C++ reader reads each tensor itself,
    while from a BytesIO it calls back into Python for every read with the GIL held, and the window's engine
    thread then held the GUI thread up to 31 ms per load (9.8 ms from the path; `mmap=True` was 27-29 ms)."""
    if not path.exists():
        raise CheckpointError(path, "file not found")
    if not path.is_file():
        raise CheckpointError(path, "not a file")
    errors = []
    try:
        with warnings.catch_warnings():          # plain pickles (detectron2 .pkl) make torch.load warn first
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as e:
        raise CheckpointError(path, f"cannot be read: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - any failure means "try the next reader"
        errors.append(f"torch.load: {type(e).__name__}")
    try:
        with path.open("rb") as f:
            return _NumpyUnpickler(f, encoding="latin1").load()
    except OSError as e:
        raise CheckpointError(path, f"cannot be read: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001
        errors.append(f"pickle: {type(e).__name__}")
    raise CheckpointError(path, f"{NOT_A_CHECKPOINT} (cannot be read: {'; '.join(errors)})")


def _looks_like_official(obj: dict) -> bool:
    sd = obj.get("model", obj)
    return isinstance(sd, dict) and any(isinstance(k, str) and k.startswith(("backbone.", "sem_seg_head."))
                                        for k in sd)


# ------------------------------------------------------------------------------------------ official layouts
@dataclass
class LoadReport:
    """What `load_official_state_dict` did. Keys are ours except in `unexpected`/`ignored` (source names)."""

    loaded: list[str] = field(default_factory=list)           # our keys filled from the source
    missing: list[str] = field(default_factory=list)          # our keys with nothing in the source (kept)
    unexpected: list[str] = field(default_factory=list)       # source keys with no place in our model
    reinitialized: list[str] = field(default_factory=list)    # our keys deliberately left at their init
    mapped: list[tuple[str, str]] = field(default_factory=list)   # (source key, our key) where names differ
    ignored: list[str] = field(default_factory=list)          # source keys known to be unused (spec §10.4)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # (our key, source, our shape)
    class_rows: dict[str, str] = field(default_factory=dict)  # target class -> source class (row mapping)
    new_classes: list[str] = field(default_factory=list)      # target classes with no source row (fresh rows)

    def summary(self) -> str:
        parts = [f"{len(self.loaded)} tensors loaded ({len(self.mapped)} renamed)"]
        if self.reinitialized:
            parts.append(f"re-initialised: {', '.join(self.reinitialized)}")
        if self.class_rows:
            parts.append(f"class rows copied for {len(self.class_rows)} classes"
                         + (f", new: {', '.join(self.new_classes)}" if self.new_classes else ""))
        for what, keys in (("missing", self.missing), ("unexpected", self.unexpected)):
            if keys:
                parts.append(f"{len(keys)} {what} (e.g. {', '.join(keys[:3])})")
        if self.mismatched:
            parts.append(f"{len(self.mismatched)} shape mismatches (e.g. "
                         + ", ".join(f"{k} {s} vs {t}" for k, s, t in self.mismatched[:3]) + ")")
        if self.ignored:
            parts.append(f"{len(self.ignored)} unused source tensors ignored")
        return "; ".join(parts)


_IGNORE = re.compile(
    r"^(syncvis_module\.|vita_module\.|criterion\.|syncvis_criterion\.|vita_criterion\.)"
    r"|empty_weight$"
    r"|^(pixel_mean|pixel_std)$"
    r"|^backbone\.layers\.\d+\.blocks\.\d+\.attn_mask$"        # Swin shift masks: rebuilt from the input size
    r"|^sem_seg_head\.predictor\.(query_feat[2-9]|query_embed[2-9]|FFN_1)\."
)
_RENAMES = (("multi_attn.", "sync_attn."), ("FFN_2.", "phi_frame."), ("FFN_3.", "phi_video."),
            ("static_query.", "query_feat."))


def official_key(key: str) -> str:
    """An official (detectron2-style) parameter name -> ours (spec §10.4); identity where they agree."""
    if key.startswith("backbone."):
        from engine.model.backbone import d2_resnet_key, official_swin_key

        # the two maps touch disjoint names (ResNet: stem./res{s}.; Swin: patch_embed./layers.)
        return "backbone." + d2_resnet_key(official_swin_key(key[len("backbone."):]))
    if key.startswith(_PRED):
        rest = key[len(_PRED):]
        for old, new in _RENAMES:
            if rest.startswith(old):
                return _PRED + new + rest[len(old):]
    return key


def unwrap_state_dict(obj: Any) -> dict:
    """detectron2 checkpoints hold the weights under "model"; ours under "state_dict"; DDP adds "module."."""
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise TypeError("not a state dict")
    keys = [k for k in obj if isinstance(k, str)]
    if keys and all(k.startswith("module.") for k in keys):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def _norm_name(name: str) -> str:
    return " ".join(str(name).strip().lower().replace("_", " ").split())


def load_official_state_dict(model: nn.Module, state_dict: dict, source_classes: list[str] | None = None,
                             target_classes: list[str] | None = None) -> LoadReport:
    """Copy what fits from an official Mask2Former / Mask2Former-VIS / VITA / SyncVIS state dict into `model`.

    * names: identity, detectron2 ResNet -> torchvision, multi_attn/FFN_2/FFN_3 ->
      sync_attn/phi_frame/phi_video;
    * a source with one query set (`query_feat`/`query_embed`, or legacy `static_query`) fills both of ours;
    * class head: copied when the vocabularies agree; with both class-name lists, rows of classes with the
      same name are copied (plus the no-object row) and the rest keep their fresh init; else re-initialised;
    * shape mismatches are reported and skipped, never fatal. Returns a LoadReport.
    """
    source = unwrap_state_dict(state_dict)
    if not hasattr(model, "cfg") and (hasattr(model, "module") or hasattr(model, "_orig_mod")):
        model = unwrap_model(model)
    own = model.state_dict()
    report = LoadReport()
    updates: dict[str, torch.Tensor] = {}

    tensors: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(np.array(value))
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            report.ignored.append(str(key))
            continue
        tensors[key] = value

    has_video_queries = any(k.startswith((_PRED + "query_feat1.", _PRED + "query_embed1.")) for k in tensors)
    class_handled = False
    for key, value in tensors.items():
        if _IGNORE.search(key):
            report.ignored.append(key)
            continue
        target = official_key(key)
        targets = [target]
        if not has_video_queries and target.startswith((_PRED + "query_feat.", _PRED + "query_embed.")):
            targets.append(target.replace(".query_feat.", ".query_feat1.")
                           .replace(".query_embed.", ".query_embed1."))
        placed = False
        for tkey in targets:
            if tkey not in own:
                continue
            placed = True
            if tkey in _CLASS_KEYS:
                class_handled = True
                continue                                     # handled below, both tensors together
            if tkey.endswith(".relative_position_index") and value.numel() == own[tkey].numel():
                # a buffer of window indices: official Swin keeps it (W², W²), torchvision flattened (W⁴,)
                value = value.reshape(own[tkey].shape)
                if not torch.equal(value.to(own[tkey].dtype), own[tkey]):
                    report.mismatched.append((tkey, tuple(source[key].shape), tuple(own[tkey].shape)))
                    continue
            if tuple(value.shape) != tuple(own[tkey].shape):
                report.mismatched.append((tkey, tuple(value.shape), tuple(own[tkey].shape)))
                continue
            updates[tkey] = value
            if tkey != key:
                report.mapped.append((key, tkey))
        if not placed:
            report.unexpected.append(key)

    _check_backbone(tensors, own, updates, report)
    if class_handled:
        _load_class_head(tensors, own, updates, report, source_classes, target_classes)

    merged = dict(own)
    for k, v in updates.items():
        merged[k] = v.to(dtype=own[k].dtype, device=own[k].device)
    model.load_state_dict(merged, strict=True)
    report.loaded = [k for k in own if k in updates]
    report.missing = [k for k in own if k not in updates and k not in report.reinitialized
                      and not k.endswith("num_batches_tracked")
                      and k not in {m[0] for m in report.mismatched}]
    return report


# below this share of the model's trunk tensors landing, a file that has a trunk is of another backbone
BACKBONE_MIN_FRACTION = 0.5


def _check_backbone(tensors: dict, own: dict, updates: dict, report: LoadReport) -> None:
    """A source with backbone weights of which most do not fit is another trunk (e.g. a Swin-L file into an R-50
    model, or names this loader does not know): loading only the head onto a random trunk gives a model that
    runs and sees nothing, so it is an error rather than a line in the summary."""
    src = [k for k in tensors if k.startswith("backbone.") and not _IGNORE.search(k)]
    ours = [k for k in own if k.startswith("backbone.") and not k.endswith("num_batches_tracked")]
    if not src or not ours:
        return
    landed = sum(1 for k in ours if k in updates)
    if landed < BACKBONE_MIN_FRACTION * len(ours):
        bad = [k for k in src if official_key(k) not in own][:3]
        wrong = [m for m in report.mismatched if m[0].startswith("backbone.")][:3]
        detail = ", ".join(bad) if bad else ", ".join(f"{k} {a} vs {b}" for k, a, b in wrong)
        raise ValueError(f"the file's backbone does not fit this model: {landed} of {len(ours)} backbone tensors "
                         f"load ({len(src)} in the file; e.g. {detail or 'none'})")


def _load_class_head(tensors: dict, own: dict, updates: dict, report: LoadReport,
                     source_classes: list[str] | None, target_classes: list[str] | None) -> None:
    inverse = {official_key(k): k for k in tensors}
    src = {k: tensors[inverse[k]] for k in _CLASS_KEYS if k in inverse}
    if len(src) != 2:
        report.reinitialized.extend(k for k in _CLASS_KEYS if k in own)
        return
    w_src, b_src = src[_CLASS_KEYS[0]], src[_CLASS_KEYS[1]]
    w_own, b_own = own[_CLASS_KEYS[0]], own[_CLASS_KEYS[1]]
    if w_src.shape[1:] != w_own.shape[1:]:
        report.mismatched.append((_CLASS_KEYS[0], tuple(w_src.shape), tuple(w_own.shape)))
        report.reinitialized.extend(_CLASS_KEYS)
        return
    if source_classes is not None and target_classes is not None:
        if len(source_classes) + 1 != w_src.shape[0]:
            raise ValueError(f"{len(source_classes)} source class names for a class head with "
                             f"{w_src.shape[0] - 1} classes")
        if len(target_classes) + 1 != w_own.shape[0]:
            raise ValueError(f"{len(target_classes)} target class names for a model with "
                             f"{w_own.shape[0] - 1} classes")
        index = {}
        for i, name in enumerate(source_classes):
            index.setdefault(_norm_name(name), i)
        w_new, b_new = w_own.clone(), b_own.clone()
        for j, name in enumerate(target_classes):
            i = index.get(_norm_name(name))
            if i is None:
                report.new_classes.append(name)
                continue
            w_new[j], b_new[j] = w_src[i], b_src[i]
            report.class_rows[name] = source_classes[i]
        w_new[-1], b_new[-1] = w_src[-1], b_src[-1]            # no-object row
        updates[_CLASS_KEYS[0]], updates[_CLASS_KEYS[1]] = w_new, b_new
        for key in _CLASS_KEYS:
            report.mapped.append((inverse[key], key + " (rows by class name)"))
        return
    if w_src.shape == w_own.shape and b_src.shape == b_own.shape:
        updates[_CLASS_KEYS[0]], updates[_CLASS_KEYS[1]] = w_src, b_src
        return
    report.reinitialized.extend(_CLASS_KEYS)                   # another vocabulary and no names to map it


def load_official_checkpoint(model: nn.Module, path: str | Path, source_classes: list[str] | None = None,
                             target_classes: list[str] | None = None) -> LoadReport:
    """`load_official_state_dict` from a .pth (torch) or .pkl (detectron2 numpy pickle) file."""
    path = Path(path)
    obj = _load_file(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        obj = obj.get("state_dict")
    try:
        state = unwrap_state_dict(obj)
    except TypeError:
        raise CheckpointError(path, NOT_A_CHECKPOINT) from None
    if not _looks_like_official({"model": state}):
        raise CheckpointError(path, f"{NOT_A_CHECKPOINT} (no backbone.* or sem_seg_head.* weights)")
    try:
        return load_official_state_dict(model, state, source_classes, target_classes)
    except ValueError as e:
        raise CheckpointError(path, str(e)) from None


# ---------------------------------------------------------------------------------------------- inspection
def ignore_reason(key: str) -> str:
    """Why `load_official_state_dict` leaves a source tensor out (spec §10.4)."""
    if key.startswith(("syncvis_module.", "vita_module.")):
        return "VITA / SyncVIS R-B clip head: no counterpart in the R-A design built here"
    if key.startswith(("criterion.", "syncvis_criterion.", "vita_criterion.")) or key.endswith("empty_weight"):
        return "loss buffer"
    if key in ("pixel_mean", "pixel_std"):
        return "input normalisation comes from the model config"
    if key.endswith(".attn_mask"):
        return "Swin shift-window mask: rebuilt from the input size"
    if re.search(r"predictor\.(query_feat[2-9]|query_embed[2-9]|FFN_1)\.", key):
        return "allocated but unused by the released SyncVIS code"
    return "not a tensor"


def _count(keys, pattern: str) -> int:
    idx = {int(m.group(1)) for k in keys if (m := re.match(pattern, k))}
    return max(idx) + 1 if idx else 0


def config_from_official(state: dict) -> tuple[ModelConfig, dict]:
    """The architecture of an official Mask2Former / Mask2Former-VIS / VITA / SyncVIS state dict, read from its
    tensors -> (ModelConfig, facts). Head counts are not stored in any tensor: the published 8 are assumed."""
    from engine.model.backbone import _SWINS

    sd = unwrap_state_dict(state)
    keys = [k for k in sd if isinstance(k, str)]
    shape = {k: tuple(np.shape(sd[k])) for k in keys}
    facts: dict[str, Any] = {}
    if "backbone.patch_embed.proj.weight" in shape:
        embed = shape["backbone.patch_embed.proj.weight"][0]
        depths = tuple(_count(keys, rf"backbone\.layers\.{i}\.blocks\.(\d+)\.") for i in range(4))
        table = shape.get("backbone.layers.0.blocks.0.attn.relative_position_bias_table", (0,))[0]
        window = int(round((table ** 0.5 + 1) / 2)) if table else None
        names = [n for n, (e, d, _h, w, _p) in _SWINS.items() if (e, tuple(d)) == (embed, depths)]
        backbone = names[0] if names else None
        facts["trunk"] = (f"Swin embed {embed}, depths {depths}, window {window}"
                             + ("" if backbone else " (no matching preset trunk)"))
        if backbone and window != _SWINS[backbone][3]:
            facts["trunk"] += f"; this program's {backbone} uses window {_SWINS[backbone][3]}"
    elif "backbone.stem.conv1.weight" in shape or "backbone.conv1.weight" in shape:
        d2 = "backbone.stem.conv1.weight" in shape
        blocks = _count(keys, r"backbone\.res4\.(\d+)\." if d2 else r"backbone\.layer3\.(\d+)\.")
        bottleneck = any(".conv3." in k for k in keys if k.startswith("backbone."))
        backbone = {(6, True): "resnet50", (23, True): "resnet101", (2, False): "resnet18",
                    (6, False): "resnet34"}.get((blocks, bottleneck))
        facts["trunk"] = f"ResNet, {blocks} blocks at stride 16 ({'detectron2' if d2 else 'torchvision'} names)"
    else:
        backbone = None
        facts["trunk"] = "none recognised"
    pred = _PRED
    cls = shape.get(pred + "class_embed.weight")
    q_frame = shape.get(pred + "query_feat.weight") or shape.get(pred + "static_query.weight")
    q_video = shape.get(pred + "query_feat1.weight")
    if cls is None or q_frame is None:
        raise ValueError("no Mask2Former-style predictor (sem_seg_head.predictor.class_embed / query_feat)")
    hidden = q_frame[1]
    px = "sem_seg_head.pixel_decoder."
    enc_layers = _count(keys, r"sem_seg_head\.pixel_decoder\.transformer\.encoder\.layers\.(\d+)\.")
    offsets = shape.get(px + "transformer.encoder.layers.0.self_attn.sampling_offsets.weight")
    nheads = 8
    cfg = ModelConfig(
        mode="sync" if q_video is not None else "video",
        backbone=backbone or "resnet50",
        num_classes=cls[0] - 1,
        hidden_dim=hidden,
        nheads=nheads,
        dim_feedforward=shape.get(pred + "transformer_ffn_layers.0.linear1.weight", (2048,))[0],
        dec_layers=_count(keys, r"sem_seg_head\.predictor\.transformer_ffn_layers\.(\d+)\."),
        num_frame_queries=q_frame[0],
        num_video_queries=(q_video or q_frame)[0],
        mask_dim=shape.get(px + "mask_features.weight", (256,))[0],
        enc_layers=enc_layers,
        enc_dim_feedforward=shape.get(px + "transformer.encoder.layers.0.linear1.weight", (1024,))[0],
        enc_n_points=offsets[0] // (nheads * 3 * 2) if offsets else 4,
        conv_dim=shape.get(px + "input_proj.0.0.weight", (256,))[0],
    )
    if any(k.startswith(("syncvis_module.", "vita_module.")) for k in keys):
        layout = "VITA-based (SyncVIS R-B or VITA)"
    elif any(k.startswith(tuple(pred + n for n in ("multi_attn.", "FFN_2.", "FFN_3."))) for k in keys):
        layout = "SyncVIS"
    else:
        layout = "Mask2Former / Mask2Former-VIS"
    facts.update({"layout": layout, "frame_queries": cfg.num_frame_queries,
                  "video_queries": q_video[0] if q_video else None, "decoder_layers": cfg.dec_layers,
                  "heads": "8 (assumed: not stored in the tensors)",
                  "vocabulary": {40: "YouTube-VIS 2019 or 2021 (40 classes each: ambiguous)",
                                 25: "OVIS (25 classes)", 80: "COCO (80 classes)"}.get(cfg.num_classes,
                                                                                       "unknown")})
    if backbone is None:
        raise ValueError(f"backbone not supported: {facts['trunk']}")
    return cfg, facts


def inspect_checkpoint(path: str | Path, classes: str | Path | None = None) -> dict:
    """What the loader makes of a file before anything runs: {"file", "layout", "architecture", "loaded",
    "ignored" ([key, why]), "missing", "unexpected", "mismatched" ([our key, file shape, our shape]),
    "renamed", "summary"}. Ours load strictly (every list but `loaded` empty, or CheckpointError); official files
    are mapped onto the architecture their tensors describe, and "vocabulary" says which dataset's class names
    they open with and why (`classes`: the --classes option; an ambiguous count is reported, not an error:
    "name" None and the question in "reason")."""
    from engine.data.vocabularies import AmbiguousClassesError
    from engine.model.syncvis import build_model

    path = Path(path)
    kind, obj = read_checkpoint_file(path)
    if kind == "ours":
        meta = obj
        cfg = checkpoint_config(path, meta)
        model = build_model(cfg)
        _load_own_state(path, model, meta["state_dict"])
        arch = {k: getattr(cfg, k) for k in ("mode",) + ARCHITECTURE_FIELDS + ("num_classes",)}
        arch["classes"] = list(meta["class_names"])
        arch["parameters"] = model.num_parameters()
        return {"file": str(path), "layout": f"SyncVIS Studio checkpoint (version {meta['version']})",
                "architecture": arch, "loaded": sorted(meta["state_dict"]), "ignored": [], "missing": [],
                "unexpected": [], "mismatched": [], "renamed": [],
                "summary": f"{len(meta['state_dict'])} tensors, all loaded", "provenance": meta.get("provenance")}
    state = obj
    try:
        off = open_official(path, classes, state=state)
        vocabulary = off.classes.as_dict()
    except AmbiguousClassesError as e:
        off = None
        vocabulary = {"name": None, "title": "ambiguous", "reason": e.problem, "known": True, "classes": [],
                      "category_ids": [], "candidates": e.candidates}
    if off is None:
        try:
            cfg, facts = config_from_official(state)
        except ValueError as e:
            raise CheckpointError(path, f"detectron2-style checkpoint, but {e}") from None
        facts["vocabulary"] = vocabulary["reason"]
    else:
        cfg, facts = off.config, off.facts
    try:
        model = build_model(cfg)
        report = load_official_state_dict(model, state)
    except ValueError as e:
        raise CheckpointError(path, str(e)) from None
    arch = {**facts, **{k: getattr(cfg, k) for k in ("mode",) + ARCHITECTURE_FIELDS + ("num_classes",)}}
    if vocabulary["classes"]:
        arch["classes"] = list(vocabulary["classes"])
    arch["parameters"] = model.num_parameters()
    return {"file": str(path), "layout": f"official detectron2-style ({facts['layout']})", "architecture": arch,
            "loaded": report.loaded, "ignored": [[k, ignore_reason(k)] for k in report.ignored],
            "missing": report.missing, "unexpected": report.unexpected,
            "mismatched": [[k, list(a), list(b)] for k, a, b in report.mismatched],
            "renamed": [list(m) for m in report.mapped], "summary": report.summary(), "vocabulary": vocabulary}


__all__ = ["ARCHITECTURE_FIELDS", "FORMAT", "VERSION", "LoadReport", "OfficialCheckpoint", "check_compatible",
           "checkpoint_config", "config_from_official", "ignore_reason", "inspect_checkpoint", "load_checkpoint",
           "load_official_checkpoint", "load_official_state_dict", "load_weights", "official_key", "open_official",
           "peek_classes", "read_checkpoint", "read_checkpoint_file", "read_meta", "save_checkpoint",
           "unwrap_model", "unwrap_state_dict"]
