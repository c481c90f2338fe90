"""Keep TensorFlow's C++ start-up lines out of the terminal.

``TF_CPP_MIN_LOG_LEVEL`` (set in ``common/__init__``) filters TensorFlow's own logging, but the
lines printed while its shared libraries load (oneDNN, CUDA probing, CPU features, and absl's
"All log messages before absl::InitializeLog() is called are written to STDERR") come before
absl is set up and ignore it. So the first ``import tensorflow`` (directly or through keras) runs
with file descriptor 2 sent to a temporary file, together with the device probe that prints the
``cuInit`` line; afterwards the lines that are not start-up noise are written back to stderr.

``TF_CPP_MIN_LOG_LEVEL=0`` (the user asked for everything) turns this off.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile

# Lines TensorFlow prints on every start: absl's pre-init note, glog-style INFO / WARNING lines
# ("I0000 00:00:... port.cc:153] oneDNN custom operations are on"), the CPU-feature note, and the
# CUDA probing errors of a machine without a usable GPU driver.
_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IW]\d{4} \d\d:\d\d:\d\d"
    r"|To enable the following instructions:"
    r"|E\d{4} .*(cuInit|Unable to register cu(DNN|FFT|BLAS) factory|cuda_(platform|dnn|fft|blas))"
    # Grappler giving up on an optional graph rewrite (the graph runs without it), e.g.
    # "meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT: Mutation::Apply error"
    r"|E\d{4} .*meta_optimizer\.cc:\d+\] \w+ failed: )")


def is_noise(line: str) -> bool:
    return bool(_NOISE.match(line))


class _FilteredStderr:
    """File descriptor 2 goes to a temporary file; on exit the useful lines are written back."""

    def __init__(self):
        self.active = os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "0"

    def __enter__(self):
        if not self.active:
            return self
        try:
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass
        try:
            self.saved = os.dup(2)
        except OSError:  # no stderr to filter
            self.active = False
            return self
        self.capture = tempfile.TemporaryFile(mode="w+b")
        os.dup2(self.capture.fileno(), 2)
        return self

    def __exit__(self, *exc):
        if not self.active:
            return False
        try:
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.capture.seek(0)
        text = self.capture.read().decode("utf-8", "replace")
        self.capture.close()
        kept = [line for line in text.splitlines() if line.strip() and not is_noise(line)]
        if kept:
            os.write(2, ("\n".join(kept) + "\n").encode())
        return False


def filtered_stderr() -> _FilteredStderr:
    """``with filtered_stderr(): ...`` drops TensorFlow's noise lines printed meanwhile (e.g.
    around the first run of a graph, when Grappler optimises it)."""
    return _FilteredStderr()


class _QuietLoader(importlib.abc.Loader):
    """Wraps TensorFlow's own loader: its module body runs with stderr filtered."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with _FilteredStderr():
            self._loader.exec_module(module)
            try:  # the device probe prints the cuInit line; it does not initialise the GPUs
                module.config.list_physical_devices()
            except Exception:  # noqa: BLE001 a probe only; TensorFlow reports real problems later
                pass

    def __getattr__(self, name):  # resource readers etc. of the real loader
        return getattr(self._loader, name)


class _QuietFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        uninstall()
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


_FINDER = _QuietFinder()


def install() -> None:
    """Filter the start-up lines of the first ``import tensorflow`` (no-op when it is imported
    already, when TF_CPP_MIN_LOG_LEVEL=0, or when stderr is not a file descriptor)."""
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return
    try:
        os.fstat(2)
    except OSError:
        return
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
