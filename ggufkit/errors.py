"""The base of every error the CLI turns into one line on stderr and a non-zero exit."""


class UserError(Exception):
    """A problem with the user's input or environment that they can fix; its message is one line."""


class InterruptedAfterWrite(KeyboardInterrupt):
    """Ctrl-C after the output was renamed into place: the file is complete, and the message must say so."""

    def __init__(self, path: object) -> None:
        super().__init__(f"{path} was written and is complete")
