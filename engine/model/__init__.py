"""The SyncVIS network (design R-A): `build_model(cfg.model)` -> `SyncVIS`; see syncvis.py for the output dict."""
from .syncvis import SyncVIS, build_model

__all__ = ["SyncVIS", "build_model"]
