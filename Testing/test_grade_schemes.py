"""Grading schemes: the two shipped ones and user schemes from JSON."""
import json

import pytest

from spinecore.errors import SpineCoreError
from spinecore.grade import GENODISC, SPIDER, get_scheme


def test_spider_scheme_matches_the_spider_gradings():
    assert SPIDER.task_names == ["pfirrmann", "modic", "endplate_upper", "endplate_lower", "spondylolisthesis",
                                 "herniation", "narrowing", "bulging"]
    assert SPIDER.task("pfirrmann").values == (1, 2, 3, 4, 5) and SPIDER.task("pfirrmann").ordinal
    assert SPIDER.task("modic").values == (0, 1, 2, 3)
    assert SPIDER.task("pfirrmann").index(3) == 2


def test_genodisc_scheme_has_the_thesis_tasks():
    assert len(GENODISC.tasks) == 11
    assert {"stenosis", "marrow_upper", "marrow_lower", "bulging_anterior", "bulging_posterior"} <= set(GENODISC.task_names)


def test_user_scheme_round_trip(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"name": "mine", "tasks": [{"name": "hiz", "values": [0, 1, 2], "ordinal": True}]}))
    scheme = get_scheme(path)
    assert scheme.name == "mine" and scheme.task("hiz").n_classes == 3
    assert get_scheme("spider") is SPIDER
    assert type(scheme).from_dict(scheme.to_dict()) == scheme


@pytest.mark.parametrize("content", ['{"name": "x", "tasks": [{"name": "a", "values": [1]}]}', "not json", "{}"])
def test_bad_schemes_are_refused(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SpineCoreError, match="not a valid grading scheme"):
        get_scheme(path)
    with pytest.raises(SpineCoreError, match="not a scheme name"):
        get_scheme(tmp_path / "absent.json")
