"""Training loops: the localiser and the grader. Each returns a
:class:`~spinecore.models.TrainedModel`; :func:`spinecore.models.save_model` writes it."""
