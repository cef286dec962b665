"""The one error type the converter raises for bad input.

Its message is a single line meant for the user; the CLI prints it and exits
non-zero, never a traceback.
"""

from ggufkit.errors import UserError


class ConvertError(UserError):
    """A checkpoint, option or output problem the user can fix."""
