"""SyncVIS network (design R-A): output interface, mode reductions, masked-attention rule, gradients,
deformable attention against a direct computation, and the official parameter layout of spec §10."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from engine.config import ModelConfig, SyncConfig, preset
from engine.model import SyncVIS, build_model
from engine.model.backbone import build_backbone, d2_resnet_key, official_swin_key
from engine.model.ms_deform_attn import MSDeformAttn, ms_deform_attn_core
from engine.model.position_encoding import PositionEmbeddingSine, PositionEmbeddingSine3D
from engine.model.sync_decoder import attention_mask


def _cfg(mode: str = "sync", **kw) -> ModelConfig:
    cfg = preset("tiny", mode).model
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def _frames(b: int, t: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, t, 3, h, w, generator=g) * 255


def _model(mode: str = "sync", seed: int = 0, **kw) -> SyncVIS:
    torch.manual_seed(seed)
    return build_model(_cfg(mode, **kw)).eval()


# ---------------------------------------------------------------------------------------------- output shapes
@pytest.mark.parametrize("mode", ["sync", "video", "frame"])
@pytest.mark.parametrize("t", [1, 3])
def test_output_shapes_odd_sizes(mode, t):
    model = _model(mode)
    cfg = model.cfg
    b, h, w = 2, 97, 131
    hp, wp = 128, 160
    with torch.no_grad():
        out = model(_frames(b, t, h, w))
    k1, c, nv, nf = cfg.num_classes + 1, cfg.hidden_dim, cfg.num_video_queries, cfg.num_frame_queries
    assert out["padded_size"] == (hp, wp) and out["image_size"] == (h, w)
    assert "internals" not in out
    if mode == "frame":
        assert out["video"] is None
    else:
        assert out["video"]["logits"].shape == (b, nv, k1)
        assert out["video"]["masks"].shape == (b, nv, t, hp // 4, wp // 4)
        assert out["video"]["embeds"].shape == (b, nv, c)
    if mode == "video":
        assert out["frame"] is None
    else:
        assert out["frame"]["logits"].shape == (b, t, nf, k1)
        assert out["frame"]["masks"].shape == (b, t, nf, hp // 4, wp // 4)
        assert out["frame"]["embeds"].shape == (b, t, nf, c)
    assert len(out["aux"]) == cfg.dec_layers
    for aux in out["aux"]:
        assert set(aux) == {"video", "frame"}
        for kind in ("video", "frame"):
            ref = out[kind]
            if ref is None:
                assert aux[kind] is None
                continue
            assert set(aux[kind]) == {"logits", "masks"}
            assert aux[kind]["logits"].shape == ref["logits"].shape
            assert aux[kind]["masks"].shape == ref["masks"].shape
    for kind in ("video", "frame"):
        if out[kind] is not None:
            assert all(torch.isfinite(v).all() for v in out[kind].values())


def test_projections_when_widths_differ():
    """conv_dim != hidden_dim adds the predictor's 1x1 input projections; mask_dim is free as well."""
    model = _model("sync", conv_dim=32, hidden_dim=64, mask_dim=48)
    assert all(isinstance(p, nn.Conv2d) for p in model.sem_seg_head.predictor.input_proj)
    assert model.sem_seg_head.pixel_decoder.mask_features.out_channels == 48
    with torch.no_grad():
        out = model(_frames(1, 2, 70, 50))
    assert out["video"]["masks"].shape == (1, 16, 2, 24, 16)
    assert out["frame"]["embeds"].shape == (1, 2, 16, 64)


def test_embeds_are_decoder_norm_outputs():
    """Embeds are LayerNorm-ed (affine at init is identity): zero mean, unit variance over channels."""
    model = _model("sync")
    with torch.no_grad():
        out = model(_frames(1, 2, 64, 96))
    for e in (out["video"]["embeds"], out["frame"]["embeds"]):
        assert torch.allclose(e.mean(-1), torch.zeros(()), atol=1e-5)
        assert torch.allclose(e.var(-1, unbiased=False), torch.ones(()), atol=1e-3)


def test_preprocess_normalises_and_pads_bottom_right():
    model = _model("frame")
    frames = _frames(1, 2, 33, 65)
    x, padded = model.preprocess(frames)
    assert padded == (64, 96) and x.shape == (2, 3, 64, 96)
    mean = torch.tensor(model.cfg.pixel_mean).view(3, 1, 1)
    std = torch.tensor(model.cfg.pixel_std).view(3, 1, 1)
    assert torch.allclose(x[1, :, :33, :65], (frames[0, 1] - mean) / std, atol=1e-5)
    assert x[:, :, 33:].abs().sum() == 0 and x[:, :, :, 65:].abs().sum() == 0
    assert "pixel_mean" not in model.state_dict()  # non-persistent buffers
    with pytest.raises(ValueError):
        model(torch.rand(2, 3, 64, 64))


# ---------------------------------------------------------------------------------------- mode equivalences
def _same_weights(mode: str, src: SyncVIS, **kw) -> SyncVIS:
    model = build_model(_cfg(mode, **kw)).eval()
    model.load_state_dict(src.state_dict())
    return model


def test_momentum_zero_reduces_to_video_and_frame_modes():
    torch.manual_seed(0)
    sync = build_model(_cfg("sync", sync=SyncConfig(top_k=4, momentum=0.0))).eval()
    video = _same_weights("video", sync)
    frame = _same_weights("frame", sync)
    frames = _frames(1, 3, 64, 96)
    with torch.no_grad():
        out_s, out_v, out_f = sync(frames), video(frames), frame(frames)
    for key in ("logits", "masks", "embeds"):
        assert torch.allclose(out_s["video"][key], out_v["video"][key], atol=1e-6)
        assert torch.allclose(out_s["frame"][key], out_f["frame"][key], atol=1e-6)
    for a_s, a_v, a_f in zip(out_s["aux"], out_v["aux"], out_f["aux"], strict=False):
        assert torch.allclose(a_s["video"]["masks"], a_v["video"]["masks"], atol=1e-6)
        assert torch.allclose(a_s["frame"]["logits"], a_f["frame"]["logits"], atol=1e-6)


def test_positive_momentum_changes_both_query_sets():
    torch.manual_seed(0)
    sync0 = build_model(_cfg("sync", sync=SyncConfig(top_k=4, momentum=0.0))).eval()
    sync = _same_weights("sync", sync0, sync=SyncConfig(top_k=4, momentum=0.3))
    frames = _frames(1, 3, 64, 96)
    with torch.no_grad():
        a, b = sync0(frames), sync(frames)
    assert not torch.allclose(a["video"]["embeds"], b["video"]["embeds"], atol=1e-4)
    assert not torch.allclose(a["frame"]["embeds"], b["frame"]["embeds"], atol=1e-4)
    # the initial prediction (before any layer) does not depend on the synchronisation
    assert torch.equal(a["aux"][0]["video"]["logits"], b["aux"][0]["video"]["logits"])


def test_sync_order_flag_matters():
    torch.manual_seed(0)
    fig = build_model(_cfg("sync", sync=SyncConfig(top_k=4, momentum=0.5))).eval()
    code = _same_weights("sync", fig, sync=SyncConfig(top_k=4, momentum=0.5, order="video_first"))
    frames = _frames(1, 2, 64, 96)
    with torch.no_grad():
        assert not torch.allclose(fig(frames)["video"]["embeds"], code(frames)["video"]["embeds"], atol=1e-5)


def test_frame_mode_treats_frames_independently():
    """Frame mode is per-frame Mask2Former: a frame's output does not depend on the clip's other frames."""
    model = _model("frame")
    frames = _frames(1, 3, 64, 96)
    with torch.no_grad():
        clip = model(frames)["frame"]
        single = model(frames[:, 1:2])["frame"]
    assert torch.allclose(clip["masks"][:, 1:2], single["masks"], atol=1e-4)
    assert torch.allclose(clip["logits"][:, 1:2], single["logits"], atol=1e-5)


def test_batch_entries_are_independent_in_sync_mode():
    model = _model("sync")
    frames = torch.cat([_frames(1, 2, 64, 96, seed=1), _frames(1, 2, 64, 96, seed=2)])
    with torch.no_grad():
        both = model(frames)
        second = model(frames[1:])
    assert torch.allclose(both["video"]["masks"][1:], second["video"]["masks"], atol=1e-4)
    assert torch.allclose(both["frame"]["logits"][1:], second["frame"]["logits"], atol=1e-5)


# ---------------------------------------------------------------------------------------- masked attention
def test_attention_mask_rule_frame_layout():
    logits = torch.full((1, 3, 8, 8), -5.0)
    logits[0, 1, :4, :4] = 5.0  # top-left quadrant
    logits[0, 2, 0, 0] = 5.0  # a single stride-4 pixel: vanishes at 2x2 resolution
    mask = attention_mask(logits, (2, 2), nheads=2)
    assert mask.shape == (2, 3, 4) and mask.dtype == torch.bool
    assert torch.equal(mask[0], mask[1])  # repeated over heads
    assert not mask[0, 0].any()  # empty everywhere -> attends everywhere
    assert mask[0, 1].tolist() == [False, True, True, True]  # only the top-left cell is open
    assert not mask[0, 2].any()  # emptied by resizing -> unblocked too


def test_attention_mask_threshold_is_sigmoid_half():
    logits = torch.tensor([[[[0.0, -1e-3], [1e-3, 2.0]]]])
    mask = attention_mask(logits, (2, 2), nheads=1)
    assert mask[0, 0].tolist() == [False, True, False, False]  # sigmoid(0) = 0.5 is not < 0.5


def test_attention_mask_tube_layout_is_frame_major():
    logits = torch.full((2, 2, 3, 4, 4), -1.0)  # (B, Q, T, h, w)
    logits[1, 0, 2] = 1.0  # video 1, query 0: only frame 2 on
    logits[0, 1, 0, :2] = 1.0  # video 0, query 1: top half of frame 0
    mask = attention_mask(logits, (2, 2), nheads=3)
    assert mask.shape == (2 * 3, 2, 3 * 4)
    open_ = ~mask.view(2, 3, 2, 3, 4)
    assert open_[1, :, 0, 2].all() and not open_[1, :, 0, :2].any()
    assert open_[0, :, 1, 0, :2].all() and not open_[0, :, 1, 0, 2:].any() and not open_[0, :, 1, 1:].any()
    assert open_[0, :, 0].all()  # empty tube -> whole clip


def test_empty_query_attends_like_unmasked_attention():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2)
    logits = torch.full((1, 2, 4, 4), -3.0)
    logits[0, 1, 2:, 2:] = 3.0
    mask = attention_mask(logits, (4, 4), nheads=2)
    q, kv = torch.randn(2, 1, 8), torch.randn(16, 1, 8)
    masked = mha(q, kv, kv, attn_mask=mask)[0]
    free = mha(q, kv, kv)[0]
    assert torch.isfinite(masked).all()
    assert torch.allclose(masked[0], free[0], atol=1e-6)
    assert not torch.allclose(masked[1], free[1], atol=1e-4)


# ------------------------------------------------------------------------------------------------ gradients
_EXPECTED_UNUSED = {
    "sync": set(),
    "video": {"query_feat", "query_embed", "sync_attn", "phi_frame", "phi_video"},
    "frame": {"query_feat1", "query_embed1", "sync_attn", "phi_frame", "phi_video"},
}


@pytest.mark.parametrize("mode", ["sync", "video", "frame"])
def test_gradients_reach_every_used_parameter(mode):
    torch.manual_seed(0)
    model = build_model(_cfg(mode, dec_layers=3, freeze_at=0)).train()   # freeze_at: tests/test_backbone_*
    # Deformable DETR starts with zero weights from the query to the offsets and attention logits, so at exact
    # initialisation the encoder's position terms (level_embed) get no gradient; one optimiser step fixes it.
    with torch.no_grad():
        for layer in model.sem_seg_head.pixel_decoder.transformer.encoder.layers:
            layer.self_attn.sampling_offsets.weight.normal_(0, 0.01)
            layer.self_attn.attention_weights.weight.normal_(0, 0.01)
    out = model(_frames(1, 2, 64, 96))
    preds = [out["video"], out["frame"]] + [a[k] for a in out["aux"] for k in ("video", "frame")]
    loss = sum((v.float() ** 2).mean() for p in preds if p is not None for v in p.values())
    loss.backward()
    unused = {n.split(".")[2] for n in model.unused_parameter_names()}
    assert unused == _EXPECTED_UNUSED[mode]
    for name, p in model.named_parameters():
        if name in model.unused_parameter_names():
            assert not p.requires_grad and p.grad is None, name
            continue
        assert p.requires_grad, name
        assert p.grad is not None, f"{name} got no gradient in {mode} mode"
        assert p.grad.abs().sum() > 0, f"{name} got a zero gradient in {mode} mode"
    assert model.num_parameters(trainable_only=True) == model.num_parameters() - sum(
        p.numel() for n, p in model.named_parameters() if n in model.unused_parameter_names()
    )


# ------------------------------------------------------------------------------------------------ internals
def test_internals_shapes_and_no_effect_on_outputs():
    model = _model("sync")
    cfg = model.cfg
    b, t, k = 2, 3, cfg.sync.top_k
    frames = _frames(b, t, 64, 96)
    with torch.no_grad():
        plain = model(frames)
        out = model(frames, return_internals=True)
    ints = out["internals"]
    nl, nf, nv, k1 = cfg.dec_layers, cfg.num_frame_queries, cfg.num_video_queries, cfg.num_classes + 1
    assert ints["frame_probs"].shape == (nl + 1, b, t, nf, k1)
    assert ints["video_probs"].shape == (nl + 1, b, nv, k1)
    assert ints["f2v_selected"].shape == (nl, b, t, k)
    assert ints["f2v_weights"].shape == (nl, b, nv, t * k)
    assert ints["v2f_selected"].shape == (nl, b, k)
    assert ints["v2f_weights"].shape == (nl, b, t, nf, k)
    assert all(not v.requires_grad for v in ints.values())
    assert torch.allclose(ints["f2v_weights"].sum(-1), torch.ones(()), atol=1e-5)
    assert torch.allclose(ints["v2f_weights"].sum(-1), torch.ones(()), atol=1e-5)
    assert torch.allclose(ints["video_probs"][-1], out["video"]["logits"].softmax(-1))
    assert torch.allclose(ints["frame_probs"][0], out["aux"][0]["frame"]["logits"].softmax(-1))
    # the selected video queries are the most confident ones of the state they were selected from
    assert int(ints["v2f_selected"].max()) < nv and int(ints["f2v_selected"].max()) < nf
    for kind in ("video", "frame"):
        for key in ("logits", "masks", "embeds"):
            assert torch.equal(plain[kind][key], out[kind][key])


@pytest.mark.parametrize("selection", ["top2_sum", "max_prob"])
def test_selection_picks_the_most_confident_queries(selection):
    """Selections are read off the provisional class probabilities of the state each direction sees: frame
    queries after the layer (f2v), video queries after their own update (v2f, figure order)."""
    torch.manual_seed(0)
    sync = SyncConfig(top_k=3, momentum=0.2, selection=selection)
    model = build_model(_cfg("sync", dec_layers=1, sync=sync)).eval()
    pred = model.sem_seg_head.predictor
    seen = {}
    f2v, v2f = pred._frame_to_video, pred._video_to_frame

    def spy_f2v(xf, xv, b, t, want):
        seen["f2v"] = xf
        return f2v(xf, xv, b, t, want)

    def spy_v2f(xf, xv, b, t, want):
        seen["v2f"] = xv
        return v2f(xf, xv, b, t, want)

    pred._frame_to_video, pred._video_to_frame = spy_f2v, spy_v2f
    with torch.no_grad():
        ints = model(_frames(1, 2, 64, 96), return_internals=True)["internals"]

    def expected(state):
        probs = pred.class_embed(pred.decoder_norm(state)).softmax(-1)[..., :-1]  # (Q, N, K)
        conf = probs.topk(2, dim=-1).values.sum(-1) if selection == "top2_sum" else probs.max(-1).values
        return conf.transpose(0, 1).topk(3, dim=1).indices  # (N, 3)

    assert torch.equal(ints["f2v_selected"][0], expected(seen["f2v"]).view(1, 2, 3))
    assert torch.equal(ints["v2f_selected"][0], expected(seen["v2f"]))


# ------------------------------------------------------------------------------------- deformable attention
def _bilinear_zero_pad(img: torch.Tensor, x: float, y: float) -> torch.Tensor:
    """img (D, H, W); (x, y) normalised with cell centres at (i + 0.5) / size; zeros outside."""
    d, h, w = img.shape
    px, py = x * w - 0.5, y * h - 0.5
    x0, y0 = math.floor(px), math.floor(py)
    out = torch.zeros(d, dtype=img.dtype)
    for yy in (y0, y0 + 1):
        for xx in (x0, x0 + 1):
            wgt = (1 - abs(px - xx)) * (1 - abs(py - yy))
            if 0 <= xx < w and 0 <= yy < h:
                out += wgt * img[:, yy, xx]
    return out


def _deform_reference(value, shapes, locations, weights):
    n, _, m, d = value.shape
    _, lq, _, nl, npts, _ = locations.shape
    starts = [0]
    for h, w in shapes:
        starts.append(starts[-1] + h * w)
    out = torch.zeros(n, lq, m, d, dtype=value.dtype)
    for b in range(n):
        for q in range(lq):
            for head in range(m):
                for lvl, (h, w) in enumerate(shapes):
                    img = value[b, starts[lvl] : starts[lvl + 1], head].T.reshape(d, h, w)
                    for p in range(npts):
                        x, y = locations[b, q, head, lvl, p].tolist()
                        out[b, q, head] += weights[b, q, head, lvl, p] * _bilinear_zero_pad(img, x, y)
    return out.reshape(n, lq, m * d)


def test_deformable_core_matches_direct_bilinear_sampling():
    g = torch.Generator().manual_seed(3)
    shapes = [(3, 4), (2, 5), (1, 1)]
    n, lq, m, d, p = 2, 5, 2, 3, 2
    value = torch.randn(n, sum(h * w for h, w in shapes), m, d, generator=g, dtype=torch.float64)
    locations = torch.rand(n, lq, m, len(shapes), p, 2, generator=g, dtype=torch.float64) * 1.4 - 0.2
    weights = torch.rand(n, lq, m, len(shapes), p, generator=g, dtype=torch.float64)
    weights = weights / weights.sum((-1, -2), keepdim=True)
    got = ms_deform_attn_core(value, shapes, locations, weights)
    ref = _deform_reference(value, shapes, locations, weights)
    assert torch.allclose(got, ref, atol=1e-10)


def test_msdeformattn_module_composes_projections_offsets_and_softmax():
    torch.manual_seed(0)
    attn = MSDeformAttn(d_model=8, n_levels=2, n_heads=2, n_points=3).double()
    with torch.no_grad():  # non-trivial offsets and attention
        attn.sampling_offsets.weight.normal_(0, 0.5)
        attn.attention_weights.weight.normal_(0, 0.5)
    shapes = [(4, 3), (2, 2)]
    src = torch.randn(1, 16, 8, dtype=torch.float64)
    query = torch.randn(1, 4, 8, dtype=torch.float64)
    ref_pts = torch.rand(1, 4, 2, 2, dtype=torch.float64)
    got = attn(query, ref_pts, src, shapes)
    value = attn.value_proj(src).view(1, 16, 2, 4)
    offsets = attn.sampling_offsets(query).view(1, 4, 2, 2, 3, 2)
    loc = torch.empty_like(offsets)
    for lvl, (h, w) in enumerate(shapes):
        loc[:, :, :, lvl, :, 0] = ref_pts[:, :, None, lvl, None, 0] + offsets[:, :, :, lvl, :, 0] / w
        loc[:, :, :, lvl, :, 1] = ref_pts[:, :, None, lvl, None, 1] + offsets[:, :, :, lvl, :, 1] / h
    wts = attn.attention_weights(query).view(1, 4, 2, 6).softmax(-1).view(1, 4, 2, 2, 3)
    ref = attn.output_proj(_deform_reference(value, shapes, loc, wts))
    assert torch.allclose(got, ref, atol=1e-10)


def test_msdeformattn_initial_offsets_form_a_ring():
    attn = MSDeformAttn(d_model=16, n_levels=3, n_heads=8, n_points=4)
    bias = attn.sampling_offsets.bias.view(8, 3, 4, 2)
    assert torch.allclose(bias[0, 0, :, 0], torch.tensor([1.0, 2.0, 3.0, 4.0]))  # head 0 points along +x
    assert torch.allclose(bias[:, 1], bias[:, 0])  # same for every level
    assert attn.attention_weights.weight.abs().sum() == 0


# ------------------------------------------------------------------------------------------ position codes
def test_sine_position_encodings():
    pe = PositionEmbeddingSine(4)(3, 5, torch.device("cpu"))
    assert pe.shape == (8, 3, 5)
    y = (torch.arange(3) + 1) / 3 * 2 * math.pi
    assert torch.allclose(pe[0, :, 0], torch.sin(y), atol=1e-5)  # y block first
    assert torch.allclose(pe[3, :, 0], torch.cos(y / 100.0), atol=1e-5)  # 10000 ** (2 * 1 / 4)
    assert torch.allclose(pe[4, 0], torch.sin((torch.arange(5) + 1) / 5 * 2 * math.pi), atol=1e-5)
    pe3 = PositionEmbeddingSine3D(4)(3, 2, 2, torch.device("cpu"))
    assert pe3.shape == (3, 8, 2, 2)
    delta = pe3[2] - pe3[0]  # temporal code only: constant over space
    assert torch.allclose(delta, delta[:, :1, :1].expand_as(delta), atol=1e-5)
    z = torch.tensor([1.0, 3.0]) / 3 * 2 * math.pi
    assert torch.allclose(delta[0, 0, 0], torch.sin(z[1]) - torch.sin(z[0]), atol=1e-5)


# ------------------------------------------------------------------------------------- sizes and layout
def test_tiny_preset_is_small():
    for mode in ("sync", "video", "frame"):
        model = build_model(preset("tiny", mode).model)
        assert model.num_parameters() <= 6_000_000


# Spec §10.2 / §10.3 with R-50, Q = 100, K = 40: the official pixel decoder has 6,035,904 elements and the R-B
# predictor 18,040,105; R-A drops the unused query_feat2..5 (4 x 100 x 256) and FFN_1 (1,051,392).
R50_PIXEL_DECODER = 6_035_904
R50_PREDICTOR_RA = 18_040_105 - 4 * 100 * 256 - (256 * 2048 + 2048 + 2048 * 256 + 256 + 2 * 256)


def _official_ra_predictor_shapes(c=256, f=2048, q=100, k=40, layers=9) -> dict[str, tuple]:
    def attn(prefix):
        return {
            f"{prefix}.in_proj_weight": (3 * c, c),
            f"{prefix}.in_proj_bias": (3 * c,),
            f"{prefix}.out_proj.weight": (c, c),
            f"{prefix}.out_proj.bias": (c,),
        }

    def ffn(prefix):
        return {
            f"{prefix}.linear1.weight": (f, c),
            f"{prefix}.linear1.bias": (f,),
            f"{prefix}.linear2.weight": (c, f),
            f"{prefix}.linear2.bias": (c,),
            f"{prefix}.norm.weight": (c,),
            f"{prefix}.norm.bias": (c,),
        }

    s: dict[str, tuple] = {}
    for i in range(layers):
        s.update(attn(f"transformer_self_attention_layers.{i}.self_attn"))
        s.update(
            {
                f"transformer_self_attention_layers.{i}.norm.weight": (c,),
                f"transformer_self_attention_layers.{i}.norm.bias": (c,),
            }
        )
        s.update(attn(f"transformer_cross_attention_layers.{i}.multihead_attn"))
        s.update(
            {
                f"transformer_cross_attention_layers.{i}.norm.weight": (c,),
                f"transformer_cross_attention_layers.{i}.norm.bias": (c,),
            }
        )
        s.update(ffn(f"transformer_ffn_layers.{i}"))
    s.update(ffn("phi_frame"))
    s.update(ffn("phi_video"))
    s.update(attn("sync_attn"))
    s.update(
        {
            "decoder_norm.weight": (c,),
            "decoder_norm.bias": (c,),
            "level_embed.weight": (3, c),
            "class_embed.weight": (k + 1, c),
            "class_embed.bias": (k + 1,),
        }
    )
    for name in ("query_feat", "query_embed", "query_feat1", "query_embed1"):
        s[f"{name}.weight"] = (q, c)
    for i, out in enumerate((c, c, 256)):
        s[f"mask_embed.layers.{i}.weight"] = (out, c)
        s[f"mask_embed.layers.{i}.bias"] = (out,)
    return s


def _official_pixel_decoder_shapes(c=256, chans=(2048, 1024, 512, 256)) -> dict[str, tuple]:
    s: dict[str, tuple] = {}
    for i, cin in enumerate(chans[:3]):
        s.update(
            {
                f"input_proj.{i}.0.weight": (c, cin, 1, 1),
                f"input_proj.{i}.0.bias": (c,),
                f"input_proj.{i}.1.weight": (c,),
                f"input_proj.{i}.1.bias": (c,),
            }
        )
    s["transformer.level_embed"] = (3, c)
    for i in range(6):
        p = f"transformer.encoder.layers.{i}."
        s.update(
            {
                p + "self_attn.sampling_offsets.weight": (192, c),
                p + "self_attn.sampling_offsets.bias": (192,),
                p + "self_attn.attention_weights.weight": (96, c),
                p + "self_attn.attention_weights.bias": (96,),
                p + "self_attn.value_proj.weight": (c, c),
                p + "self_attn.value_proj.bias": (c,),
                p + "self_attn.output_proj.weight": (c, c),
                p + "self_attn.output_proj.bias": (c,),
                p + "norm1.weight": (c,),
                p + "norm1.bias": (c,),
                p + "norm2.weight": (c,),
                p + "norm2.bias": (c,),
                p + "linear1.weight": (1024, c),
                p + "linear1.bias": (1024,),
                p + "linear2.weight": (c, 1024),
                p + "linear2.bias": (c,),
            }
        )
    s.update(
        {
            "mask_features.weight": (256, c, 1, 1),
            "mask_features.bias": (256,),
            "adapter_1.weight": (c, chans[3], 1, 1),
            "adapter_1.norm.weight": (c,),
            "adapter_1.norm.bias": (c,),
            "layer_1.weight": (c, c, 3, 3),
            "layer_1.norm.weight": (c,),
            "layer_1.norm.bias": (c,),
        }
    )
    return s


@pytest.fixture(scope="module")
def r50() -> SyncVIS:
    torch.manual_seed(0)
    return build_model(preset("r50").model).eval()


def test_r50_parameter_counts_and_official_layout(r50):
    head = r50.sem_seg_head
    assert sum(p.numel() for p in head.pixel_decoder.parameters()) == R50_PIXEL_DECODER
    assert sum(p.numel() for p in head.predictor.parameters()) == R50_PREDICTOR_RA == 16_886_313
    assert sum(p.numel() for p in r50.backbone.parameters()) == 23_454_912  # trunk convs; frozen BN = buffers
    pd = {k: tuple(v.shape) for k, v in head.pixel_decoder.state_dict().items()}
    assert pd == _official_pixel_decoder_shapes()
    pr = {k: tuple(v.shape) for k, v in head.predictor.state_dict().items()}
    assert pr == _official_ra_predictor_shapes()
    assert r50.num_parameters() == 23_454_912 + R50_PIXEL_DECODER + R50_PREDICTOR_RA


def test_r50_runs_with_frozen_batchnorm(r50):
    from torchvision.ops.misc import FrozenBatchNorm2d

    assert any(isinstance(m, FrozenBatchNorm2d) for m in r50.backbone.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in r50.backbone.modules())
    with torch.no_grad():
        out = r50(_frames(1, 2, 40, 70))
    assert out["video"]["masks"].shape == (1, 100, 2, 16, 24)
    assert out["frame"]["logits"].shape == (1, 2, 100, 41)


def test_detectron2_resnet_names_map_onto_the_backbone():
    backbone = build_backbone("resnet50", frozen_bn=True)
    ours = set(backbone.state_dict())
    d2 = ["stem.conv1.weight"] + [
        f"stem.conv1.norm.{s}" for s in ("weight", "bias", "running_mean", "running_var")
    ]
    for stage, blocks in zip(range(2, 6), (3, 4, 6, 3), strict=False):
        for b in range(blocks):
            convs = ["conv1", "conv2", "conv3"] + (["shortcut"] if b == 0 else [])
            for conv in convs:
                d2.append(f"res{stage}.{b}.{conv}.weight")
                d2 += [
                    f"res{stage}.{b}.{conv}.norm.{s}"
                    for s in ("weight", "bias", "running_mean", "running_var")
                ]
    mapped = [d2_resnet_key(k) for k in d2]
    assert len(set(mapped)) == len(d2) and set(mapped) == ours
    assert d2_resnet_key("res3.0.shortcut.norm.bias") == "layer2.0.downsample.1.bias"


def test_backbone_strides_and_bad_names():
    for name in (preset("tiny").model.backbone, "mobilenet_v3_small"):
        backbone = build_backbone(name, frozen_bn=False).eval()
        with torch.no_grad():
            feats = backbone(torch.zeros(1, 3, 64, 96))
        assert backbone.strides == {"res2": 4, "res3": 8, "res4": 16, "res5": 32}
        for key, stride in backbone.strides.items():
            assert feats[key].shape == (1, backbone.out_channels[key], 64 // stride, 96 // stride)
    # the first bundled models' trunk: trainable BN that settles quickly
    norms = [m for m in backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(m.momentum == 0.1 and m.eps == 1e-3 for m in norms)
    with pytest.raises(ValueError):
        build_model(_cfg("sync", backbone="vgg_nope"))
    with pytest.raises(ValueError):
        build_model(_cfg("both"))


def test_swin_backbone_feeds_the_model():
    """swin_t stands in for swin_l (same code path, smaller): channels-first maps at strides 4..32."""
    backbone = build_backbone("swin_t").eval()
    assert backbone.out_channels == {"res2": 96, "res3": 192, "res4": 384, "res5": 768}
    assert all(hasattr(backbone, f"norm{i}") for i in range(4))
    model = _model("sync", backbone="swin_t")
    with torch.no_grad():
        out = model(_frames(1, 2, 64, 96))
    assert out["video"]["masks"].shape == (1, 16, 2, 16, 24)


def test_official_swin_names_map_onto_the_backbone():
    backbone = build_backbone("swin_t")
    ours = set(backbone.state_dict())
    official = [f"patch_embed.{m}.{p}" for m in ("proj", "norm") for p in ("weight", "bias")]
    official += [f"norm{i}.{p}" for i in range(4) for p in ("weight", "bias")]
    block = [
        "norm1.weight",
        "norm1.bias",
        "attn.relative_position_bias_table",
        "attn.relative_position_index",
        "attn.qkv.weight",
        "attn.qkv.bias",
        "attn.proj.weight",
        "attn.proj.bias",
        "norm2.weight",
        "norm2.bias",
        "mlp.fc1.weight",
        "mlp.fc1.bias",
        "mlp.fc2.weight",
        "mlp.fc2.bias",
    ]
    for i, depth in enumerate((2, 2, 6, 2)):
        official += [f"layers.{i}.blocks.{j}.{name}" for j in range(depth) for name in block]
        if i < 3:
            official += [
                f"layers.{i}.downsample.{n}" for n in ("reduction.weight", "norm.weight", "norm.bias")
            ]
    mapped = [official_swin_key(k) for k in official]
    assert len(set(mapped)) == len(official) and set(mapped) == ours


def test_swin_l_pixel_decoder_layout():
    """Spec §10.2 with Swin-L channels (1536/768/384/192): same key set, input projections sized per level."""
    from engine.model.pixel_decoder import MSDeformAttnPixelDecoder

    chans = {"res2": 192, "res3": 384, "res4": 768, "res5": 1536}
    pd = MSDeformAttnPixelDecoder(chans)
    shapes = {k: tuple(v.shape) for k, v in pd.state_dict().items()}
    assert shapes == _official_pixel_decoder_shapes(chans=(1536, 768, 384, 192))


def test_model_copies_keep_config():
    model = _model("video")
    clone = copy.deepcopy(model)
    assert clone.cfg == model.cfg and clone.mode == "video"
