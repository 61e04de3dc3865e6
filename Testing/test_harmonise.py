"""Histogram standardisation of one site's disc volumes onto another's (per sequence), and
``spinecore evaluate --harmonise-to``."""
import json

import numpy as np

from spinecore.data.harmonise import PERCENTILES, harmonised, landmarks, lookup_table
from spinecore.data.manifests import DiscSet, write_phantom_manifest
from spinecore.grade import SPIDER

from conftest import run_cli

SHAPE = (9, 112, 224)


def _site(values_by_sequence: dict[str, np.ndarray], discs_per_sequence: int = 3) -> DiscSet:
    """Discs whose voxels are drawn from ``values_by_sequence[sequence]``, half of each volume zero (padding)."""
    rng = np.random.default_rng(0)
    volumes, scans, sequences = [], [], {}
    for sequence, values in values_by_sequence.items():
        for n in range(discs_per_sequence):
            volume = rng.choice(values, size=SHAPE).astype(np.uint8)
            volume[:, :, : SHAPE[2] // 2] = 0
            volumes.append(volume)
            scans.append(f"{sequence}-{n}.nii.gz")
            sequences[scans[-1]] = sequence
    count = len(volumes)
    return DiscSet(np.stack(volumes), np.zeros((count, 8), np.int64), [f"p{i}" for i in range(count)],
                   ["L4-L5"] * count, scans, {}, sequences)


def test_landmarks_are_the_percentiles_of_the_non_zero_voxels_per_sequence():
    data = _site({"T2": np.arange(1, 201), "T1": np.arange(50, 101)})
    found = landmarks(data)
    assert set(found) == {"T1", "T2"}
    for sequence in found:
        voxels = np.concatenate([data.volumes[i][data.volumes[i] > 0] for i in range(len(data))
                                 if data.sequence(data.scans[i]) == sequence])
        assert np.abs(np.array(found[sequence]) - np.percentile(voxels, PERCENTILES)).max() <= 1.0


def test_a_linearly_rescaled_site_is_mapped_back_onto_the_reference():
    reference = _site({"T2": np.arange(1, 256)})
    darker = DiscSet(np.where(reference.volumes > 0, np.round(reference.volumes * 0.6 + 20), 0).astype(np.uint8),
                     reference.labels, reference.patients, reference.levels, reference.scans, {}, reference.sequences)
    mapped, record = harmonised(darker, landmarks(reference))
    inside = reference.volumes > 0
    error = np.abs(mapped.volumes[inside].astype(int) - reference.volumes[inside])
    assert np.percentile(error, 98) <= 2 and error.mean() < 1.0
    assert not mapped.volumes[~inside].any()  # padding stays zero
    assert record["T2"]["reference"] == landmarks(reference)["T2"] and record["T2"]["source"] == landmarks(darker)["T2"]
    # onto its own landmarks a set is unchanged
    assert np.array_equal(harmonised(darker, landmarks(darker))[0].volumes, darker.volumes)


def test_each_sequence_is_mapped_on_its_own_and_one_the_reference_lacks_is_left_alone():
    reference = _site({"T2": np.arange(1, 101)})
    site = _site({"T2": np.arange(101, 201), "T1": np.arange(1, 51)})
    mapped, record = harmonised(site, landmarks(reference))
    assert set(record) == {"T2"}
    for i, scan in enumerate(site.scans):
        if site.sequence(scan) == "T1":
            assert np.array_equal(mapped.volumes[i], site.volumes[i])
        else:
            assert mapped.volumes[i].max() <= 101 and mapped.volumes[i][mapped.volumes[i] > 0].min() >= 1
    assert mapped.patients == site.patients and np.array_equal(mapped.labels, site.labels)


def test_lookup_table_is_monotone_even_with_tied_landmarks():
    table = lookup_table([10, 10, 200, 255, 255, 255, 255, 255, 255], [6, 20, 100, 150, 160, 170, 180, 190, 200])
    assert table[10] == 13  # the mean of the two landmarks tied on grey level 10
    assert table[0] == 0 and table[255] == 255 and np.all(np.diff(table.astype(int)) >= 0)


def test_evaluate_harmonised_onto_its_own_manifest_changes_nothing(tmp_path):
    manifest = write_phantom_manifest(tmp_path, (21, 22), SPIDER)
    plain = run_cli("evaluate", "--manifest", manifest, "--out", tmp_path / "plain", "--no-tta")
    assert plain.returncode == 0, plain.stderr
    result = run_cli("evaluate", "--manifest", manifest, "--harmonise-to", manifest, "--out", tmp_path / "same",
                     "--no-tta")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "same" / "metrics.json").read_text())
    assert metrics.pop("harmonisation")["onto"] == str(manifest)
    assert metrics == json.loads((tmp_path / "plain" / "metrics.json").read_text())
    assert "intensities harmonised per sequence" in (tmp_path / "same" / "metrics.md").read_text()
    missing = run_cli("evaluate", "--manifest", manifest, "--harmonise-to", tmp_path / "none.csv",
                      "--out", tmp_path / "bad")
    assert missing.returncode != 0 and missing.stderr.strip().endswith("none.csv: manifest not found")
    assert len(missing.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()
