"""Repository context: the stage between a completion request and its prompt that picks other files' code.

`gather(path, text, offset, budget=...)` returns a RepoContext whose snippets (definitions the cursor's names
import, windows of similar code) fit the budget; `RepoContext.to_snippets()` is what the prompt shows before the
prefix. See gather.py for the ranking, python.py for import resolution, repository.py for which files count.
"""

from localcoder.context.gather import ContextSnippet, RepoContext, bundled_counter, gather
from localcoder.context.repository import find_root

__all__ = ["ContextSnippet", "RepoContext", "bundled_counter", "find_root", "gather"]
