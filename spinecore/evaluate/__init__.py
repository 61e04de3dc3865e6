"""Evaluation: metrics (per-class accuracy, kappa, bootstrap intervals) and the evaluations of the
localiser, the grader and the hotspots on our validation splits and on phantoms."""
