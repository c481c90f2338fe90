"""The one exception type for user mistakes (missing files, bad images, missing weights...), and
the one-line summary of any other exception that such messages quote."""


class UserError(Exception):
    """A mistake the user can fix. The message names the file and the fix, in one line.

    Scripts catch it in :func:`common.cli.run_cli`, print ``error: <message>`` and exit with status 2
    instead of showing a traceback.
    """


def first_line(error, limit: int = 240, default: str | None = None) -> str:
    """The first non-empty line of an exception's message (TensorFlow's ``.message`` when it has
    one), shortened to ``limit`` characters with "..."; ``default`` (the exception's type name
    unless given) when the message is empty. h5py, Keras and TensorFlow messages run long."""
    text = getattr(error, "message", None) if isinstance(error, BaseException) else None
    lines = [line.strip() for line in str(text or error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__ if default is None else default
    line = lines[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."


class TrainingInterrupted(Exception):
    """Ctrl-C or SIGTERM stopped training after a checkpoint was saved; rerunning resumes."""

    def __init__(self, step: int, signal_name: str, run_dir):
        self.step, self.signal_name, self.run_dir = step, signal_name, run_dir
        super().__init__(f"{signal_name} at step {step}: checkpoint saved in {run_dir}/checkpoints; "
                         "run the same command again to resume")
