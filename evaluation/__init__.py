"""Scoring exported models on labelled data, outside the Evaluator: the HTML evaluation
report (every pipeline run's EvaluationReport step renders it) and the offline evaluation
CLI (`make evaluate`, like the starter code's `eval.py --run_once`). Builds on
trainer_module's metrics and serving's batch scoring."""
