"""The SynthMUSIC recipe end to end: training, resume, DDP, export and reload."""

import json
import os
import subprocess
import sys

import pytest
import torch
from speechbrain.dataio.dataio import read_audio as read_audio_file
from speechbrain.dataio.dataio import write_audio

from speechbrain_textsep.data.synthmusic import prepare_synthmusic
from speechbrain_textsep.evaluation.mixtures import (
    evaluate_mixture_list,
    load_centre_segment,
    read_manifest,
)
from speechbrain_textsep.inference import QuerySeparator

RECIPE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "recipes",
    "SynthMUSIC",
    "separation",
)
SMALL = os.path.join(RECIPE, "hparams", "clipsep_text_small.yaml")
CLASSES = ["flute", "tuba", "xylophone"]
TINY = {
    "classes": "[" + ", ".join(CLASSES) + "]",
    "n_train_per_class": 8,
    "n_valid_per_class": 2,
    "n_test_per_class": 2,
    "n_test_mixtures": 4,
    "clip_seconds": 2.0,
    "segment_samples": 16383,
    "levels": 5,
    "ngf": 8,
    "n_maps": 8,
    "batch_size": 8,
    "warmup_steps": 5,
    "decay_steps": 400,
    "lr": 0.003,
}


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("synthmusic"))
    prepare_synthmusic(
        folder,
        classes=CLASSES,
        n_train=TINY["n_train_per_class"],
        n_valid=TINY["n_valid_per_class"],
        n_test=TINY["n_test_per_class"],
        duration=TINY["clip_seconds"],
        n_test_mixtures=TINY["n_test_mixtures"],
    )
    return folder


def run_recipe(data_folder, output_folder, hparams=SMALL, launcher=None, **overrides):
    """Runs train.py as a user would; returns its combined output."""
    options = {**TINY, **overrides}
    args = [hparams, "--data_folder", data_folder, "--output_folder", output_folder]
    for key, value in options.items():
        if isinstance(value, bool) and value and key in ("debug",):
            args.append(f"--{key}")
        else:
            args += [f"--{key}", str(value)]
    command = (launcher or [sys.executable]) + [os.path.join(RECIPE, "train.py")] + args
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=RECIPE
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


def read_log(output_folder):
    """Epoch lines of the training log as dicts of floats."""
    stats = []
    with open(os.path.join(output_folder, "train_log.txt")) as f:
        for line in f:
            if not line.startswith("epoch:"):
                continue
            fields = {}
            for part in line.replace(" - ", ", ").split(", "):
                key, value = part.rsplit(": ", 1) if ": " in part else (part, "")
                fields[key.strip()] = float(value)
            stats.append(fields)
    return stats


@pytest.fixture(scope="module")
def trained(data_folder, tmp_path_factory):
    """A tiny CLIPSep-Text trained for 30 epochs (about 90 optimiser steps)."""
    output = str(tmp_path_factory.mktemp("train"))
    run_recipe(data_folder, output, number_of_epochs=30)
    return output


def test_training_lowers_loss_and_raises_sdri(trained):
    stats = read_log(trained)
    assert len(stats) == 30
    first, last = stats[0], stats[-1]
    assert last["train loss"] < 0.85 * first["train loss"]
    assert last["valid loss"] < first["valid loss"]
    # Epoch 1 is close to the trivial 0.5-mask estimate (mixture / 2).
    assert max(s["valid sdri"] for s in stats) > first["valid sdri"] + 2.0
    with open(os.path.join(trained, "test_summary.json")) as f:
        summary = json.load(f)
    assert summary["sdri"]["count"] == 2 * TINY["n_test_mixtures"]
    assert summary["sdri"]["mean"] > 2.0
    for key in ("sdr", "sdri", "si_sdri", "bss_sir", "bss_sar"):
        assert {"mean", "median"} <= set(summary[key])


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
    with open(os.path.join(trained, "test_summary.json")) as f:
        trained_summary = json.load(f)
    for key in ("sdri", "si_sdri", "bss_sir"):
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


def test_textsep_separate_command(trained, data_folder, tmp_path):
    clips = read_manifest(os.path.join(data_folder, "test.csv"))
    mixture = sum(
        load_centre_segment(clips[f"{name}_test_0001"], 20001, 16000) / 2
        for name in ("flute", "xylophone")
    )
    path = str(tmp_path / "song.wav")
    write_audio(path, mixture, 16000)
    command = [sys.executable, "-m", "speechbrain_textsep.cli", "separate", path]
    args = ["--model", os.path.join(trained, "model"), "--query", "flute"]
    out = str(tmp_path / "out")
    result = subprocess.run(
        command + args + ["--out", out, "--plot"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    estimate = read_audio_file(os.path.join(out, "song_flute.wav"))
    assert estimate.shape == (20001,)
    assert os.path.getsize(os.path.join(out, "song_flute.png")) > 0
    separator = QuerySeparator.from_hparams(
        source=os.path.join(trained, "model"), savedir=str(tmp_path / "m")
    )
    expected = separator.separate_file(path, "flute")
    assert torch.allclose(estimate, expected, atol=1e-3)
    empty = subprocess.run(
        command + ["--model", "x", "--query", "  ", "--out", out],
        capture_output=True,
        text=True,
    )
    assert empty.returncode != 0 and "query is empty" in empty.stderr


def test_separator_rejects_bad_input_clearly(trained, tmp_path):
    separator = QuerySeparator.from_hparams(
        source=os.path.join(trained, "model"), savedir=str(tmp_path / "m")
    )
    with pytest.raises(FileNotFoundError, match="audio file not found"):
        separator.separate_file(str(tmp_path / "missing.wav"), "flute")
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not audio")
    with pytest.raises(RuntimeError, match="Failed to load audio"):
        separator.separate_file(str(not_audio), "flute")
    with pytest.raises(ValueError, match="empty text query"):
        separator.separate_batch(torch.randn(1, 16000), "   ")
    with pytest.raises(ValueError, match="NaN or infinite"):
        separator.separate_batch(torch.full((1, 16000), float("nan")), "flute")
    with pytest.raises(ValueError, match="empty"):
        separator.separate_batch(torch.zeros(1, 0), "flute")
    with pytest.raises(ValueError, match=r"\[batch, time\]"):
        separator.separate_batch(torch.zeros(16000), "flute")
    silence = separator.separate_batch(torch.zeros(2, 5000), "flute")
    assert silence.shape == (2, 5000) and torch.equal(silence, torch.zeros(2, 5000))
