"""The web service: an upload page, a job page with live progress and the results, and a JSON API.

>>> app = create_app(ServeSettings(data_dir=Path("/srv/spinenet")))  # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8000)                     # doctest: +SKIP
"""
from __future__ import annotations

import shutil
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect

from spinecore import __version__
from spinecore.serve.jobs import JobBoard, ServiceBusy, Status
from spinecore.serve.upload import UploadRejected, receive_upload
from spinecore.serve.worker import JobSpec

PAGES = files("spinecore.serve") / "pages"
#: Media types of the result files, by suffix; anything else is sent as bytes.
MEDIA_TYPES = {".png": "image/png", ".csv": "text/csv", ".json": "application/json", ".dcm": "application/dicom",
               ".gz": "application/gzip"}
#: Headers on every response of our own pages and files (the OpenAPI pages load their own scripts).
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
                    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'"}
OPENAPI_PATHS = ("/docs", "/redoc", "/openapi.json")
UPLOAD_FORM = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": "a .zip of DICOM files, one DICOM file, or a .nii/.nii.gz/.nrrd/.mha volume"},
        "tta": {"type": "boolean", "default": True, "description": "54-view test-time augmentation"},
        "hotspots": {"type": "boolean", "default": False, "description": "evidence hotspots for every task"}}}}}}}


@dataclass(frozen=True)
class ServeSettings:
    """How the service runs (the options of ``spinecore serve``)."""

    data_dir: Path
    jobs: int = 1
    max_upload_mb: int = 1024
    keep_hours: float = 24.0
    localiser: Path | None = None
    grader: Path | None = None


class JobCreated(BaseModel):
    id: str = Field(description="the job id: 192 random bits, URL-safe")
    status: Literal["queued"] = "queued"


class JobState(BaseModel):
    id: str
    status: Status
    progress: float = Field(ge=0, le=1, description="fraction done")
    error: str | None = Field(description="why the job failed, in one line")
    message: str = Field(description="what is happening now")
    queue_position: int | None = Field(description="1 for the next job to start; null unless queued")
    name: str = Field(description="the uploaded file's name")
    files: list[str] = Field(description="result files once done, for /api/jobs/{id}/files/{name}")


def create_app(settings: ServeSettings) -> FastAPI:
    """The app, with its job board started: ``settings.jobs`` worker processes, each holding the
    models (a one-line :class:`~spinecore.errors.SpineCoreError` when they cannot be loaded). The
    workers stop when the app shuts down."""
    board = JobBoard(settings.data_dir, settings.jobs, settings.keep_hours, settings.localiser, settings.grader)
    board.open()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            yield
        finally:
            board.close()

    app = FastAPI(title="SpineNet", version=__version__, lifespan=lifespan,
                  description="Upload a lumbar spine MRI study; get every disc graded, with the labelled image.")
    app.state.board = board

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        if not request.url.path.startswith(OPENAPI_PATHS):
            response.headers.update(SECURITY_HEADERS)
        return response

    _page_routes(app, board)
    _api_routes(app, board, settings.max_upload_mb * 1024**2)
    return app


def _page_routes(app: FastAPI, board: JobBoard) -> None:
    """The upload page, the job page and their scripts and style."""
    app.mount("/static", StaticFiles(directory=str(PAGES)), name="static")

    @app.get("/", include_in_schema=False)
    def upload_page() -> FileResponse:
        return FileResponse(str(PAGES / "index.html"))

    @app.get("/jobs/{job_id}", include_in_schema=False)
    def job_page(job_id: str) -> FileResponse:
        _job_or_404(board, job_id)
        return FileResponse(str(PAGES / "job.html"))


def _api_routes(app: FastAPI, board: JobBoard, max_upload_bytes: int) -> None:
    """``/api/jobs``: create, follow, download from and delete jobs."""

    @app.post("/api/jobs", status_code=202, response_model=JobCreated, openapi_extra=UPLOAD_FORM,
              responses={400: {"description": "not a form with a file"}, 413: {"description": "over the size cap"},
                         503: {"description": "too many jobs waiting"}})
    async def create_job(request: Request):
        """Upload a study (multipart field ``file``); it is graded in the background."""
        job_id, folder = board.new_folder()
        try:
            upload = await receive_upload(request.headers.get("content-type", ""), request.headers.get("content-length"),
                                          request.stream(), folder / "upload", max_upload_bytes)
            board.submit(job_id, JobSpec(folder, upload.path, upload.display_name, **upload.options))
        except UploadRejected as exc:
            shutil.rmtree(folder, ignore_errors=True)
            return JSONResponse({"detail": exc.reason}, status_code=exc.status)
        except ServiceBusy:
            return JSONResponse({"detail": "too many jobs are waiting; try again later"}, status_code=503)
        except ClientDisconnect:  # the browser went away mid-upload: nothing to answer, nothing kept
            shutil.rmtree(folder, ignore_errors=True)
            return Response(status_code=400)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return JobCreated(id=job_id)

    @app.get("/api/jobs/{job_id}", response_model=JobState, responses={404: {"description": "no such job"}})
    def job_state(job_id: str) -> JobState:
        """The job's status and progress; its result files once done."""
        job = _job_or_404(board, job_id)
        return JobState(id=job.id, status=job.status, progress=job.progress, error=job.error, message=job.message,
                        queue_position=board.position(job), name=job.spec.display_name, files=list(job.files))

    @app.get("/api/jobs/{job_id}/files/{name:path}", responses={404: {"description": "no such job or file"}})
    def job_file(job_id: str, name: str) -> FileResponse:
        """One result file of a finished job (a name from its ``files``)."""
        path = board.result_file(job_id, name)
        if path is None:
            raise HTTPException(404, "no such file")
        return FileResponse(str(path), media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
                            filename=path.name if path.suffix in {".csv", ".json", ".dcm", ".gz"} else None)

    @app.delete("/api/jobs/{job_id}", status_code=204, responses={404: {"description": "no such job"}})
    def delete_job(job_id: str) -> Response:
        """Forget the job and delete its files now (a running job is stopped)."""
        if not board.delete(job_id):
            raise HTTPException(404, "no such job")
        return Response(status_code=204)


def _job_or_404(board: JobBoard, job_id: str):
    job = board.get(job_id)
    if job is None:
        raise HTTPException(404, "no such job")
    return job
