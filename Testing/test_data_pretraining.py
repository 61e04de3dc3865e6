"""The structure-set cache of Siamese pretraining: a cached load equals a fresh extraction, and a
change of inputs or settings misses it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spinecore.data import cache, pretraining
from spinecore.data.cache import cache_key
from spinecore.data.pairs import PHANTOM_FOLLOW_UP_YEARS, PHANTOM_SLICES
from spinecore.data.pretraining import ENTRY_PREFIX, pretraining_sets
from spinecore.localise import Localiser, body_size, disc_depth
from spinecore.phantom import PhantomSpec, make_phantom

SEEDS = [2000]
FIELDS = ("volumes", "subjects", "scans", "sequences", "levels", "whole", "sizes")


def assert_same(a, b):
    assert a.keys() == b.keys()
    for kind in a:
        for field in FIELDS:
            first, second = getattr(a[kind], field), getattr(b[kind], field)
            assert np.array_equal(first, second, equal_nan=first.dtype.kind == "f"), (kind, field)


@pytest.fixture(scope="module")
def localiser():
    return Localiser.load()


@pytest.fixture(scope="module")
def fresh(localiser):
    return pretraining_sets(None, "validation", SEEDS, localiser)


def count_extractions(monkeypatch) -> list:
    """Make extraction cheap and counted: each call appends to the returned list."""
    calls = []
    monkeypatch.setattr(pretraining, "phantom_scans", lambda *args: [])
    monkeypatch.setattr(pretraining, "structures_of", lambda scans, localiser: calls.append(1) or {})
    return calls


def test_a_cached_load_equals_a_fresh_extraction(fresh, localiser, tmp_path, monkeypatch):
    first = pretraining_sets(None, "validation", SEEDS, localiser, cache=tmp_path)
    assert_same(first, fresh)
    assert len(fresh["body"]) >= 10 and len(fresh["disc"]) >= 10  # two visits of one phantom
    (entry,) = tmp_path.glob(f"{ENTRY_PREFIX}*")
    calls = count_extractions(monkeypatch)
    assert_same(pretraining_sets(None, "validation", SEEDS, localiser, cache=tmp_path), fresh)
    assert not calls
    (entry / "body.npz").write_bytes(b"damaged")  # an unreadable entry is extracted again
    assert pretraining_sets(None, "validation", SEEDS, localiser, cache=tmp_path) == {} and calls == [1]


def test_each_body_and_disc_carries_its_size_near_the_phantoms_truth(fresh):
    bodies, discs = fresh["body"], fresh["disc"]
    assert np.isfinite(bodies.sizes).all() and np.isfinite(discs.sizes[:, 1]).all()
    for visit, years in (("baseline", 0.0), ("follow-up", PHANTOM_FOLLOW_UP_YEARS)):
        study = make_phantom(PhantomSpec(seed=SEEDS[0], follow_up_years=years, n_slices=PHANTOM_SLICES, t1=False,
                                         axial=False))
        reference = study.reference_spine()
        truth = {v.level: body_size(v.mid.corners_mm) for v in reference.vertebrae}
        for disc in reference.discs:
            upper, lower = (reference.vertebra(v).on_slice(disc.slice).corners_mm for v in disc.level.split("-"))
            truth[disc.level] = (disc.height_mm, disc_depth(upper, lower))
        for data in (bodies, discs):
            found = data.scans == f"phantom{SEEDS[0]}_{visit}"
            assert found.sum() >= 5
            for level, size in zip(data.levels[found], data.sizes[found]):
                measured = np.isfinite(size)  # a disc beside an inferred body has no height
                assert measured[1] and size[measured] == pytest.approx(np.array(truth[level])[measured], abs=2.0), \
                    (visit, level)  # height, depth (mm)


def test_other_inputs_or_settings_miss_the_cache(fresh, localiser, tmp_path, monkeypatch):
    calls = count_extractions(monkeypatch)
    pretraining_sets(None, "validation", SEEDS, localiser, cache=tmp_path)
    pretraining_sets(None, "validation", SEEDS, localiser, cache=tmp_path)
    assert len(calls) == 1
    pretraining_sets(None, "validation", SEEDS + [2001], localiser, cache=tmp_path)  # other phantoms
    assert len(calls) == 2
    other = Localiser.load()
    with torch.no_grad():
        next(other.network.parameters())[0].mul_(1.01)  # another localiser
    pretraining_sets(None, "validation", SEEDS, other, cache=tmp_path)
    assert len(calls) == 3
    monkeypatch.setattr(pretraining, "PHANTOM_SLICES", 5)  # another extraction setting
    pretraining_sets(None, "validation", SEEDS, localiser, cache=tmp_path)
    assert len(calls) == 4
    key = cache_key({}, cache.EXTRACTION_CODE)
    assert cache_key({}, cache.EXTRACTION_CODE + pretraining.PAIRS_CODE) != key  # other extraction code


def test_pretrain_command_reuses_its_cache(tmp_path):
    """`spinecore pretrain --cache` twice: the second run reads the structures back instead of
    extracting, and trains the same model."""
    from conftest import run_cli

    common = ("-v", "pretrain", "--phantoms", 4, "--steps", 1, "--head-steps", 2, "--cache", tmp_path / "cache")
    first = run_cli(*common, "--out", tmp_path / "a.pt")
    assert first.returncode == 0, first.stderr
    second = run_cli(*common, "--out", tmp_path / "b.pt")
    assert second.returncode == 0, second.stderr
    assert "volumes from the cache" in second.stderr and "volumes from the cache" not in first.stderr
    a, b = (torch.load(tmp_path / name, weights_only=True)["state_dict"] for name in ("a.pt", "b.pt"))
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)  # NaN: a reference scan without that body
    assert a["references"].shape[1] == 4  # the scans of the two phantom patients trained on (two held out)
    # the tower kept (0 steps from a.pt): the same references and threshold made anew, and where it came from
    kept = run_cli(*common, "--init", tmp_path / "a.pt", "--steps", 0, "--head-steps", 0, "--out", tmp_path / "c.pt")
    assert kept.returncode == 0, kept.stderr
    c = torch.load(tmp_path / "c.pt", weights_only=True)
    torch.testing.assert_close(c["state_dict"], a, rtol=0, atol=0, equal_nan=True)
    original = torch.load(tmp_path / "a.pt", weights_only=True)["metadata"]
    assert original["model_id"].endswith("-1+heads2") and original["settings"]["head_steps"] == 2
    assert c["metadata"]["same_subject_below"] == original["same_subject_below"]
    assert c["metadata"]["started_from"] == {"model_id": original["model_id"], "command": original["command"]}
    no_tower = run_cli(*common, "--steps", 0, "--out", tmp_path / "d.pt")
    assert no_tower.returncode == 2 and len(no_tower.stderr.strip().splitlines()) == 1, no_tower.stderr
    assert "--init" in no_tower.stderr and not (tmp_path / "d.pt").exists()


def test_a_cache_path_that_is_a_file_is_a_one_line_error(localiser, tmp_path):
    from spinecore.errors import SpineCoreError

    (tmp_path / "file").write_text("")
    with pytest.raises(SpineCoreError, match="file: cannot be the cache folder"):
        pretraining_sets(None, "validation", SEEDS, localiser, cache=tmp_path / "file")
