"""Repository context: the stage between a completion request and its prompt that picks other files' code.

`gather(path, text, offset, budget=...)` returns a RepoContext whose snippets (definitions the cursor's names
import, outlines of modules used as `m.N`, windows of similar code) fit the budget, each with its rank;
`RepoContext.to_snippets()` is what the prompt shows before the prefix. See gather.py for the budget, resolver.py
for the per-language interface, python.py (and python_buffer.py, python_modules.py) for Python's, repository.py for
which files count.
"""

from localcoder.context.gather import ContextSnippet, RepoContext, bundled_counter, gather
from localcoder.context.repository import find_root

__all__ = ["ContextSnippet", "RepoContext", "bundled_counter", "find_root", "gather"]
