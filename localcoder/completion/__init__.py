"""The completion core: what is asked (request), where the tokens come from (backends).

The stages of a completion, in the order they run: the request (request.py), the prompt (prompts.py, infill.py),
the backend that generates (backends.py), the stop rules (truncate.py) and the result (complete.py). docs/
architecture.md draws the flow and says where each front end (CLI, server, chat, eval) enters it.
"""
