"""Sudirman grading manifests (``spinecore sudirman-manifests``) on a small fake pack made of
single-slice phantoms, the SPIDER + Sudirman ``both_*`` manifests (and a smoke train on them), and
the per-sequence results of ``evaluate``."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from spinecore.data.manifests import build_disc_set, read_manifest
from spinecore.data.spider import GRADINGS as SPIDER_GRADINGS
from spinecore.data.spider import SPIDER_COLUMNS
from spinecore.data.sudirman import (
    GRADINGS,
    PATIENT_PREFIX,
    sudirman_manifests,
    sudirman_split,
)
from spinecore.evaluate.grading import evaluate_grader
from spinecore.grade import Grader, get_scheme
from spinecore.grade.loss import MISSING
from spinecore.io.write import write_volume
from spinecore.phantom import PhantomSpec, make_phantom
from spinecore.report.evaluation import evaluation_table

SPIDER = get_scheme("spider")
REAL_PACK = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LEVELS = ("L5-S1", "L4-L5", "L3-L4")
#: Fake patients: number → the sequences written (12 and 13 lack one, as 9 + 2 real patients do).
PATIENTS = {str(n): ("t1", "t2") for n in range(1, 12)} | {"12": ("t1",), "13": ("t2",)}
T1_ONLY_NOTE = "no T2 image for this patient (T1 only)"
DOUBTFUL_NOTE = "no confidently named disc box at this level in the images (missing or irregular disc-box sequence)"
#: Graded rows that must be left out: (patient, level) → (grade, note).
LEFT_OUT = {("3", "L4-L5"): ("4", DOUBTFUL_NOTE), ("4", "L3-L4"): ("", ""), ("5", "L5-S1"): ("7", ""),
            ("6", "L2-L3"): ("3", "")}


@pytest.fixture(scope="module")
def fake_pack(tmp_path_factory) -> Path:
    """``sudirman_midsag/`` as the pack lays it out: a single-slice phantom T1/T2 per patient
    (``images/<patient>_<t1|t2>.nii.gz``), ``gradings.csv`` of its true Pfirrmann grades (with
    notes, an empty grade, an invalid grade and an ungraded level), ``series.csv``."""
    root = tmp_path_factory.mktemp("pack")
    images = root / "sudirman_midsag" / "images"
    images.mkdir(parents=True)
    gradings, series = [], []
    for patient, sequences in PATIENTS.items():
        study = make_phantom(PhantomSpec(seed=700 + int(patient), n_slices=1, t1=True, top_level="L1"))
        for s in study.series:
            if s.name in ("sag_t1", "sag_t2") and s.name[-2:] in sequences:
                write_volume(images / f"{patient}_{s.name[-2:]}.nii.gz", s.array, s.geometry)
                series.append({"series": f"{patient}_{s.name[-2:]}", "patient": patient, "sequence": s.name[-2:],
                               "rows": s.array.shape[1], "cols": s.array.shape[2]})
        grades = {d["level"]: d["grades"]["pfirrmann"] for d in study.truth["discs"]}
        for level in (*LEVELS, "L2-L3"):
            grade, note = LEFT_OUT.get((patient, level), (str(grades[level]), ""))
            if level in LEVELS or (patient, level) in LEFT_OUT:
                gradings.append({"Patient": patient, "level": level, "pfirrmann": grade, "source_column": "D",
                                 "note": T1_ONLY_NOTE if sequences == ("t1",) else note})
    _write_csv(root / GRADINGS, gradings)
    _write_csv(root / "sudirman_midsag" / "series.csv", series)
    return root


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _kept_grades(pack: Path) -> dict[tuple[str, str], int]:
    with (pack / GRADINGS).open(newline="") as f:
        return {(r["Patient"], r["level"]): int(r["pfirrmann"]) for r in csv.DictReader(f)
                if (r["Patient"], r["level"]) not in LEFT_OUT}


def test_manifest_rows_split_by_patient_notes_respected(fake_pack):
    parts = sudirman_manifests(fake_pack, SPIDER)
    split = sudirman_split(list(PATIENTS))
    assert split["validation"] and split["train"]
    kept = _kept_grades(fake_pack)
    pfirrmann = SPIDER.task_names.index("pfirrmann")
    seen = set()
    for part, rows in parts.items():
        for row in rows:
            patient = row.patient.removeprefix(PATIENT_PREFIX)
            sequence = row.scan.name.split("_")[1][:2]
            assert row.patient.startswith(PATIENT_PREFIX) and patient in split[part]
            assert row.labels[pfirrmann] == SPIDER.task("pfirrmann").index(kept[patient, row.level])
            assert all(label == MISSING for n, label in enumerate(row.labels) if n != pfirrmann)
            has_t1 = "t1" in PATIENTS[patient]
            assert row.scan_t1 == (fake_pack / "sudirman_midsag" / "images" / f"{patient}_t1.nii.gz"
                                   if sequence == "t2" and has_t1 else None)
            seen.add((patient, row.level, sequence))
    # every kept grade once per written image of the patient, and nothing else
    assert seen == {(p, level, s) for (p, level) in kept for s in PATIENTS[p]}
    assert len(seen) == sum(len(r) for r in parts.values())


def test_cli_writes_sudirman_and_both_manifests(fake_pack, tmp_path):
    spider = tmp_path / "pack"
    (spider / "spider_midsag" / "images").mkdir(parents=True)
    patients = [str(p) for p in range(1, 41)]  # enough for the SPIDER split's 29 drawn validation patients
    _write_csv(spider / SPIDER_GRADINGS, [{"Patient": p, "level": "L4-L5", **{c: "1" if c == "Pfirrman grade" else "0"
                                                                               for c in SPIDER_COLUMNS.values()}}
                                          for p in patients])
    for p in patients:
        (spider / "spider_midsag" / "images" / f"{p}_t2.nii.gz").symlink_to(fake_pack / "sudirman_midsag/images/1_t2.nii.gz")
    (spider / "sudirman_midsag").symlink_to(fake_pack / "sudirman_midsag")
    out = tmp_path / "manifests"
    assert run_cli("spider-manifests", "--data", spider, "--out", out).returncode == 0
    result = run_cli("sudirman-manifests", "--data", spider, "--out", out, "--with-spider")
    assert result.returncode == 0, result.stderr
    for part in ("train", "validation"):
        both = read_manifest(out / f"both_{part}.csv", SPIDER)
        assert both == read_manifest(out / f"spider_{part}.csv", SPIDER) + read_manifest(out / f"sudirman_{part}.csv", SPIDER)
    assert sum(len(read_manifest(out / f"sudirman_{p}.csv", SPIDER)) for p in ("train", "validation")) == \
        sum(len(r) for r in sudirman_manifests(fake_pack, SPIDER).values())
    # a smoke train on both sites: SPIDER discs teach every task, Sudirman discs Pfirrmann only
    model = tmp_path / "both.pt"
    result = run_cli("train", "--manifest", out / "both_train.csv", "--out", model, "--steps", "2")
    assert result.returncode == 0, result.stderr
    metadata = Grader.load(model).metadata
    spider_discs = sum(metadata["train_class_counts"]["modic"])
    assert 0 < spider_discs < metadata["train_discs"] == sum(metadata["train_class_counts"]["pfirrmann"])


@pytest.mark.parametrize("extra", [(), ("--with-spider",)])
def test_cli_bad_pack_one_line_nothing_written(fake_pack, tmp_path, extra):
    """No Sudirman folder, or --with-spider on a pack without SPIDER: one line, exit 2, no output."""
    data = fake_pack if extra else tmp_path
    out = tmp_path / "out"
    result = run_cli("sudirman-manifests", "--data", data, "--out", out, *extra)
    assert result.returncode == 2 and not out.exists()
    assert result.stderr.startswith("spinecore: error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "not the real-data pack" in result.stderr


def test_scheme_without_pfirrmann_is_refused(fake_pack, tmp_path):
    scheme = tmp_path / "modic_only.json"
    scheme.write_text(json.dumps({"name": "modic_only", "tasks": [{"name": "modic", "values": [0, 1, 2, 3]}]}))
    result = run_cli("sudirman-manifests", "--data", fake_pack, "--out", tmp_path / "out", "--scheme", scheme)
    assert result.returncode == 2 and "no pfirrmann task" in result.stderr and not (tmp_path / "out").exists()


def test_evaluation_per_sequence(fake_pack, tmp_path):
    """``by_sequence`` partitions the discs by their scan's weighting: its T1 results are those of
    evaluating the T1 rows alone, and metrics.md shows a section per sequence."""
    rows = sudirman_manifests(fake_pack, SPIDER)["train"]
    grader = Grader.load()
    data, missed = build_disc_set(rows)
    metrics = evaluate_grader(grader, data, tta=False, missed=missed)
    by_sequence = metrics["by_sequence"]
    assert set(by_sequence) == {"T1", "T2"}
    assert sum(r["coverage"]["graded"] for r in by_sequence.values()) == len(rows) == metrics["coverage"]["graded"]
    assert sum(r["discs"] for r in by_sequence.values()) == metrics["discs"] > 0
    t1_rows = [r for r in rows if r.scan.name.endswith("_t1.nii.gz")]
    t1_data, t1_missed = build_disc_set(t1_rows)
    alone = evaluate_grader(grader, t1_data, tta=False, missed=t1_missed)
    for key in ("discs", "patients", "coverage"):
        assert by_sequence["T1"][key] == alone[key]
    assert by_sequence["T1"]["tasks"]["pfirrmann"] == alone["tasks"]["pfirrmann"]
    assert by_sequence["T2"]["tasks"]["modic"] == {"n": 0, "patients": 0}
    assert np.isfinite(by_sequence["T2"]["tasks"]["pfirrmann"]["ece_uncalibrated"])
    table = evaluation_table(metrics)
    assert f"### T1: {by_sequence['T1']['discs']} discs" in table and "### T2:" in table


@pytest.mark.skipif(not (REAL_PACK / GRADINGS).is_file(), reason="needs the shared real-data pack")
def test_real_pack_manifests():
    """Our split of the real pack: doubtful levels (patient 307's L4-L5, 539's L3-L4) left out, T1-only
    patients kept, no patient in both parts."""
    parts = sudirman_manifests(REAL_PACK, SPIDER)
    patients = {part: {r.patient for r in rows} for part, rows in parts.items()}
    assert not patients["train"] & patients["validation"]
    assert {f"{PATIENT_PREFIX}{p}" for p in sudirman_split([p.name.split("_")[0] for p in
                                                            (REAL_PACK / "sudirman_midsag/images").glob("*.nii.gz")])
            ["validation"]} == patients["validation"]
    keys = {(r.patient, r.level) for rows in parts.values() for r in rows}
    assert (f"{PATIENT_PREFIX}307", "L4-L5") not in keys and (f"{PATIENT_PREFIX}539", "L3-L4") not in keys
    assert (f"{PATIENT_PREFIX}539", "L4-L5") in keys and (f"{PATIENT_PREFIX}192", "L5-S1") in keys
