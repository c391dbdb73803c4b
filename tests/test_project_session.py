"""The window's project session: QUndoStack over the edit layer, clean state, failed writes, autosave projects."""
from __future__ import annotations

import numpy as np

from app.project_session import ProjectSession, autosave_path
from engine.data.masks import encode
from engine.project import ops
from engine.project.model import Provenance
from engine.project.project import Project
from tests.media import write_frame_folder

HUMAN = Provenance("human", "brush", 1.0)


def box(y0, y1, x0, x1, h=48, w=64):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return encode(m)


def test_undo_redo_through_the_stack_is_exact_and_on_disk(qtbot, tmp_path):
    video = write_frame_folder(tmp_path / "v", 6)
    s = ProjectSession()
    s.create(tmp_path / "p.svproj", video)
    changes = []
    s.changed.connect(changes.append)
    doc = s.doc
    snaps = [doc.snapshot()]
    for make in (lambda: ops.add_category(doc, "car"), lambda: ops.new_track(doc, 1, "car"),
                 lambda: ops.set_mask(doc, 1, 2, box(3, 9, 4, 20), HUMAN),
                 lambda: ops.set_mask(doc, 1, 3, box(3, 9, 6, 22), HUMAN), lambda: ops.split(doc, 1, 3)):
        assert s.push(make())
        snaps.append(doc.snapshot())
        assert s.stack.isClean()  # every step is committed as it happens
    assert changes[-1].tracks_added == {2}
    for k in range(len(snaps) - 2, -1, -1):
        s.stack.undo()
        assert doc.snapshot() == snaps[k] and s.stack.isClean()
    for k in range(1, len(snaps)):
        s.stack.redo()
        assert doc.snapshot() == snaps[k]
    s.stack.undo()  # the file follows undo too
    want = doc.snapshot()
    s.close()
    p = Project.open(tmp_path / "p.svproj")
    assert p.doc.snapshot() == want
    p.close()


def test_failed_write_marks_unsaved_and_ctrl_s_catches_up(qtbot, tmp_path):
    video = write_frame_folder(tmp_path / "v", 4)
    s = ProjectSession()
    s.create(tmp_path / "p.svproj", video)
    errors, saved = [], []
    s.write_failed.connect(errors.append)
    s.saved_changed.connect(saved.append)
    conn = s.project.store._conn  # noqa: SLF001 - a real SQLite read-only failure on this connection
    conn.execute("PRAGMA query_only = ON")
    s.push(ops.add_category(s.doc, "car"))
    assert errors and "could not save" in errors[0] and saved == [False]
    assert not s.stack.isClean() and not s.saved and s.doc.category_by_name("car") is not None
    conn.execute("PRAGMA query_only = OFF")
    assert s.save() and s.stack.isClean() and saved == [False, True]
    s.close()
    p = Project.open(tmp_path / "p.svproj")
    assert p.doc.category_by_name("car") is not None
    p.close()


def test_autosave_project_of_a_plain_video_comes_back(qtbot, tmp_path):
    video = write_frame_folder(tmp_path / "clip", 5)
    s = ProjectSession()
    s.open_for_video(tmp_path / "projects", video)
    assert s.autosave and s.project.path == autosave_path(tmp_path / "projects", video)
    s.push(ops.add_category(s.doc, "dog"))
    s.close()
    s.open_for_video(tmp_path / "projects", video)
    assert s.doc.category_by_name("dog") is not None and s.stack.count() == 0
    s.close()
