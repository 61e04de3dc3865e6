"""Level names and their display colours (shared by overview.png and the Slicer segments)."""
import pytest

from spinecore.levels import DISCS, VERTEBRAE, level_colour


def test_every_level_has_its_own_colour_and_discs_are_lighter_than_the_body_above():
    vertebra_colours = [level_colour(v) for v in VERTEBRAE]
    assert len(set(vertebra_colours)) == len(VERTEBRAE)
    for disc in DISCS:
        above = level_colour(disc.split("-")[0])
        assert all(d >= a for d, a in zip(level_colour(disc), above)) and level_colour(disc) != above
    with pytest.raises(ValueError, match="L6"):
        level_colour("L6")
