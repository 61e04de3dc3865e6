"""The disc-set cache of `train`/`evaluate --cache`: a cached load equals a fresh extraction (streams,
missed discs and all), a changed scan misses it, a damaged entry is extracted again."""
from __future__ import annotations

import numpy as np

from spinecore.data import manifests
from spinecore.data.manifests import (DISC_SET_PREFIX, ManifestRow, build_disc_set, read_manifest,
                                      write_phantom_manifest)
from spinecore.grade import GENODISC
from spinecore.io.write import write_volume
from spinecore.localise import Localiser
from spinecore.phantom import PhantomSpec, make_phantom

from conftest import run_cli


def assert_same(a, b):
    (data_a, missed_a), (data_b, missed_b) = a, b
    assert missed_a == missed_b
    assert np.array_equal(data_a.volumes, data_b.volumes) and np.array_equal(data_a.labels, data_b.labels)
    assert (data_a.patients, data_a.levels, data_a.scans, data_a.sequences) == \
        (data_b.patients, data_b.levels, data_b.scans, data_b.sequences)
    assert data_a.streams.keys() == data_b.streams.keys()
    assert all(np.array_equal(data_a.streams[s], data_b.streams[s]) for s in data_a.streams)


def test_a_cached_disc_set_equals_a_fresh_extraction(tmp_path, monkeypatch):
    rows = read_manifest(write_phantom_manifest(tmp_path, (41,), GENODISC, n_slices=3, streams=("t2", "t1")), GENODISC)
    short = make_phantom(PhantomSpec(seed=42, n_slices=3, top_level="L2", t1=False, axial=False)).get("sag_t2")
    short_scan = write_volume(tmp_path / "short.nii.gz", short.array, short.geometry)
    rows += [ManifestRow("short", short_scan, "T12-L1", rows[0].labels)]  # above the view: missed
    localiser = Localiser.load()
    fresh = build_disc_set(rows, localiser)
    assert fresh[1] == rows[-1:] and "t1" in fresh[0].streams
    cache = tmp_path / "cache"
    assert_same(build_disc_set(rows, localiser, cache), fresh)
    (entry,) = cache.glob(f"{DISC_SET_PREFIX}*")

    calls = []
    monkeypatch.setattr(manifests, "_extract_disc_set", lambda rows, localiser: calls.append(1) or fresh)
    assert_same(build_disc_set(rows, localiser, cache), fresh)
    assert not calls
    (entry / "discs.npz").write_bytes(b"damaged")  # an unreadable entry is extracted again
    build_disc_set(rows, localiser, cache)
    assert calls == [1]
    short_scan.write_bytes(rows[0].scan.read_bytes())  # another scan behind the same path misses the cache
    build_disc_set(rows, localiser, cache)
    assert calls == [1, 1] and len(list(cache.glob(f"{DISC_SET_PREFIX}*"))) == 2


def test_evaluate_command_reuses_its_cache(tmp_path):
    manifest = write_phantom_manifest(tmp_path, (43,), GENODISC, n_slices=3)
    result = run_cli("train", "--manifest", manifest, "--scheme", "genodisc", "--out", tmp_path / "m.pt", "--steps", 2,
                     "--cache", tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    result = run_cli("-v", "evaluate", "--manifest", manifest, "--model", tmp_path / "m.pt", "--out",
                     tmp_path / "eval", "--no-tta", "--cache", tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    assert "volumes from the cache" in result.stderr and "extracted discs" not in result.stderr
