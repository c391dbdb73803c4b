"""The SyncVIS network (design R-A): `build_model(cfg.model)` -> `SyncVIS` (output dict: see syncvis.py)."""

from .syncvis import SyncVIS, build_model

__all__ = ["SyncVIS", "build_model"]
