"""Fine-tuning on corrected projects: the plan, the data it exports, and the run in a child process. Qt-free.

The loop this closes: a person corrects a model's tracks in a project, the model is fine-tuned on those corrections,
and the before/after table on frames held out of the training says whether it got better. The window's dialog and
`main.py finetune` both go through here:

    plan = plan_finetune([project], out)        # defaults filled in; iterations measured from timed steps
    result = run_finetune(plan, on_event=...)    # exports the data, runs `main.py train` as a child, waits
    print(format_table(result.before, result.after))

Why a child process: training must never run in the window's process (a crash, a CUDA OOM or a stuck DataLoader
must not take the window down, and cancel must be a signal, not a flag polled by a thread that holds the GIL). The
child is the CLI's own `train`, so a fine-tune is reproducible from the command line it logs, its JSON-lines log
(`events.jsonl`) is the only channel back (progress, losses, LR, periodic held-out AP), and its checkpoints are
ordinary ones.

What RUN_DIR holds afterwards: `data/` (YTVIS: the training frames of every corrected video, plus replay videos
linked in), `heldout/` (YTVIS: the held-out frames, never in `data/`), `train/` (the child's run folder:
events.jsonl, checkpoints, model_final.pt), `train.log` (the child's stdout and stderr), `finetune.json` (the plan,
the command line, the before/after metrics and the new checkpoint: the provenance a model list shows).

Before and after are both the child's own evaluation (`engine.train.evaluate_model` on `heldout/`, same inference
settings): "before" is the starting checkpoint evaluated at step 0 (with its class head already extended to the
projects' classes, so both numbers use one vocabulary), "after" the final weights.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine.errors import Cancelled, InputError

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "main.py"
DEFAULT_CHECKPOINT = ROOT / "resources" / "models" / "tiny-sync.pt"

METRIC_KEYS = ("AP", "AP50", "AP75", "AR1", "AR10")   # the table's columns (the JSON carries every statistic)
DEFAULT_MINUTES = 10.0
PROBE_STEPS = 5            # timed steps of the sizing probe (the first two are warm-up and not counted)
PERIODIC_EVALS = 3         # held-out evaluations during the run, besides the one before and the one after
MIN_ITERS = 10             # a plan never sizes a run shorter than this
REPLAY_MAX_VIDEOS = 64     # replay videos linked into the training data (drawn with a fixed seed)
LOG_TAIL_LINES = 20

EventFn = Callable[[dict], None]
CancelFn = Callable[[], bool]


class FinetuneError(InputError):
    """A fine-tune that could not run or whose child failed; `tail` holds the last lines of the child's log."""

    def __init__(self, path: str | Path | None, problem: str, tail: Sequence[str] = ()):
        self.tail = list(tail)
        super().__init__(path, problem)


# ------------------------------------------------------------------------------------------------ the plan
@dataclass
class VideoSplit:
    """One project's video in the plan: which of its corrected frames train and which are held out."""

    project: Path
    name: str                        # the video's folder name in data/ and heldout/
    num_frames: int                  # frames of the whole video
    corrected: list[int]             # frames a person touched (see corrected_frames)
    train: list[int]
    heldout: list[int]


@dataclass
class FinetunePlan:
    """Everything a fine-tune will do, with the defaults already chosen; the app's dialog shows and edits it.

    `iters` is either what the user asked for or sized from `minutes` with `step_s` and `overhead_s`, which were
    measured by a short probe run of the very same child command (see measure_run), not guessed."""

    projects: list[Path]
    out: Path
    init: Path                                   # starting checkpoint
    preset: str                                  # training recipe (engine.config) the child uses
    mode: str                                    # the checkpoint's mode
    videos: list[VideoSplit]
    classes: list[str]                           # the new model's vocabulary: the start's classes, then new ones
    new_classes: list[str]                       # classes of the projects (or replay) the start does not know
    iters: int
    holdout: float = 0.2
    split: Literal["frames", "videos"] = "frames"   # tail frames of each video, or whole videos
    minutes: float | None = None                 # the time budget the iterations were sized for
    step_s: float | None = None                  # measured seconds per iteration on this device
    overhead_s: float | None = None              # measured start-up + evaluations of a run
    replay: Path | None = None                   # the model's original training data, mixed in
    replay_ratio: float = 0.5                    # share of training clips drawn from the replay data
    replay_videos: int = 0                       # replay videos linked in (set when the data is prepared)
    device: str = "auto"
    periodic_evals: int = PERIODIC_EVALS
    overrides: dict[str, Any] = field(default_factory=dict)   # extra `train --set` values (win over the plan's)

    @property
    def train_frames(self) -> int:
        return sum(len(v.train) for v in self.videos)

    @property
    def heldout_frames(self) -> int:
        return sum(len(v.heldout) for v in self.videos)

    @property
    def data_dir(self) -> Path:
        return self.out / "data"

    @property
    def heldout_dir(self) -> Path:
        return self.out / "heldout"

    @property
    def run_dir(self) -> Path:
        return self.out / "train"

    @property
    def log_path(self) -> Path:
        return self.out / "train.log"

    def estimated_minutes(self) -> float | None:
        if self.step_s is None:
            return None
        return (self.iters * self.step_s + (self.overhead_s or 0.0)) / 60.0

    def describe(self) -> str:
        """The plan in a few lines (the CLI prints it; the dialog can show it as a summary)."""
        lines = [f"start     {self.init}",
                 f"classes   {', '.join(self.classes)}"
                 + (f" (new: {', '.join(self.new_classes)})" if self.new_classes else "")]
        for v in self.videos:
            lines.append(f"video     {v.name}: {len(v.corrected)} corrected frames, {len(v.train)} train, "
                         f"{len(v.heldout)} held out")
        budget = ""
        if self.step_s is not None:
            budget = (f" ({self.step_s:.2f} s/iteration measured, about {self.estimated_minutes():.1f} min"
                      + (f" for a {self.minutes:g} min budget" if self.minutes else "") + ")")
        lines.append(f"training  {self.iters} iterations{budget}, preset {self.preset}, mode {self.mode}, "
                     f"device {self.device}")
        if self.replay is not None:
            lines.append(f"replay    {self.replay} ({self.replay_ratio:.0%} of the clips)")
        return "\n".join(lines)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        return json.loads(json.dumps(d, default=str))


def corrected_frames(doc) -> list[int]:
    """Frames a person corrected: any mask there that is not the model's (human, assist, imported) or a lock.

    On such a frame every mask counts as checked (a model mask left standing was accepted), so the whole frame is
    ground truth. Frames that hold only model masks were never looked at and are left out. (A frame where the
    person only deleted a wrong model mask leaves no trace in the document, so it is not found here.)"""
    frames: set[int] = set()
    for t in doc.tracks.values():
        frames.update(f for f, m in t.masks.items() if m.provenance.kind != "model")
        frames.update(t.locked)
    return sorted(frames)


def split_frames(frames: list[int], holdout: float) -> tuple[list[int], list[int]]:
    """The last `holdout` share of the frames are held out (at least one, and at least one left to train):
    the end of a video is the part a model fine-tuned on its start has to carry over to."""
    if not frames:
        return [], []
    if holdout <= 0 or len(frames) < 2:
        return list(frames), []
    n = min(len(frames) - 1, max(1, int(round(holdout * len(frames)))))
    return list(frames[:-n]), list(frames[-n:])


def checkpoint_recipe(init: str | Path) -> tuple[str, str, list[str]]:
    """(preset, mode, class names) for fine-tuning a checkpoint: the preset it names, or the one whose trunk
    matches its backbone (the first bundled models name `tiny` but have the `tiny_mobilenet` trunk)."""
    from engine.config import PRESETS
    from engine.model.checkpoint import read_meta

    meta = read_meta(init)
    cfg = meta.get("config") or {}
    prov = meta.get("provenance") or {}
    extra = meta.get("extra") or {}
    named = extra.get("preset") or prov.get("preset")
    backbone = cfg.get("backbone")
    preset = named if named in PRESETS else "tiny"
    if backbone and PRESETS[preset]().model.backbone != backbone:
        preset = next((n for n, make in PRESETS.items() if make().model.backbone == backbone), preset)
    mode = cfg.get("mode") or prov.get("mode") or "sync"
    return preset, mode, [str(c) for c in meta["class_names"]]


def plan_finetune(projects: Sequence[str | Path], out: str | Path, *, init: str | Path | None = None,
                  iters: int | None = None, minutes: float | None = None, holdout: float = 0.2,
                  replay: str | Path | None = None, replay_ratio: float = 0.5, device: str = "auto",
                  periodic_evals: int = PERIODIC_EVALS, overrides: dict[str, Any] | None = None,
                  measure: bool = True, on_event: EventFn | None = None,
                  cancel: CancelFn | None = None) -> FinetunePlan:
    """The plan with its defaults: start from `init` (default: the bundled tiny-sync.pt), hold out the last
    `holdout` of each corrected video (whole videos when there are several projects), and, without `iters`, size
    the iterations to about `minutes` (default 10) from a probe run's timed steps (this exports the data and runs
    a few steps in a child; `measure=False` skips the probe and plans MIN_ITERS iterations)."""
    from engine.project.project import Project

    projects = [Path(p) for p in projects]
    out = Path(out)
    if not projects:
        raise InputError(None, "no project to fine-tune on")
    if iters is not None and minutes is not None:
        raise InputError(None, "--iters and --minutes exclude each other")
    if iters is not None and iters < 1:
        raise InputError(None, f"--iters must be at least 1, got {iters}")
    if minutes is not None and minutes <= 0:
        raise InputError(None, f"--minutes must be positive, got {minutes}")
    if not 0 < holdout < 1:
        raise InputError(None, f"--holdout must be between 0 and 1 (a share of the corrected frames), got {holdout}")
    if not 0 <= replay_ratio < 1:
        raise InputError(None, f"the replay ratio must be within [0, 1), got {replay_ratio}")
    init = Path(init) if init is not None else DEFAULT_CHECKPOINT
    if not init.is_file():
        raise InputError(init, "--init: no such checkpoint")
    if replay is not None:
        replay = Path(replay)
        if not (replay / "annotations.json").is_file():
            raise InputError(replay, "--replay: not a dataset folder (no annotations.json in it)")
    for p in projects:
        if not p.is_file():
            raise InputError(p, "no such project")
    preset, mode, start_classes = checkpoint_recipe(init)

    splits: list[VideoSplit] = []
    names: list[str] = []
    for p in projects:
        proj = Project.open(p, require_video=False)
        try:
            doc = proj.doc
            frames = corrected_frames(doc)
            if not frames:
                raise InputError(p, "no corrected frames (every mask is still the model's); correct some frames "
                                    "or import ground truth first")
            from engine.project.io import frame_names

            try:
                name = frame_names(doc)[0].split("/")[0]
            except Exception:  # noqa: BLE001 - a moved frame folder: fall back to the recorded name
                name = doc.video.name
            if name in [s.name for s in splits]:
                raise InputError(p, f"two projects have a video named {name!r}")
            splits.append(VideoSplit(p, name, doc.video.num_frames, frames, list(frames), []))
            for t in doc.tracks.values():
                if t.category_id is not None and any(f in t.masks for f in frames):
                    cname = doc.category_name(t.category_id)
                    if cname not in names:
                        names.append(cname)
        finally:
            proj.close()
    if len(splits) == 1:
        split = "frames"
        s = splits[0]
        s.train, s.heldout = split_frames(s.corrected, holdout)
        if not s.heldout:
            raise InputError(s.project, f"only {len(s.corrected)} corrected frame: nothing left to hold out "
                                        "(correct at least 2 frames)")
    else:
        split = "videos"
        n = min(len(splits) - 1, max(1, int(round(holdout * len(splits)))))
        for s in splits[-n:]:
            s.train, s.heldout = [], list(s.corrected)
    classes = list(start_classes)
    new = [n for n in names if n not in classes]
    classes += new
    if replay is not None:
        from engine.data.ytvis import Dataset

        extra = [c.name for c in Dataset.load(replay / "annotations.json").categories if c.name not in classes]
        classes += extra
        new += extra
    plan = FinetunePlan(projects=projects, out=out, init=init, preset=preset, mode=mode, videos=splits,
                        classes=classes, new_classes=new, iters=int(iters) if iters is not None else MIN_ITERS,
                        holdout=holdout, split=split, minutes=None, replay=replay, replay_ratio=replay_ratio,
                        device=device, periodic_evals=periodic_evals, overrides=dict(overrides or {}))
    if iters is None and measure:
        plan.minutes = DEFAULT_MINUTES if minutes is None else float(minutes)
        size_iterations(plan, on_event=on_event, cancel=cancel)
    return plan


# ------------------------------------------------------------------------------------------------ the data
def prepare_data(plan: FinetunePlan, progress: Callable[[int, int], None] | None = None) -> tuple[Path, Path]:
    """Export the corrected frames as two YTVIS folders: `data/` (training frames, replay linked in) and
    `heldout/` (held-out frames). Each video's frames are decoded once with `write_frames` and moved to the split
    they belong to, so a held-out frame is never in the training folder. Returns (data_dir, heldout_dir)."""
    from engine.data.ytvis import Category, Dataset, Instance, VideoEntry
    from engine.project.io import frame_names, write_frames
    from engine.project.project import Project

    for d in (plan.data_dir, plan.heldout_dir, plan.out / "_frames"):
        if d.exists():
            shutil.rmtree(d)
    (plan.data_dir / "JPEGImages").mkdir(parents=True)
    (plan.heldout_dir / "JPEGImages").mkdir(parents=True)
    cat_id = {n: i + 1 for i, n in enumerate(plan.classes)}
    cats = [Category(i + 1, n, "object") for i, n in enumerate(plan.classes)]
    train_videos, train_inst, held_videos, held_inst = [], [], [], []
    total = sum(v.num_frames for v in plan.videos)
    done = 0
    for v in plan.videos:
        proj = Project.open(v.project, require_video=True)
        try:
            doc = proj.doc
            tmp = plan.out / "_frames"
            write_frames(doc, tmp, None if progress is None else
                         (lambda i, _n, base=done: progress(base + i, total)))
            done += v.num_frames
            files = [tmp / "JPEGImages" / n for n in frame_names(doc)]
            for frames, root, videos, insts in ((v.train, plan.data_dir, train_videos, train_inst),
                                                (v.heldout, plan.heldout_dir, held_videos, held_inst)):
                if not frames:
                    continue
                folder = root / "JPEGImages" / v.name
                folder.mkdir(parents=True, exist_ok=True)
                names = []
                for f in frames:
                    os.replace(files[f], folder / files[f].name)
                    names.append(f"{v.name}/{files[f].name}")
                vid = len(videos) + 1
                videos.append(VideoEntry(vid, names, doc.video.width, doc.video.height))
                for tid in doc.track_ids():
                    t = doc.tracks[tid]
                    if t.category_id is None:
                        continue
                    segs = [t.masks[f].rle if f in t.masks else None for f in frames]
                    if any(s is not None for s in segs):
                        insts.append(Instance(len(insts) + 1, vid, cat_id[doc.category_name(t.category_id)],
                                              segs))
            shutil.rmtree(tmp)
        finally:
            proj.close()
    if not train_videos:
        raise InputError(plan.out, "no frames left to train on")
    train_videos, train_inst = _mix_replay(plan, train_videos, train_inst, cat_id)
    Dataset(train_videos, cats, train_inst, {"description": "fine-tuning data", "projects":
                                             [str(p) for p in plan.projects]}).save(plan.data_dir / "annotations.json")
    Dataset(held_videos, cats, held_inst, {"description": "held-out frames"}).save(
        plan.heldout_dir / "annotations.json")
    return plan.data_dir, plan.heldout_dir


def _mix_replay(plan: FinetunePlan, videos: list, instances: list, cat_id: dict[str, int]) -> tuple[list, list]:
    """Link replay videos into data/ and repeat the projects' videos so that about `replay_ratio` of the clips
    come from the replay data (the clip sampler draws videos uniformly)."""
    import numpy as np

    from engine.data.ytvis import Dataset, Instance, VideoEntry

    if plan.replay is None or plan.replay_ratio <= 0:
        plan.replay_videos = 0
        return videos, instances
    rep = Dataset.from_folder(plan.replay, check_frames=False)
    names = rep.category_names()
    ids = [v.id for v in rep.videos if rep.instances_of(v.id)]
    order = np.random.default_rng(1234).permutation(len(ids))
    chosen = [ids[i] for i in order[:REPLAY_MAX_VIDEOS]]
    if not chosen:
        raise InputError(plan.replay, "--replay: no annotated videos in the dataset")
    n_own = len(videos)
    repeat = max(1, int(round(len(chosen) * (1 - plan.replay_ratio) / (plan.replay_ratio * n_own))))
    own_videos, own_inst = list(videos), list(instances)
    out_v, out_i = [], []
    for _ in range(repeat):            # the same frames under new video ids: drawn `repeat` times as often
        base = len(out_v)
        for v in own_videos:
            out_v.append(VideoEntry(base + v.id, list(v.file_names), v.width, v.height))
        for a in own_inst:
            out_i.append(Instance(len(out_i) + 1, base + a.video_id, a.category_id, a.segmentations))
    for k, vid in enumerate(chosen):
        v = rep.video(vid)
        name = f"replay_{k:03d}"
        src = (plan.replay / "JPEGImages" / v.file_names[0]).parent.resolve()
        dst = plan.data_dir / "JPEGImages" / name
        try:
            dst.symlink_to(src, target_is_directory=True)
        except OSError:                # no symlinks here (Windows without the right): copy the frames
            shutil.copytree(src, dst)
        new_id = len(out_v) + 1
        out_v.append(VideoEntry(new_id, [f"{name}/{Path(f).name}" for f in v.file_names], v.width, v.height))
        for a in rep.instances_of(vid):
            out_i.append(Instance(len(out_i) + 1, new_id, cat_id[names[a.category_id]], a.segmentations))
    plan.replay_videos = len(chosen)
    return out_v, out_i


# ------------------------------------------------------------------------------------------------ the child
def train_overrides(plan: FinetunePlan, iters: int | None = None, probe: bool = False) -> dict[str, Any]:
    """The `train --set` values of the plan's run: evaluations and logging sized to the run, few kept
    checkpoints, a warm-up that fits a short run, the inference size of large videos; the plan's own overrides
    last."""
    from engine.config import preset as get_preset

    p = get_preset(plan.preset, plan.mode)
    n = iters or plan.iters
    o: dict[str, Any] = {
        "log_every": 1 if probe else max(1, min(p.train.log_every, n // 50 or 1)),
        "eval_every": 0 if probe or plan.periodic_evals <= 0 else max(1, math.ceil(n / (plan.periodic_evals + 1))),
        "checkpoint_every": max(1, min(p.train.checkpoint_every, math.ceil(n / 4))),
        "keep_checkpoints": 2,
        "val_max_videos": max(1, len([v for v in plan.videos if v.heldout])),
        "warmup_iters": min(p.train.warmup_iters, max(0, n // 10)),
    }
    big = max((_video_short_side(v) for v in plan.videos), default=0)
    train_short = max(p.train.min_sizes)
    if big > 1.25 * train_short:   # test at the scale the model trains at (tiny: native 192 px synthetic videos)
        o["infer.short_side"] = int(train_short)
    o.update(plan.overrides)
    return o


def _video_short_side(v: VideoSplit) -> int:
    from engine.project.store import Store

    try:
        store = Store.open(v.project)
    except Exception:  # noqa: BLE001
        return 0
    try:
        info = store.video()
        return min(info.width, info.height)
    finally:
        store.close()


def train_command(plan: FinetunePlan, out: Path | None = None, iters: int | None = None,
                  probe: bool = False) -> list[str]:
    """The child's command line: the CLI's `train` with this interpreter."""
    cmd = [sys.executable, str(MAIN), "train", "--data", str(plan.data_dir), "--val", str(plan.heldout_dir),
           "--out", str(out or plan.run_dir), "--preset", plan.preset, "--mode", plan.mode,
           "--init", str(plan.init), "--iters", str(iters or plan.iters), "--device", plan.device]
    for k, v in train_overrides(plan, iters, probe).items():
        cmd += ["--set", f"{k}={json.dumps(list(v) if isinstance(v, tuple) else v)}"]
    return cmd


class _Tail:
    """Reads the new complete lines of a growing events.jsonl."""

    def __init__(self, path: Path):
        self.path, self.offset, self.buf = path, 0, b""

    def read(self) -> list[dict]:
        if not self.path.is_file():
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        self.offset += len(chunk)
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out


def _start_child(cmd: list[str], log_path: Path) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed when the child is reaped
    log.write("$ " + " ".join(cmd) + "\n")
    log.flush()
    kw: dict[str, Any] = {"start_new_session": True} if os.name == "posix" else {
        "creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(ROOT),
                            env=env, **kw)
    proc._finetune_log = log  # type: ignore[attr-defined]
    return proc


def _reap(proc: subprocess.Popen) -> None:
    log = getattr(proc, "_finetune_log", None)
    if log is not None and not log.closed:
        log.close()


def _stop_child(proc: subprocess.Popen, grace_s: float = 120.0) -> None:
    """Ask the child to stop the way Ctrl+C does (SIGINT: it saves a checkpoint at the next step and logs
    'cancelled'); kill it if it has not ended within `grace_s`."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGINT if os.name == "posix" else signal.CTRL_BREAK_EVENT)
        except (ProcessLookupError, OSError):
            pass
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last lines of a child's log, progress-bar redraws dropped."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    rows = [r.split("\r")[-1].rstrip() for r in text.splitlines()]
    return [r for r in rows if r.strip()][-lines:]


def _crash(plan: FinetunePlan, rc: int, events: list[dict]) -> FinetuneError:
    tail = log_tail(plan.log_path)
    msg = next((e.get("message") for e in reversed(events) if e.get("type") == "error"), None)
    last = msg or next((r for r in reversed(tail) if r.strip()), "no output")
    return FinetuneError(plan.log_path, f"training stopped with exit status {rc}: {last}", tail)


# ------------------------------------------------------------------------------------------------ sizing
def measure_run(plan: FinetunePlan, steps: int = PROBE_STEPS, on_event: EventFn | None = None,
                cancel: CancelFn | None = None) -> tuple[float, float, float]:
    """Time the plan's own child command for a few steps -> (seconds per iteration, start-up seconds, seconds
    per held-out evaluation). Exports the data first (the run reuses it). The probe runs in OUT/probe, which is
    removed afterwards."""
    if not plan.data_dir.is_dir() or not (plan.heldout_dir / "annotations.json").is_file():
        prepare_data(plan)
    probe_dir = plan.out / "probe"
    if probe_dir.exists():
        shutil.rmtree(probe_dir)
    log_path = plan.out / "probe.log"
    t0 = time.time()
    proc = _start_child(train_command(plan, probe_dir, iters=steps + 50, probe=True), log_path)
    tail = _Tail(probe_dir / "events.jsonl")
    events: list[dict] = []
    try:
        while True:
            new = tail.read()
            events += new
            for e in new:
                if on_event is not None:
                    on_event({**e, "probe": True})
            steps_seen = [e for e in events if e.get("type") == "train"]
            if len(steps_seen) >= steps or proc.poll() is not None:
                break
            if cancel is not None and cancel():
                raise Cancelled("fine-tune cancelled while timing its steps")
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        _reap(proc)
    train_ev = [e for e in events if e.get("type") == "train"]
    if len(train_ev) < min(3, steps):
        saved = log_tail(log_path)
        raise FinetuneError(log_path, "the timing probe stopped before its timed steps: "
                            + (saved[-1] if saved else "no output"), saved)
    start = next(e for e in events if e.get("type") == "start")
    evals = [e for e in events if e.get("type") == "eval"]
    eval_s = float(evals[0].get("eval_s", 0.0)) if evals else 0.0
    a, b = train_ev[1], train_ev[-1]   # step 1 carries the first-batch warm-up; time from step 2 on
    step_s = (b["elapsed_s"] - a["elapsed_s"]) / max(1, b["step"] - a["step"])
    startup_s = max(0.0, float(start["time"]) - t0)
    shutil.rmtree(probe_dir, ignore_errors=True)
    log_path.unlink(missing_ok=True)
    return max(step_s, 1e-3), startup_s, eval_s


def size_iterations(plan: FinetunePlan, on_event: EventFn | None = None, cancel: CancelFn | None = None) -> None:
    """Set plan.iters so the run ends in about plan.minutes: budget minus start-up and the planned evaluations
    (before, after, periodic), over the measured time per iteration."""
    step_s, startup_s, eval_s = measure_run(plan, on_event=on_event, cancel=cancel)
    overhead = startup_s + eval_s * (2 + max(0, plan.periodic_evals))
    # Size from the values the plan records, so what it says (step_s, overhead_s) is exactly what sized it.
    plan.step_s, plan.overhead_s = round(step_s, 4), round(overhead, 2)
    budget = (plan.minutes or DEFAULT_MINUTES) * 60.0 - plan.overhead_s
    plan.iters = max(MIN_ITERS, int(budget // plan.step_s))


# ------------------------------------------------------------------------------------------------ the run
@dataclass
class FinetuneResult:
    """What a run gives back: metrics before and after (the evaluation's stats, fractions; `after` is None
    when the run was cancelled before its final evaluation), the checkpoint (final, or the last one saved when
    cancelled) and the run's own numbers."""

    plan: FinetunePlan
    before: dict[str, float] | None
    after: dict[str, float] | None
    checkpoint: Path | None
    iterations: int
    seconds: float
    cancelled: bool = False
    command: list[str] = field(default_factory=list)

    def metrics_json(self) -> dict:
        return {"before": self.before, "after": self.after}

    def provenance(self) -> dict:
        """For the model list: where the checkpoint came from and how it scores."""
        return {"checkpoint": str(self.checkpoint) if self.checkpoint else None, "parent": str(self.plan.init),
                "projects": [str(p) for p in self.plan.projects], "data": str(self.plan.data_dir),
                "heldout": str(self.plan.heldout_dir), "iterations": self.iterations,
                "seconds": round(self.seconds, 1), "cancelled": self.cancelled, "classes": self.plan.classes,
                "new_classes": self.plan.new_classes, "replay": str(self.plan.replay) if self.plan.replay else None,
                "before": self.before, "after": self.after, "command": self.command}


def _stats(event: dict | None) -> dict[str, float] | None:
    if event is None:
        return None
    from engine.evaluation import STAT_KEYS

    out = {k: float(event[k]) for k in STAT_KEYS if k in event}
    if "tube_iou" in event:
        out["tube_iou"] = float(event["tube_iou"])
    return out


def run_finetune(plan: FinetunePlan, *, on_event: EventFn | None = None, cancel: CancelFn | None = None,
                 poll_s: float = 0.3) -> FinetuneResult:
    """Export the data (unless the probe already did), run `main.py train` as a child, pass each line of its
    events.jsonl to `on_event` while it runs, and return the before/after metrics.

    `cancel()` (polled) or a KeyboardInterrupt stops the child with SIGINT: it saves a checkpoint at its next step;
    the result then has cancelled=True and that checkpoint (a KeyboardInterrupt is re-raised after the child has
    ended, so Ctrl+C in the CLI still ends the command). A child that fails raises FinetuneError with the tail of
    its log. Safe to call from a worker thread (it only waits on the child and reads files)."""
    if not (plan.data_dir / "annotations.json").is_file() or not (plan.heldout_dir / "annotations.json").is_file():
        prepare_data(plan)
    if plan.run_dir.exists():
        shutil.rmtree(plan.run_dir)
    cmd = train_command(plan)
    t0 = time.time()
    proc = _start_child(cmd, plan.log_path)
    tail = _Tail(plan.run_dir / "events.jsonl")
    events: list[dict] = []
    interrupted = False

    def pump() -> None:
        for e in tail.read():
            events.append(e)
            if on_event is not None:
                on_event(e)

    try:
        while proc.poll() is None:
            pump()
            if cancel is not None and cancel():
                _stop_child(proc)
                break
            time.sleep(poll_s)
    except KeyboardInterrupt:
        interrupted = True
        _stop_child(proc)
    finally:
        if proc.poll() is None:   # an exception of our own: never leave a training child behind
            _stop_child(proc, grace_s=30)
        proc.wait()
        _reap(proc)
    pump()
    rc = proc.returncode
    done = next((e for e in events if e.get("type") == "done"), None)
    stopped = next((e for e in events if e.get("type") == "cancelled"), None)
    if done is None and stopped is None:
        if interrupted:
            raise KeyboardInterrupt
        if cancel is not None and cancel():   # stopped before its first step: nothing saved
            return FinetuneResult(plan, None, None, None, 0, time.time() - t0, cancelled=True, command=cmd)
        raise _crash(plan, rc, events)
    evals = [e for e in events if e.get("type") == "eval"]
    before = next((e for e in evals if e.get("step") == 0), None)
    last_step = (done or stopped)["step"]
    after = next((e for e in reversed(evals) if e.get("step") == last_step), None) if done else None
    ckpt = Path((done or stopped)["checkpoint"])
    result = FinetuneResult(plan, _stats(before), _stats(after), ckpt, int(last_step), time.time() - t0,
                            cancelled=done is None, command=cmd)
    (plan.out / "finetune.json").write_text(json.dumps({"plan": plan.to_json(), **result.provenance()}, indent=2))
    if interrupted:
        raise KeyboardInterrupt
    return result


def format_table(before: dict | None, after: dict | None, keys: Sequence[str] = METRIC_KEYS) -> str:
    """The before/after table (x100, as the evaluation prints AP in percent), with the change."""
    def cell(d, k):
        return "   -" if d is None or k not in d or d[k] < 0 else f"{100 * d[k]:5.1f}"

    lines = [f"{'held-out':<10}" + "".join(f"{k:>8}" for k in keys)]
    for name, d in (("before", before), ("after", after)):
        lines.append(f"{name:<10}" + "".join(f"{cell(d, k):>8}" for k in keys))
    if before is not None and after is not None:
        lines.append(f"{'change':<10}" + "".join(
            f"{100 * (after[k] - before[k]):>+8.1f}" if k in after and k in before else f"{'-':>8}" for k in keys))
    return "\n".join(lines)


__all__ = ["DEFAULT_CHECKPOINT", "METRIC_KEYS", "FinetuneError", "FinetunePlan", "FinetuneResult", "VideoSplit",
           "checkpoint_recipe", "corrected_frames", "format_table", "log_tail", "measure_run", "plan_finetune",
           "prepare_data", "run_finetune", "size_iterations", "split_frames", "train_command", "train_overrides"]
