"""The completion core, one module per stage, in the order a completion runs.

request.py (what is asked, checked once) -> snippets.py, prompts.py, infill.py (the prompt in the family's format,
trimmed to the window; prompt_cache.py picks a cached slot) -> backends.py (where the tokens come from: generate.py
in this process, engine.py on a remote engine) -> truncate.py (the stop rules); model.py is the LoadedModel they all
read. localcoder/pipeline.py, above this package and context/, runs the stages in order and types the result.
docs/architecture.md draws the flow and says where each front end (CLI, server, chat, eval) enters it.
"""
