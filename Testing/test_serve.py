"""The web service through FastAPI's test client: real uploads graded by real worker processes."""
from __future__ import annotations

import io
import socket
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from conftest import SAMPLE_T2, run_cli
from fastapi.testclient import TestClient

from spinecore.phantom import PhantomSpec, make_phantom, write_phantom
from spinecore.serve import ServeSettings, create_app
from spinecore.serve.jobs import JOB_ID

UPLOAD_CAP_MB = 4
JOB_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A running app with two worker processes, its data folder and its test client."""
    data_dir = tmp_path_factory.mktemp("serve-data")
    app = create_app(ServeSettings(data_dir, jobs=2, max_upload_mb=UPLOAD_CAP_MB, keep_hours=1))
    with TestClient(app) as client:
        yield client, data_dir, app.state.board


def upload(client, name: str, content: bytes, **options) -> dict:
    answer = client.post("/api/jobs", files={"file": (name, content)},
                         data={key: str(value).lower() for key, value in {"tta": False, **options}.items()})
    assert answer.status_code == 202, answer.text
    return answer.json()


def wait(client, job_id: str) -> dict:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        state = client.get(f"/api/jobs/{job_id}").json()
        if state["status"] in ("done", "failed"):
            return state
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish in {JOB_TIMEOUT_S} s: {state}")


def job_folders(data_dir: Path) -> set[str]:
    return {p.name for p in (data_dir / "jobs").iterdir()}


def zipped(folder: Path, rename=lambda name: name) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, rename(path.relative_to(folder).as_posix()))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def phantom_study(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("serve-phantom")
    write_phantom(make_phantom(PhantomSpec(seed=21, n_slices=5, t1=False, axial=True)), folder)
    return folder


def test_the_sample_is_graded_as_spinecore_grade_grades_it(service, tmp_path):
    client, data_dir, _ = service
    job = upload(client, "my scan.nii.gz", SAMPLE_T2.read_bytes())
    assert JOB_ID.fullmatch(job["id"]) and job["status"] == "queued"
    state = wait(client, job["id"])
    assert state["status"] == "done" and state["progress"] == 1.0 and state["error"] is None, state
    assert {"gradings.csv", "gradings.json", "vertebrae.json", "overview.png"} <= set(state["files"])
    assert any(name.startswith("slices/slice_") for name in state["files"])
    assert run_cli("grade", SAMPLE_T2, "--out", tmp_path / "cli", "--no-tta").returncode == 0
    served = client.get(f"/api/jobs/{job['id']}/files/gradings.csv")
    assert served.headers["content-type"].startswith("text/csv")
    assert served.content == (tmp_path / "cli" / "gradings.csv").read_bytes()
    document = client.get(f"/api/jobs/{job['id']}/files/gradings.json").json()
    assert document["source"] == "my scan.nii.gz"  # the user's name, never the server's path
    assert not (data_dir / "jobs" / job["id"] / "upload").exists(), "the uploaded scan is deleted once graded"


def truncated_zip(phantom_study: Path) -> bytes:
    whole = zipped(phantom_study / "dicom" / "sag_t2")
    return whole[: len(whole) // 2]


def zip_slip(phantom_study: Path) -> bytes:
    return zipped(phantom_study / "dicom" / "sag_t2", lambda name: f"../../{name}")


BAD_UPLOADS = {
    "notes.txt": (lambda study: b"not a scan at all", "not a DICOM file nor a volume"),
    "study.zip": (truncated_zip, "not a readable zip archive"),
    "slip.zip": (zip_slip, "path traversal"),
    "axial.zip": (lambda study: zipped(study / "dicom" / "ax_t2_l4-l5"), "sagittal"),
}


@pytest.mark.parametrize("name", BAD_UPLOADS)
def test_a_bad_upload_fails_with_the_readers_reason_and_leaves_nothing(service, phantom_study, name):
    client, data_dir, _ = service
    make, reason = BAD_UPLOADS[name]
    before = job_folders(data_dir)
    job = upload(client, name, make(phantom_study))
    state = wait(client, job["id"])
    assert state["status"] == "failed" and state["files"] == []
    assert state["error"].startswith(name) and reason in state["error"] and "\n" not in state["error"], state["error"]
    assert "/jobs/" not in state["error"]  # no server path in what the user reads
    assert job_folders(data_dir) == before


def test_over_the_cap_is_413_and_nothing_is_kept(service):
    client, data_dir, _ = service
    before = job_folders(data_dir)
    answer = client.post("/api/jobs", files={"file": ("big.nii.gz", b"\0" * (UPLOAD_CAP_MB * 1024**2 + 1))})
    assert answer.status_code == 413 and "limit" in answer.json()["detail"]
    assert job_folders(data_dir) == before


@pytest.mark.parametrize("request_kwargs, status", [
    ({"data": {"tta": "false"}, "files": {"other": ("x.nii.gz", b"abc")}}, 400),  # no 'file' field
    ({"files": {"file": ("empty.nii.gz", b"")}}, 400),
    ({"files": {"file": ("scan.nii.gz", b"abc")}, "data": {"tta": "maybe"}}, 400),
    ({"content": b"raw bytes", "headers": {"content-type": "application/octet-stream"}}, 415),
])
def test_malformed_requests_are_refused_and_leave_nothing(service, request_kwargs, status):
    client, data_dir, _ = service
    before = job_folders(data_dir)
    answer = client.post("/api/jobs", **request_kwargs)
    assert answer.status_code == status and answer.json()["detail"]
    assert job_folders(data_dir) == before


def test_ten_concurrent_uploads_each_get_their_own_results(service, tmp_path):
    client, _, _ = service
    studies = {}
    for seed in range(5):
        folder = tmp_path / f"p{seed}"
        write_phantom(make_phantom(PhantomSpec(seed=100 + seed, n_slices=5, t1=False, axial=False)), folder)
        studies[f"p{seed}.nii.gz"] = (folder / "nifti" / "sag_t2.nii.gz").read_bytes()
    names = [name for name in studies for _ in range(2)]
    with ThreadPoolExecutor(len(names)) as pool:
        jobs = list(pool.map(lambda name: upload(client, name, studies[name])["id"], names))
    queued = [s["queue_position"] for s in (client.get(f"/api/jobs/{j}").json() for j in jobs) if s["status"] == "queued"]
    assert sorted(queued) == list(range(1, len(queued) + 1)), "queue positions are 1, 2, ... in line"
    for job_id in jobs:
        assert wait(client, job_id)["status"] == "done"
    for name, content in studies.items():
        expected = tmp_path / "cli" / name
        (tmp_path / name).write_bytes(content)
        assert run_cli("grade", tmp_path / name, "--out", expected, "--no-tta").returncode == 0
        for job_id in (j for n, j in zip(names, jobs) if n == name):
            assert client.get(f"/api/jobs/{job_id}/files/gradings.csv").content == (expected / "gradings.csv").read_bytes()


def test_unknown_ids_and_path_like_names_are_404(service):
    client, _, _ = service
    job = upload(client, "sample.nii.gz", SAMPLE_T2.read_bytes())
    assert wait(client, job["id"])["status"] == "done"
    unknown = "A" * 32
    for url in (f"/api/jobs/{unknown}", f"/api/jobs/{unknown}/files/gradings.csv", "/api/jobs/..", f"/jobs/{unknown}",
                f"/api/jobs/{job['id']}/files/%2e%2e/progress.json", f"/api/jobs/{job['id']}/files/..%2f..%2fjobs",
                f"/api/jobs/{job['id']}/files/slices/%2e%2e/gradings.csv", f"/api/jobs/{job['id']}/files/upload/scan.nii.gz",
                f"/api/jobs/{job['id']}/files//etc/passwd"):
        assert client.get(url).status_code == 404, url
    assert client.delete(f"/api/jobs/{unknown}").status_code == 404


def test_delete_and_expiry_remove_the_results(service):
    client, data_dir, board = service
    jobs = [upload(client, "sample.nii.gz", SAMPLE_T2.read_bytes())["id"] for _ in range(2)]
    for job_id in jobs:
        assert wait(client, job_id)["status"] == "done"
    assert client.delete(f"/api/jobs/{jobs[0]}").status_code == 204
    assert client.get(f"/api/jobs/{jobs[0]}").status_code == 404 and jobs[0] not in job_folders(data_dir)
    assert board.expire(now=time.time() + 30 * 60) == []  # kept for keep_hours (1 h)
    assert jobs[1] in board.expire(now=time.time() + 61 * 60)
    assert client.get(f"/api/jobs/{jobs[1]}").status_code == 404 and jobs[1] not in job_folders(data_dir)


def test_the_pages_and_the_openapi_description_are_served(service):
    client, _, _ = service
    page = client.get("/")
    assert page.status_code == 200 and 'id="file-input"' in page.text
    assert page.headers["x-content-type-options"] == "nosniff" and "default-src 'self'" in page.headers[
        "content-security-policy"]
    schema = client.get("/openapi.json").json()
    assert {"/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/files/{name}"} <= set(schema["paths"])
    form = schema["paths"]["/api/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"]


def one_line_error(done) -> str:
    assert done.returncode == 2 and done.stdout == "", (done.returncode, done.stdout, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    return done.stderr


def test_serve_refuses_bad_options_a_busy_port_and_a_bad_model_in_one_line(tmp_path):
    assert "--keep-hours" in one_line_error(run_cli("serve", "--keep-hours", "0"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert f"cannot listen on 127.0.0.1:{port}" in one_line_error(run_cli("serve", "--port", port))
    bad_model = tmp_path / "grader.pt"
    bad_model.write_text("not a model")
    data_dir = tmp_path / "data"
    message = one_line_error(run_cli("serve", "--port", "0", "--model", bad_model, "--data-dir", data_dir))
    assert str(bad_model) in message
    assert not data_dir.exists(), "nothing written when the server cannot start"


def test_a_running_job_deleted_stops_and_the_workers_go_on(service):
    client, data_dir, _ = service
    job_id = upload(client, "sample.nii.gz", SAMPLE_T2.read_bytes(), tta=True, hotspots=True)["id"]
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while client.get(f"/api/jobs/{job_id}").json()["status"] == "queued" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.delete(f"/api/jobs/{job_id}").status_code == 204
    assert client.get(f"/api/jobs/{job_id}").status_code == 404 and job_id not in job_folders(data_dir)
    after = upload(client, "sample.nii.gz", SAMPLE_T2.read_bytes())["id"]
    assert wait(client, after)["status"] == "done"
    assert job_id not in job_folders(data_dir), "a stopped job leaves nothing behind"


def test_a_zipped_dicom_study_also_gets_its_dicom_seg_and_sr(service, phantom_study):
    pytest.importorskip("highdicom")
    client, _, _ = service
    job = upload(client, "whole study.zip", zipped(phantom_study / "dicom"))  # sagittal T2 and an axial series
    state = wait(client, job["id"])
    assert state["status"] == "done", state
    assert {"seg.dcm", "sr.dcm"} <= set(state["files"])
    seg = client.get(f"/api/jobs/{job['id']}/files/seg.dcm")
    assert seg.headers["content-type"] == "application/dicom" and seg.content[128:132] == b"DICM"
