"""One subject or two (spinecore.grade.identity): a distance judged against the reference scans most
like the other scan, so a site where everyone lies close together gets a stricter cut-off."""
import numpy as np
import pytest
import torch

from spinecore.errors import SpineCoreError
from spinecore.grade.identity import (
    COHORT_SIZE,
    SIZE_WEIGHT,
    body_distance,
    body_vector,
    compared_levels,
    identity,
    reference_bodies,
    reference_distances,
)
from spinecore.grade.siamese import BODY_LEVELS, SIZE_DIMS

#: A lumbar body's height and depth (mm).
SIZE_MM = (28.0, 40.0)


def body(*position: float, size_mm=SIZE_MM) -> torch.Tensor:
    """The identity vector of a body whose embedding is ``position`` (all of one size unless told)."""
    return body_vector(torch.tensor(position, dtype=torch.float32), size_mm)


def test_a_body_distance_is_the_appearance_distance_plus_the_weighted_relative_size_difference():
    assert body(3.0, 4.0).shape == (2 + SIZE_DIMS,)
    assert body_distance(body(0.0, 0.0), body(3.0, 4.0)).item() == pytest.approx(5.0)
    deeper = body(0.0, 0.0, size_mm=(28.0, 44.0))  # 10 % deeper
    assert body_distance(body(0.0, 0.0), deeper).item() == pytest.approx(SIZE_WEIGHT * np.log(1.1), rel=1e-5)
    larger = body(3.0, 4.0, size_mm=(28.0 * 1.1, 44.0))  # 10 % taller and deeper
    expected = 5.0 + SIZE_WEIGHT * np.sqrt(2) * np.log(1.1)
    assert body_distance(body(0.0, 0.0), larger).item() == pytest.approx(expected, rel=1e-5)
    assert body_distance(larger, body(0.0, 0.0)).item() == pytest.approx(expected, rel=1e-5)
    # broadcast over a stack, as against a level's reference bodies
    stack = torch.stack([body(0.0, 0.0), larger])
    assert body_distance(stack, body(0.0, 0.0)).numpy() == pytest.approx([0.0, expected], rel=1e-5)


def judged(references: torch.Tensor, first: dict, second: dict, levels=("L4",)):
    return identity(first, second, list(levels), reference_distances(references, first),
                    reference_distances(references, second))


def test_references_are_laid_out_by_level_with_nan_where_a_scan_lacks_the_body():
    references = reference_bodies([{"L4": body(1.0, 0.0)}, {"L4": body(0.0, 1.0), "S1": body(3.0, 4.0)}])
    assert references.shape == (len(BODY_LEVELS), 2, 2 + SIZE_DIMS)
    distances = reference_distances(references, {"S1": body(0.0, 0.0)})
    assert np.isnan(distances[BODY_LEVELS.index("L4")]).all()
    assert np.isnan(distances[BODY_LEVELS.index("S1"), 0])
    assert distances[BODY_LEVELS.index("S1"), 1] == pytest.approx(5.0)


def test_the_score_is_the_distance_in_spreads_of_the_lookalikes_distances_from_both_sides():
    references = reference_bodies([{"L4": body(x)} for x in (0.0, 1.0, 3.0)])  # fewer than COHORT_SIZE: all used
    first, second = {"L4": body(0.5)}, {"L4": body(1.5)}
    result = judged(references, first, second)
    from_first, from_second = np.array([0.5, 0.5, 2.5]), np.array([1.5, 0.5, 1.5])
    expected = ((1.0 - from_first.mean()) / from_first.std() + (1.0 - from_second.mean()) / from_second.std()) / 2
    assert result.distance == pytest.approx(1.0) and result.score == pytest.approx(expected)


def test_each_scan_is_judged_against_the_references_most_like_the_other(monkeypatch):
    from spinecore.grade import identity as module

    monkeypatch.setattr(module, "COHORT_SIZE", 2)
    references = reference_bodies([{"L4": body(x)} for x in (0.0, 1.0, 10.0, 12.0)])
    # 0.5 against the two like 11 (10, 12): 9.5 and 11.5; 11 against the two like 0.5 (0, 1): 11 and 10
    result = judged(references, {"L4": body(0.5)}, {"L4": body(11.0)})
    assert result.distance == pytest.approx(10.5) and result.score == pytest.approx(0.0, abs=1e-6)


def test_a_close_pair_at_a_tight_site_scores_above_a_farther_pair_at_a_spread_out_site():
    """Site A's people lie 1 apart, site B's 0.05: 0.6 apart at A is one person, 0.2 apart at B is two."""
    spread_out = [{"L4": body(10.0 + 1.0 * k)} for k in range(COHORT_SIZE + 5)]
    tight = [{"L4": body(0.05 * k)} for k in range(COHORT_SIZE + 5)]
    references = reference_bodies(spread_out + tight)
    one_person = judged(references, {"L4": body(20.0)}, {"L4": body(20.6)})
    two_people = judged(references, {"L4": body(0.3)}, {"L4": body(0.5)})
    assert one_person.distance > two_people.distance
    assert one_person.score < -1.0 < two_people.score


def test_levels_average_and_too_few_shared_references_is_an_error():
    references = reference_bodies([{"L4": body(float(x)), "L5": body(float(x))} for x in range(4)])
    first, second = {"L4": body(0.0), "L5": body(0.0)}, {"L4": body(0.2), "L5": body(0.6)}
    assert judged(references, first, second, ("L4", "L5")).distance == pytest.approx(0.4)
    with pytest.raises(SpineCoreError, match="too few reference scans"):
        judged(reference_bodies([{"S1": body(0.0)}] * 4), {"L4": body(0.0)}, {"L4": body(1.0)})


def test_compared_levels_are_those_seen_whole_or_else_all():
    assert compared_levels(["L3", "L4", "L5"], {"L4", "L5", "S1"}) == ["L4", "L5"]
    assert compared_levels(["L3", "L4"], set()) == ["L3", "L4"]
