"""spinecore.bench: grading a whole phantom study with other streams, and its refusals."""
import pytest
import torch
from conftest import run_cli

from spinecore.bench import bench_grade
from spinecore.grade import GENODISC
from spinecore.grade.fusion import FusionConfig, FusionNet
from spinecore.grade.network import compact
from spinecore.models import TrainedModel, save_model


def test_bench_grades_a_whole_study_with_its_t1(tmp_path):
    torch.manual_seed(0)
    net = FusionNet(FusionConfig(compact([t.n_classes for t in GENODISC.tasks]), ("t2", "t1"), "fc6-concat")).eval()
    config = {**net.config.to_dict(), "scheme": GENODISC.to_dict()}
    save_model(tmp_path / "fused.pt", TrainedModel("grader", config, net, {"model_id": "untrained"}))
    threads = torch.get_num_threads()
    try:
        result = bench_grade(tmp_path / "fused.pt", n_slices=5, repeats=1, threads=1, streams=("t2", "t1"))
    finally:
        torch.set_num_threads(threads)
    assert result["streams"] == "t2+t1" and result["discs"] > 0
    assert result["discs_per_stream"] == {"t2": result["discs"], "t1": result["discs"]}  # the T1 holds every disc
    assert result["median_s"] > 0 and result["peak_rss_mb"] > 0


@pytest.mark.parametrize("options, reason", [(["--streams", "t2,axial"], "the grader reads t2: benching t2+axial needs"),
                                             (["--streams", "t1"], "t2 first")])
def test_bench_refuses_streams_its_grader_cannot_read(options, reason):
    result = run_cli("bench", "--repeats", 1, *options)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and reason in lines[-1] and not result.stdout
    assert all(line.startswith(("usage:", " ")) for line in lines[:-1])  # argparse's usage, no traceback
