"""The synchronized masked-attention decoder of SyncVIS, design R-A (spec §2.4, §3).

Two query sets run through the same Mask2Former decoder layers: frame-level queries (one set per frame,
attending to that frame with a 2-D position code) and video-level queries (one set per video, attending to all
frames of the clip with a 3-D code). After every layer the sets exchange information: each takes the N_k most
confident embeddings of the other as keys/values of one shared attention (`sync_attn`), queried through an FFN
transform of itself (`phi_video` / `phi_frame`), and moves towards the result with momentum lambda. With
lambda = 0, or with one set switched off (`mode` video / frame), the decoder is exactly Mask2Former-VIS /
per-frame Mask2Former.

Attribute names follow the official predictor (spec §10.3) except the sync modules, which the checkpoint
loader maps (multi_attn -> sync_attn, FFN_2 -> phi_frame, FFN_3 -> phi_video).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.config import ModelConfig

from .position_encoding import PositionEmbeddingSine, PositionEmbeddingSine3D


class SelfAttentionLayer(nn.Module):
    """Post-norm: x = norm(x + MHA(q = k = x + pos, v = x))."""

    def __init__(self, d_model: int, nhead: int):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=0.0)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tgt: torch.Tensor, query_pos: torch.Tensor) -> torch.Tensor:
        q = tgt + query_pos
        return self.norm(tgt + self.self_attn(q, q, tgt, need_weights=False)[0])


class CrossAttentionLayer(nn.Module):
    """Post-norm: x = norm(x + MHA(q = x + pos, k = memory + memory_pos, v = memory, mask))."""

    def __init__(self, d_model: int, nhead: int):
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=0.0)
        self.norm = nn.LayerNorm(d_model)

    def forward(
        self,
        tgt: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attn_mask: torch.Tensor | None,
        query_pos: torch.Tensor,
    ) -> torch.Tensor:
        """`key` already holds memory + memory_pos (computed once per level and forward)."""
        out = self.multihead_attn(tgt + query_pos, key, value, attn_mask=attn_mask, need_weights=False)[0]
        return self.norm(tgt + out)


class FFNLayer(nn.Module):
    """Post-norm: x = norm(x + linear2(relu(linear1(x))))."""

    def __init__(self, d_model: int, dim_feedforward: int):
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tgt: torch.Tensor) -> torch.Tensor:
        return self.norm(tgt + self.linear2(F.relu(self.linear1(tgt))))


class MLP(nn.Module):
    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int):
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(
            nn.Linear(i, o) for i, o in zip(dims, dims[1:] + [output_dim], strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


def _xavier(module: nn.Module) -> None:
    for p in module.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)


def attention_mask(mask_logits: torch.Tensor, size: tuple[int, int], nheads: int) -> torch.Tensor:
    """Mask2Former's masked-attention rule as a boolean mask for `nn.MultiheadAttention` (True = blocked).

    mask_logits: (N, Q, h, w) per frame or (N, Q, T, h, w) per video tube. Logits are resized bilinearly
    (align_corners False) to `size`; a key is blocked where sigmoid < 0.5 (logit < 0); a query whose row
    would be blocked everywhere (empty predicted mask at that level) is unblocked entirely. Returns
    (N * nheads, Q, S) with S = [T *] size[0] * size[1], detached, rows repeated over heads (head-major within
    each batch element).
    """
    n, q = mask_logits.shape[:2]
    x = mask_logits.detach().flatten(1, -3)  # (N, Q*[T], h, w)
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    blocked = x.reshape(n, q, -1) < 0
    blocked = blocked & ~blocked.all(-1, keepdim=True)
    return blocked[:, None].expand(n, nheads, q, blocked.shape[-1]).reshape(n * nheads, q, -1)


class SyncDecoder(nn.Module):
    """`sem_seg_head.predictor`: synchronized video/frame-level query decoder and its shared heads."""

    def __init__(self, cfg: ModelConfig, in_channels: int):
        super().__init__()
        self.cfg = cfg
        self.mode = cfg.mode
        self.use_frame = cfg.mode in ("sync", "frame")
        self.use_video = cfg.mode in ("sync", "video")
        c, self.nheads, self.num_layers = cfg.hidden_dim, cfg.nheads, cfg.dec_layers
        self.num_feature_levels = 3
        self.pe_layer = PositionEmbeddingSine(c // 2)
        self.pe_layer_3d = PositionEmbeddingSine3D(c // 2)
        self.transformer_self_attention_layers = nn.ModuleList()
        self.transformer_cross_attention_layers = nn.ModuleList()
        self.transformer_ffn_layers = nn.ModuleList()
        for _ in range(self.num_layers):
            self.transformer_self_attention_layers.append(SelfAttentionLayer(c, cfg.nheads))
            self.transformer_cross_attention_layers.append(CrossAttentionLayer(c, cfg.nheads))
            self.transformer_ffn_layers.append(FFNLayer(c, cfg.dim_feedforward))
        self.decoder_norm = nn.LayerNorm(c)
        # Frame-level queries (official `query_feat`/`query_embed`) and video-level queries (`query_feat1`/
        # `query_embed1`) exist in every mode, so one checkpoint serves all three views (SyncVIS freezes the
        # unused ones, see unused_parameter_names).
        self.query_feat = nn.Embedding(cfg.num_frame_queries, c)
        self.query_embed = nn.Embedding(cfg.num_frame_queries, c)
        self.query_feat1 = nn.Embedding(cfg.num_video_queries, c)
        self.query_embed1 = nn.Embedding(cfg.num_video_queries, c)
        self.level_embed = nn.Embedding(self.num_feature_levels, c)
        self.input_proj = nn.ModuleList()
        for _ in range(self.num_feature_levels):
            if in_channels != c:
                proj = nn.Conv2d(in_channels, c, kernel_size=1)
                nn.init.kaiming_uniform_(proj.weight, a=1)
                nn.init.constant_(proj.bias, 0)
                self.input_proj.append(proj)
            else:
                self.input_proj.append(nn.Sequential())
        self.class_embed = nn.Linear(c, cfg.num_classes + 1)
        self.mask_embed = MLP(c, c, cfg.mask_dim, 3)
        # synchronization (spec §3.2 steps 3-4): one attention for both directions, one FFN per direction
        self.sync_attn = nn.MultiheadAttention(c, cfg.nheads, dropout=0.0)
        self.phi_frame = FFNLayer(c, cfg.dim_feedforward)
        self.phi_video = FFNLayer(c, cfg.dim_feedforward)
        for m in (
            *self.transformer_self_attention_layers,
            *self.transformer_cross_attention_layers,
            *self.transformer_ffn_layers,
            self.sync_attn,
            self.phi_frame,
            self.phi_video,
        ):
            _xavier(m)

    # ------------------------------------------------------------------------------------------------ heads
    def _class_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(Q, N, C) states -> (N, Q, K+1) logits, without masks (cheap; used for selection)."""
        return self.class_embed(self.decoder_norm(x)).transpose(0, 1)

    def _heads(self, x: torch.Tensor, mask_features: torch.Tensor, tube: tuple[int, int, int] | None):
        """(Q, N, C) -> normalised embeds (N, Q, C), logits (N, Q, K+1), masks (N, Q, [T,] h, w).

        `tube` is None for per-frame states (N = B*T, mask_features (B*T, M, h, w)), else (T, h, w) for
        per-video states (N = B, mask_features pre-arranged by `_video_mask_features` as (B, M, T*h*w)).
        """
        embeds = self.decoder_norm(x).transpose(0, 1)
        logits = self.class_embed(embeds)
        mask_embed = self.mask_embed(embeds)
        if tube is None:
            n, m, h, w = mask_features.shape
            masks = torch.bmm(mask_embed, mask_features.view(n, m, h * w)).view(n, -1, h, w)
        else:
            masks = torch.bmm(mask_embed, mask_features).view(*mask_embed.shape[:2], *tube)
        return embeds, logits, masks

    def _video_mask_features(self, mask_features: torch.Tensor, b: int, t: int) -> torch.Tensor:
        """(B*T, M, h, w) -> (B, M, T*h*w), once per forward, so every tube head is a single bmm."""
        _, m, h, w = mask_features.shape
        return mask_features.view(b, t, m, h * w).transpose(1, 2).reshape(b, m, t * h * w)

    # ------------------------------------------------------------------------------------- synchronization
    def _confidence(self, logits: torch.Tensor) -> torch.Tensor:
        """(N, Q, K+1) -> (N, Q): sum of the two largest foreground probabilities (or the largest one)."""
        probs = logits.softmax(-1)[..., :-1]
        if self.cfg.sync.selection == "max_prob":
            return probs.max(-1).values
        if self.cfg.sync.selection == "top2_sum":
            return probs.topk(min(2, probs.shape[-1]), dim=-1).values.sum(-1)
        raise ValueError(f"unknown sync selection {self.cfg.sync.selection!r}")

    def _select(self, x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The k most confident embeddings per batch entry: (Q, N, C) -> indices (N, k), states (N, k, C).

        The indices are not differentiable; the gathered states are not detached, so gradients reach them.
        """
        with torch.no_grad():
            idx = self._confidence(self._class_logits(x)).topk(k, dim=1).indices
        states = torch.gather(x.transpose(0, 1), 1, idx[..., None].expand(-1, -1, x.shape[-1]))
        return idx, states

    def _sync_attend(self, query: torch.Tensor, keys: torch.Tensor, want: bool):
        """sync_attn(query, keys, keys). The head-averaged weights come from a second, detached call so that
        asking for them never changes the output (the weight-returning kernel rounds differently)."""
        agg = self.sync_attn(query, keys, keys, need_weights=False)[0]
        weights = None
        if want:
            with torch.no_grad():
                weights = self.sync_attn(query, keys, keys, need_weights=True, average_attn_weights=True)[1]
        return agg, weights

    def _frame_to_video(self, xf, xv, b: int, t: int, want: bool):
        """Video queries absorb the top-N_k frame embeddings of every frame of their clip (T * N_k keys)."""
        k = min(self.cfg.sync.top_k, xf.shape[0])
        idx, sel = self._select(xf, k)  # (B*T, k), (B*T, k, C)
        keys = sel.reshape(b, t * k, -1).transpose(0, 1)  # (T*k, B, C), frame-major
        query = self.phi_video(xv)
        agg, weights = self._sync_attend(query, keys, want)
        lam = self.cfg.sync.momentum
        xv = (1.0 - lam) * xv + lam * agg
        info = (idx.view(b, t, k), weights) if want else None  # weights (B, Nv, T*k)
        return xv, info

    def _video_to_frame(self, xf, xv, b: int, t: int, want: bool):
        """Frame queries absorb the top-N_k video embeddings of their video."""
        k = min(self.cfg.sync.top_k, xv.shape[0])
        idx, sel = self._select(xv, k)  # (B, k), (B, k, C)
        keys = sel.repeat_interleave(t, dim=0).transpose(0, 1)  # (k, B*T, C)
        query = self.phi_frame(xf)
        agg, weights = self._sync_attend(query, keys, want)
        lam = self.cfg.sync.momentum
        xf = (1.0 - lam) * xf + lam * agg
        info = (idx, weights.view(b, t, xf.shape[0], k)) if want else None  # weights (B, T, Nf, k)
        return xf, info

    # --------------------------------------------------------------------------------------------- forward
    def _memories(self, features: list[torch.Tensor], b: int, t: int):
        """Per level: frame (key, value) (HW, B*T, C) and video (key, value) (T*HW, B, C); keys include PE."""
        frame_mem, video_mem, sizes = [], [], []
        for lvl in range(self.num_feature_levels):
            f = self.input_proj[lvl](features[lvl])
            bt, c, h, w = f.shape
            sizes.append((h, w))
            src = f.flatten(2) + self.level_embed.weight[lvl][None, :, None]  # (B*T, C, HW)
            if self.use_frame:
                value = src.permute(2, 0, 1)  # (HW, B*T, C)
                pos = self.pe_layer(h, w, f.device, f.dtype).flatten(1).transpose(0, 1)[:, None]
                frame_mem.append((value + pos, value))
            if self.use_video:
                value = src.view(b, t, c, h * w).permute(1, 3, 0, 2).reshape(t * h * w, b, c)
                pos = (
                    self.pe_layer_3d(t, h, w, f.device, f.dtype).permute(0, 2, 3, 1).reshape(t * h * w, 1, c)
                )
                video_mem.append((value + pos, value))
        return frame_mem, video_mem, sizes

    def _layer(self, i: int, x: torch.Tensor, pos: torch.Tensor, memory, attn_mask) -> torch.Tensor:
        key, value = memory
        x = self.transformer_cross_attention_layers[i](x, key, value, attn_mask, pos)
        x = self.transformer_self_attention_layers[i](x, pos)
        return self.transformer_ffn_layers[i](x)

    def forward(
        self,
        features: list[torch.Tensor],
        mask_features: torch.Tensor,
        batch: int,
        frames: int,
        return_internals: bool = False,
    ) -> dict[str, Any]:
        """features: [stride 32, 16, 8] maps (B*T, C, H_l, W_l); mask_features (B*T, M, h, w)."""
        b, t = batch, frames
        bt = b * t
        frame_mem, video_mem, sizes = self._memories(features, b, t)
        video_mask_features = self._video_mask_features(mask_features, b, t) if self.use_video else None
        sync = self.use_frame and self.use_video
        xf = pf = xv = pv = None
        if self.use_frame:
            xf = self.query_feat.weight[:, None].expand(-1, bt, -1)
            pf = self.query_embed.weight[:, None].expand(-1, bt, -1)
        if self.use_video:
            xv = self.query_feat1.weight[:, None].expand(-1, b, -1)
            pv = self.query_embed1.weight[:, None].expand(-1, b, -1)

        preds: list[dict[str, Any]] = []
        internals: dict[str, list] = {
            k: [] for k in ("f2v_selected", "f2v_weights", "v2f_selected", "v2f_weights")
        }
        mask_f = mask_v = None

        def predict(level_next: int | None) -> None:
            nonlocal mask_f, mask_v
            p: dict[str, Any] = {"frame": None, "video": None}
            if self.use_frame:
                emb, logits, masks = self._heads(xf, mask_features, None)
                p["frame"] = {"embeds": emb, "logits": logits, "masks": masks}
                if level_next is not None:
                    mask_f = attention_mask(masks, sizes[level_next], self.nheads)
            if self.use_video:
                emb, logits, masks = self._heads(xv, video_mask_features, (t, *mask_features.shape[-2:]))
                p["video"] = {"embeds": emb, "logits": logits, "masks": masks}
                if level_next is not None:
                    mask_v = attention_mask(masks, sizes[level_next], self.nheads)
            preds.append(p)

        predict(0)
        for i in range(self.num_layers):
            lvl = i % self.num_feature_levels
            if self.use_frame:
                xf = self._layer(i, xf, pf, frame_mem[lvl], mask_f)
            if self.use_video:
                xv = self._layer(i, xv, pv, video_mem[lvl], mask_v)
            if sync:
                if self.cfg.sync.order == "frame_first":
                    xv, f2v = self._frame_to_video(xf, xv, b, t, return_internals)
                    xf, v2f = self._video_to_frame(xf, xv, b, t, return_internals)
                elif self.cfg.sync.order == "video_first":
                    xf, v2f = self._video_to_frame(xf, xv, b, t, return_internals)
                    xv, f2v = self._frame_to_video(xf, xv, b, t, return_internals)
                else:
                    raise ValueError(f"unknown sync order {self.cfg.sync.order!r}")
                if return_internals:
                    internals["f2v_selected"].append(f2v[0])
                    internals["f2v_weights"].append(f2v[1])
                    internals["v2f_selected"].append(v2f[0])
                    internals["v2f_weights"].append(v2f[1])
            last = i == self.num_layers - 1
            predict(None if last else (i + 1) % self.num_feature_levels)

        return self._format(preds, internals if (return_internals and sync) else None, b, t, return_internals)

    def _format(self, preds, internals, b: int, t: int, return_internals: bool) -> dict[str, Any]:
        def frame_view(p, with_embeds):
            if p is None:
                return None
            out = {"logits": p["logits"].unflatten(0, (b, t)), "masks": p["masks"].unflatten(0, (b, t))}
            if with_embeds:
                out["embeds"] = p["embeds"].unflatten(0, (b, t))
            return out

        def video_view(p, with_embeds):
            if p is None:
                return None
            out = {"logits": p["logits"], "masks": p["masks"]}
            if with_embeds:
                out["embeds"] = p["embeds"]
            return out

        final = preds[-1]
        out: dict[str, Any] = {
            "video": video_view(final["video"], True),
            "frame": frame_view(final["frame"], True),
            "aux": [
                {"video": video_view(p["video"], False), "frame": frame_view(p["frame"], False)}
                for p in preds[:-1]
            ],
        }
        if return_internals:
            out["internals"] = self._internals(preds, internals, b, t)
        return out

    def _internals(self, preds, internals, b: int, t: int) -> dict[str, torch.Tensor | None]:
        """Detached per-layer diagnostics; entries of an absent query set or of the sync step are None."""
        res: dict[str, torch.Tensor | None] = {}
        res["frame_probs"] = (
            torch.stack([p["frame"]["logits"].softmax(-1) for p in preds]).unflatten(1, (b, t)).detach()
            if self.use_frame
            else None
        )
        res["video_probs"] = (
            torch.stack([p["video"]["logits"].softmax(-1) for p in preds]).detach()
            if self.use_video
            else None
        )
        for key in ("f2v_selected", "f2v_weights", "v2f_selected", "v2f_weights"):
            res[key] = torch.stack(internals[key]).detach() if internals and internals[key] else None
        return res
