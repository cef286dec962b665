"""The sandbox's side of a HumanEval check: the completion's function answers calls one by one, and never sees the
tests.

Why: a program that holds its own verdict can forge it. The old check appended the tests and a line printing a
marker to the program; the marker was in the program's file (and MTPB's in the caller's frame), so a wrong
completion that printed it, read from sys.argv[0], and called os._exit(0) scored as passed. Any secret in the
program's process can be read by the program. So the tests no longer run there: localcoder runs them in its own
process (checks.py), and each time they call the function, the call crosses to the program, which answers with
the value. The program never sees the tests, the expected values or any marker; what it says is only its
function's answers. An early exit ends the conversation, and the sample fails.

execution.py sends this file's source after the program (prompt, completion, suffix: no tests) and calls
`serve(<entry point>)`. It uses only the standard library. One line each way, in turn:

    program -> localcoder: REPLY + JSON: ["ready"] once the program's own code has run; then, for each call,
                           ["returned", repr(value)], ["raised", exception name, message] or
                           ["unreadable", type name] (a value that is not a plain literal)
    localcoder -> program: repr((args, kwargs))

Values cross as Python literals (`literal`): numbers, str, bytes, bools, None, lists, tuples, dicts and sets of
them, and inf and nan; a tuple stays a tuple, so `== (1, 2)` means what it meant in the program.
"""

import ast
import json
import math
import os
import sys

REPLY = "#localcoder-reply:"
_MESSAGE_CHARS = 300


class _Floats(ast.NodeTransformer):
    def visit_Name(self, node):
        if node.id in ("inf", "nan"):
            return ast.copy_location(ast.Constant(math.inf if node.id == "inf" else math.nan), node)
        return node


def literal(text):
    """The value a repr() wrote, for plain values only (ast.literal_eval, and the names inf and nan)."""
    tree = _Floats().visit(ast.parse(text.strip(), mode="eval"))
    return ast.literal_eval(tree)


def _reply(message):
    data = (REPLY + json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(1, data) :]


def serve(function):
    """Answer calls of `function` read from stdin until it closes; the function's own prints go to stderr."""
    sys.stdout.flush()
    sys.stdout = sys.stderr
    _reply(["ready"])
    for line in os.fdopen(0, "rb", closefd=False):
        args, kwargs = literal(line.decode())
        try:
            value = function(*args, **kwargs)
        except Exception as exc:  # an exit (SystemExit, os._exit) ends the program, and the conversation with it
            _reply(["raised", type(exc).__name__, str(exc)[:_MESSAGE_CHARS]])
            continue
        try:
            text = repr(value)
            literal(text)
        except Exception:
            _reply(["unreadable", type(value).__name__])
            continue
        _reply(["returned", text])
