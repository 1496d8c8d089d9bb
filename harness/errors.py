"""User-facing errors: one line that names the thing and the fix, never a traceback."""


class UserError(Exception):
    """Bad input from the user (a missing file, an unknown option, a wrong sample rate...).

    The message is one line naming the thing and the fix. The pytest plugin and the command-line
    entry points print it alone and exit with status 2.
    """
