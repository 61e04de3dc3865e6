"""The web service: ``spinecore serve``."""
from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from spinecore.cli.common import Commands, model, option, positive_int
from spinecore.errors import SpineCoreError

COMMANDS = Commands()
SERVE_MODULES = ("fastapi", "uvicorn", "python_multipart", "starlette", "pydantic")  # the ``serve`` extra


def check_free(host: str, port: int) -> None:
    """Raise a one-line error unless ``host:port`` can be listened on."""
    try:
        socket.create_server((host, port)).close()
    except OSError as exc:
        raise SpineCoreError(None, f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


@COMMANDS("serve", "run the web service: upload a study in a browser (or the JSON API), get the gradings",
          option("--host", default="127.0.0.1",
                 help="address to listen on (default %(default)s: this machine only; 0.0.0.0 for every interface)"),
          option("--port", type=int, default=8000, help="port (default %(default)s)"),
          option("--data-dir", type=Path,
                 help="where uploads and results are kept while needed (default: a temporary folder, removed on exit)"),
          option("--jobs", type=positive_int, default=1, help="studies graded at once (default %(default)s)"),
          option("--max-upload-mb", type=positive_int, default=1024, help="upload size cap (default %(default)s MB)"),
          option("--keep-hours", type=float, default=24.0,
                 help="delete results this long after the job ended (default %(default)s)"),
          model("grading"), model("localiser", "--localiser"))
def run_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from spinecore.serve import ServeSettings, create_app
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in SERVE_MODULES:
            raise
        raise SpineCoreError(None, f"spinecore serve needs {exc.name}: pip install 'spinecore[serve]'") from None
    if args.keep_hours <= 0:
        raise SpineCoreError(None, "--keep-hours must be more than 0")
    check_free(args.host, args.port)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="spinecore-serve-"))
    settings = ServeSettings(data_dir, args.jobs, args.max_upload_mb, args.keep_hours, args.localiser, args.model)
    try:
        app = create_app(settings)
        print(f"spinecore: serving on http://{args.host}:{args.port}/ (data in {data_dir}; Ctrl+C to stop)",
              file=sys.stderr)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0
