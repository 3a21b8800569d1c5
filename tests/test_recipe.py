"""The SynthMUSIC recipe end to end: training, resume, DDP, export and reload."""

import json
import os
import sys

import pytest
import torch
from recipe_runs import SMALL, TINY, read_log, run_recipe  # noqa: E402
from speechbrain.dataio.dataio import write_audio

from speechbrain_textsep.evaluation.mixtures import (
    evaluate_mixture_list,
    load_centre_segment,
    read_manifest,
)
from speechbrain_textsep.inference import QuerySeparator

pytestmark = pytest.mark.recipe


def run_summary(output_folder):
    """The text-query figures of the test mixtures in a run's summary."""
    with open(os.path.join(output_folder, "test_summary.json")) as f:
        doc = json.load(f)
    assert doc["model_kind"] == "clipsep"
    assert doc["experiment"] == "clipsep_text_small"
    return doc["results"]["test_mixtures"]["text"]


def test_training_lowers_loss_and_raises_sdri(trained):
    stats = read_log(trained)
    assert len(stats) == 30
    first, last = stats[0], stats[-1]
    assert last["train loss"] < 0.85 * first["train loss"]
    assert last["valid loss"] < first["valid loss"]
    # Epoch 1 is close to the trivial 0.5-mask estimate (mixture / 2).
    assert max(s["valid sdri_plain"] for s in stats) > first["valid sdri_plain"] + 2.0
    summary = run_summary(trained)
    assert summary["sdri_plain"]["count"] == 2 * TINY["n_test_mixtures"]
    assert summary["sdri_plain"]["mean"] > 2.0
    for key in ("sdr_plain", "sdri_plain", "si_sdri", "sir_bss_v4", "sar_bss_v4"):
        assert {"mean", "median", "std", "sem", "count", "n_nan"} <= set(summary[key])
    rows = os.path.join(trained, "test", "test_mixtures", "text", "test_results.csv")
    assert os.path.isfile(rows)


def test_exported_model_reloads_to_identical_outputs(trained, data_folder, tmp_path):
    model_dir = os.path.join(trained, "model")
    assert {"hyperparams.yaml", "mask_net.ckpt", "query_encoder.ckpt"} <= set(
        os.listdir(model_dir)
    )
    first = QuerySeparator.from_hparams(source=model_dir, savedir=str(tmp_path / "a"))
    second = QuerySeparator.from_hparams(source=model_dir, savedir=str(tmp_path / "b"))
    clips = read_manifest(os.path.join(data_folder, "test.csv"))
    flute, tuba = (
        load_centre_segment(clips[f"{name}_test_0000"], 16383, 16000) / 2
        for name in ("flute", "tuba")
    )
    mixture = (flute + tuba)[None]
    out1 = first.separate_batch(mixture, "flute")
    out2 = second.separate_batch(mixture, ["flute"])
    assert out1.shape == mixture.shape
    assert torch.equal(out1, out2)
    # separate_file reads and separates the same way
    path = str(tmp_path / "mix.wav")
    write_audio(path, mixture[0], 16000)
    assert torch.allclose(first.separate_file(path, "flute"), out1[0], atol=1e-3)

    # The reloaded model is the trained one: it reproduces the test figures
    # measured at the end of training.
    def separate(mixture, labels):
        return first.separate_batch(mixture.expand(len(labels), -1), labels)[None]

    summary = evaluate_mixture_list(
        separate,
        os.path.join(data_folder, "test_mixtures.csv"),
        os.path.join(data_folder, "test.csv"),
        str(tmp_path / "eval"),
        segment_samples=TINY["segment_samples"],
    )
    trained_summary = run_summary(trained)
    for key in ("sdri_plain", "si_sdri", "sir_bss_v4"):
        assert summary[key]["mean"] == pytest.approx(
            trained_summary[key]["mean"], abs=1e-3
        )


def test_training_resumes_from_checkpoint(data_folder, tmp_path):
    output = str(tmp_path / "resume")
    run_recipe(data_folder, output, number_of_epochs=1)
    resumed = run_recipe(data_folder, output, number_of_epochs=2)
    assert "Loading a checkpoint" in resumed
    stats = read_log(output)
    assert [s["epoch"] for s in stats] == [1.0, 2.0]
    # the optimiser step count and the schedule went on from the checkpoint
    assert stats[1]["steps"] == 2 * stats[0]["steps"]


def test_nit_and_image_queries_debug_run(data_folder, tmp_path):
    output = str(tmp_path / "nit")
    run_recipe(
        data_folder,
        output,
        hparams=SMALL,
        query_mode="hybrid",
        nit=True,
        n_noise_heads=2,
        debug=True,
    )
    assert os.path.isfile(os.path.join(output, "model", "mask_net.ckpt"))
    state = torch.load(
        os.path.join(output, "model", "mask_net.ckpt"), weights_only=True
    )
    assert not any(key.startswith("noise_heads") for key in state)


def test_ddp_with_two_processes(data_folder, tmp_path):
    output = str(tmp_path / "ddp")
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    run_recipe(
        data_folder,
        output,
        launcher=launcher,
        number_of_epochs=1,
        distributed_backend="gloo",
    )
    stats = read_log(output)
    assert len(stats) == 1
    # 24 training clips, batch 8 per process, drop_last: 1 step per process
    assert stats[0]["steps"] == 1
