"""The one exception type for user mistakes (missing files, bad images, missing weights...)."""


class UserError(Exception):
    """A mistake the user can fix. The message names the file and the fix, in one line.

    Scripts catch it in :func:`common.cli.run_cli`, print ``error: <message>`` and exit with status 2
    instead of showing a traceback.
    """


class TrainingInterrupted(Exception):
    """Ctrl-C or SIGTERM stopped training after a checkpoint was saved; rerunning resumes."""

    def __init__(self, step: int, signal_name: str, run_dir):
        self.step, self.signal_name, self.run_dir = step, signal_name, run_dir
        super().__init__(f"{signal_name} at step {step}: checkpoint saved in {run_dir}/checkpoints; "
                         "run the same command again to resume")
