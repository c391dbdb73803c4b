"""Does the review queue rank frames by how wrong the model is there?

    python bench/bench_review.py [--checkpoint CKPT] [--preset default] [--videos 16] [--seed 301] [--fit]

Generates held-out synthetic videos (engine.data.synthetic, fixed seeds that no bundled model was trained or
tuned on), runs the model over each with its internals, and compares, frame by frame, the queue's uncertainty
U (engine.review.review_queue, with and without the motion evidence) with the model's real error there:
1 - the mean, over the ground-truth objects on the frame, of the best IoU any predicted mask reaches
(frames without objects have no error and are left out). It prints Spearman's rho pooled over all frames and
the mean of the per-video rho (the queue ranks frames within one video, so that is the number that matters),
and each cue's own pooled rho.

`--fit` instead fits the weights of U (non-negative least squares of the error on the cues) on the given
videos and prints them for engine/review.py; fit on a seed that is not the one you measure on (the constants
in engine/review.py were fit on `--preset default --videos 16 --seed 401`).

Measured with resources/models/tiny-sync.pt (md5 cc980aa5..., the 1,500-iteration sync model, weights of U refit
for it on seed 401), 2-core machine, 2026-12-01:
  default, 16 videos, seed 301: rho pooled +0.54 (333 frames), mean per video +0.16; without motion +0.56 / +0.16
  hard, 8 videos, seed 302:     rho pooled +0.25 (322 frames), mean per video +0.27; without motion +0.24 / +0.25
(the weights fit to the earlier 1,400-iteration checkpoint gave +0.37 / +0.14 and +0.15 / +0.26 on the same videos)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def frame_errors(gt_rles: list[list[dict | None]], pred) -> np.ndarray:
    """(T,) 1 - mean best IoU of the ground-truth objects on each frame; nan on frames without objects."""
    from engine.data import masks

    out = np.full(pred.num_frames, np.nan)
    for f in range(pred.num_frames):
        gts = [g[f] for g in gt_rles if g[f] is not None]
        if not gts:
            continue
        ps = [t.masks[f] for t in pred.tracks if masks.area(t.masks[f]) > 0]
        out[f] = 1.0 if not ps else 1.0 - float(masks.iou_matrix(gts, ps).max(1).mean())
    return out


def collect(checkpoint: Path, preset: str, videos: int, seed: int, size: tuple[int, int] = (320, 192)):
    """[(cues with motion, cues without, error (T,))] per video."""
    import torch

    from engine import review
    from engine.data.synthetic import generate_video, video_seed
    from engine.inference import infer, infer_config_for
    from engine.model.checkpoint import load_checkpoint

    torch.set_num_threads(1)
    model, meta = load_checkpoint(checkpoint)
    cfg = infer_config_for(meta)
    out = []
    for i in range(videos):
        v = generate_video(preset, video_seed(seed, i), size=size)
        pred = infer(v.frames, model, cfg, internals=True, class_names=meta.get("class_names"))
        motion = review.motion_evidence(v.frames)
        out.append((review.frame_cues(pred, motion), review.frame_cues(pred, None), frame_errors(v.all_rles(), pred)))
    return out


def rank_quality(data, with_motion: bool = True) -> dict:
    """Spearman's rho between U and the error: pooled over frames and the mean over videos."""
    from scipy.stats import spearmanr

    from engine import review

    us, es, per = [], [], []
    for cm, cn, err in data:
        u = review.uncertainty(cm if with_motion else cn)
        ok = ~np.isnan(err)
        us.append(u[ok])
        es.append(err[ok])
        if ok.sum() >= 4 and np.ptp(err[ok]) > 0 and np.ptp(u[ok]) > 0:
            per.append(spearmanr(u[ok], err[ok])[0])
    u, e = np.concatenate(us), np.concatenate(es)
    return {"pooled": float(spearmanr(u, e)[0]), "per_video": float(np.mean(per)) if per else float("nan"),
            "videos": len(data), "videos_ranked": len(per), "frames": int(e.size),
            "u_spread_within": float(np.mean([np.ptp(review.uncertainty(cm if with_motion else cn))
                                              for cm, cn, _ in data]))}


def fit(data, with_motion: bool) -> tuple[float, dict]:
    """Non-negative least squares of the error on the cues, both centred per video (the queue ranks frames
    within a video, so differences between videos should not drive the weights); the bias then makes the mean
    U equal the mean error."""
    from scipy.optimize import nnls

    from engine import review

    kinds = [k for k in review.KINDS if with_motion or k != review.UNCOVERED]
    centred, raw, cy, ry = [], [], [], []
    for cm, cn, err in data:
        c = cm if with_motion else cn
        ok = ~np.isnan(err)
        if ok.sum() < 2:
            continue
        x = np.stack([c.values[k][ok] for k in kinds], 1)
        centred.append(x - x.mean(0))
        cy.append(err[ok] - err[ok].mean())
        raw.append(x)
        ry.append(err[ok])
    coef, _ = nnls(np.concatenate(centred), np.concatenate(cy))
    bias = float(np.concatenate(ry).mean() - (np.concatenate(raw) @ coef).mean())
    return bias, {k: float(v) for k, v in zip(kinds, coef, strict=True)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "resources/models/tiny-sync.pt")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--videos", type=int, default=16)
    ap.add_argument("--seed", type=int, default=301)
    ap.add_argument("--fit", action="store_true", help="fit the weights of U on these videos and print them")
    args = ap.parse_args()
    from scipy.stats import spearmanr

    from engine import review

    t0 = time.perf_counter()
    data = collect(args.checkpoint, args.preset, args.videos, args.seed)
    print(f"{args.videos} {args.preset} videos (seed {args.seed}), {args.checkpoint.name}: "
          f"{time.perf_counter() - t0:.1f} s")
    if args.fit:
        for with_motion in (True, False):
            bias, w = fit(data, with_motion)
            print(("with motion:   " if with_motion else "without motion:"), f"BIAS {bias:.3f}",
                  {k: round(v, 3) for k, v in w.items()})
        return 0
    for with_motion in (True, False):
        r = rank_quality(data, with_motion)
        print(f"U {'with' if with_motion else 'without'} motion evidence: Spearman rho pooled {r['pooled']:+.3f} "
              f"over {r['frames']} frames, mean per video {r['per_video']:+.3f} ({r['videos_ranked']} videos); "
              f"U's mean range within a video {r['u_spread_within']:.2f}")
    errs = np.concatenate([e[~np.isnan(e)] for _, _, e in data])
    for k in review.KINDS:
        x = np.concatenate([cm.values[k][~np.isnan(e)] for cm, _, e in data])
        rho = spearmanr(x, errs)[0] if np.ptp(x) > 0 else float("nan")
        print(f"  cue {k:26s} rho {rho:+.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
