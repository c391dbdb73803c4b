"""SAM 2 behind the assist interface, through the `sam2` package itself (its builder, `SAM2VideoPredictor` and
`SAM2ImagePredictor`; none of its code is copied here).

How the video state is built. `SAM2VideoPredictor.init_state` wants a path and decodes the whole video into one
tensor (or reads a folder of JPEGs); we want neither: frames come from the project's `VideoReader`, decoded on
demand. Its `inference_state["images"]` is only ever indexed (`images[i]`, `len(images)`), so we hand it a lazy
sequence that decodes, resizes and normalises frame i when asked, keeping the last `frame_cache` frames.
`init_state` runs once per session with that sequence in place of its loader; each object then gets its own state
shaped like that first one (SAM 2 keeps outputs per object anyway), sharing the frames, the image features of the
current frame and the constants, so an object can stop at its own locked frame while the others run on, and the
image encoder still runs once per frame for all of them.

Memory on long videos is bounded. SAM 2 keeps every tracked frame's output (memory features, a low-resolution
mask, an object pointer) for the whole video. A frame's memory is only read back by frames within
`max(num_maskmem * memory_temporal_stride, max_obj_ptrs_in_encoder)` (16 for the released configs) frames of
it in the run's direction, so after each step outputs further than `memory_window` frames from the current one
are dropped: per object at most 2 * window + 1 non-prompted outputs (plus one per prompted frame) stay, whatever
the video's length; frames stay on the CPU (offload_video_to_cpu) in a cache of `frame_cache` frames, and on
CUDA the stored outputs can live on the CPU too (`offload_state_to_cpu`). At the 1024 input size one output is
about 0.8 MB, so one object's state stays under 30 MB on a video of any length (tests/test_assist_sam2.py
measures it at a 64-pixel input: 28.7 KB after 20, 40 and 80 frames alike, against 90 / 172 / 336 KB without
the window). The session's results are COCO RLE (a few hundred bytes
per frame).

On CUDA out of memory the session first shrinks the window to SAM 2's own `num_maskmem` and moves the stored
outputs to the CPU, then moves the model to the CPU, each time saying so through the notice callback, and
retries the frame.
"""
from __future__ import annotations

import contextlib
import importlib.util
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import cv2
import numpy as np
import torch

from engine.assist.base import AssistConfig, AssistSession, FrameSource, NoticeFn, Prompt
from engine.device import autocast, choose_device, is_oom, release_memory
from engine.errors import CheckpointError, InputError

SIZES = ("tiny", "small", "base+", "large")
_CONFIG_LETTER = {"tiny": "t", "small": "s", "base+": "b+", "large": "l"}
_FILE_WORD = {"tiny": "tiny", "small": "small", "base+": "base_plus", "large": "large"}
# (trunk embedding width, number of Hiera blocks) of each released size: how a checkpoint tells its size
_TRUNKS = {(96, 12): "tiny", (96, 16): "small", (112, 24): "base+", (144, 48): "large"}

CHECKPOINT_SOURCE = "https://github.com/facebookresearch/sam2#download-checkpoints"
CHECKPOINT_URLS = {
    "2.1": "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_{word}.pt",
    "2": "https://dl.fbaipublicfiles.com/segment_anything_2/072824/sam2_hiera_{word}.pt",
}


def checkpoint_names(size: str) -> list[str]:
    """The official file names that fit a model size (SAM 2.1 first)."""
    w = _FILE_WORD[_check_size(size)]
    return [f"sam2.1_hiera_{w}.pt", f"sam2_hiera_{w}.pt"]


def checkpoint_urls(size: str) -> list[str]:
    w = _FILE_WORD[_check_size(size)]
    return [CHECKPOINT_URLS["2.1"].format(word=w), CHECKPOINT_URLS["2"].format(word=w)]


def config_name(size: str, version: str = "2.1") -> str:
    """The packaged hydra config of a size: configs/sam2.1/sam2.1_hiera_t.yaml and so on."""
    letter = _CONFIG_LETTER[_check_size(size)]
    if version == "2.1":
        return f"configs/sam2.1/sam2.1_hiera_{letter}.yaml"
    if version == "2":
        return f"configs/sam2/sam2_hiera_{letter}.yaml"
    raise InputError(None, f"SAM 2 version must be 2 or 2.1, got {version!r}")


def _check_size(size: str) -> str:
    s = {"base_plus": "base+", "b+": "base+", "t": "tiny", "s": "small", "l": "large"}.get(size, size)
    if s not in SIZES:
        raise InputError(None, f"SAM 2 model size must be one of {', '.join(SIZES)}, got {size!r}")
    return s


@dataclass
class Sam2Config:
    """Which SAM 2 and how it runs.

    `size`: tiny / small / base+ / large. `checkpoint`: an official SAM 2 / 2.1 `.pt` file ({"model": state_dict});
    None is refused unless `random_weights` (tests and benchmarks). `version`: "auto" reads it from the
    checkpoint (2.1 without one). `image_size`: the model's input size (None: the config's 1024; smaller is
    faster and coarser). `memory_window`: outputs kept around the current frame (None: exactly what the model
    reads back). `frame_cache`: normalised frames kept. `offload_state_to_cpu`: None keeps stored outputs where
    the model runs. `mixed_precision`: bf16/fp16 autocast on CUDA."""

    size: str = "tiny"
    checkpoint: Path | str | None = None
    version: str = "auto"
    device: str = "auto"
    image_size: int | None = None
    random_weights: bool = False
    memory_window: int | None = None
    frame_cache: int = 4
    offload_state_to_cpu: bool | None = None
    mixed_precision: bool = True


def _read_checkpoint(path: Path, size: str) -> tuple[dict, str]:
    """The state dict and version of an official checkpoint, or a CheckpointError that says what is wrong."""
    if not path.exists():
        raise CheckpointError(path, "no such file")
    if not path.is_file():
        raise CheckpointError(path, "is a folder, not a SAM 2 checkpoint file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise CheckpointError(path, f"not a SAM 2 checkpoint: it cannot be read as a PyTorch file "
                                    f"({type(e).__name__})") from None
    sd = obj.get("model") if isinstance(obj, dict) else None
    key = "image_encoder.trunk.patch_embed.proj.weight"
    if not isinstance(sd, dict) or key not in sd or not any(k.startswith("sam_mask_decoder.") for k in sd):
        raise CheckpointError(path, "not a SAM 2 checkpoint: no 'model' state dict with SAM 2's image encoder "
                                    "and mask decoder")
    blocks = {int(k.split(".")[3]) for k in sd if k.startswith("image_encoder.trunk.blocks.")}
    found = _TRUNKS.get((int(sd[key].shape[0]), len(blocks)))
    if found is None:
        raise CheckpointError(path, f"not a released SAM 2 size: trunk width {int(sd[key].shape[0])}, "
                                    f"{len(blocks)} blocks")
    if found != size:
        raise CheckpointError(path, f"is a SAM 2 {found} checkpoint, but the model size is set to {size} "
                                    f"(files for {size}: {', '.join(checkpoint_names(size))})")
    version = "2.1" if "no_obj_embed_spatial" in sd else "2"
    return sd, version


def load_sam2(config: Sam2Config):
    """Build a `SAM2VideoPredictor` with `sam2.build_sam.build_sam2_video_predictor` from the packaged config of
    the size, and load the checkpoint into it. We load the weights ourselves (not through the builder's
    `ckpt_path`) because the builder's loader answers a wrong file with a bare RuntimeError."""
    from sam2.build_sam import build_sam2_video_predictor

    size = _check_size(config.size)
    try:
        device = choose_device(config.device)
    except (RuntimeError, ValueError) as e:
        raise InputError(None, str(e)) from None
    sd, version = None, "2.1" if config.version == "auto" else config.version
    path = None
    if config.checkpoint is not None and str(config.checkpoint) != "":
        path = Path(config.checkpoint)
        sd, found_version = _read_checkpoint(path, size)
        if config.version not in ("auto", found_version):
            raise CheckpointError(path, f"is a SAM {found_version} checkpoint, but version {config.version} is set")
        version = found_version
    elif not config.random_weights:
        raise CheckpointError(None, f"no SAM 2 checkpoint is set (files for {size}: "
                                    f"{', '.join(checkpoint_names(size))}, from {CHECKPOINT_SOURCE})")
    overrides = ["++model.add_all_frames_to_correct_as_cond=true"]   # every prompted frame conditions the run
    if config.image_size is not None:
        if config.image_size % 32 or config.image_size < 64:
            raise InputError(None, f"SAM 2 image size must be a multiple of 32 and at least 64, "
                                   f"got {config.image_size}")
        overrides.append(f"++model.image_size={int(config.image_size)}")
    model = build_sam2_video_predictor(config_name(size, version), None, device="cpu",
                                       hydra_overrides_extra=overrides)
    if sd is not None:
        try:
            missing, unexpected = model.load_state_dict(sd, strict=False)
        except RuntimeError as e:
            raise CheckpointError(path, f"does not fit SAM {version} {size}: {str(e).splitlines()[1:2]}") from None
        if missing or unexpected:
            raise CheckpointError(path, f"does not fit SAM {version} {size}: {len(missing)} missing keys "
                                        f"{missing[:2]}, {len(unexpected)} unexpected {unexpected[:2]}")
    if importlib.util.find_spec("sam2._C") is None:
        # hole filling needs sam2's compiled extension (not built on CPU-only installs); without it SAM 2 warns
        # and skips it on every frame, so say no to it once instead
        model.fill_hole_area = 0
    model = model.to(device).eval()
    model.sam2_version = version
    return model


class _Frames:
    """`inference_state["images"]` for SAM 2: frame i as a 3 x S x S float tensor, normalised with SAM 2's
    ImageNet mean/std, decoded from the session's video when asked; the last `keep` stay (on the CPU)."""

    MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
    STD = np.array([0.229, 0.224, 0.225], np.float32) * 255

    def __init__(self, read, n: int, size: int, keep: int):
        self._read, self._n, self._size, self._keep = read, n, size, max(1, keep)
        self._cache: OrderedDict[int, torch.Tensor] = OrderedDict()

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> torch.Tensor:
        i = int(i)
        t = self._cache.get(i)
        if t is not None:
            self._cache.move_to_end(i)
            return t
        img = self._read(i)
        s = self._size
        interp = cv2.INTER_AREA if min(img.shape[:2]) > s else cv2.INTER_LINEAR
        x = (cv2.resize(img, (s, s), interpolation=interp).astype(np.float32) - self.MEAN) / self.STD
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))
        self._cache[i] = t
        while len(self._cache) > self._keep:
            self._cache.popitem(last=False)
        return t


def _move(obj: Any, device: torch.device) -> Any:
    """Every tensor inside nested dicts / lists moved to `device` (in place for containers)."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        for k in list(obj):
            obj[k] = _move(obj[k], device)
        return obj
    if isinstance(obj, list):
        obj[:] = [_move(v, device) for v in obj]
        return obj
    if isinstance(obj, tuple):
        return tuple(_move(v, device) for v in obj)
    return obj


_INIT_LOCK = threading.Lock()


@contextlib.contextmanager
def _quiet_sam2_bar(first_step: bool):
    """`propagate_in_video` wraps its frames in its own tqdm bar, created on the generator's first step; the
    caller shows its own progress, so that first step runs with a pass-through in its place."""
    if not first_step:
        yield
        return
    import sam2.sam2_video_predictor as svp

    with mock.patch.object(svp, "tqdm", lambda it, *a, **k: it):
        yield


class Sam2Model:
    """A loaded SAM 2 (one per engine worker: it owns the weights); `open(video)` starts a session on a video,
    `segment_image(image, ...)` answers prompts on a lone image with `SAM2ImagePredictor`."""

    def __init__(self, config: Sam2Config | None = None):
        self.config = config or Sam2Config()
        self.predictor = load_sam2(self.config)
        self._image_predictor = None

    @property
    def device(self) -> torch.device:
        return self.predictor.device

    @property
    def image_size(self) -> int:
        return int(self.predictor.image_size)

    def open(self, video: FrameSource, assist: AssistConfig | None = None,
             notice: NoticeFn | None = None) -> Sam2Session:
        return Sam2Session(video, self, assist, notice)

    def segment_image(self, image: np.ndarray, points=None, labels=None, box=None) -> np.ndarray:
        """H x W bool mask for a prompt on one RGB image (no video state). One positive click alone is
        ambiguous, so SAM 2 proposes three masks and the one with the best predicted IoU is kept."""
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        from engine.assist.base import make_prompt

        p = make_prompt(points, labels, box, None, image.shape[:2])
        if self._image_predictor is None:
            ip = SAM2ImagePredictor(self.predictor)
            s = self.image_size     # its feature sizes are written for 1024 inputs; follow the model's size
            ip._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
            self._image_predictor = ip
        ip = self._image_predictor
        with torch.inference_mode(), autocast(self.device, self.config.mixed_precision):
            ip.set_image(np.ascontiguousarray(image))
            multi = p.box is None and len(p.points) == 1
            masks, scores, _ = ip.predict(point_coords=p.points if len(p.points) else None,
                                          point_labels=p.labels if len(p.points) else None,
                                          box=p.box, multimask_output=multi)
        ip.reset_predictor()
        return np.asarray(masks[int(np.argmax(scores))] > 0)


class Sam2Session(AssistSession):
    """SAM 2 video segmentation on one video: prompts go to `add_new_points_or_box` / `add_new_mask`, runs to
    `propagate_in_video`, one inference state per object (see the module docstring for memory)."""

    tool = "sam2"
    can_recover = True

    def __init__(self, video: FrameSource, model: Sam2Model, assist: AssistConfig | None = None,
                 notice: NoticeFn | None = None):
        super().__init__(video, assist, notice)
        self.model = model
        p = model.predictor
        cfg = model.config
        self.window = cfg.memory_window or max(p.num_maskmem * max(1, p.memory_temporal_stride_for_eval),
                                               p.max_obj_ptrs_in_encoder)
        self._images = _Frames(self.frame, self.num_frames, p.image_size, cfg.frame_cache)
        offload = cfg.offload_state_to_cpu if cfg.offload_state_to_cpu is not None else False
        import sam2.sam2_video_predictor as svp

        with _INIT_LOCK, mock.patch.object(svp, "load_video_frames",
                                           lambda **_kw: (self._images, self.height, self.width)):
            template = p.init_state(video_path=str(getattr(video, "path", "<frames>")),
                                    offload_video_to_cpu=True, offload_state_to_cpu=offload)
        self._features = template["cached_features"]      # the current frame's image features, shared
        self._constants = template["constants"]
        self._template = {k: (type(v) if isinstance(v, (dict, list)) else v) for k, v in template.items()
                          if k not in ("images", "cached_features", "constants")}
        self._states: dict[int, dict] = {}
        self._runs: dict[int, dict] = {}
        self._fallbacks = 0

    # ---- states ----------------------------------------------------------------------------------------------
    def _state(self, obj_id: int) -> dict:
        st = self._states.get(obj_id)
        if st is None:
            st = {k: (v() if isinstance(v, type) else v) for k, v in self._template.items()}
            st["images"], st["cached_features"], st["constants"] = self._images, self._features, self._constants
            self._states[obj_id] = st
        return st

    @contextlib.contextmanager
    def _on(self, st: dict):
        """One object's state with the shared image features of the current frame in place (SAM 2 replaces
        the dict when it encodes a new frame; we take that one back for the next object)."""
        st["cached_features"] = self._features
        try:
            with autocast(self.model.device, self.model.config.mixed_precision):
                yield
        finally:
            self._features = st["cached_features"]

    def _call(self, st: dict, fn, *args, **kwargs):
        """A predictor call on one object's state; on CUDA out of memory fall back one step and retry."""
        while True:
            try:
                with self._on(st):
                    return fn(*args, **kwargs)
            except Exception as e:
                if not is_oom(e):
                    raise
                self._fall_back(e)

    def _fall_back(self, exc: BaseException) -> None:
        dev = self.model.device
        self._fallbacks += 1
        release_memory(dev)
        if self._fallbacks == 1 and dev.type == "cuda":
            p = self.model.predictor
            self.window = min(self.window, p.num_maskmem)
            for st in self._states.values():
                st["storage_device"] = torch.device("cpu")
                _move(st["output_dict_per_obj"], torch.device("cpu"))
                self._prune(st, None)
            self._template["storage_device"] = torch.device("cpu")
            self.notice(f"SAM 2 ran out of GPU memory: memory window now {self.window} frames, "
                        f"state kept on the CPU")
            return
        if dev.type != "cpu":
            cpu = torch.device("cpu")
            self.model.predictor.to(cpu)
            self.model._image_predictor = None
            for st in self._states.values():
                for k in ("output_dict_per_obj", "temp_output_dict_per_obj", "point_inputs_per_obj",
                          "mask_inputs_per_obj"):
                    _move(st[k], cpu)
                st["device"] = st["storage_device"] = cpu
            _move(self._constants, cpu)
            self._features = {}
            self._template["device"] = self._template["storage_device"] = cpu
            release_memory(dev)
            self.notice("SAM 2 ran out of GPU memory again: it now runs on the CPU (slower)")
            return
        raise exc

    def _prune(self, st: dict, frame: int | None) -> None:
        """Drop stored outputs further than `window` frames from `frame` (they are never read back); frames
        that received prompts (conditioning outputs) are kept."""
        for out in st["output_dict_per_obj"].values():
            nc = out["non_cond_frame_outputs"]
            if frame is None:
                frame = max(nc, default=0)
            for t in [t for t in nc if abs(t - frame) > self.window]:
                del nc[t]

    def stored_outputs(self, obj_id: int) -> int:
        """How many per-frame outputs SAM 2 holds for the object (the quantity the window bounds)."""
        st = self._states.get(obj_id)
        if st is None:
            return 0
        return sum(len(o["cond_frame_outputs"]) + len(o["non_cond_frame_outputs"])
                   for o in st["output_dict_per_obj"].values())

    # ---- the tool --------------------------------------------------------------------------------------------
    def _segment(self, frame: int, obj_id: int, prompt: Prompt) -> np.ndarray:
        p = self.model.predictor
        st = self._state(obj_id)
        if len(prompt.points) or prompt.box is not None:    # SAM 2 takes clicks/box or a mask, not both
            _, _, masks = self._call(st, p.add_new_points_or_box, st, frame, obj_id,
                                     points=prompt.points if len(prompt.points) else None,
                                     labels=prompt.labels if len(prompt.points) else None,
                                     box=prompt.box, clear_old_points=True)
        else:
            _, _, masks = self._call(st, p.add_new_mask, st, frame, obj_id, torch.from_numpy(prompt.mask))
        return (masks[0, 0] > 0).cpu().numpy()

    def _forget(self, frame: int | None, obj_id: int) -> None:
        if frame is None:
            self._states.pop(obj_id, None)
            return
        st = self._states.get(obj_id)
        if st is not None and obj_id in st["obj_id_to_idx"]:
            self._call(st, self.model.predictor.clear_all_prompts_in_frame, st, frame, obj_id, need_output=False)

    def _has_output(self, st: dict, frame: int) -> bool:
        return any(frame in d[k] for key in ("output_dict_per_obj", "temp_output_dict_per_obj")
                   for d in st[key].values() for k in ("cond_frame_outputs", "non_cond_frame_outputs"))

    def _run_begin(self, obj_id: int, start: int, d: int, stop: int) -> None:
        st = self._state(obj_id)
        if not self._has_output(st, start):     # the start mask came from elsewhere or its output was dropped
            self._call(st, self.model.predictor.add_new_mask, st, start, obj_id,
                       torch.from_numpy(self.mask(start, obj_id)))
        self._runs[obj_id] = {"gen": None, "from": start, "skip": True, "stop": stop, "d": d}

    def _run_step(self, obj_id: int, frame: int, d: int) -> np.ndarray:
        st, run = self._states[obj_id], self._runs[obj_id]
        p = self.model.predictor
        while True:
            if run["gen"] is None:
                run["gen"] = p.propagate_in_video(st, start_frame_idx=run["from"],
                                                  max_frame_num_to_track=abs(run["stop"] - run["from"]),
                                                  reverse=d < 0)
            try:
                with self._on(st), _quiet_sam2_bar(run["skip"] or run["from"] == frame):
                    f, _, masks = next(run["gen"])
                    if run["skip"]:     # propagate_in_video yields its start frame first: that is our source
                        run["skip"] = False
                        f, _, masks = next(run["gen"])
                break
            except Exception as e:
                if not is_oom(e):
                    raise
                # the generator died with the error: fall back, then restart the run at this frame
                self._fall_back(e)
                run["gen"], run["from"], run["skip"] = None, frame, False
        if f != frame:
            raise RuntimeError(f"SAM 2 propagated frame {f}, expected {frame}")
        run["from"] = frame
        self._prune(st, frame)
        return (masks[0, 0] > 0).cpu().numpy()

    def _run_end(self, obj_id: int) -> None:
        run = self._runs.pop(obj_id, None)
        if run is not None and run["gen"] is not None:
            run["gen"].close()

    def close(self) -> None:
        super().close()
        self._states.clear()
        self._features = {}
        release_memory(self.model.device)
