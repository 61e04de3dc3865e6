"""Training data, training loops and evaluation (never imported by inference code)."""
