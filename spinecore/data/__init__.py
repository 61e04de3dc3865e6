"""Data for training and evaluation: the real-data pack's readers, grading manifests, and our
patient-level splits (never imported by inference code)."""
