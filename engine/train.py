"""Training and fine-tuning of SyncVIS (and its two baselines) on a YTVIS dataset folder (spec §7).

One loop for a laptop CPU, one GPU, or many GPUs/nodes under `torchrun` (DistributedDataParallel: gloo on the
CPU, nccl on GPUs). The global batch is split across ranks; only rank 0 writes the event log and checkpoints.

What a run leaves in RUN_DIR:
- `events.jsonl`: one JSON object per line. Training steps `{"type": "train", "step", "loss", <each loss
  term>, "lr", "eta_s", "time", ...}`, evaluations `{"type": "eval", "step", "AP", "AP50", ...}`, and one
  closing line: `{"type": "done", "checkpoint"}`, `{"type": "cancelled", "step", "checkpoint"}` or `{"type":
  "error", "message"}`. The app's training panel and `--resume` read nothing else.
- `checkpoints/model_XXXXXXX.pt` (our checkpoint format) + `checkpoints/state_XXXXXXX.pt` (optimizer,
  scheduler, step, RNG, AMP scaler) every `checkpoint_every` steps and on cancel; `model_final.pt` at the end.

Sampling is keyed by (seed, step) (see `engine.data.clips.ClipBatches`), so a resumed run draws the same clips
as an uninterrupted one.
"""
from __future__ import annotations

import bisect
import dataclasses
import datetime
import hashlib
import json
import logging
import os
import random
import re
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from engine.config import InferConfig, Preset
from engine.config import preset as get_preset
from engine.data.clips import ClipBatches, ClipDataset, collate_clips
from engine.data.ytvis import Dataset
from engine.device import autocast, autocast_dtype, choose_device
from engine.errors import CheckpointError, InputError
from engine.progress import CancelFn, ProgressFn

log = logging.getLogger(__name__)

EVENTS = "events.jsonl"
CKPT_DIR = "checkpoints"
FINAL = "model_final.pt"
_NORM_TYPES = (nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm, nn.modules.batchnorm._NormBase)


# ------------------------------------------------------------------------------------------------ helpers
def apply_overrides(p: Preset, overrides: dict[str, Any] | None) -> Preset:
    """`{"lr": 1e-4, "model.dec_layers": 3, "model.sync.top_k": 8}`: bare names are TrainConfig fields."""
    for key, value in (overrides or {}).items():
        *path, name = key.split(".")
        target = p.train if not path else p
        for part in path:
            target = getattr(target, part, None)
        if not dataclasses.is_dataclass(target) or not any(f.name == name for f in dataclasses.fields(target)):
            raise ValueError(f"unknown setting {key!r}")
        if isinstance(getattr(target, name), tuple) and isinstance(value, list):
            value = tuple(value)
        setattr(target, name, value)
    return p


def _sync_overrides(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The `model.sync.*` settings, the only model settings that survive `--init`: N_k, lambda and the order are
    not weights, so an ablation may change them on top of a checkpoint's architecture."""
    return {k: v for k, v in (overrides or {}).items() if k.startswith("model.sync.")}


def param_groups(model: nn.Module, lr: float, weight_decay: float, backbone_mult: float,
                 wd_norm: float, wd_embed: float) -> list[dict]:
    """AdamW groups as in detectron2/Mask2Former: backbone LR x multiplier; no decay on norms and
    embeddings."""
    groups: dict[tuple[float, float], list] = {}
    seen: set[int] = set()
    for mod_name, module in model.named_modules():
        for p_name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            g_lr = lr * backbone_mult if "backbone" in f"{mod_name}.{p_name}" else lr
            if isinstance(module, _NORM_TYPES) or "norm" in type(module).__name__.lower():
                wd = wd_norm
            elif isinstance(module, nn.Embedding):
                wd = wd_embed
            else:
                wd = weight_decay
            groups.setdefault((g_lr, wd), []).append(p)
    return [{"params": ps, "lr": g_lr, "initial_lr": g_lr, "weight_decay": wd}
            for (g_lr, wd), ps in groups.items()]


def lr_factor(step: int, steps: tuple[int, ...], gamma: float, warmup_iters: int,
              warmup_factor: float) -> float:
    f = gamma ** bisect.bisect_right(sorted(steps), step)
    if step < warmup_iters:
        a = step / warmup_iters
        f *= warmup_factor * (1 - a) + a
    return f


def state_checksum(model: nn.Module, buffers: bool = False) -> str:
    """sha256 over the parameters (names and bytes): equal on every replica of a correct DDP run. Buffers are
    left out by default: BatchNorm running statistics are updated by each rank's own forward pass after DDP
    last broadcast them."""
    h = hashlib.sha256()
    items = dict(model.named_parameters())
    if buffers:
        items.update(model.named_buffers())
    for k, v in sorted(items.items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def latest_checkpoint(run_dir: str | Path) -> tuple[int, Path, Path] | None:
    """(step, model path, state path) of the newest complete checkpoint pair in RUN_DIR/checkpoints."""
    ck = Path(run_dir) / CKPT_DIR
    best = None
    for p in ck.glob("state_*.pt") if ck.is_dir() else []:
        m = re.fullmatch(r"state_(\d+)\.pt", p.name)
        model = ck / f"model_{m.group(1)}.pt" if m else None
        if m and model.is_file() and (best is None or int(m.group(1)) > best[0]):
            best = (int(m.group(1)), model, p)
    return best


class _Events:
    """Append-only JSON-lines log, flushed per line so the app can tail it; silent on ranks other than 0."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled
        if enabled:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, **event: Any) -> None:
        if not self.enabled:
            return
        event.setdefault("time", time.time())
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(event, default=_jsonable) + "\n")


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, torch.Tensor):
        return x.item() if x.numel() == 1 else x.tolist()
    raise TypeError(type(x).__name__)


@contextmanager
def _stop_signals(flag: threading.Event):
    """SIGINT/SIGTERM set `flag` (a checkpoint is saved at the next step) instead of killing the run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame):  # noqa: ARG001
        if flag.is_set():  # second Ctrl+C: give up immediately
            raise KeyboardInterrupt
        flag.set()

    for s in old:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@dataclasses.dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owned: bool = False   # we initialised the process group (and so tear it down)

    @property
    def enabled(self) -> bool:
        return self.world > 1


def _init_distributed(device: torch.device) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    owned = False
    if not dist.is_initialized():
        # long timeout: the other ranks wait at a barrier while rank 0 evaluates
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                timeout=datetime.timedelta(hours=2))
        owned = True
    return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), owned)


def _mean_across(values: list[float], d: _Dist, device: torch.device) -> list[float]:
    if not d.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return (t / d.world).tolist()


def _any_across(flag: bool, d: _Dist, device: torch.device) -> bool:
    if not d.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def _rng_state() -> dict:
    st = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    np.random.set_state(st["numpy"])
    random.setstate(st["python"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


# ------------------------------------------------------------------------------------------------ model setup
def _init_model(p: Preset, num_classes: int, class_names: list[str], init: str | Path | None,
                model_overrides: dict[str, Any] | None = None, init_classes: str | Path | None = None):
    """Build the network; with `init`, start from one of our checkpoints (its architecture, this run's mode
    and vocabulary; class-head rows are copied by class name) or from an official detectron2-style file: the
    architecture its tensors describe (unless `model_overrides` change an architecture field: then the preset's
    with those changes), this run's mode and vocabulary, class rows copied by name from the vocabulary of the
    dataset it was trained on (`init_classes` = --classes; 40 classes are settled by a file-name hint or by this
    run's category names, else AmbiguousClassesError). Returns (model, a note for the log)."""
    from engine.model import checkpoint as ckpt
    from engine.model.syncvis import build_model

    p.model.num_classes = num_classes
    if init is None:
        return _fresh_model(p)
    kind, obj = ckpt.read_checkpoint_file(init)
    if kind == "official":
        return _init_from_official(p, num_classes, class_names, Path(init), obj, model_overrides or {},
                                   init_classes)
    meta = {k: v for k, v in obj.items() if k != "state_dict"}
    if init_classes is not None:
        log.info("--classes %s is not used: %s names its own classes", init_classes, init)
    p.model = dataclasses.replace(ckpt.checkpoint_config(init, meta), num_classes=num_classes,
                                  mode=p.model.mode)
    apply_overrides(p, _sync_overrides(model_overrides))
    model = build_model(p.model)
    report = ckpt.load_official_state_dict(model, obj["state_dict"], list(meta["class_names"]), class_names)
    return model, f"initialised from {init}: {report.summary()}"


def _init_from_official(p: Preset, num_classes: int, class_names: list[str], init: Path, state: dict,
                        model_overrides: dict[str, Any], init_classes):
    from engine.model import checkpoint as ckpt
    from engine.model.syncvis import build_model

    off = ckpt.open_official(init, init_classes, target_names=class_names, state=state,
                             target_what="training data")
    arch = sorted(k for k in model_overrides if k.split(".", 1)[-1] in ckpt.ARCHITECTURE_FIELDS)
    if arch:
        where = f"the {p.model.backbone} preset's architecture (--set {', '.join(arch)})"
    else:
        p.model = dataclasses.replace(off.config, num_classes=num_classes, mode=p.model.mode)
        apply_overrides(p, {k: v for k, v in model_overrides.items() if k != "model.num_classes"})
        where = f"the file's architecture ({off.facts.get('trunk')}, {p.model.num_frame_queries} queries)"
    model = build_model(p.model)
    source = list(off.classes.names) if off.classes.known else None
    try:
        report = ckpt.load_official_state_dict(model, state, source, class_names if source else None)
    except ValueError as e:
        raise CheckpointError(init, str(e)) from None
    return model, (f"imported official weights from {init} into {where}; classes of {off.classes.describe()}: "
                   f"{report.summary()}")


def _fresh_model(p: Preset):
    """A new network whose trunk starts from `TrainConfig.backbone_weights` -> (model, note for the log)."""
    from engine.model.backbone import PACKAGED, load_resnet_weights
    from engine.model.syncvis import build_model

    source = p.train.backbone_weights or ""
    if source == "packaged":
        pretrained = p.model.backbone in PACKAGED
        note = (f"trunk {p.model.backbone}: packaged ImageNet weights" if pretrained
                else f"trunk {p.model.backbone}: random init (no packaged weights; --backbone-weights FILE)")
        return build_model(p.model, pretrained=pretrained), note
    model = build_model(p.model)
    if not source:
        return model, f"trunk {p.model.backbone}: random init"
    if not p.model.backbone.startswith("resnet"):
        raise InputError(source, f"--backbone-weights reads ResNet weights, but the {p.model.backbone} trunk is "
                                 "not a ResNet")
    if not Path(source).is_file():
        raise InputError(source, "no such file")
    try:
        report = load_resnet_weights(model.backbone, source)
    except (ValueError, CheckpointError) as e:
        raise InputError(source, str(e).removeprefix(f"{source}: ")) from None
    return model, (f"trunk {p.model.backbone}: {len(report['loaded'])} tensors from {source} "
                   f"({len(report['ignored'])} ignored)")


def _split_validation(ds: Dataset, fraction: float, max_videos: int,
                      seed: int) -> tuple[list[int], list[int]]:
    ids = [v.id for v in ds.videos if ds.instances_of(v.id)]
    if fraction <= 0 or len(ids) < 2:
        return ids, []
    n_val = min(max_videos, max(1, int(round(fraction * len(ids)))), len(ids) - 1)
    order = np.random.default_rng([seed, 104729]).permutation(len(ids))
    val = sorted(ids[i] for i in order[:n_val])
    return [i for i in ids if i not in set(val)], val


# ------------------------------------------------------------------------------------------------ evaluation
def predict_dataset(model: nn.Module, gt: Dataset, class_names: list[str], cfg: InferConfig,
                    max_videos: int | None = None, cancel: CancelFn | None = None) -> tuple[Dataset, list[dict]]:
    """Run `model` over the annotated videos of a dataset (each through `engine.inference.infer`); returns the
    subset that was run and its YTVIS results, in the dataset's category ids (`Dataset.category_ids_for`)."""
    from engine.inference import FrameFiles, infer

    cat_of = gt.category_ids_for(class_names)
    videos = [v for v in gt.videos if gt.instances_of(v.id)][: max_videos or None]
    results = []
    for v in videos:
        if cancel is not None and cancel():
            break
        pred = infer(FrameFiles(gt.frame_paths(v), v.width, v.height), model, cfg)
        for r in pred.to_ytvis_results(v.id):
            cat = cat_of[r["category_id"] - 1]
            if cat is not None:
                results.append({**r, "category_id": cat})
    return gt.subset([v.id for v in videos]), results


def class_agnostic(gt: Dataset, results: list[dict]) -> tuple[Dataset, list[dict]]:
    """Every object and prediction relabelled as the first category: "found and tracked" without "named"."""
    cat = gt.categories[0].id
    one = Dataset(videos=gt.videos, categories=gt.categories[:1],
                  instances=[dataclasses.replace(i, category_id=cat) for i in gt.instances])
    return one, [{**r, "category_id": cat} for r in results]


def evaluate_model(model: nn.Module, gt: Dataset, class_names: list[str], cfg: InferConfig,
                   max_videos: int | None = None, cancel: CancelFn | None = None) -> dict[str, float]:
    """YTVIS metrics of `model` on the annotated videos of a dataset (see predict_dataset), plus `tube_iou`: the
    mean over objects of the best video IoU any prediction reaches, whatever its class or score (it moves while
    classification is still too poor for AP to)."""
    from engine.evaluation import evaluate

    sub, results = predict_dataset(model, gt, class_names, cfg, max_videos, cancel)
    stats = dict(evaluate(sub, results).stats)
    stats["tube_iou"] = evaluate(*class_agnostic(sub, results)).mean_best_iou()
    return stats


# ------------------------------------------------------------------------------------------------ the loop
def train(data_dir: str | Path, out_dir: str | Path, preset: str = "tiny", mode: str = "sync",
          init: str | Path | None = None, iters: int | None = None, *, num_frames: int | None = None,
          batch_size: int | None = None, lr: float | None = None, device: str = "auto",
          val_dir: str | Path | None = None, resume: bool = False, seed: int | None = None,
          overrides: dict[str, Any] | None = None, progress: ProgressFn | None = None,
          cancel: CancelFn | None = None, check_replicas: bool = False, recipe: str = "shared",
          init_classes: str | Path | None = None) -> Path:
    """Train `preset` in `mode` on the YTVIS folder `data_dir`; returns the path of the final (or, when
    cancelled, the last saved) checkpoint. `iters` shortens/lengthens the run and scales the LR steps with it.
    `overrides` set any config field (see `apply_overrides`). `check_replicas` makes every rank write a
    checksum of its weights to RUN_DIR/replicas/rank<r>.txt at the end (a DDP sanity check). `recipe="own"` trains
    a baseline mode with its own method's recipe (engine.config.BASELINE_RECIPES) instead of SyncVIS's.
    `init_classes` names the classes of an official `init` file (see `_init_model`)."""
    from engine.model.checkpoint import load_weights, save_checkpoint
    from engine.model.criterion import SetCriterion

    out = Path(out_dir)
    p = get_preset(preset, mode, recipe)
    apply_overrides(p, overrides)
    tc = p.train
    if iters is not None:
        tc.lr_steps = tuple(max(1, int(round(s * iters / tc.max_iters))) for s in tc.lr_steps)
        tc.max_iters = int(iters)
    if num_frames is not None:
        tc.num_frames = int(num_frames)
    if batch_size is not None:
        tc.batch_size = int(batch_size)
    if lr is not None:
        tc.lr = float(lr)
    if seed is not None:
        tc.seed = int(seed)
    dev = choose_device(device)
    dd = _init_distributed(dev)
    if dev.type == "cuda" and dd.enabled:
        dev = torch.device("cuda", dd.local_rank)
        torch.cuda.set_device(dev)
    is_main = dd.rank == 0
    events = _Events(out / EVENTS, is_main)
    stop = threading.Event()

    try:
        with _stop_signals(stop):
            return _run(p, data_dir, out, init, dev, dd, events, stop, resume, val_dir, progress, cancel,
                        check_replicas, load_weights, save_checkpoint, SetCriterion, preset, mode,
                        {k: v for k, v in (overrides or {}).items() if k.startswith("model.")}, init_classes)
    except BaseException as e:
        msg = f"{type(e).__name__}: {e}"
        if not isinstance(e, KeyboardInterrupt):
            log.exception("training failed")
        if is_main or dd.enabled:
            events.enabled = True
            events.write(type="error", message=msg, rank=dd.rank)
        raise
    finally:
        if dd.owned and dist.is_initialized():
            dist.destroy_process_group()


def _run(p: Preset, data_dir, out: Path, init, dev: torch.device, dd: _Dist, events: _Events,
         stop: threading.Event, resume: bool, val_dir, progress, cancel, check_replicas,
         load_weights, save_checkpoint, SetCriterion, preset_name: str, mode: str,
         model_overrides: dict[str, Any] | None = None, init_classes=None) -> Path:
    tc = p.train
    is_main = dd.rank == 0
    data = Dataset.from_folder(data_dir)
    class_ids = sorted(c.id for c in data.categories)
    names = data.category_names()
    class_names = [names[c] for c in class_ids]
    if val_dir is not None:
        train_ids, val_gt = [v.id for v in data.videos], Dataset.from_folder(val_dir)
    else:
        train_ids, val_ids = _split_validation(data, tc.val_fraction, tc.val_max_videos, tc.seed)
        val_gt = data.subset(val_ids) if val_ids else None
    clips = ClipDataset(data, tc, seed=tc.seed, video_ids=train_ids, class_ids=class_ids)

    torch.manual_seed(tc.seed)   # identical initial weights on every rank (DDP also broadcasts rank 0's)
    model, init_note = _init_model(p, len(class_ids), class_names, init, model_overrides, init_classes)
    model.to(dev)
    criterion = SetCriterion(p.loss, len(class_ids), mode).to(dev)
    # the criterion's point draws get their own RNG, per rank, saved with the checkpoint: resuming is exact
    criterion.generator = torch.Generator(device=dev).manual_seed(tc.seed * 1000003 + dd.rank)
    groups = param_groups(model, tc.lr, tc.weight_decay, tc.backbone_lr_multiplier, tc.weight_decay_norm,
                          tc.weight_decay_embed)
    optimizer = torch.optim.AdamW(groups, lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, tc.lr_steps, tc.lr_gamma, tc.warmup_iters, tc.warmup_factor))
    amp_dtype = autocast_dtype(dev) if tc.amp else None
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    start = 0
    cpu_before = 0.0    # CPU seconds of this run spent in earlier processes (resumed runs add them up)
    if resume:
        found = latest_checkpoint(out)
        if found is None:
            log.warning("--resume: no checkpoint in %s, starting from scratch", out / CKPT_DIR)
        else:
            start, model_path, state_path = found
            load_weights(model, model_path)
            st = torch.load(state_path, map_location="cpu", weights_only=False)
            optimizer.load_state_dict(st["optimizer"])
            scheduler.load_state_dict(st["scheduler"])
            if st.get("scaler"):
                scaler.load_state_dict(st["scaler"])
            _set_rng_state(st["rng"])
            cpu_before = float(st.get("cpu_s") or 0.0)
            gens = st.get("point_rng") or []
            if dd.rank < len(gens):
                criterion.generator.set_state(gens[dd.rank])
            init_note = f"resumed from {model_path} at step {start}"
    if start >= tc.max_iters:
        raise InputError(out, f"the run already reached step {start} of {tc.max_iters}; pass more --iters")

    net: nn.Module = model
    if dd.enabled:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None, find_unused_parameters=True)
    batches = ClipBatches(len(clips), tc.batch_size, tc.seed, rank=dd.rank, world_size=dd.world,
                          start_step=start, end_step=tc.max_iters)
    # a private generator: creating the loader's iterator must not consume the global RNG (exact resume)
    loader = torch.utils.data.DataLoader(clips, batch_sampler=batches, collate_fn=collate_clips,
                                         num_workers=tc.num_workers, pin_memory=dev.type == "cuda",
                                         persistent_workers=tc.num_workers > 0,
                                         generator=torch.Generator().manual_seed(tc.seed))
    provenance = {"data": str(Path(data_dir).resolve()), "preset": preset_name, "mode": mode,
                  "init": str(init) if init else None, "train_config": dataclasses.asdict(tc)}
    ck_dir = out / CKPT_DIR
    ck_extra = {"preset": preset_name, "infer": dataclasses.asdict(p.infer)}   # how to run the result

    def save(step: int) -> Path:
        path = ck_dir / f"model_{step:07d}.pt"
        gen_state = criterion.generator.get_state()
        if dd.enabled:   # every rank's point-sampling RNG, so each resumes its own stream
            gathered = [None] * dd.world
            dist.all_gather_object(gathered, gen_state.cpu())
        else:
            gathered = [gen_state.cpu()]
        if is_main:
            ck_dir.mkdir(parents=True, exist_ok=True)
            save_checkpoint(path, model, class_names, {**provenance, "step": step}, extra=ck_extra)
            torch.save({"step": step, "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict() if scaler.is_enabled() else None, "rng": _rng_state(),
                        "point_rng": gathered, "cpu_s": cpu_seconds()}, ck_dir / f"state_{step:07d}.pt")
            if tc.keep_checkpoints > 0:
                pairs = sorted(ck_dir.glob("state_*.pt"))
                for old in pairs[:-tc.keep_checkpoints]:
                    old.unlink(missing_ok=True)
                    (ck_dir / old.name.replace("state_", "model_")).unlink(missing_ok=True)
        if dd.enabled:
            dist.barrier()
        return path

    cpu0 = time.process_time()

    def cpu_seconds() -> float:
        """CPU seconds of the whole run so far on this rank (all threads, earlier processes included)."""
        return round(cpu_before + time.process_time() - cpu0, 2)

    def run_eval(step: int) -> None:
        if val_gt is None:
            return
        if is_main:
            t = time.perf_counter()
            stats = evaluate_model(model, val_gt, class_names, p.infer, tc.val_max_videos)
            events.write(type="eval", step=step, **stats, eval_s=round(time.perf_counter() - t, 2),
                         cpu_s=cpu_seconds(),
                         num_videos=min(len(val_gt.videos), tc.val_max_videos))
            model.train()
        if dd.enabled:
            dist.barrier()

    events.write(type="start", step=start, max_iters=tc.max_iters, preset=preset_name, mode=mode,
                 world_size=dd.world, device=str(dev), num_train_videos=len(clips),
                 num_val_videos=0 if val_gt is None else len(val_gt.videos), classes=class_names,
                 note=init_note,
                 config={"model": dataclasses.asdict(p.model), "loss": dataclasses.asdict(p.loss),
                         "train": dataclasses.asdict(tc), "infer": dataclasses.asdict(p.infer)})
    if init is not None and not resume:
        run_eval(start)   # the "before" number of a fine-tuning run
    model.train()
    step = start
    t_start = time.perf_counter()
    last_saved = None
    cancelled = False
    for batch in loader:
        frames = batch["frames"].to(dev, non_blocking=True)
        targets = [{k: v.to(dev, non_blocking=True) for k, v in t.items()} for t in batch["targets"]]
        with autocast(dev, amp_dtype is not None):
            outputs = net(frames)
        losses = criterion(outputs, targets)
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step + 1}: "
                                     + ", ".join(f"{k}={v.item():.3g}" for k, v in losses.items()))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip_grad_norm) \
            if tc.clip_grad_norm > 0 else torch.tensor(0.0)
        scaler.step(optimizer)
        scaler.update()
        lr_now = optimizer.param_groups[0]["lr"]
        for g in optimizer.param_groups:   # report the head LR (groups may start with the backbone)
            if g["initial_lr"] == tc.lr:
                lr_now = g["lr"]
                break
        scheduler.step()
        step += 1

        if step % tc.log_every == 0 or step == start + 1 or step == tc.max_iters:
            keys = sorted(losses)
            vals = _mean_across([loss.item(), float(grad_norm)] + [losses[k].item() for k in keys], dd, dev)
            elapsed = time.perf_counter() - t_start
            eta = elapsed / (step - start) * (tc.max_iters - step)
            events.write(type="train", step=step, loss=vals[0], lr=lr_now, eta_s=round(eta, 1),
                         elapsed_s=round(elapsed, 2), cpu_s=cpu_seconds(), grad_norm=vals[1],
                         **dict(zip(keys, vals[2:], strict=True)))
        if progress is not None:
            progress(step, tc.max_iters)
        if tc.checkpoint_every > 0 and step % tc.checkpoint_every == 0 and step < tc.max_iters:
            last_saved = save(step)
        if tc.eval_every > 0 and step % tc.eval_every == 0 and step < tc.max_iters:
            run_eval(step)
        if _any_across(stop.is_set() or (cancel is not None and cancel()), dd, dev):
            cancelled = step < tc.max_iters
            break

    if cancelled:
        same = last_saved is not None and last_saved.name == f"model_{step:07d}.pt"
        path = last_saved if same else save(step)
        events.write(type="cancelled", step=step, checkpoint=str(path))
        _write_replica_checksum(out, model, dd, check_replicas)
        return path
    if last_saved is None or last_saved.name != f"model_{step:07d}.pt":
        save(step)
    final = out / FINAL
    if is_main:
        save_checkpoint(final, model, class_names, {**provenance, "step": step}, extra=ck_extra)
    run_eval(step)
    _write_replica_checksum(out, model, dd, check_replicas)
    events.write(type="done", step=step, checkpoint=str(final))
    if dd.enabled:
        dist.barrier()
    return final


def _write_replica_checksum(out: Path, model: nn.Module, dd: _Dist, enabled: bool) -> None:
    if not enabled:
        return
    d = out / "replicas"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"rank{dd.rank}.txt").write_text(state_checksum(model) + "\n")


def read_events(run_dir: str | Path) -> list[dict]:
    """All events of a run (skipping a torn last line of a run that is still writing)."""
    out = []
    path = Path(run_dir) / EVENTS
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
