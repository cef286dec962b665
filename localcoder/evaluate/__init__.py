"""`localcoder eval`: benchmark tasks -> completions from the model -> sandboxed checks -> pass@k.

datasets.py (the benchmarks and their tasks), generation.py (a completion per task and sample), execution.py
(run it, passed or not; checks.py and oracle.py run HumanEval's tests outside the sandbox against the function
inside it), passk.py (the estimator), results.py (the JSONL file a run streams to and resumes
from), runner.py (run_eval, which ties them together).
"""
