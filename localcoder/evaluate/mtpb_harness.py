"""MTPB's scoring: the last printed value against the expected one. `run` records it inside the sandbox;
`verdict` judges it here, in localcoder's own process, so that the program never sees the expected value and
cannot print a verdict of its own (oracle.py says why).

execution.py sends this file's source, followed by a call of `run`, as the program the sandbox runs, so it uses
only the standard library. It follows CodeGen's executor (salesforce/CodeGen, codegen1/benchmark/mtpb_exec.py):

- the program's `print` records its arguments (a replacement `print` in the program's globals);
- unless the program ends with a print call, the value of its last statement is printed (`with_final_print`);
- an exception after the last print does not matter: the first argument of the last print call is what counts;
- it is cast towards the expected value's type as `check_equivalence` does (a bool compared as text, a str
  expected compares `str(value)`, numpy and pandas values become lists and Python numbers).

The value crosses as its repr() and its str(): read back as a plain literal where it is one (a tuple stays a
tuple), else as a value whose str() is what the program's was. A program that exits (os._exit) before `run`
writes its record has printed no answer, and fails.

Where `check_equivalence` cannot be right, this differs, on purpose:

- numbers compare within 1e-6 (mtpb_exec.py casts to int first, so 16.9 would equal 16);
- lists compare element by element with the same number rule (mtpb_exec.py uses ==: exact floats);
- a dict expected (problem 89) compares its keys as text, since JSON keys are always strings, and a None
  expected (problem 41) accepts None or the text "None": mtpb_exec.py raises on both, so they could never pass.
"""

import ast
import builtins
import json
import os
import sys

TOLERANCE = 1e-6


def with_final_print(code):
    """mtpb_exec.py's rewrite: print the value of the last statement unless it is a print call already."""
    try:
        tree = ast.parse(code)
        last = tree.body[-1]
    except (SyntaxError, ValueError, IndexError):
        return code
    try:
        if last.value.func.id.startswith("print"):
            return code
    except AttributeError:
        pass
    value = getattr(last, "value", None)
    if not isinstance(value, ast.expr):
        return code
    last.value = ast.Call(func=ast.Name(id="print", ctx=ast.Load()), args=[value], keywords=[])
    ast.fix_missing_locations(tree)
    return ast.unparse(tree)


def plain(value):
    """numpy and pandas values as plain Python values, tuples as lists."""
    package = type(value).__module__.split(".")[0]
    if package == "pandas" and hasattr(value, "to_numpy"):
        value = value.to_numpy()
        package = type(value).__module__.split(".")[0]
    if package == "numpy" and hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def equivalent(value, expected):
    """Whether the printed `value` counts as the `expected` output (see the module docstring)."""
    value = plain(value)
    if isinstance(expected, bool):  # bool("False") is True: compared as text
        return str(value) == str(expected)
    if expected is None:
        return value is None or value == "None"
    if isinstance(expected, str):
        return str(value) == expected
    if isinstance(expected, (int, float)):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return False
        return isinstance(value, (int, float)) and _close(value, expected)
    if isinstance(expected, list) and not isinstance(value, list):
        try:
            value = plain(list(value))  # a set, a string, a generator: cast as mtpb_exec.py does
        except TypeError:
            return False
    return _same(value, expected)


def _same(value, expected):
    if isinstance(value, bool) or isinstance(expected, bool):
        return value == expected
    if isinstance(value, (int, float)) and isinstance(expected, (int, float)):
        return _close(value, expected)
    if isinstance(value, list) and isinstance(expected, list):
        return len(value) == len(expected) and all(map(_same, value, expected))
    if isinstance(value, dict) and isinstance(expected, dict):
        keyed = {str(key): item for key, item in value.items()}
        return keyed.keys() == expected.keys() and all(_same(keyed[key], item) for key, item in expected.items())
    return value == expected


def _close(value, expected):
    if isinstance(value, int) and isinstance(expected, int):
        return value == expected
    return value == expected or abs(value - expected) < TOLERANCE


def _short(value, limit=200):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


RECORD = "#localcoder-record:"


def run(program):
    """Run `program`, then write one line: RECORD followed by what it printed last, as JSON:
    {"repr": ..., "str": ..., "error": ...} or {"error": why nothing was printed}."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"  # as mtpb_exec.py's guard does: one BLAS thread per program
    printed = []

    def recording_print(*args, **kwargs):
        printed.append(args)
        return builtins.print(*args, **kwargs)

    error = None
    try:
        code = compile(with_final_print(program), "program.py", "exec")
        exec(code, {"__name__": "__main__", "__builtins__": builtins, "print": recording_print})
    except BaseException as exc:  # noqa: B036 -- SystemExit too: the last value printed before it still counts
        error = f"{type(exc).__name__}: {exc}"
    if not printed or not printed[-1]:
        record = {"error": error or "printed nothing"}
    else:
        try:
            value = plain(printed[-1][0])
            record = {"repr": repr(value), "str": str(value), "error": error}
        except Exception as exc:  # a value whose conversion raises counts as a wrong answer
            record = {"error": f"{type(exc).__name__} reading the output: {exc}"}
    try:
        sys.stdout.flush()
    except Exception:
        pass
    os.write(1, ("\n" + RECORD + json.dumps(record) + "\n").encode())
    os._exit(0)


class Printed:
    """A printed value that is not a plain literal: only its str() crossed."""

    def __init__(self, text):
        self.text = text

    def __str__(self):
        return self.text

    def __repr__(self):
        return self.text


def verdict(record, expected, literal):
    """(passed, reason) for the record `run` wrote; `literal` reads a repr back (oracle.literal)."""
    if "repr" not in record:
        return False, str(record.get("error"))
    try:
        value = literal(str(record["repr"]))
    except Exception:
        value = Printed(str(record.get("str")))
    try:
        passed = equivalent(value, expected)
        error = record.get("error")
    except Exception as exc:  # a value whose comparison raises counts as a wrong answer
        passed, error = False, f"{type(exc).__name__} comparing the output: {exc}"
    reason = "passed" if passed else f"printed {_short(value)}, expected {_short(expected)}"
    return passed, reason if passed or not error else f"{reason} ({error})"
