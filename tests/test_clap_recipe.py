"""The tiny CLAP recipe (recipes/SynthMUSIC/clap) runs and its export loads."""

import json
from pathlib import Path

import pytest
import torch
from recipe_runs import read_log

from speechbrain_textsep.encoders.clap import CLAPQueryEncoder
from speechbrain_textsep.training.clap_brain import encoder_retrieval

pytestmark = pytest.mark.recipe


def test_tiny_clap_recipe(trained_clap, data_folder):
    """conftest.trained_clap: 6 epochs of 8 batches of the 3 classes."""
    output = Path(trained_clap["output"])
    assert "Test test (audio queries): a2t_top1" in trained_clap["log"]

    epochs = read_log(output)
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4, 5, 6]
    assert epochs[-1]["steps"] == 48  # 6 epochs of 8 batches of 3 clips
    assert epochs[-1]["train loss"] < epochs[0]["train loss"]
    for e in epochs:
        assert 0 <= e["valid a2t_top1"] <= 1 and 0 <= e["valid t2a_rprec"] <= 1

    doc = json.loads((output / "test_summary.json").read_text())
    assert (doc["model_kind"], doc["experiment"]) == ("clap", "clap_tiny")
    results = doc["results"]["test"]
    assert set(results) == {"audio", "text"}
    assert results["audio"]["a2t_top1"]["count"] == 6  # 2 test clips per class
    assert results["text"]["t2a_rprec"]["count"] == 3  # one caption per class
    assert "t2a_rprec" in doc["metrics_doc"]
    assert (output / "test" / "test" / "audio" / "test_results.csv").is_file()

    # The exported folder gives the metrics of the best checkpoint.
    encoder = CLAPQueryEncoder(output / "model")
    exported = encoder_retrieval(encoder, str(Path(data_folder) / "test.csv"))
    for kind, key in (
        ("audio", "a2t_top1"),
        ("text", "t2a_top1"),
        ("text", "t2a_rprec"),
    ):
        assert abs(exported[key] - results[kind][key]["mean"]) < 1e-6, key
    assert json.loads((output / "model" / "test_summary.json").read_text()) == doc
    assert "| a2t_top1 |" in (output / "model" / "README.md").read_text()

    text = encoder.encode_text(["The sound of flute", "The sound of tuba"])
    audio = encoder.encode_audio(torch.randn(2, 16000) * 0.1, sample_rate=16000)
    assert text.shape == (2, 512) and audio.shape == (2, 512)
    assert encoder.model_cfg["htsat"]["embed_dim"] == 16
