"""The page's private temporary folder: Gradio's uploads and the results live there, nowhere else.

It is created (mode 0700) when the page starts, handed to Gradio through ``GRADIO_TEMP_DIR``
(read when Gradio is imported and when the page is built), and removed when the process exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

_ROOT: Path | None = None
KEEP_SECONDS = 3600  # results and sample copies older than this are deleted (Gradio keeps its own copies)


def temp_root() -> Path:
    """The folder, created on first call and removed at exit."""
    global _ROOT
    if _ROOT is None or not _ROOT.is_dir():
        _ROOT = Path(tempfile.mkdtemp(prefix="gan-restoration-webui-")).resolve()
        atexit.register(shutil.rmtree, _ROOT, True)
    os.environ["GRADIO_TEMP_DIR"] = str(_ROOT / "uploads")
    return _ROOT


def request_folder(kind: str = "results") -> Path:
    """A new folder for one request's files (results, or copies of a bundled sample); those of
    requests older than ``KEEP_SECONDS`` are deleted, so a long-running page does not fill the disk."""
    parent = temp_root() / kind
    if parent.is_dir():
        cutoff = time.time() - KEEP_SECONDS
        for old in parent.iterdir():
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
    folder = parent / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True)
    return folder


def unique_path(folder: Path, stem: str, suffix: str = ".png") -> Path:
    """``folder/stem.png``, or ``stem_2.png``... when two uploads share a name."""
    path, count = folder / f"{stem}{suffix}", 1
    while path.exists():
        count += 1
        path = folder / f"{stem}_{count}{suffix}"
    return path


def shown_name(path) -> str:
    """The name the user gave the file (Gradio keeps it as the last part of the upload's path)."""
    return Path(path).name


def user_message(error: Exception, *paths) -> str:
    """``error: <message>`` as predict.py prints it, with the uploads' temporary folders left out,
    so the line names the user's own files (``paths``: the uploads it may mention)."""
    text = str(error)
    for path in paths:
        if path:
            text = text.replace(str(path), shown_name(path))
    root = _ROOT
    if root is not None:
        text = text.replace(str(root) + os.sep, "")
    return f"error: {text}"
