"""The one exception type for user mistakes (missing files, bad images, missing weights...)."""


class UserError(Exception):
    """A mistake the user can fix. The message names the file and the fix, in one line.

    Scripts catch it in :func:`common.cli.run_cli`, print ``error: <message>`` and exit with status 2
    instead of showing a traceback.
    """
