"""The base of every error the CLI turns into one line on stderr and a non-zero exit."""


class UserError(Exception):
    """A problem with the user's input or environment that they can fix; its message is one line."""
