"""The one exception type a user sees as a one-line message (the CLI prints it without a traceback)."""


class UserError(Exception):
    """Bad input or a missing resource: the message names the file/argument at fault and what to do."""
