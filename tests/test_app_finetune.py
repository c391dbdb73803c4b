"""Fine-tuning from the window (pytest-qt, offscreen): the button starts a child process, progress arrives in the
Training panel, cancel stops it and keeps its checkpoint, a second start runs to the before/after table."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.data.ytvis import Dataset
from tests.test_app_editing import make_window

BUNDLED = Path(__file__).resolve().parents[1] / "resources" / "models" / "tiny-sync.pt"


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from engine.data.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("synth"), preset="default", num_videos=1, seed=9, size=(160, 96))


@pytest.mark.slow
@pytest.mark.skipif(not BUNDLED.exists(), reason="needs the bundled model")
def test_finetune_button_progress_cancel_and_result(qtbot, tmp_path, synth):
    v = Dataset.from_folder(synth).videos[0]
    w = make_window(qtbot, tmp_path / "settings")
    assert w.open_video(synth / "JPEGImages" / v.name)
    assert w.editing.import_ytvis(synth / "annotations.json")  # the corrected annotations
    w.set_checkpoint(str(BUNDLED))
    ft, view = w.finetune, w.training

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.finetune import FineTuneDialog

    # The user sets many iterations and cancels at the first progress, so a cancel that goes unheard cannot pass
    # for the run's end (it did once: the suite ran with SIGINT ignored, see engine/cli.interruptible).
    iters = 5000

    def fill_and_start():  # the plan dialog: defaults filled in; the user sets the iterations and presses Start
        dlg = QApplication.activeModalWidget()
        assert isinstance(dlg, FineTuneDialog) and dlg.init.text() == str(BUNDLED) and dlg.holdout.value() == 0.2
        dlg.iters.setValue(iters)
        dlg.accept()

    QTimer.singleShot(200, fill_and_start)
    w.act["finetune"].trigger()  # Engine › Fine-tune on this project…
    assert ft.running() and w.dock_training.isVisible()
    qtbot.waitUntil(lambda: bool(view.loss_points().get("loss")), timeout=180_000)  # progress arrives
    assert view.bar.maximum() == iters and view.bar.value() >= 1 and "iteration" in view.detail.text()
    with qtbot.waitSignal(ft.ended, timeout=120_000) as ended:
        ft.cancel()
    assert ended.args[0] == "cancelled" and ft.proc is None
    assert "Cancelled: kept" in view.title.text()  # the last checkpoint survives the cancel

    with qtbot.waitSignal(ft.finished, timeout=300_000) as done:
        assert ft.start(iters=2, run_dir=tmp_path / "run2")
    res = done.args[0]
    assert set(res["before"]) >= {"AP", "AP50", "AP75", "AR1", "AR10"} and set(res["after"]) == set(res["before"])
    assert Path(res["checkpoint"]).is_file() and res["checkpoint"] in w.settings.models()
    assert view.cell("AP", 0) == f"{100 * res['before']['AP']:.1f}" and view.use.isEnabled()
    assert (Path(res["run_dir"]) / "model.json").is_file()

    # Use the new model: it runs again, Compare shows old and new side by side, the panel lists track changes.
    with qtbot.waitSignal(w.run_finished, timeout=240_000):
        w.run_model()  # the old model's run first, so there is something to compare with
    with qtbot.waitSignal(w.run_finished, timeout=240_000):
        view.use.click()
    assert w.checkpoint == res["checkpoint"]
    assert [s.key for s in w.comparison.sources][:2] == [str(BUNDLED), res["checkpoint"]]
    assert view.diff.text().startswith("<b>Old vs new model, per track</b>") and "track" in view.diff.text()
    qtbot.waitUntil(lambda: not w.comparison.jobs(), timeout=240_000)
    w.close()
