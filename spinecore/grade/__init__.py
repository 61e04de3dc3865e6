"""Grading: schemes (data), the multi-task CNN, its loss, augmentation, TTA and the predictor.

>>> from spinecore.grade import Grader
>>> gradings = Grader.load()(series, spine)          # doctest: +SKIP
>>> gradings.rows()[0]                          # doctest: +SKIP
{'level': 'L4-L5', 'pfirrmann': 3, 'pfirrmann_confidence': 0.71, ...}
"""
from spinecore.grade.grader import KIND, DiscGrading, Grader, Gradings, load_grader_net
from spinecore.grade.network import GradingNet, NetConfig, compact, thesis
from spinecore.grade.schemes import GENODISC, SCHEMES, SPIDER, GradingScheme, Task, get_scheme

__all__ = ["GENODISC", "KIND", "SCHEMES", "SPIDER", "DiscGrading", "Grader", "Gradings", "GradingNet",
           "GradingScheme", "NetConfig", "Task", "compact", "get_scheme", "load_grader_net", "thesis"]
