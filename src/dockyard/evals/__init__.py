"""Offline evaluation: ``dockyard eval DATASET.jsonl --assistant A``.

A dataset (``dataset``) runs through an assistant on dockyard's real run path
(``runner``: a server through langgraph-sdk, or the project's own started in process,
``local``), each answer scored by the quality scorers (``dockyard.quality``), the
results stored (``storage.base.EvalStore``) and reported (``report``: JSON and Markdown;
``html``: a self-contained page; ``charts``: PNG). Two variants compared on the same
items get a paired permutation test (``stats``). ``from_runs`` makes a dataset from
past runs. docs/evals.md is the user's guide.
"""

from dockyard.evals.dataset import DatasetError, Item, load_dataset, write_dataset
from dockyard.evals.experiment import mean_scores, run_experiment, write_reports
from dockyard.evals.report import build_report
from dockyard.evals.runner import ServerTarget, Variant
from dockyard.evals.stats import PairedTest, paired_permutation_test

__all__ = [
    "DatasetError",
    "Item",
    "PairedTest",
    "ServerTarget",
    "Variant",
    "build_report",
    "load_dataset",
    "mean_scores",
    "paired_permutation_test",
    "run_experiment",
    "write_dataset",
    "write_reports",
]
