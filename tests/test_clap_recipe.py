"""The tiny CLAP recipe (recipes/SynthMUSIC/clap) runs and its export loads."""

import json
from pathlib import Path

import torch
from recipe_runs import read_log

from speechbrain_textsep.encoders.clap import CLAPQueryEncoder


def test_tiny_clap_recipe(trained_clap):
    """conftest.trained_clap: 6 epochs of 8 batches of the 3 classes."""
    output = Path(trained_clap["output"])
    assert "Test retrieval through the exported CLAP folder" in trained_clap["log"]

    epochs = read_log(output)
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4, 5, 6]
    assert epochs[-1]["train loss"] < epochs[0]["train loss"]
    for e in epochs:
        assert 0 <= e["valid a2t_top1"] <= 1 and 0 <= e["valid t2a_rprec"] <= 1

    summary = json.loads((output / "test_summary.json").read_text())
    assert summary["optimizer_steps"] == 48  # 6 epochs of 8 batches of 3 clips
    # The exported folder gives the metrics of the best checkpoint.
    for key in ("a2t_top1", "t2a_top1", "t2a_rprec"):
        assert (
            abs(summary["test_exported_encoder"][key] - summary["test_checkpoint"][key])
            < 1e-6
        )

    encoder = CLAPQueryEncoder(output / "model")
    text = encoder.encode_text(["The sound of flute", "The sound of tuba"])
    audio = encoder.encode_audio(torch.randn(2, 16000) * 0.1, sample_rate=16000)
    assert text.shape == (2, 512) and audio.shape == (2, 512)
    assert encoder.model_cfg["htsat"]["embed_dim"] == 16
