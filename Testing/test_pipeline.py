"""spinecore.pipeline.analyse: the whole chain on one series, with progress and cancellation."""
import numpy as np
import pytest

from conftest import SAMPLE_T2
from spinecore.errors import SpineCoreError
from spinecore.grade import Grader
from spinecore.io import load_study
from spinecore.localise import Localiser
from spinecore.pipeline import Cancelled, analyse
from spinecore.saliency import Method


@pytest.fixture(scope="module")
def models():
    return Localiser.load(), Grader.load()


@pytest.fixture(scope="module")
def sample():
    return load_study(SAMPLE_T2).sagittal()


def test_analyse_grades_every_disc_and_composes_heatmaps_in_the_scan_grid(sample, models):
    reports = []
    result = analyse(sample, *models, tta=False, hotspot_tasks=("modic",), method=Method.BACKPROP, augmentations=2,
                     progress=lambda f, m: reports.append((f, m)))
    assert [d.level for d in result.gradings.discs] == [d.level for d in result.spine.discs] == \
        [v.level for v in result.volumes]
    assert result.hotspot_tasks == ["modic"] and set(result.hotspots) == {"t2"}  # a single-stream grader
    assert set(result.hotspots["t2"]) == {d.level for d in result.spine.discs}
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and reports[-1] == (1.0, "done")
    heat = result.heatmap("modic")
    assert heat.shape == sample.shape and heat.max() == pytest.approx(1.0)
    # each disc's own map, put in the scan grid, never exceeds the composed one
    for volume in result.volumes:
        own = volume.to_scan_grid(result.hotspots["t2"][volume.level]["modic"])
        assert np.all(own <= heat + 1e-6)
    assert not result.heatmap("pfirrmann").any()


def test_a_progress_callback_can_cancel_the_run(sample, models):
    def cancel_at_grading(fraction, message):
        if message.startswith("grading"):
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        analyse(sample, *models, progress=cancel_at_grading)


def test_unknown_hotspot_task_is_a_one_line_error(sample, models):
    with pytest.raises(SpineCoreError, match="unknown hotspot task.*sharpness"):
        analyse(sample, *models, hotspot_tasks=("sharpness",))
