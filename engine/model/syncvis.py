"""SyncVIS (design R-A): backbone -> pixel decoder -> synchronized video/frame query decoder (spec §1-§3).

`model(frames)` takes a clip batch (B, T, 3, H, W) of RGB values on the 0-255 scale and returns the dict
described in `SyncVIS.forward`; that dict is the interface of the criterion, training and inference.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.config import ModelConfig

from .backbone import build_backbone
from .pixel_decoder import MSDeformAttnPixelDecoder
from .sync_decoder import SyncDecoder

# parameters (name prefixes under sem_seg_head.predictor.) that a mode does not use
_UNUSED = {
    "sync": (),
    "video": ("query_feat.", "query_embed.", "sync_attn.", "phi_frame.", "phi_video."),
    "frame": ("query_feat1.", "query_embed1.", "sync_attn.", "phi_frame.", "phi_video."),
}


class SemSegHead(nn.Module):
    """Container only, so parameter names match the official `sem_seg_head.{pixel_decoder,predictor}`."""

    def __init__(self, pixel_decoder: MSDeformAttnPixelDecoder, predictor: SyncDecoder):
        super().__init__()
        self.pixel_decoder = pixel_decoder
        self.predictor = predictor


class SyncVIS(nn.Module):
    """`pretrained` starts the trunk from its packaged ImageNet weights (a fresh training run); a model that is
    about to receive a checkpoint's weights is built without, so opening a checkpoint reads one file."""

    def __init__(self, cfg: ModelConfig, pretrained: bool = False):
        super().__init__()
        if cfg.mode not in _UNUSED:
            raise ValueError(f"unknown model mode {cfg.mode!r}; choose sync, video or frame")
        if cfg.hidden_dim % cfg.nheads or cfg.conv_dim % cfg.nheads:
            raise ValueError("hidden_dim and conv_dim must be divisible by nheads")
        self.cfg = cfg
        self._mode = cfg.mode
        self.backbone = build_backbone(cfg.backbone, cfg.frozen_bn, pretrained, cfg.freeze_at)
        pixel_decoder = MSDeformAttnPixelDecoder(
            self.backbone.out_channels,
            cfg.conv_dim,
            cfg.mask_dim,
            cfg.nheads,
            cfg.enc_layers,
            cfg.enc_dim_feedforward,
            cfg.enc_n_points,
        )
        self.sem_seg_head = SemSegHead(pixel_decoder, SyncDecoder(cfg, cfg.conv_dim))
        self.register_buffer("pixel_mean", torch.tensor(cfg.pixel_mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg.pixel_std).view(-1, 1, 1), persistent=False)
        # Parameters of the other query set / the sync step stay in the model (one checkpoint for all modes)
        # but are frozen when the mode does not use them, so optimisers and gradient checks skip them.
        unused = set(self.unused_parameter_names())
        for name, p in self.named_parameters():
            if name in unused:
                p.requires_grad_(False)

    @property
    def mode(self) -> str:
        """sync, video or frame; fixed when the model is built (build another model to change it)."""
        return self._mode

    def unused_parameter_names(self) -> list[str]:
        """Names of parameters that the model's mode never touches (frozen at construction)."""
        prefixes = tuple("sem_seg_head.predictor." + p for p in _UNUSED[self._mode])
        return [n for n, _ in self.named_parameters() if prefixes and n.startswith(prefixes)]

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def preprocess(self, frames: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """(B, T, 3, H, W) 0-255 RGB -> normalised, zero-padded (B*T, 3, Hp, Wp); Hp, Wp multiples of 32."""
        if frames.dim() != 5 or frames.shape[2] != 3:
            raise ValueError(f"frames must be (B, T, 3, H, W), got {tuple(frames.shape)}")
        if not frames.is_floating_point():
            frames = frames.float()
        b, t, _, h, w = frames.shape
        if b < 1 or t < 1 or h < 1 or w < 1:
            raise ValueError(f"empty clip batch {tuple(frames.shape)}")
        x = (frames.flatten(0, 1) - self.pixel_mean) / self.pixel_std
        div = self.cfg.size_divisibility
        hp, wp = -(-h // div) * div, -(-w // div) * div
        if (hp, wp) != (h, w):
            x = F.pad(x, (0, wp - w, 0, hp - h), value=0.0)
        return x, (hp, wp)

    def forward(self, frames: torch.Tensor, return_internals: bool = False) -> dict[str, Any]:
        """Predictions for a batch of clips.

        Returns {"video", "frame", "aux", "padded_size", "image_size"[, "internals"]}:
          video: {"logits": (B, Nv, K+1), "masks": (B, Nv, T, h, w), "embeds": (B, Nv, C)}
                 (None in frame mode)
          frame: {"logits": (B, T, Nf, K+1), "masks": (B, T, Nf, h, w), "embeds": (B, T, Nf, C)}
                 (None in video mode)
          aux: dec_layers dicts {"video": {logits, masks} | None, "frame": {logits, masks} | None},
               the initial prediction first.
          Masks are logits at stride 4 of the padded size (h = Hp / 4, w = Wp / 4); embeds are the final
          query states after decoder_norm.
          internals (only if asked, detached; entries that a mode lacks are None):
               frame_probs (L+1, B, T, Nf, K+1), video_probs (L+1, B, Nv, K+1),
               f2v_selected (L, B, T, N_k), f2v_weights (L, B, Nv, T*N_k) (keys frame-major: t * N_k + j),
               v2f_selected (L, B, N_k), v2f_weights (L, B, T, Nf, N_k).
        """
        b, t, _, h, w = frames.shape
        x, padded = self.preprocess(frames)
        features = self.backbone(x)
        mask_features, multi_scale = self.sem_seg_head.pixel_decoder(features)
        out = self.sem_seg_head.predictor(multi_scale, mask_features, b, t, return_internals)
        out["padded_size"] = padded
        out["image_size"] = (h, w)
        return out


def build_model(cfg: ModelConfig, pretrained: bool = False) -> SyncVIS:
    return SyncVIS(cfg, pretrained)
