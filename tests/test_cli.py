"""The ``textsep`` command end to end on a model from a tiny training run."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_textsep.evaluation.mixtures import load_centre_segment, read_manifest
from speechbrain_textsep.inference import QuerySeparator
from speechbrain_textsep.inference.audio import read_audio

pytestmark = pytest.mark.recipe

TEXTSEP = os.path.join(os.path.dirname(sys.executable), "textsep")


def textsep(*args):
    """Runs the installed console script; returns (exit code, stdout, stderr)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [TEXTSEP, *map(str, args)], capture_output=True, text=True, env=env
    )
    return result.returncode, result.stdout, result.stderr


@pytest.fixture(scope="module")
def song(data_folder, tmp_path_factory):
    """A flute + xylophone mixture written at 44.1 kHz in stereo."""
    clips = read_manifest(os.path.join(data_folder, "test.csv"))
    mixture = sum(
        load_centre_segment(clips[f"{name}_test_0001"], 24001, 16000) / 2
        for name in ("flute", "xylophone")
    )
    stereo = torch.stack([mixture, 0.8 * mixture])
    import torchaudio

    stereo = torchaudio.functional.resample(stereo, 16000, 44100)
    path = str(tmp_path_factory.mktemp("song") / "song.wav")
    sf.write(path, stereo.T.numpy(), 44100, subtype="FLOAT")
    return path


def test_separate_several_queries_with_plot(trained, song, tmp_path):
    model = os.path.join(trained, "model")
    out = tmp_path / "out"
    code, stdout, stderr = textsep(
        "separate",
        song,
        "--model",
        model,
        "--query",
        "flute",
        "--query",
        "xylophone",
        "--out",
        out,
        "--plot",
    )
    assert code == 0, stderr[-3000:]
    assert sorted(os.listdir(out)) == [
        "song.png",
        "song_flute.wav",
        "song_xylophone.wav",
    ]
    assert stdout.split() == [
        str(out / "song_flute.wav"),
        str(out / "song_xylophone.wav"),
        str(out / "song.png"),
    ]
    info = sf.info(song)
    flute, rate = read_audio(str(out / "song_flute.wav"))
    # written at the input's rate and exact length, float (no clipping)
    assert rate == 44100 and flute.shape == (1, info.frames)
    assert sf.info(str(out / "song_flute.wav")).subtype == "FLOAT"
    separator = QuerySeparator.from_hparams(source=model)
    expected = separator.separate_file(song, "flute", resample_back=True)
    assert torch.allclose(flute[0], expected, atol=1e-5)


def test_separate_a_folder_keeps_its_layout(trained, song, tmp_path):
    inputs = tmp_path / "in"
    (inputs / "live").mkdir(parents=True)
    data, rate = sf.read(song)
    sf.write(str(inputs / "a.flac"), data, rate)
    sf.write(str(inputs / "live" / "b.ogg"), data[:30000], rate)
    (inputs / "notes.txt").write_text("not audio, not an audio extension")
    out = tmp_path / "out"
    code, _, stderr = textsep(
        "separate",
        inputs,
        "--model",
        os.path.join(trained, "model"),
        "--query",
        "tuba",
        "--out",
        out,
        "--format",
        "flac",
        "--channels",
        "separate",
    )
    assert code == 0, stderr[-3000:]
    assert sorted(os.listdir(out)) == ["a_tuba.flac", "live"]
    assert os.listdir(out / "live") == ["b_tuba.flac"]
    estimate, _ = read_audio(str(out / "live" / "b_tuba.flac"))
    assert estimate.shape[0] == 2 and estimate.abs().max() <= 1.0


def test_bad_inputs_stop_before_anything_is_written(trained, song, tmp_path):
    model = os.path.join(trained, "model")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00garbage")
    out = tmp_path / "out"
    cases = {
        "audio file not found": [song, tmp_path / "missing.wav", "--query", "flute"],
        "cannot read audio file .*broken.wav": [song, broken, "--query", "flute"],
        "empty text query": [song, "--query", "  "],
        "give at least one --query": [song],
        "not a readable image": [song, "--image", broken],
        "QuerySeparator does not take audio queries": [
            song,
            "--audio-query",
            song,
        ],
        "does not take negative queries": [
            song,
            "--query",
            "flute",
            "--negative",
            "tuba",
        ],
    }
    for message, args in cases.items():
        code, _, stderr = textsep("separate", *args, "--model", model, "--out", out)
        assert code == 2, (message, stderr[-2000:])
        assert "Traceback" not in stderr
        import re

        assert re.search(message, stderr), (message, stderr[-2000:])
        assert not out.exists() or not os.listdir(out)

    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros((0, 1)), 16000)
    nan = tmp_path / "nan.wav"
    sf.write(str(nan), np.full(400, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    code, _, stderr = textsep(
        "separate", song, empty, "--model", model, "--query", "x", "--out", out
    )
    assert code == 2 and "empty.wav is empty (0 samples)" in stderr
    # NaN samples are only seen when the file is read: the other inputs are
    # separated, the bad one is reported and gets no output.
    code, _, stderr = textsep(
        "separate", song, nan, "--model", model, "--query", "x", "--out", out
    )
    assert code == 2 and "1 of 2 inputs failed" in stderr and "NaN" in stderr
    assert sorted(os.listdir(out)) == ["song_x.wav"]


def test_untrusted_and_missing_models_are_refused(trained, song, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for name in os.listdir(os.path.join(trained, "model")):
        with open(os.path.join(trained, "model", name), "rb") as f:
            (folder / name).write_bytes(f.read())
    with open(folder / "hyperparams.yaml", "a") as f:
        f.write("\nrun: !apply:subprocess.call [[touch, pwned]]\n")
    out = tmp_path / "out"
    code, _, stderr = textsep(
        "separate", song, "--model", folder, "--query", "x", "--out", out
    )
    assert (
        code == 2
        and "!apply:subprocess.call" in stderr
        and "--trust-remote-code" in stderr
    )
    assert not os.path.exists("pwned")
    code, _, stderr = textsep(
        "separate", song, "--model", "nobody/nothing", "--query", "x", "--out", out
    )
    assert code == 2 and "not in the Hugging Face cache" in stderr


def test_export_writes_a_loadable_folder_with_a_model_card(
    trained, data_folder, tmp_path
):
    out = tmp_path / "exported"
    code, stdout, stderr = textsep("export", trained, "--out", out)
    assert code == 0, stderr[-3000:]
    assert stdout.split() == [str(out), str(out / "README.md")]
    card = (out / "README.md").read_text()
    with open(os.path.join(trained, "test_summary.json")) as f:
        summary = json.load(f)["results"]["test_mixtures"]["text"]
    assert f"| sdri_plain | {summary['sdri_plain']['mean']:.2f} |" in card
    assert "- `sdri_plain`: plain SDR improvement over the mixture" in card
    assert "24 single-source clips of 3 classes (flute, tuba, xylophone)" in card
    assert "best validation `sdri_plain`" in card
    with open(os.path.join(trained, "test_summary.json")) as f:
        assert json.load(f) == json.loads((out / "test_summary.json").read_text())
    # the recipe's own export at the end of training has the same card
    with open(os.path.join(trained, "model", "README.md")) as f:
        assert f.read() == card
    # the best checkpoint is the one the recipe exported after training
    exported = QuerySeparator.from_hparams(source=str(out))
    original = QuerySeparator.from_hparams(source=os.path.join(trained, "model"))
    mixture = torch.randn(1, 20000) * 0.1
    assert torch.equal(
        exported.separate_batch(mixture, "flute"),
        original.separate_batch(mixture, "flute"),
    )
    code, _, stderr = textsep("export", tmp_path, "--out", tmp_path / "x")
    assert code == 2 and "not a recipe output folder" in stderr


def test_evaluate_reproduces_the_training_test_figures(trained, data_folder, tmp_path):
    out = tmp_path / "eval"
    code, stdout, stderr = textsep(
        "evaluate",
        "--model",
        os.path.join(trained, "model"),
        "--mixtures",
        os.path.join(data_folder, "test_mixtures.csv"),
        "--clips",
        os.path.join(data_folder, "test.csv"),
        "--segment-samples",
        16383,
        "--out",
        out,
    )
    assert code == 0, stderr[-3000:]
    means = json.loads(stdout.splitlines()[0])
    with open(os.path.join(trained, "test_summary.json")) as f:
        summary = json.load(f)["results"]["test_mixtures"]["text"]
    assert means["sdri_plain"] == pytest.approx(summary["sdri_plain"]["mean"], abs=2e-3)
    assert os.path.isfile(out / "test_results.csv")
    doc = json.loads((out / "test_summary.json").read_text())  # the result schema
    assert doc["model_kind"] == "clipsep"
    assert doc["results"]["test_mixtures"]["text"]["sdri_plain"]["count"] == 8
