"""The worker-thread job the Slicer widget runs spinecore in."""
import threading

from conftest import SAMPLE_T2
from spinecore.io import load_study
from SpineNetLib.jobs import BackgroundJob
from SpineNetLib.logic import SpineNetInputs, SpineNetRunner
from SpineNetLib.parameters import SpineNetParameters


def test_job_runs_the_pipeline_in_another_thread_and_reports_progress():
    series = load_study(SAMPLE_T2).sagittal()
    runner, seen, threads = SpineNetRunner(), [], []

    def work(progress):
        threads.append(threading.current_thread())
        return runner.analyse(SpineNetInputs(series), SpineNetParameters(tta=False),
                              lambda f, m: (seen.append((f, m)), progress(f, m)))

    job = BackgroundJob(work).start()
    assert job.wait(300) and job.error is None
    assert threads[0] is not threading.current_thread()
    assert [d.level for d in job.result.gradings.discs] == [d.level for d in job.result.spine.discs]
    assert seen[0][0] == 0.0 and seen[-1] == (1.0, "done") and job.progress == (1.0, "done")


def test_cancel_stops_the_work_at_the_next_progress_report():
    started, release = threading.Event(), threading.Event()
    reports = []

    def work(progress):
        for step in range(100):
            progress(step / 100, f"step {step}")
            reports.append(step)
            started.set()
            release.wait(5)
        return "finished"

    job = BackgroundJob(work).start()
    started.wait(5)
    job.cancel()
    release.set()
    assert job.wait(5) and job.cancelled and job.result is None
    assert reports == [0]


def test_errors_are_handed_over_not_raised_in_the_thread():
    def work(progress):
        raise ValueError("bad input")

    job = BackgroundJob(work).start()
    assert job.wait(5)
    assert isinstance(job.error, ValueError) and not job.cancelled and job.result is None
