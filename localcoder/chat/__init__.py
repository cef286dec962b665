"""Multi-turn program synthesis (``localcoder chat`` base-model mode): turn prompts, truncation, the program so far."""
