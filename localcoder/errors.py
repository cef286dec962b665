"""Errors the CLI turns into one line on stderr and a non-zero exit."""

from ggufkit.errors import UserError


class LocalcoderError(UserError):
    """A problem with the user's input or environment that they can fix."""


USER_ERRORS = (UserError,)  # LocalcoderError, and the converter's ConvertError
