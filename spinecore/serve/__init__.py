"""``spinecore serve``: the SpineNet web service (FastAPI, served by uvicorn; the ``serve`` extra).

Upload a study at ``/``, follow the job at ``/jobs/<id>``, or use the JSON API under ``/api/jobs``
(documented at ``/docs``). :mod:`~.app` holds the routes, :mod:`~.jobs` the queue and worker pool,
:mod:`~.upload` the streamed, capped upload, :mod:`~.worker` what a worker process runs.
"""
from spinecore.serve.app import ServeSettings, create_app

__all__ = ["ServeSettings", "create_app"]
