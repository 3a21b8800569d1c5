"""Long-input windowing, audio reading/writing and query objects."""

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_textsep.inference.audio import (
    AudioReadError,
    read_audio,
    resample,
    to_model_input,
    write_audio,
)
from speechbrain_textsep.inference.queries import Query, as_query
from speechbrain_textsep.inference.windowing import (
    crossfade_weights,
    separate_in_windows,
    window_starts,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("length", [1000, 1001, 1299, 1300, 1301, 4567, 9999])
def test_windows_cover_input_and_reconstruct_exactly(length):
    """A model that returns its input comes back unchanged, any length."""
    mixtures = torch.randn(2, length)
    calls = []

    def identity(windows):
        calls.append(windows.shape)
        return windows[:, None] * torch.tensor([1.0, -3.0])[None, :, None]

    out = separate_in_windows(
        identity, mixtures, window=1300, overlap=200, batch_size=3
    )
    assert out.shape == (2, 2, length)
    torch.testing.assert_close(out[:, 0], mixtures, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[:, 1], -3 * mixtures, atol=1e-5, rtol=1e-5)
    if length <= 1300:
        assert calls == [(2, length)]  # one shot, no padding
    else:
        assert all(shape[-1] == 1300 and shape[0] <= 3 for shape in calls)


def test_window_starts_overlap_at_least_requested():
    starts = window_starts(10_000, 1000, 800)
    assert starts[0] == 0 and starts[-1] == 9000
    assert all(b - a <= 800 for a, b in zip(starts, starts[1:]))


def test_crossfade_is_complementary_over_the_overlap():
    fade = 64
    out = crossfade_weights(256, 0, fade)[-fade:]
    into = crossfade_weights(256, fade, 0)[:fade]
    torch.testing.assert_close(out + into, torch.ones(fade))
    assert (out > 0).all() and (into > 0).all()


def test_windowing_blends_window_outputs_smoothly():
    """Windows that disagree by a constant are cross-faded, not spliced."""
    counter = iter(range(100))

    def offset(windows):
        return torch.stack([torch.full_like(w, float(next(counter))) for w in windows])

    out = separate_in_windows(offset, torch.zeros(1, 3000), 1000, 400)[0]
    steps = out.diff().abs()
    assert steps.max() < 0.01  # a splice would jump by 1.0


def test_bad_window_settings_are_refused():
    with pytest.raises(ValueError, match="overlap < window"):
        separate_in_windows(lambda x: x, torch.zeros(1, 10), 5, 5)


@pytest.mark.parametrize("extension", ["wav", "flac", "ogg", "mp3"])
def test_read_every_format_to_channels_first(tmp_path, extension):
    t = np.arange(22050) / 22050
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 660 * t)])
    path = str(tmp_path / f"tone.{extension}")
    sf.write(path, 0.5 * stereo.T, 22050)
    signal, rate = read_audio(path)
    assert rate == 22050 and signal.shape[0] == 2 and signal.dtype == torch.float32
    # lossy codecs add a delay/padding of a few ms at most
    assert abs(signal.shape[1] - 22050) < 3000
    mono = to_model_input(signal, rate, 16000)
    assert mono.shape[0] == 1
    assert abs(mono.shape[1] - signal.shape[1] * 16000 / 22050) <= 1


def test_unreadable_empty_and_nan_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="audio file not found: .*nope.wav"):
        read_audio(str(tmp_path / "nope.wav"))
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all")
    with pytest.raises(AudioReadError, match="cannot read audio file .*notes.wav"):
        read_audio(str(text))
    empty = str(tmp_path / "empty.wav")
    sf.write(empty, np.zeros((0, 1)), 16000)
    with pytest.raises(AudioReadError, match="empty.wav is empty"):
        read_audio(empty)
    nan = str(tmp_path / "nan.wav")
    sf.write(nan, np.array([0.0, np.nan, 0.1]), 16000, subtype="FLOAT")
    with pytest.raises(AudioReadError, match="NaN or infinite"):
        read_audio(nan)


def test_resample_back_restores_exact_length():
    for length, rate in [(44101, 44100), (12345, 22050), (8001, 8000), (7, 48000)]:
        model_rate = resample(torch.randn(1, length), rate, 16000)
        back = resample(model_rate, 16000, rate, length=length)
        assert back.shape == (1, length)


def test_written_audio_never_wraps_and_leaves_no_temp_files(tmp_path):
    loud = torch.tensor([0.5, 1.7, -2.5, 0.25])
    float_wav = write_audio(str(tmp_path / "a.wav"), loud, 16000)
    torch.testing.assert_close(read_audio(float_wav)[0][0], loud)
    pcm = write_audio(str(tmp_path / "a.flac"), loud, 16000)
    values = read_audio(pcm)[0][0]
    assert values[1] > 0.99 and values[2] < -0.99  # clipped, not wrapped
    with pytest.raises(AudioReadError, match="NaN"):
        write_audio(str(tmp_path / "bad.wav"), torch.tensor([float("nan")]), 16000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.flac", "a.wav"]


def test_queries_validate_and_name_themselves():
    assert as_query("violin") == Query(text="violin")
    with pytest.raises(ValueError, match="empty text query"):
        Query(" \t")
    with pytest.raises(ValueError, match="empty negative text query"):
        Query("dog", negative_text="")
    with pytest.raises(ValueError, match="the query is empty"):
        Query()
    with pytest.raises(TypeError, match="str or a speechbrain_textsep Query"):
        as_query(3)
    query = Query(images="photos/cat.jpg", negative_text="speech")
    assert query.images == ["photos/cat.jpg"]
    assert query.label() == "image cat minus speech"
    assert query.kinds() == ["image"] and query.kinds(negative=True) == ["text"]
