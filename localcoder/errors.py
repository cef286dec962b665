"""Errors the CLI turns into one line on stderr and a non-zero exit."""

from convert.errors import ConvertError


class LocalcoderError(Exception):
    """A problem with the user's input or environment that they can fix."""


USER_ERRORS = (LocalcoderError, ConvertError)
