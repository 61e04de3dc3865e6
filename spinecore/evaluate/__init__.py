"""Evaluation of spinecore stages on the shared data pack."""
