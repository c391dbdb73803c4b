"""File › New / Open project, Save project as, Import and Export: the dialogs around app/editing.py's project.

Kept out of the window so main_window.py stays wiring; each function here asks the user (or takes the answer as
an argument, for scripts and tests) and calls the window's `open_video` or the editing layer.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox

from engine.errors import InputError

VIDEO_FILTER = "Videos (*.mp4 *.mov *.mkv *.avi *.webm *.m4v *.ts *.mpg *.mpeg);;All files (*)"
PROJECT_FILTER = "SyncVIS projects (*.svproj);;All files (*)"


class ProjectFiles:
    def __init__(self, window):
        self.w = window

    def open_project(self, path: str | Path, video: str | Path | None = None) -> bool:
        """Open a project file and its video. A video that moved is looked for beside the project, then asked
        for (`video` answers for scripts and tests) and checked to be the same video."""
        from engine.project.project import Project, VideoMissing
        from engine.project.store import ProjectError

        self.w.settle()   # a run that just ended reaches the open project first
        current = self.w.editing.session.project
        if current is not None and Path(current.path).resolve() == Path(path).resolve() and video is None:
            return True  # already open here
        try:
            probe = Project.open(path, video, require_video=video is None)
            found = probe.doc.video.path
            probe.close()
        except VideoMissing as e:
            if not self.w.status.show_message_boxes:
                self.w.show_message("Project video missing", str(e))
                return False
            QMessageBox.information(self.w, "Project video missing", f"{e}.")
            chosen, _ = QFileDialog.getOpenFileName(self.w, f"Where is {Path(e.video.path).name}?",
                                                    str(Path(path).parent), VIDEO_FILTER)
            if not chosen:
                return False
            return self.open_project(path, chosen)
        except (ProjectError, InputError) as e:
            self.w.show_message("Cannot open project", str(e))
            return False
        return self.w.open_video(found, project=path)

    def open_project_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.w, "Open project", self.w.settings.last_dir(),
                                              PROJECT_FILTER)
        if path:
            self.open_project(path)

    def new_project(self, video: str | Path, path: str | Path) -> bool:
        """Make a project file for a video (File › New project) and open it."""
        from engine.project.project import Project
        from engine.project.store import ProjectError

        try:
            Project.create(path, video).close()
        except (ProjectError, InputError) as e:
            self.w.show_message("Cannot create project", str(e))
            return False
        return self.w.open_video(video, project=path)

    def new_project_dialog(self) -> None:
        video, _ = QFileDialog.getOpenFileName(self.w, "New project: choose its video", self.w.settings.last_dir(),
                                               VIDEO_FILTER)
        if not video:
            return
        path, _ = QFileDialog.getSaveFileName(self.w, "New project: save as",
                                              str(Path(video).with_suffix(".svproj")), PROJECT_FILTER)
        if path:
            self.new_project(video, path)

    def save_project_as_dialog(self) -> None:
        from engine.project.store import ProjectError

        if self.w.editing.session.project is None:
            return
        start = str(Path(self.w.doc.video.path).with_suffix(".svproj")) if self.w.doc.video else ""
        path, _ = QFileDialog.getSaveFileName(self.w, "Save project as", start, "SyncVIS projects (*.svproj)")
        if path:
            try:
                self.w.editing.session.save_as(path)
            except ProjectError as e:
                self.w.show_message("Cannot save project", str(e))
            self.w._update_title()

    def import_ytvis_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.w, "Import YouTube-VIS", self.w.settings.last_dir(),
                                              "YouTube-VIS JSON (*.json);;All files (*)")
        if path:
            self.w.editing.import_ytvis(path)

    def export_dialog(self, kind: str) -> None:
        stem = Path(self.w.doc.video.path).stem if self.w.doc.video else "export"
        if kind == "davis":
            folder = QFileDialog.getExistingDirectory(self.w, "Export DAVIS palette PNGs", self.w.settings.last_dir())
            if folder:
                self.w.editing.export_davis(folder)
            return
        name = f"{stem}-results.json" if kind == "results" else f"{stem}.json"
        path, _ = QFileDialog.getSaveFileName(self.w, "Export YouTube-VIS", name, "YouTube-VIS JSON (*.json)")
        if path:
            self.w.editing.export_ytvis(path, results=kind == "results")

