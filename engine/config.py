"""Every default of the engine in one place: dataclass configs and named presets.

`tiny` is the CPU preset used by the bundled models; `r50` and `swinl` follow the published SyncVIS recipe
(`shared/design/syncvis-method.md`, §2-§7 and §14). Sections are owned by the code that reads them:
ModelConfig -> engine/model, LossConfig -> engine/model/criterion.py, TrainConfig -> engine/train.py,
InferConfig -> engine/inference.py.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["sync", "video", "frame"]


@dataclass
class SyncConfig:
    """The two-way aggregation between video-level and frame-level queries (spec §3)."""

    top_k: int = 10                      # N_k embeddings selected per frame / per video
    momentum: float = 0.05               # lambda: q <- (1-lambda) q + lambda * aggregated
    order: Literal["frame_first", "video_first"] = "frame_first"  # figure order: frame->video, then video->frame
    selection: Literal["top2_sum", "max_prob"] = "top2_sum"


@dataclass
class ModelConfig:
    """The network. Defaults are the published R-50 values; presets below override them."""

    mode: Mode = "sync"
    backbone: str = "resnet50"           # see engine/model/backbone.py (SUPPORTED); stored in checkpoints, so a
                                         # file rebuilds the trunk it was trained with
    frozen_bn: bool = True
    freeze_at: int = 0                   # stages (stem = 1, then res2..res5) kept out of training: no backward
                                         # through them (spec §2.2: 0 for the published recipe)
    num_classes: int = 40
    hidden_dim: int = 256
    nheads: int = 8
    dim_feedforward: int = 2048
    dec_layers: int = 9                  # + 1 prediction from the initial queries
    num_frame_queries: int = 100
    num_video_queries: int = 100
    mask_dim: int = 256
    # pixel decoder
    enc_layers: int = 6
    enc_dim_feedforward: int = 1024
    enc_n_points: int = 4
    conv_dim: int = 256
    size_divisibility: int = 32
    pixel_mean: tuple[float, float, float] = (123.675, 116.280, 103.530)   # what the trunk's weights expect
    pixel_std: tuple[float, float, float] = (58.395, 57.120, 57.375)
    sync: SyncConfig = field(default_factory=SyncConfig)


@dataclass
class LossConfig:
    """Matching costs and loss weights (spec §4)."""

    class_weight: float = 2.0
    mask_weight: float = 5.0
    dice_weight: float = 5.0
    no_object_weight: float = 0.1
    num_points: int = 12544
    oversample_ratio: float = 3.0
    importance_sample_ratio: float = 0.75
    deep_supervision: bool = True
    # synchronized embedding optimization: video-level predictions supervised on sub-clips
    subclip_len: int = 2                 # T_s
    subclip_stride: int = 1
    subclip_weights: Literal["uniform"] | tuple[float, ...] = "uniform"   # uniform = 1 / number of sub-clips
    full_clip_term: bool = False         # also supervise the whole clip with weight 1
    # How BCE and dice of a matched tube (T' frames) are reduced. "per_frame" is Mask2Former-VIS / VITA
    # (`mask2former_video/modeling/criterion.py`, loss_masks: masks flattened to N·T' frame masks, mean over the
    # points of each frame, summed over frames, / number of tubes), so every frame of a tube weighs as much as a
    # frame of the frame term. "per_tube" (before issue 10) averages over all T'·P points of a tube at once,
    # which makes the video term T' times weaker relative to the class and frame terms.
    video_mask_loss: Literal["per_frame", "per_tube"] = "per_frame"


@dataclass
class TrainConfig:
    """Optimisation and data sampling (spec §7)."""

    num_frames: int = 8                  # T
    frame_range: int = 20
    batch_size: int = 8                  # videos per iteration (global)
    lr: float = 1e-4
    backbone_lr_multiplier: float = 0.1
    weight_decay: float = 0.05
    weight_decay_norm: float = 0.0
    weight_decay_embed: float = 0.0
    clip_grad_norm: float = 0.01
    max_iters: int = 70000
    lr_steps: tuple[int, ...] = (37500,)
    lr_gamma: float = 0.1
    warmup_iters: int = 10
    warmup_factor: float = 1.0           # LR factor at step 0, linear to 1 at warmup_iters (1.0 = no warm-up)
    amp: bool = True                     # CUDA only
    min_sizes: tuple[int, ...] = (288, 320, 352, 384, 416, 448, 480, 512)
    max_size: int = 768
    crop_prob: float = 0.5
    crop_min_frac: float = 0.6           # crop side as a fraction of the frame side, drawn in [crop_min_frac, 1]
    flip_prob: float = 0.5
    eval_every: int = 5000
    checkpoint_every: int = 5000
    keep_checkpoints: int = 3            # intermediate checkpoints kept in RUN_DIR/checkpoints (0 = all)
    log_every: int = 20
    val_fraction: float = 0.1            # held-out videos when no validation folder is given (0 = no evaluation)
    val_max_videos: int = 50
    seed: int = 0
    num_workers: int = 2
    # Where a fresh model's trunk weights come from (not used with --init or --resume): "packaged" = the ImageNet
    # weights that ship with a PACKAGED trunk's registry package (engine/model/backbone.py), random for the
    # others; "" = random; else a file of ImageNet ResNet weights (torchvision or detectron2 layout).
    backbone_weights: str = "packaged"


@dataclass
class InferConfig:
    """Inference over whole videos (spec §6)."""

    window: int = 36                     # T_w frames per window; windows linked by query embeddings
    top_k: int = 10                      # detections per video
    mask_threshold: float = 0.0          # on logits
    score_mask_quality: bool = False
    short_side: int = 360                # test resize (0 = native size)
    max_size: int = 1333
    device: str = "auto"                 # auto | cpu | cuda
    amp: bool = True                     # bf16/fp16 autocast on CUDA
    mode: Mode | None = None             # read-out; None = the model's own mode (a sync model also reads out
                                         # its video-level or frame-level queries alone)


@dataclass
class Preset:
    model: ModelConfig
    loss: LossConfig
    train: TrainConfig
    infer: InferConfig


def _tiny() -> Preset:
    """Small enough for CPU training and >=10 fps inference at 320x192 on one core (the bundled models).

    Trunk: EfficientNet-Lite0 with its packaged ImageNet weights (issue 10: the random MobileNetV3 trunk of the
    first bundled models never learnt to tell the shapes apart), BatchNorm frozen, backbone LR x0.1 (a pretrained
    trunk, as in the published recipe), inputs scaled to [-1, 1] as those weights expect, and the stem and the
    stride-4 stage frozen (freeze_at 2: backward stops at stride 8, -35% time per step). 64-d everywhere else, one
    deformable encoder layer, one decoder pass over the three levels (strides 32, 16, 8): 3.3 M parameters.
    Training at the synthetic videos' own scale (short side 160 or 192, test = native 192): the old 224 upscaled
    the objects beyond what inference sees and cost 40% more per step. The MobileNetV3 variant stays buildable
    (`tiny_mobilenet`), so the first bundled checkpoints, whose config names it, still load."""
    model = ModelConfig(backbone="tf_efficientnet_lite0", frozen_bn=True, freeze_at=2, num_classes=8,
                        hidden_dim=64, nheads=4, dim_feedforward=256, dec_layers=3, num_frame_queries=16,
                        num_video_queries=16, mask_dim=64, enc_layers=1, enc_dim_feedforward=128, enc_n_points=4,
                        conv_dim=64, pixel_mean=(127.5, 127.5, 127.5), pixel_std=(127.5, 127.5, 127.5),
                        sync=SyncConfig(top_k=4))
    loss = LossConfig(num_points=2048)
    train = TrainConfig(num_frames=4, frame_range=6, batch_size=4, lr=3e-4, backbone_lr_multiplier=0.1,
                        weight_decay=0.05, clip_grad_norm=1.0, max_iters=3000, lr_steps=(2400,),
                        warmup_iters=50, warmup_factor=0.1, min_sizes=(160, 192), max_size=384,
                        crop_prob=0.3, eval_every=250, checkpoint_every=125, keep_checkpoints=0, log_every=10,
                        val_max_videos=20, num_workers=0)
    infer = InferConfig(window=12, short_side=0)
    return Preset(model, loss, train, infer)


def _tiny_mobilenet() -> Preset:
    """The first bundled models' recipe: random MobileNetV3-small trunk (no 576-ch head), trainable BatchNorm,
    backbone LR x1, short side 160/192/224; 1.26 M parameters."""
    p = _tiny()
    p.model = dataclasses.replace(p.model, backbone="mobilenet_v3_small", frozen_bn=False, freeze_at=0,
                                  pixel_mean=ModelConfig.pixel_mean, pixel_std=ModelConfig.pixel_std)
    p.train = dataclasses.replace(p.train, backbone_lr_multiplier=1.0, min_sizes=(160, 192, 224),
                                  eval_every=1000, checkpoint_every=500, keep_checkpoints=3, backbone_weights="")
    p.loss = dataclasses.replace(p.loss, video_mask_loss="per_tube")
    return p


def _r50() -> Preset:
    return Preset(ModelConfig(), LossConfig(), TrainConfig(), InferConfig())


def _swinl() -> Preset:
    model = ModelConfig(backbone="swin_l", frozen_bn=False, num_frame_queries=200, num_video_queries=200)
    train = TrainConfig(num_frames=5, lr=5e-5, max_iters=140000, lr_steps=(75000,))
    return Preset(model, LossConfig(), train, InferConfig(short_side=448))


PRESETS = {"tiny": _tiny, "tiny_mobilenet": _tiny_mobilenet, "r50": _r50, "swinl": _swinl}


# The baselines' own training recipes (spec §12), as TrainConfig changes on top of a preset, per mode.
# "shared" (the default) trains every mode with the preset's SyncVIS recipe: same clips, batch and schedule, so a
# side-by-side comparison isolates the query design and the loss (the bundled models do this). "own" gives each
# baseline the recipe of the method it stands for:
#   video = Mask2Former-VIS: clips of T = 2 frames, 16 videos per batch, LR 1e-4, 6k iterations with the step at 4k,
#           short side {360, 480} (YTVIS19, spec §12a);
#   frame = MinVIS: single frames (T = 1), 32 images per batch (spec §12b), the preset's schedule.
# The tiny preset scales them to its budget: the same number of frames per step as its sync recipe (16).
BASELINE_RECIPES: dict[str, dict[str, dict[str, Any]]] = {
    "r50": {"video": {"num_frames": 2, "batch_size": 16, "lr": 1e-4, "max_iters": 6000, "lr_steps": (4000,),
                      "min_sizes": (360, 480)},
            "frame": {"num_frames": 1, "batch_size": 32}},
    "swinl": {"video": {"num_frames": 2, "batch_size": 16, "lr": 1e-4, "max_iters": 6000, "lr_steps": (4000,),
                        "min_sizes": (360, 480)},
              "frame": {"num_frames": 1, "batch_size": 32}},
    "tiny": {"video": {"num_frames": 2, "batch_size": 8}, "frame": {"num_frames": 1, "batch_size": 16}},
}
BASELINE_RECIPES["tiny_mobilenet"] = BASELINE_RECIPES["tiny"]
RECIPES = ("shared", "own")


def preset(name: str, mode: Mode | None = None, recipe: str = "shared") -> Preset:
    """A fresh copy of a named preset, optionally with the mode changed; `recipe="own"` gives a baseline mode
    (video, frame) its own method's training recipe (BASELINE_RECIPES) instead of SyncVIS's."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    p = PRESETS[name]()
    if mode is not None:
        p.model.mode = mode
    if recipe == "own":
        p.train = dataclasses.replace(p.train, **BASELINE_RECIPES.get(name, {}).get(p.model.mode, {}))
    return p


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(cls: type, data: dict) -> Any:
    """Rebuild a (nested) dataclass from `to_dict` output; unknown keys are an error so stale checkpoints say so."""
    kwargs = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in data.items():
        if key not in fields:
            raise KeyError(f"unknown {cls.__name__} field {key!r}")
        ftype = fields[key].type
        sub = {"SyncConfig": SyncConfig}.get(ftype if isinstance(ftype, str) else getattr(ftype, "__name__", ""))
        if sub is not None and isinstance(value, dict):
            value = from_dict(sub, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)
