"""Model files: the one loader accepts only spinecore models of the asked kind."""
import pytest
import torch

from spinecore.errors import ModelError
from spinecore.models import TrainedModel, default_model_path, load_model, save_model


def test_round_trip_leaves_no_partial_file(tmp_path):
    path = tmp_path / "m.pt"
    network = torch.nn.Linear(3, 1)
    save_model(path, TrainedModel("localiser", {"widths": [2, 4]}, network, {"seed": 1}))
    checkpoint = load_model(path, "localiser")
    assert checkpoint["config"] == {"widths": [2, 4]} and checkpoint["metadata"] == {"seed": 1}
    assert torch.equal(checkpoint["state_dict"]["weight"], network.weight)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


@pytest.mark.parametrize("content, reason", [
    (b"not a model at all", "not a readable model file"),
    (b"", "not a readable model file"),
    (b"hello\n", "not a readable model file"),  # pickle reads 'h' as a memo lookup: KeyError
])
def test_garbage_files(tmp_path, content, reason):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=reason) as info:
        load_model(path, "localiser")
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_foreign_and_wrong_kind(tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"conv.weight": torch.zeros(2)}, foreign)  # a plain state dict from someone else
    with pytest.raises(ModelError, match="not a spinecore model file"):
        load_model(foreign, "localiser")
    grader = tmp_path / "grader.pt"
    save_model(grader, TrainedModel("grader", {}, torch.nn.Identity(), {}))
    with pytest.raises(ModelError, match="not a localiser model"):
        load_model(grader, "localiser")


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="no localiser model file"):
        load_model(tmp_path / "nowhere.pt", "localiser")


def test_bundled_localiser_is_small_and_ours():
    path = default_model_path("localiser")
    assert path.stat().st_size < 20 * 1024**2
    metadata = load_model(path, "localiser")["metadata"]
    assert metadata["command"].startswith("spinecore train-localiser") and "validation_split" in metadata
