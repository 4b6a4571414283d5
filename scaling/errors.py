"""Errors a user can fix. The CLI turns them into one line on stderr and exit code 2."""


class UserError(Exception):
    """Bad input (config, file, flag). The message names the field or file at fault, in one line."""


class RunFailed(Exception):
    """A run started but did not finish (diverged, crashed). The CLI exits with code 1."""
