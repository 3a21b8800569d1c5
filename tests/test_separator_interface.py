"""The pretrained interface on a tiny random model folder: queries, any input,
long inputs, bad input and safe loading."""

import os
import shutil

import huggingface_hub
import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from speechbrain_textsep.encoders.clip import TINY_CLIP_CFG, CLIPQueryEncoder
from speechbrain_textsep.evaluation.metrics import sdr
from speechbrain_textsep.inference import Query, QuerySeparator, load_separator
from speechbrain_textsep.inference.audio import AudioReadError, read_audio
from speechbrain_textsep.inference.loading import (
    ModelNotAvailableError,
    UntrustedModelError,
)
from speechbrain_textsep.inference.model_folder import write_model_folder
from speechbrain_textsep.models.clipsep import CLIPSep
from speechbrain_textsep.models.unet import AudioUNet

pytestmark = pytest.mark.integration

SIZE = {"levels": 3, "ngf": 4, "n_maps": 4, "query_dim": 32}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny random CLIPSep folder whose inputs are windowed beyond 1 s."""
    folder = str(tmp_path_factory.mktemp("model"))
    torch.manual_seed(0)
    net = CLIPSep(AudioUNet(4, 4, 3), 32, 4)
    # Weights and statistics far from the near-constant-mask initialisation,
    # so that the masks depend on the input (as a trained net's do).
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight)
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    overrides = {
        **SIZE,
        "clip_model_cfg": TINY_CLIP_CFG,
        "clip_pretrained": None,
        "query_encoder_in_folder": True,
        "window_seconds": 1.0,
        "overlap_seconds": 0.25,
        "window_batch_size": 2,
    }
    encoder = CLIPQueryEncoder(model_cfg=TINY_CLIP_CFG, pretrained=None)
    weights = {"mask_net": net.state_dict(), "query_encoder": encoder.state_dict()}
    write_model_folder(folder, "clipsep", overrides, weights)
    return folder


@pytest.fixture(scope="module")
def separator(model_dir):
    return QuerySeparator.from_hparams(source=model_dir)


def tones(seconds, rate=16000, channels=1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * rate)) / rate
    sig = [
        torch.sin(2 * torch.pi * (220 + 300 * c) * t) * 0.3
        + 0.05 * torch.randn(len(t), generator=gen)
        for c in range(channels)
    ]
    return torch.stack(sig)


def test_short_inputs_equal_one_shot_processing(separator):
    mixture = tones(0.9)
    embedding = separator.encode_text(["flute"])
    expected = separator.mods.separator(mixture, embedding)
    assert torch.equal(separator.separate_batch(mixture, "flute"), expected)


@pytest.mark.parametrize("length", [1, 10, 1023, 16000, 16001, 40000, 52345])
def test_output_has_exactly_the_input_length(separator, length):
    out = separator.separate_batch(tones(length / 16000 + 1e-6)[:, :length], "tuba")
    assert out.shape == (1, length) and torch.isfinite(out).all()


def test_windowed_separation_is_close_to_one_shot(separator):
    """Windows see less context than one pass; the cross-fade hides seams."""
    mixture = tones(3.3)
    windowed = separator.separate_batch(mixture, "flute")
    one_shot = separator.mods.separator(mixture, separator.encode_text(["flute"]))
    assert windowed.shape == one_shot.shape
    # the masks are far from constant: the estimate is not the mixture scaled
    assert float(sdr(one_shot, mixture)) < 10.0
    assert float(sdr(windowed, one_shot)) > 15.0


def test_several_queries_give_one_estimate_each(separator):
    mixtures = torch.cat([tones(0.5, seed=1), tones(0.5, seed=2)])
    both = separator.separate_batch(mixtures, [["flute", "tuba"]] * 2)
    assert both.shape == (2, 2, 8000)
    for q, text in enumerate(["flute", "tuba"]):
        assert torch.allclose(both[:, q], separator.separate_batch(mixtures, text))
    per_mixture = separator.separate_batch(mixtures, ["flute", "tuba"])
    assert torch.allclose(per_mixture[0], both[0, 0])
    assert torch.allclose(per_mixture[1], both[1, 1])


def test_text_with_and_without_prompt_ensemble(separator):
    encoder = separator.mods.query_encoder
    ensembled = separator.embed_queries(["violin"])[0]
    verbatim = separator.embed_queries([Query("violin", prompt_ensemble=False)])[0]
    prompts = separator.hparams.text_prompts
    assert torch.allclose(
        ensembled, encoder.encode_text(["violin"], ensemble=prompts)[0]
    )
    assert torch.allclose(verbatim, encoder.encode_text(["violin"])[0])


def test_image_queries_average_their_images(separator, tmp_path):
    paths = []
    for i, colour in enumerate(["red", "navy"]):
        paths.append(str(tmp_path / f"frame{i}.png"))
        Image.new("RGB", (48, 40), colour).save(paths[-1])
    embedding = separator.embed_queries([Query(images=paths)])[0]
    each = separator.mods.query_encoder.encode_image([[p] for p in paths])
    assert torch.allclose(embedding, each.mean(0), atol=1e-5)
    out = separator.separate_batch(tones(0.5), Query(images=paths))
    assert out.shape == (1, 8000)
    not_image = tmp_path / "frame.png"
    not_image.write_text("not an image")
    with pytest.raises(ValueError, match="cannot read image file .*frame.png"):
        separator.separate_batch(tones(0.5), Query(images=[str(not_image)]))
    with pytest.raises(FileNotFoundError, match="query file not found"):
        separator.separate_batch(tones(0.5), Query(images=["missing.png"]))


def test_unsupported_query_kinds_are_clear_errors(separator, tmp_path):
    with pytest.raises(ValueError, match="QuerySeparator does not take audio"):
        separator.separate_batch(tones(0.5), Query(audio=[torch.randn(100)]))
    with pytest.raises(ValueError, match="does not take negative queries"):
        separator.separate_batch(tones(0.5), Query("flute", negative_text="tuba"))
    with pytest.raises(ValueError, match="text or images, not both"):
        separator.separate_batch(tones(0.5), Query("flute", images=["x.png"]))


def test_files_of_any_rate_format_and_channel_count(separator, tmp_path):
    stereo = tones(1.7, rate=44100, channels=2)
    path = str(tmp_path / "song.flac")
    sf.write(path, stereo.T.numpy(), 44100)
    recording = read_audio(path)[0]

    mono = separator.separate_file(path, "flute")
    assert mono.shape == (round(recording.shape[1] * 16000 / 44100),)
    back = separator.separate_file(path, "flute", resample_back=True)
    assert back.shape == (recording.shape[1],)
    per_channel = separator.separate_file(
        path, ["flute", "tuba"], channels="separate", resample_back=True
    )
    assert per_channel.shape == (2, 2, recording.shape[1])
    # each channel is separated on its own: channel 0 alone gives the same
    left = str(tmp_path / "left.wav")
    sf.write(left, recording[0].numpy(), 44100, subtype="FLOAT")
    alone = separator.separate_file(left, "tuba", resample_back=True)
    assert torch.allclose(per_channel[1, 0], alone, atol=1e-5)

    mp3 = str(tmp_path / "song.mp3")
    sf.write(mp3, stereo.T.numpy(), 44100)
    assert separator.separate_file(mp3, "flute").dim() == 1


def test_silence_in_silence_out_and_bad_input_is_named(separator, tmp_path):
    assert torch.equal(
        separator.separate_batch(torch.zeros(2, 20000), "flute"), torch.zeros(2, 20000)
    )
    with pytest.raises(FileNotFoundError, match="audio file not found"):
        separator.separate_file(str(tmp_path / "missing.wav"), "flute")
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not audio")
    with pytest.raises(AudioReadError, match="cannot read audio file"):
        separator.separate_file(str(not_audio), "flute")
    with pytest.raises(ValueError, match="empty text query"):
        separator.separate_batch(torch.randn(1, 16000), "   ")
    with pytest.raises(ValueError, match="NaN or infinite"):
        separator.separate_batch(torch.full((1, 16000), float("nan")), "flute")
    with pytest.raises(ValueError, match="empty"):
        separator.separate_batch(torch.zeros(1, 0), "flute")
    with pytest.raises(ValueError, match=r"\[batch, time\]"):
        separator.separate_batch(torch.zeros(16000), "flute")
    with pytest.raises(ValueError, match="one query .* per mixture"):
        separator.separate_batch(torch.zeros(2, 100), ["flute"] * 3)


def test_folder_of_files_with_bad_ones_skipped(separator, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name, seconds in [("a", 0.4), ("b", 2.2)]:
        sf.write(str(inputs / f"{name}.wav"), tones(seconds)[0].numpy(), 16000)
    nan = np.zeros(800, dtype=np.float32)
    nan[5] = np.nan
    sf.write(str(inputs / "c.wav"), nan, 16000, subtype="FLOAT")
    paths = sorted(str(p) for p in inputs.iterdir())
    out = tmp_path / "out"
    results = separator.separate_files(
        paths, ["flute", Query("tuba")], out_dir=str(out), skip_errors=True
    )
    assert [r.error is None for r in results] == [True, True, False]
    assert "NaN" in results[2].error
    assert sorted(os.listdir(out)) == [
        "a_flute.wav",
        "a_tuba.wav",
        "b_flute.wav",
        "b_tuba.wav",
    ]
    written = read_audio(str(out / "b_tuba.wav"))[0][0]
    assert torch.allclose(written, separator.separate_file(paths[1], "tuba"))
    with pytest.raises(AudioReadError, match="NaN"):
        separator.separate_files(paths, "flute")
    in_memory = separator.separate_files(paths[:2], ["flute", "tuba"])
    assert in_memory[1].estimate.shape == (2, 35200)


def test_model_folder_naming_foreign_code_is_refused(model_dir, tmp_path):
    folder = tmp_path / "untrusted"
    shutil.copytree(model_dir, folder)
    with open(folder / "hyperparams.yaml", "a") as f:
        f.write("\nbackdoor: !apply:os.getcwd []\n")
    with pytest.raises(UntrustedModelError, match=r"!apply:os.getcwd.*trust_remote"):
        QuerySeparator.from_hparams(source=str(folder))
    trusted = QuerySeparator.from_hparams(source=str(folder), trust_remote_code=True)
    assert trusted.hparams.backdoor == os.getcwd()


def test_checkpoints_load_as_plain_tensors_only(model_dir, tmp_path):
    folder = tmp_path / "pickled"
    shutil.copytree(model_dir, folder)
    state = torch.load(folder / "mask_net.ckpt", weights_only=True)
    state["extra"] = Image.new("RGB", (1, 1))  # an arbitrary pickled object
    torch.save(state, folder / "mask_net.ckpt")
    with pytest.raises(
        ValueError, match="mask_net weights .* weights_only=True .*PIL.Image"
    ):
        QuerySeparator.from_hparams(source=str(folder))


def test_hub_models_load_from_the_cache_offline(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelNotAvailableError, match="not in the Hugging Face cache"):
        load_separator("someone/textsep-demo")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--someone--textsep-demo"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    cached = load_separator("someone/textsep-demo")
    local = QuerySeparator.from_hparams(source=model_dir)
    mixture = tones(0.5)
    assert isinstance(cached, QuerySeparator)
    assert torch.equal(
        cached.separate_batch(mixture, "flute"), local.separate_batch(mixture, "flute")
    )
    with pytest.raises(ModelNotAvailableError, match="model folder not found"):
        load_separator(str(tmp_path / "no" / "such" / "model"))
