"""Suite-wide settings: offscreen Qt, no user settings touched, deterministic seeds, modest torch threading."""
from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(0)
    yield


@pytest.fixture(scope="session", autouse=True)
def _isolated_settings(tmp_path_factory):
    """Keep QSettings (recent files, window state) of the test run away from the user's own."""
    os.environ["SYNCVIS_SETTINGS_DIR"] = str(tmp_path_factory.mktemp("settings"))
    yield


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tests that use torch run one intra-op thread: their tensors are small, and on a shared 2-core machine two
    threads fighting other processes run several times slower than one."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
