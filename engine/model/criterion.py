"""Training objective of SyncVIS and its two baselines (spec §4, §5, §12).

* frame term L_f: every frame of every video is an independent image (Mask2Former / MinVIS training);
* video term: the video-level predictions are matched and supervised on short sub-clips ("synchronized
  embedding optimization": short assignments are easier while the video queries still see the whole clip),
  with the video-level class logits shared by all sub-clips; optionally also on the whole clip;
* mode `sync` = L_f + L_clip, mode `video` = whole-clip tube loss only (Mask2Former-VIS), mode `frame` = L_f.

Every term is CE (all queries, no-object weight 0.1) + BCE + dice on importance-sampled points,
deep-supervised on all prediction sets. A matched tube of T' frames contributes its T' frame masks (points drawn
per frame; BCE mean over each frame's points, BCE and dice summed over frames), divided by the number of GT
tubes, as Mask2Former-VIS and VITA do (`LossConfig.video_mask_loss = "per_frame"`); "per_tube" is the older
reduction over all T'·P points of the tube together. The returned dict holds already-weighted terms; its sum is the
training loss.
Key names: `loss_{ce|mask|dice}_{frame|video|sub<s>}` for the final prediction set, with `_<i>` appended for
the earlier (auxiliary) set i. Terms run in the order frame, sub-clips, whole clip (one RNG stream).
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from engine.config import LossConfig
from engine.model.matcher import HungarianMatcher
from engine.model.point_sampling import get_uncertain_point_coords_with_randomness, point_sample

MODES = ("sync", "video", "frame")


def subclip_windows(num_frames: int, length: int, stride: int = 1) -> list[list[int]]:
    """Sliding windows of `length` frames every `stride` frames; a last window is added at the end when the
    stride would skip the tail, and a clip shorter than `length` is one window."""
    if length < 1 or stride < 1:
        raise ValueError(f"sub-clip length and stride must be >= 1, got {length}, {stride}")
    if num_frames <= length:
        return [list(range(num_frames))]
    starts = list(range(0, num_frames - length + 1, stride))
    if starts[-1] != num_frames - length:
        starts.append(num_frames - length)
    return [list(range(s, s + length)) for s in starts]


def subclip_weights(loss_cfg: LossConfig, num_windows: int) -> list[float]:
    weights = loss_cfg.subclip_weights
    if weights == "uniform":
        return [1.0 / num_windows] * num_windows
    weights = [float(w) for w in weights]
    if len(weights) != num_windows:
        raise ValueError(f"subclip_weights has {len(weights)} entries but the clip gives {num_windows} "
                         "sub-clips")
    return weights


def sigmoid_bce_loss(inputs: Tensor, targets: Tensor, num_masks: float) -> Tensor:
    """Per-mask mean BCE over its points, summed over masks, / num_masks."""
    loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    return loss.mean(1).sum() / num_masks


def dice_loss(inputs: Tensor, targets: Tensor, num_masks: float) -> Tensor:
    """Per-mask 1 - (2·Σσ(x)y + 1) / (Σσ(x) + Σy + 1), summed over masks, / num_masks."""
    probs = inputs.sigmoid()
    numerator = 2.0 * (probs * targets).sum(-1)
    denominator = probs.sum(-1) + targets.sum(-1)
    return (1.0 - (numerator + 1.0) / (denominator + 1.0)).sum() / num_masks


def _pad_masks(masks: Tensor, padded_size: tuple[int, int]) -> Tensor:
    """(N, T, H, W) bool/uint8 -> float32 zero-padded bottom/right to the padded input size."""
    hp, wp = padded_size
    h, w = masks.shape[-2:]
    if h > hp or w > wp:
        raise ValueError(f"target masks are {h}x{w} but the padded input is only {hp}x{wp}")
    masks = masks.to(torch.float32)
    if (h, w) != (hp, wp):
        masks = F.pad(masks, (0, wp - w, 0, hp - h))
    return masks


def prepare_targets(targets: list[dict], padded_size: tuple[int, int], num_frames: int,
                    device: torch.device | str | None = None) -> list[dict]:
    """Tube targets per video (spec §5): padded float masks (N, T, Hp, Wp); instances empty in every frame are
    removed; "present" (N, T) says where each instance is visible."""
    out = []
    for i, tgt in enumerate(targets):
        masks = torch.as_tensor(tgt["masks"])
        labels = torch.as_tensor(tgt["labels"], dtype=torch.int64)
        if masks.dim() != 4 or masks.shape[0] != labels.shape[0]:
            raise ValueError(f"target {i}: masks must be (N, T, H, W) with N = len(labels), got "
                             f"{tuple(masks.shape)} for {labels.shape[0]} labels")
        if masks.shape[1] != num_frames:
            raise ValueError(f"target {i} has {masks.shape[1]} frames but the prediction has {num_frames}")
        if device is not None:
            masks, labels = masks.to(device), labels.to(device)
        masks = _pad_masks(masks, padded_size)
        present = masks.flatten(2).amax(2) > 0                      # (N, T)
        keep = present.any(1)
        item = {"labels": labels[keep], "masks": masks[keep], "present": present[keep]}
        if "ids" in tgt and tgt["ids"] is not None:
            ids = torch.as_tensor(tgt["ids"]).to(labels.device)
            if ids.shape != labels.shape:
                raise ValueError(f"target {i}: {ids.shape[0]} ids for {labels.shape[0]} labels")
            item["ids"] = ids[keep]
        out.append(item)
    return out


def frame_targets(tubes: list[dict]) -> list[dict]:
    """One target per (video, frame), videos outer: the instances visible in that frame, masks (N_t, 1, Hp,
    Wp)."""
    out = []
    for tube in tubes:
        for t in range(tube["masks"].shape[1]):
            keep = tube["present"][:, t]
            out.append({"labels": tube["labels"][keep], "masks": tube["masks"][keep, t:t + 1]})
    return out


def window_targets(tubes: list[dict], frames: list[int]) -> list[dict]:
    """GT tubes restricted to `frames`; instances absent in every frame of the window are dropped."""
    out = []
    for tube in tubes:
        keep = tube["present"][:, frames].any(1)
        out.append({"labels": tube["labels"][keep], "masks": tube["masks"][keep][:, frames]})
    return out


class SetCriterion(nn.Module):
    """Hungarian-matched CE + BCE + dice over every prediction set; see the module docstring for the terms."""

    def __init__(self, loss_cfg: LossConfig, num_classes: int, mode: str = "sync"):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        self.cfg = loss_cfg
        self.num_classes = num_classes
        self.mode = mode
        self.matcher = HungarianMatcher(loss_cfg.class_weight, loss_cfg.mask_weight, loss_cfg.dice_weight,
                                        loss_cfg.num_points)
        empty_weight = torch.ones(num_classes + 1)
        empty_weight[-1] = loss_cfg.no_object_weight
        self.register_buffer("empty_weight", empty_weight, persistent=False)
        self.generator: torch.Generator | None = None   # RNG of all point draws; None = torch's global RNG
        self.last_stats: dict[str, float] = {}

    # ------------------------------------------------------------------ public
    def forward(self, outputs: dict, targets: list[dict]) -> dict[str, Tensor]:
        """Weighted loss terms of one step; `sum(losses.values())` is the loss to back-propagate.

        Also fills `self.last_stats` (floats for logging): GT counts used for normalisation, number of matched
        predictions and class accuracy of the matched final-layer predictions, per term.
        """
        tubes, num_frames = self._tubes(outputs, targets)
        plan = self._plan(tubes, num_frames)
        device = tubes[0]["masks"].device if tubes else "cpu"
        counts = self._reduce_counts([num for _, _, _, num in plan], device)

        losses: dict[str, Tensor] = {}
        self.last_stats = {}
        for (term, frames, weight, _), num_masks in zip(plan, counts, strict=True):
            kind = "frame" if term == "frame" else "video"
            sets = self._prediction_sets(outputs, kind)
            if term == "frame":
                tgts = frame_targets(tubes)
            elif frames is None:
                tgts = [{"labels": t["labels"], "masks": t["masks"]} for t in tubes]
            else:
                tgts = window_targets(tubes, frames)
            for i, pred in enumerate(sets):
                logits, masks = self._flatten(pred, kind, frames)
                suffix = term if i == len(sets) - 1 else f"{term}_{i}"
                final = i == len(sets) - 1
                terms, stats = self._set_losses(logits, masks, tgts, num_masks, want_stats=final)
                losses[f"loss_ce_{suffix}"] = terms["ce"] * (self.cfg.class_weight * weight)
                losses[f"loss_mask_{suffix}"] = terms["mask"] * (self.cfg.mask_weight * weight)
                losses[f"loss_dice_{suffix}"] = terms["dice"] * (self.cfg.dice_weight * weight)
                if final:
                    self.last_stats[f"num_masks_{term}"] = num_masks
                    self.last_stats[f"matched_{term}"] = stats["matched"]
                    self.last_stats[f"cls_acc_{term}"] = stats["cls_acc"]
        return losses

    def windows(self, num_frames: int) -> list[list[int]]:
        """The sub-clips of a clip of `num_frames` frames under this config."""
        return subclip_windows(num_frames, self.cfg.subclip_len, self.cfg.subclip_stride)

    # ------------------------------------------------------------------ internals
    def _tubes(self, outputs: dict, targets: list[dict]) -> tuple[list[dict], int]:
        need = {"frame": ("frame",), "video": ("video",), "sync": ("frame", "video")}[self.mode]
        for kind in need:
            if outputs.get(kind) is None:
                raise ValueError(f"mode {self.mode!r} needs outputs[{kind!r}] but the model returned None")
        if self.mode == "frame":
            b, num_frames = outputs["frame"]["logits"].shape[:2]
            device = outputs["frame"]["masks"].device
        else:
            b, _, num_frames = outputs["video"]["masks"].shape[:3]
            device = outputs["video"]["masks"].device
        if len(targets) != b:
            raise ValueError(f"{len(targets)} targets for a batch of {b} videos")
        return prepare_targets(targets, tuple(outputs["padded_size"]), num_frames, device), num_frames

    def _plan(self, tubes: list[dict], num_frames: int) -> list[tuple[str, list[int] | None, float, float]]:
        """(term, frames or None for the whole clip, weight, local GT count) for every term of this mode."""
        plan = []
        if self.mode in ("sync", "frame"):
            plan.append(("frame", None, 1.0, float(sum(int(t["present"].sum()) for t in tubes))))
        if self.mode == "sync":
            windows = self.windows(num_frames)
            weights = subclip_weights(self.cfg, len(windows))
            for s, (frames, w) in enumerate(zip(windows, weights, strict=True)):
                count = sum(int(t["present"][:, frames].any(1).sum()) for t in tubes)
                plan.append((f"sub{s}", frames, w, float(count)))
        if self.mode == "video" or (self.mode == "sync" and self.cfg.full_clip_term):
            plan.append(("video", None, 1.0, float(sum(len(t["labels"]) for t in tubes))))
        return plan

    @staticmethod
    def _reduce_counts(counts: list[float], device) -> list[float]:
        """num_masks per term, averaged over DDP ranks (one all-reduce for all terms), clamped to >= 1."""
        t = torch.tensor(counts, dtype=torch.float32, device=device)   # small integers: exact in float32
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(t)
            t = t / dist.get_world_size()
        return [max(float(v), 1.0) for v in t.tolist()]

    def _prediction_sets(self, outputs: dict, kind: str) -> list[dict]:
        """Aux sets (earliest first) then the final set; just the final one without deep supervision."""
        sets = []
        if self.cfg.deep_supervision:
            for i, aux in enumerate(outputs.get("aux") or []):
                if aux.get(kind) is None:
                    raise ValueError(f"outputs['aux'][{i}][{kind!r}] is None")
                sets.append(aux[kind])
        sets.append(outputs[kind])
        return sets

    @staticmethod
    def _flatten(pred: dict, kind: str, frames: list[int] | None) -> tuple[Tensor, Tensor]:
        """-> logits (B', Q, K+1), masks (B', Q, T', h, w): frames become images, tubes are cut."""
        logits, masks = pred["logits"], pred["masks"]
        if kind == "frame":                                     # (B, T, Q, K+1), (B, T, Q, h, w)
            return logits.flatten(0, 1), masks.flatten(0, 1).unsqueeze(2)
        if frames is not None:                                  # video tubes (B, Q, T, h, w)
            masks = masks[:, :, frames]
        return logits, masks

    def _set_losses(self, logits: Tensor, masks: Tensor, targets: list[dict],
                    num_masks: float, want_stats: bool = False) -> tuple[dict[str, Tensor], dict[str, float]]:
        indices = self.matcher(logits, masks, targets, generator=self.generator)
        device = logits.device
        batch_idx = torch.cat([torch.full_like(src, b) for b, (src, _) in enumerate(indices)]).to(device)
        src_idx = torch.cat([src for src, _ in indices]).to(logits.device)

        # classification: every query, unmatched ones -> no-object (index K), weighted mean
        target_classes = torch.full(logits.shape[:2], self.num_classes, dtype=torch.int64, device=device)
        matched_labels = torch.cat([t["labels"][tgt] for t, (_, tgt) in zip(targets, indices, strict=True)])
        matched_labels = matched_labels.to(device)
        target_classes[batch_idx, src_idx] = matched_labels
        logits32 = logits.float()
        loss_ce = F.cross_entropy(logits32.transpose(1, 2), target_classes,
                                  weight=self.empty_weight.to(logits.device))

        # masks: importance-sampled points per frame, T'·P values per matched tube
        num_matched = int(src_idx.numel())
        if num_matched == 0:
            zero = masks.sum() * 0.0
            loss_mask, loss_dice = zero, zero
        else:
            src = masks[batch_idx, src_idx].float()                                   # (M, T', h, w)
            tgt = torch.cat([t["masks"][j] for t, (_, j) in zip(targets, indices, strict=True)])
            tgt = tgt.to(src.device)
            m, t_len = src.shape[:2]
            src_frames = src.flatten(0, 1).unsqueeze(1)                              # (M·T', 1, h, w)
            with torch.no_grad():
                coords = get_uncertain_point_coords_with_randomness(
                    src_frames, self.cfg.num_points, self.cfg.oversample_ratio,
                    self.cfg.importance_sample_ratio, generator=self.generator)
                tgt_pts = point_sample(tgt.float().flatten(0, 1).unsqueeze(1), coords)
                tgt_pts = tgt_pts.reshape(m, t_len * coords.shape[1])
            src_pts = point_sample(src_frames, coords).reshape(m, t_len * coords.shape[1])
            if self.cfg.video_mask_loss == "per_frame":     # each frame of a tube is a mask of its own
                src_pts, tgt_pts = src_pts.reshape(m * t_len, -1), tgt_pts.reshape(m * t_len, -1)
            elif self.cfg.video_mask_loss != "per_tube":
                raise ValueError(f"unknown video_mask_loss {self.cfg.video_mask_loss!r}; per_frame or per_tube")
            loss_mask = sigmoid_bce_loss(src_pts, tgt_pts, num_masks)
            loss_dice = dice_loss(src_pts, tgt_pts, num_masks)

        acc = 0.0
        if want_stats and num_matched:      # .item() syncs a GPU: only for the final prediction set
            with torch.no_grad():
                acc = (logits32[batch_idx, src_idx].argmax(-1) == matched_labels).float().mean().item()
        return {"ce": loss_ce, "mask": loss_mask, "dice": loss_dice}, {"matched": float(num_matched),
                                                                      "cls_acc": acc}
