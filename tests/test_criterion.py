"""SetCriterion: terms per mode, sub-clip bookkeeping, hand-checked CE/BCE/dice, sub-clip == whole clip."""
from __future__ import annotations

import math

import pytest
import torch

from engine.config import LossConfig
from engine.model.criterion import (
    SetCriterion,
    dice_loss,
    frame_targets,
    prepare_targets,
    sigmoid_bce_loss,
    subclip_windows,
    window_targets,
)

B, T, Q, K = 2, 4, 5, 3
HP, WP = 32, 48          # padded input; predictions at stride 4
IMG = (30, 44)           # unpadded input


def _outputs(seed: int, n_aux: int = 9, t: int = T, with_frame: bool = True, with_video: bool = True) -> dict:
    g = torch.Generator().manual_seed(seed)

    def pred(video: bool):
        if video:
            return {"logits": torch.randn(B, Q, K + 1, generator=g).requires_grad_(),
                    "masks": (3 * torch.randn(B, Q, t, HP // 4, WP // 4, generator=g)).requires_grad_()}
        return {"logits": torch.randn(B, t, Q, K + 1, generator=g).requires_grad_(),
                "masks": (3 * torch.randn(B, t, Q, HP // 4, WP // 4, generator=g)).requires_grad_()}

    def one():
        return {"video": pred(True) if with_video else None, "frame": pred(False) if with_frame else None}

    out = one()
    out["aux"] = [one() for _ in range(n_aux)]
    out["padded_size"] = (HP, WP)
    out["image_size"] = IMG
    return out


def _targets(t: int = T) -> list[dict]:
    out = []
    for b in range(B):
        m = torch.zeros(3, t, *IMG, dtype=torch.uint8)
        m[0, :, 2:12, 3:20] = 1                        # visible throughout
        m[1, 1:min(3, t), 15:28, 20 + b:40] = 1        # frames 1-2 only
        m[2, t - 1, 5:9, 30:36] = 1                    # last frame only
        out.append({"labels": torch.tensor([0, 2, 1]), "masks": m, "ids": torch.tensor([7, 8, 9])})
    return out


def _cfg(**kw) -> LossConfig:
    return LossConfig(num_points=64, **kw)


def test_subclip_windows():
    assert subclip_windows(4, 2, 1) == [[0, 1], [1, 2], [2, 3]]
    assert subclip_windows(5, 2, 2) == [[0, 1], [2, 3], [3, 4]]          # tail window added
    assert subclip_windows(3, 3, 1) == [[0, 1, 2]]
    assert subclip_windows(1, 2, 1) == [[0]]                              # T < T_s: whole clip
    with pytest.raises(ValueError):
        subclip_windows(4, 0, 1)


def test_target_preparation_pads_drops_and_restricts():
    tg = _targets()
    empty = torch.zeros(1, T, *IMG, dtype=torch.uint8)
    tg[0]["masks"] = torch.cat([tg[0]["masks"], empty])
    tg[0]["labels"] = torch.tensor([0, 2, 1, 1])
    tg[0]["ids"] = torch.tensor([7, 8, 9, 10])
    tubes = prepare_targets(tg, (HP, WP), T)
    assert tubes[0]["masks"].shape == (3, T, HP, WP) and tubes[0]["masks"].dtype == torch.float32
    assert tubes[0]["labels"].tolist() == [0, 2, 1] and tubes[0]["ids"].tolist() == [7, 8, 9]
    assert float(tubes[0]["masks"][:, :, IMG[0]:].sum()) == 0
    assert float(tubes[0]["masks"][:, :, :, IMG[1]:].sum()) == 0
    frames = frame_targets(tubes)
    assert len(frames) == B * T
    assert [f["labels"].tolist() for f in frames[:T]] == [[0], [0, 2], [0, 2], [0, 1]]
    assert frames[1]["masks"].shape == (2, 1, HP, WP)
    sub = window_targets(tubes, [0, 1])
    assert sub[0]["labels"].tolist() == [0, 2] and sub[0]["masks"].shape == (2, 2, HP, WP)
    with pytest.raises(ValueError, match="frames"):
        prepare_targets(_targets(t=3), (HP, WP), T)


@pytest.mark.parametrize("mode,full_clip,expected", [
    ("sync", False, 3 * (10 + 10 * 3)),      # 10 frame sets + 10 video sets x 3 sub-clips, 3 terms each
    ("sync", True, 3 * (10 + 10 * 3 + 10)),  # + 10 whole-clip sets
    ("video", False, 3 * 10),
    ("frame", False, 3 * 10),
])
def test_number_of_supervised_prediction_sets(mode, full_clip, expected):
    crit = SetCriterion(_cfg(full_clip_term=full_clip), K, mode)
    losses = crit(_outputs(0), _targets())
    assert len(losses) == expected
    sets = {k.split("_", 2)[2] for k in losses}
    assert len(sets) == expected // 3
    for kind in ("ce", "mask", "dice"):
        assert sum(k.startswith(f"loss_{kind}_") for k in losses) == expected // 3
    if mode == "sync":
        assert {"loss_ce_frame", "loss_dice_sub0", "loss_mask_sub2_8", "loss_ce_frame_0"} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()


def test_without_deep_supervision_only_final_sets():
    crit = SetCriterion(_cfg(deep_supervision=False), K, "sync")
    losses = crit(_outputs(0), _targets())
    assert sorted(losses) == sorted(f"loss_{k}_{t}" for k in ("ce", "mask", "dice")
                                    for t in ("frame", "sub0", "sub1", "sub2"))


def test_subclip_loss_with_one_full_window_equals_whole_clip_loss():
    """T_s = T gives one window; with the same point draws it equals the Mask2Former-VIS whole-clip loss,
    and the sync total is then exactly L_f + L_video."""
    out, tg = _outputs(1), _targets()
    sync = SetCriterion(_cfg(subclip_len=T), K, "sync")
    sync.generator = torch.Generator().manual_seed(11)
    s = sync(out, tg)

    gen = torch.Generator().manual_seed(11)     # sync runs L_f first, then the video term: replay that order
    frame = SetCriterion(_cfg(), K, "frame")
    frame.generator = gen
    f = frame(out, tg)
    video = SetCriterion(_cfg(), K, "video")
    video.generator = gen
    v = video(out, tg)

    assert len(s) == len(f) + len(v) == 60
    for key, value in v.items():
        torch.testing.assert_close(s[key.replace("_video", "_sub0")], value)
    for key, value in f.items():
        torch.testing.assert_close(s[key], value)


def test_uniform_and_explicit_subclip_weights():
    out, tg = _outputs(2, n_aux=0), _targets()
    base = SetCriterion(_cfg(subclip_weights=(1.0, 1.0, 1.0)), K, "sync")
    base.generator = torch.Generator().manual_seed(0)
    lb = base(out, tg)
    uni = SetCriterion(_cfg(), K, "sync")
    uni.generator = torch.Generator().manual_seed(0)
    lu = uni(out, tg)
    for s in range(3):
        for kind in ("ce", "mask", "dice"):
            torch.testing.assert_close(lu[f"loss_{kind}_sub{s}"], lb[f"loss_{kind}_sub{s}"] / 3)
    torch.testing.assert_close(lu["loss_ce_frame"], lb["loss_ce_frame"])
    with pytest.raises(ValueError, match="sub-clips"):
        SetCriterion(_cfg(subclip_weights=(1.0, 1.0)), K, "sync")(out, tg)


def test_missing_branch_is_a_clear_error():
    with pytest.raises(ValueError, match="frame"):
        SetCriterion(_cfg(), K, "sync")(_outputs(0, n_aux=0, with_frame=False), _targets())
    with pytest.raises(ValueError, match="mode"):
        SetCriterion(_cfg(), K, "tube")


def test_ce_no_object_weighting_hand_checked():
    """One GT, three queries; query 1 is a perfect sharp mask with the right class, so it is the match."""
    k = 3
    logits = torch.tensor([[[0.5, 0.1, -0.3, 0.2], [0.0, 3.0, 0.0, 0.0], [1.0, 0.0, 0.0, 2.0]]])
    masks = torch.full((1, 3, 1, 4, 4), -20.0)
    masks[0, 1, 0, :2, :2] = 20.0
    gt = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
    gt[0, 0, :8, :8] = True
    out = {"video": {"logits": logits, "masks": masks}, "frame": None, "aux": [], "padded_size": (16, 16),
           "image_size": (16, 16)}
    crit = SetCriterion(LossConfig(num_points=256), k, "video")
    losses = crit(out, [{"labels": torch.tensor([1]), "masks": gt}])

    def nll(row, cls):
        e = [math.exp(v) for v in row]
        return -math.log(e[cls] / sum(e))

    rows = logits[0].tolist()
    num = 0.1 * nll(rows[0], 3) + 1.0 * nll(rows[1], 1) + 0.1 * nll(rows[2], 3)
    expected = num / (0.1 + 1.0 + 0.1)
    assert float(losses["loss_ce_video"]) == pytest.approx(2.0 * expected, rel=1e-5)
    assert crit.last_stats["matched_video"] == 1 and crit.last_stats["cls_acc_video"] == 1.0
    assert crit.last_stats["num_masks_video"] == 1


def test_bce_and_dice_functions_hand_checked():
    x = torch.tensor([[0.0, 0.0, 0.0, 0.0], [2.0, -2.0, 0.0, 1.0]])
    y = torch.tensor([[1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 1.0]])
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    bce_rows = [math.log(2.0),
                (-math.log(sig(2)) - math.log(1 - sig(-2)) + math.log(2.0) - math.log(sig(1))) / 4]
    assert float(sigmoid_bce_loss(x, y, 2.0)) == pytest.approx(sum(bce_rows) / 2, rel=1e-6)
    s2 = [sig(2), sig(-2), 0.5, sig(1)]
    dice_rows = [1 - (2 * 1.0 + 1) / (2.0 + 2 + 1),
                 1 - (2 * (s2[0] + s2[3]) + 1) / (sum(s2) + 2 + 1)]
    assert float(dice_loss(x, y, 2.0)) == pytest.approx(sum(dice_rows) / 2, rel=1e-6)
    # a perfect, sharp prediction costs ~0
    assert float(dice_loss(torch.tensor([[30.0, -30.0]]), torch.tensor([[1.0, 0.0]]), 1.0)) < 1e-6


def test_mask_loss_of_zero_logits_is_log2_per_mask():
    """σ(0) = 1/2 at every sampled point whatever the target: BCE = log 2 per mask, over num_masks."""
    out = _outputs(3, n_aux=0)
    for kind in ("video", "frame"):
        out[kind]["masks"] = torch.zeros_like(out[kind]["masks"])
    losses = SetCriterion(_cfg(), K, "sync")(out, _targets())
    assert float(losses["loss_mask_frame"]) == pytest.approx(5.0 * math.log(2.0), rel=1e-5)
    # per_frame (default): each of a sub-clip's 2 frames is a mask of its own; per_tube: one mask per tube
    for s in range(3):
        assert float(losses[f"loss_mask_sub{s}"]) == pytest.approx(5.0 * 2 * math.log(2.0) / 3, rel=1e-5)
    old = SetCriterion(_cfg(video_mask_loss="per_tube"), K, "sync")(out, _targets())
    assert float(old["loss_mask_frame"]) == pytest.approx(5.0 * math.log(2.0), rel=1e-5)
    for s in range(3):
        assert float(old[f"loss_mask_sub{s}"]) == pytest.approx(5.0 * math.log(2.0) / 3, rel=1e-5)


def _fixed_points(monkeypatch):
    """Replace importance sampling by three fixed interior points, so every sampled value is known."""
    import engine.model.criterion as crit_mod

    pts = torch.tensor([[0.3, 0.3], [0.6, 0.7], [0.5, 0.5]])

    def fixed(src, num_points, *_args, **_kw):
        return pts.expand(src.shape[0], -1, -1).clone()

    monkeypatch.setattr(crit_mod, "get_uncertain_point_coords_with_randomness", fixed)


@pytest.mark.parametrize("reduction", ["per_frame", "per_tube"])
def test_video_mask_loss_reduction_hand_computed(monkeypatch, reduction):
    """Two videos, one query and one GT tube of 2 frames each; constant logits per frame (a_v in frame 0, b_v in
    frame 1); the object fills frame 0 and is absent from frame 1. With P = 3 points per frame:
      per_frame: BCE = Σ_v [-log σ(a_v) - log(1 - σ(b_v))] / 2 tubes,
                 dice = Σ_v [(1 - (2Pσ(a_v) + 1)/(Pσ(a_v) + P + 1)) + (1 - 1/(Pσ(b_v) + 1))] / 2;
      per_tube:  BCE = Σ_v [(-log σ(a_v) - log(1 - σ(b_v))) / 2] / 2,
                 dice = Σ_v [1 - (2Pσ(a_v) + 1)/(Pσ(a_v) + Pσ(b_v) + P + 1)] / 2."""
    _fixed_points(monkeypatch)
    a, b, p = (1.0, 2.0), (-0.5, 0.0), 3
    masks = torch.zeros(2, 1, 2, 4, 4)
    for v in range(2):
        masks[v, 0, 0], masks[v, 0, 1] = a[v], b[v]
    out = {"video": {"logits": torch.zeros(2, 1, 2), "masks": masks}, "frame": None, "aux": [],
           "padded_size": (16, 16), "image_size": (16, 16)}
    gt = torch.zeros(1, 2, 16, 16, dtype=torch.uint8)
    gt[0, 0] = 1
    targets = [{"labels": torch.tensor([0]), "masks": gt.clone()} for _ in range(2)]
    losses = SetCriterion(LossConfig(num_points=p, video_mask_loss=reduction), 1, "video")(out, targets)

    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    bce = [-math.log(sig(a[v])) - math.log(1 - sig(b[v])) for v in range(2)]
    if reduction == "per_frame":
        dice = [(1 - (2 * p * sig(a[v]) + 1) / (p * sig(a[v]) + p + 1)) + (1 - 1 / (p * sig(b[v]) + 1))
                for v in range(2)]
        want_bce, want_dice = sum(bce) / 2, sum(dice) / 2
    else:
        dice = [1 - (2 * p * sig(a[v]) + 1) / (p * sig(a[v]) + p * sig(b[v]) + p + 1) for v in range(2)]
        want_bce, want_dice = sum(x / 2 for x in bce) / 2, sum(dice) / 2
    assert float(losses["loss_mask_video"]) == pytest.approx(5.0 * want_bce, rel=1e-5)
    assert float(losses["loss_dice_video"]) == pytest.approx(5.0 * want_dice, rel=1e-5)


def test_per_frame_video_term_of_one_frame_tubes_equals_the_frame_term(monkeypatch):
    """A tube of one frame is one mask under either reduction, and the per-frame video term of a T-frame clip
    is the sum of T single-frame terms (the frame term of Mask2Former), up to the normalisation by tubes."""
    _fixed_points(monkeypatch)
    out = _outputs(11, n_aux=0)
    tg = _targets()
    per_frame = SetCriterion(_cfg(), K, "video")
    per_tube = SetCriterion(_cfg(video_mask_loss="per_tube"), K, "video")
    one = {**out, "video": {"logits": out["video"]["logits"], "masks": out["video"]["masks"][:, :, :1]}}
    tg1 = [{"labels": t["labels"], "masks": t["masks"][:, :1]} for t in tg]
    def run(crit, o, t):
        crit.generator = torch.Generator().manual_seed(0)      # the matcher's points: the same matching
        with torch.no_grad():
            return crit(o, t)

    a, b = run(per_frame, one, tg1), run(per_tube, one, tg1)
    assert float(a["loss_mask_video"]) == pytest.approx(float(b["loss_mask_video"]), rel=1e-6)
    assert float(a["loss_dice_video"]) == pytest.approx(float(b["loss_dice_video"]), rel=1e-6)
    full_a, full_b = run(per_frame, out, tg), run(per_tube, out, tg)
    # BCE: with the same matching, per_frame = T x per_tube (per_tube averages the T frames' means)
    assert float(full_a["loss_mask_video"]) == pytest.approx(T * float(full_b["loss_mask_video"]), rel=1e-5)
    with pytest.raises(ValueError, match="video_mask_loss"):
        SetCriterion(_cfg(video_mask_loss="nope"), K, "video")(out, tg)


def test_good_prediction_scores_lower_than_random():
    tg = _targets()
    tubes = prepare_targets(tg, (HP, WP), T)
    out = _outputs(4, n_aux=0)
    good = _outputs(4, n_aux=0)
    with torch.no_grad():
        for b in range(B):
            n = len(tubes[b]["labels"])
            gt4 = torch.nn.functional.avg_pool2d(tubes[b]["masks"], 4)            # (N, T, h, w)
            good["video"]["masks"][b, :n] = (gt4 - 0.5) * 40
            good["video"]["logits"][b] = torch.tensor([0.0, 0, 0, 8.0])
            good["video"]["logits"][b, torch.arange(n), tubes[b]["labels"]] = 8.0
            good["frame"]["masks"][b, :, :n] = ((gt4 - 0.5) * 40).transpose(0, 1)
            good["frame"]["logits"][b] = torch.tensor([0.0, 0, 0, 8.0])
            good["frame"]["logits"][b, :, torch.arange(n), tubes[b]["labels"]] = 8.0
    crit = SetCriterion(_cfg(), K, "sync")
    with torch.no_grad():
        bad_total = float(sum(crit(out, tg).values()))
    good_losses = crit(good, tg)
    assert float(sum(v.detach() for v in good_losses.values())) < 0.4 * bad_total
    assert crit.last_stats["cls_acc_frame"] == 1.0 and crit.last_stats["cls_acc_sub1"] == 1.0


def test_videos_without_instances_give_finite_loss_and_gradients():
    out = _outputs(5, n_aux=1)
    tg = [{"labels": torch.zeros(0, dtype=torch.long), "masks": torch.zeros(0, T, *IMG, dtype=torch.bool)}
          for _ in range(B)]
    losses = SetCriterion(_cfg(), K, "sync")(out, tg)
    total = sum(losses.values())
    assert torch.isfinite(total)
    assert float(losses["loss_mask_frame"].detach()) == 0.0
    assert float(losses["loss_dice_sub1"].detach()) == 0.0
    total.backward()
    assert out["video"]["logits"].grad is not None and torch.isfinite(out["video"]["logits"].grad).all()
