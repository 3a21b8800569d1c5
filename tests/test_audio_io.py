"""The one audio reader: the samples of the readers it replaces, clear errors."""

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from speechbrain.dataio.dataio import read_audio as sb_read_audio

from speechbrain_textsep.processing.audio_io import (
    AudioReadError,
    audio_info,
    fit_length,
    read_audio,
    resample,
)

pytestmark = pytest.mark.unit


def stereo_file(folder, extension="wav", rate=22050, n=22050, subtype=None):
    t = np.arange(n) / rate
    data = 0.5 * np.stack([np.sin(2 * np.pi * 440 * t), np.cos(2 * np.pi * 97 * t)])
    path = str(folder / f"tone.{extension}")
    sf.write(path, data.T, rate, subtype=subtype)
    return path


@pytest.mark.parametrize("extension", ["wav", "flac", "ogg", "mp3"])
def test_same_samples_as_soundfile_and_speechbrain(tmp_path, extension):
    path = stereo_file(tmp_path, extension)
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    signal, got_rate = read_audio(path)
    assert got_rate == rate and signal.dtype == torch.float32
    assert torch.equal(signal, torch.from_numpy(data))
    # crops, as data/clips.py and evaluation/mixtures.py read them before
    crop, _ = read_audio(path, 1000, 5000, mono=True)
    before = sb_read_audio({"file": path, "start": 1000, "stop": 5000}).mean(dim=-1)
    assert torch.equal(crop, before)
    # a crop past the end is shortened, as soundfile and SpeechBrain do (the
    # decoders of lossy formats seek approximately: compare with a crop too)
    n = data.shape[0]
    tail, _ = read_audio(path, n - 10, n + 500)
    expected = sf.read(path, start=n - 10, dtype="float32", always_2d=True)[0]
    assert tail.shape == (10, 2) and torch.equal(tail, torch.from_numpy(expected))


def test_layouts_mono_and_seconds(tmp_path):
    path = stereo_file(tmp_path, "flac", rate=8000, n=8000)
    data = torch.from_numpy(sf.read(path, dtype="float32", always_2d=True)[0])
    signal, _ = read_audio(path)
    assert signal.shape == (8000, 2)
    mono, _ = read_audio(tmp_path / "tone.flac", mono=True)  # os.PathLike too
    assert torch.equal(mono, data.mean(dim=1))
    crop, _ = read_audio(path, 0.25, 0.5, unit="seconds")
    assert torch.equal(crop, data[2000:4000])
    single = str(tmp_path / "mono.wav")
    sf.write(single, np.full(10, 0.25), 8000)
    assert read_audio(single)[0].shape == (10, 1)
    assert read_audio(single, mono=True)[0].tolist() == [0.25] * 10


def test_resampled_crop_matches_the_former_training_reader(tmp_path):
    """``read_clip_segment``: sf.read crop, channel mean, torchaudio resample."""
    path = stereo_file(tmp_path, "wav", rate=44100, n=44100)
    data, _ = sf.read(path, start=4410, stop=26460, dtype="float32", always_2d=True)
    expected = torchaudio.functional.resample(
        torch.from_numpy(data).mean(dim=1), 44100, 16000
    )
    got, rate = read_audio(path, 0.1, 0.6, mono=True, sample_rate=16000, unit="seconds")
    assert rate == 16000 and torch.equal(got, expected)
    stereo, _ = read_audio(path, sample_rate=16000)
    assert stereo.shape == (16000, 2) and stereo.is_contiguous()
    same, rate = read_audio(path, 0, 100, sample_rate=44100)
    assert rate == 44100 and same.shape == (100, 2)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="audio file not found: .*nope.wav"):
        read_audio(tmp_path / "nope.wav")
    with pytest.raises(FileNotFoundError, match="audio file not found"):
        audio_info(str(tmp_path))  # a folder
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all")
    for reader in (read_audio, audio_info):
        with pytest.raises(AudioReadError, match="cannot read audio file .*notes.wav"):
            reader(str(text))
    empty = str(tmp_path / "empty.wav")
    sf.write(empty, np.zeros((0, 1)), 16000)
    for reader in (read_audio, audio_info):
        with pytest.raises(AudioReadError, match="empty.wav is empty"):
            reader(empty)
    nan = str(tmp_path / "nan.wav")
    sf.write(nan, np.array([0.0, np.nan, 0.1]), 16000, subtype="FLOAT")
    with pytest.raises(AudioReadError, match="nan.wav contains NaN or infinite"):
        read_audio(nan)
    assert read_audio(nan, 2)[0].shape == (1, 1)  # a finite crop is fine
    with pytest.raises(
        AudioReadError, match="nan.wav has no samples in the crop start=5, stop=8"
    ):
        read_audio(nan, 5, 8)
    with pytest.raises(ValueError, match="empty crop of .*nan.wav"):
        read_audio(nan, 2, 2)
    with pytest.raises(ValueError, match="start must be >= 0"):
        read_audio(nan, -1)
    with pytest.raises(ValueError, match="unit must be one of"):
        read_audio(nan, 0, 1, unit="ms")
    assert issubclass(AudioReadError, ValueError)


def test_info_resample_and_fit_length(tmp_path):
    info = audio_info(stereo_file(tmp_path, "wav", rate=16000, n=1234))
    assert (info.samplerate, info.channels, info.frames) == (16000, 2, 1234)
    x = torch.randn(2, 441)
    assert torch.equal(resample(x, 44100, 44100), x)
    back = resample(resample(x, 44100, 16000), 16000, 44100, length=441)
    assert back.shape == (2, 441)
    assert fit_length(torch.ones(3), 3).tolist() == [1.0, 1.0, 1.0]
