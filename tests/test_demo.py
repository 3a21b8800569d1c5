"""The demo page without a browser: one request, bad input, the examples,
which query fields the page offers, and the ``textsep demo`` options."""

import os
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from tiny_models import write_tiny_clipsep

from speechbrain_textsep.cli import main
from speechbrain_textsep.demo.examples import prepare_examples
from speechbrain_textsep.demo.handler import (
    INPUT_ERRORS,
    DemoInputError,
    build_query,
    separate_request,
)
from speechbrain_textsep.inference import Query, QuerySeparator, load_separator
from speechbrain_textsep.inference.audio import AudioReadError, read_audio


@pytest.fixture(scope="module")
def separator(tmp_path_factory):
    """A tiny random CLIPSep whose inputs are windowed beyond 1 s."""
    folder = str(tmp_path_factory.mktemp("model"))
    write_tiny_clipsep(folder, window_seconds=1.0, overlap_seconds=0.25)
    return load_separator(folder)


def stereo_song(path, seconds=2.5, rate=44100):
    """Two different noisy tones in two channels, written to ``path``."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(0)
    left = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(len(t))
    right = 0.3 * np.sin(2 * np.pi * 880 * t) + 0.05 * rng.standard_normal(len(t))
    sf.write(str(path), np.stack([left, right], 1).astype(np.float32), rate)
    return str(path)


@pytest.mark.integration
def test_request_writes_sound_residual_and_figure_at_the_input_rate(
    separator, tmp_path
):
    song = stereo_song(tmp_path / "song.flac")
    result = separate_request(separator, song, build_query("flute"), tmp_path / "out")
    estimate, rate = read_audio(result.estimate)
    residual, residual_rate = read_audio(result.residual)
    signal, _ = read_audio(song)
    assert rate == residual_rate == 44100
    assert estimate.shape == residual.shape == (1, signal.shape[1])
    # the interface's output, and with the residual, the mono recording
    expected = separator.separate_file(song, "flute", resample_back=True)
    assert torch.allclose(estimate[0], expected, atol=1e-5)
    assert torch.allclose(estimate + residual, signal.mean(0, keepdim=True), atol=1e-5)
    assert not torch.allclose(estimate, residual, atol=1e-2)
    assert sorted(os.listdir(tmp_path / "out")) == [
        "song.png",
        "song_flute.wav",
        "song_without_flute.wav",
    ]
    assert os.path.getsize(result.figure) > 10000
    assert result.summary() == (
        f"Separated 'flute' from song.flac: 2.50 s of audio (44100 Hz, 2 channels) in "
        f"{result.elapsed:.1f} s."
    )
    assert not result.silent


@pytest.mark.integration
def test_bad_inputs_are_clear_errors_and_nothing_is_written(separator, tmp_path):
    song = stereo_song(tmp_path / "song.wav")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00garbage")
    nan = tmp_path / "nan.wav"
    sf.write(str(nan), np.full(1600, np.nan, np.float32), 16000, subtype="FLOAT")
    image = tmp_path / "flute.png"
    image.write_bytes(b"")
    cases = [
        (None, "flute", {}, DemoInputError, "no recording"),
        (tmp_path / "missing.wav", "flute", {}, FileNotFoundError, "not found"),
        (broken, "flute", {}, AudioReadError, "cannot read audio file"),
        (nan, "flute", {}, AudioReadError, "NaN or infinite"),
        (song, "flute", {"max_seconds": 2}, DemoInputError, "2.5 s long.*at most 2 s"),
        (song, Query("flute", images=[str(image)]), {}, ValueError, "not both"),
        (song, Query("flute", negative_text="x"), {}, ValueError, "negative"),
    ]
    out = tmp_path / "out"
    for recording, query, options, error, message in cases:
        with pytest.raises(error, match=message) as caught:
            separate_request(separator, recording, query, out, **options)
        assert isinstance(caught.value, INPUT_ERRORS)
    for text, message in [("", "the query is empty"), ("  ", "empty text query")]:
        with pytest.raises(ValueError, match=message):
            build_query(text)
    assert not out.exists()


@pytest.mark.integration
def test_silence_gives_silent_outputs_and_says_so(separator, tmp_path):
    silence = tmp_path / "silence.wav"
    sf.write(str(silence), np.zeros(8000, np.float32), 8000)
    result = separate_request(separator, str(silence), build_query("flute"), tmp_path)
    assert result.silent and "silent" in result.summary()
    for path in (result.estimate, result.residual):
        audio, rate = read_audio(path)
        assert rate == 8000 and audio.shape == (1, 8000) and not audio.any()


@pytest.mark.integration
def test_examples_are_rendered_once_and_mixed_at_0_db(tmp_path):
    examples = prepare_examples(tmp_path, 2, classes=["flute", "tuba", "cello"])
    assert len(examples) == 2
    for example in examples:
        assert os.path.basename(example.path).endswith(
            f"_{example.query}+{example.other}.wav"
        )
        mixture, rate = read_audio(example.path)
        clips = [
            read_audio(
                tmp_path / "synthmusic" / "audio" / "test" / f"{c}_test_0000.wav"
            )
            for c in (example.query, example.other)
        ]
        assert rate == 16000 and mixture.shape == (1, 96000)
        # the mixture is a * target + b * other: solve for a, b (least
        # squares), then the target-to-other energy ratio is 0 dB
        basis = torch.stack([clips[0][0][0], clips[1][0][0]], 1).double()
        (a, b), *_ = np.linalg.lstsq(
            basis.numpy(), mixture[0].double().numpy(), rcond=None
        )
        energies = (basis**2).sum(0).numpy()
        assert 10 * np.log10(a**2 * energies[0] / (b**2 * energies[1])) == (
            pytest.approx(0, abs=0.01)
        )
        assert float(mixture.abs().max()) <= 1.0
    stamps = [os.path.getmtime(e.path) for e in examples]
    assert prepare_examples(tmp_path, 2, classes=["flute", "tuba", "cello"]) == examples
    assert [os.path.getmtime(e.path) for e in examples] == stamps
    assert prepare_examples(tmp_path / "none", 0) == []
    assert not (tmp_path / "none").exists()


def page_fields(page):
    """The element ids of a built page."""
    return {block.elem_id for block in page.blocks.values() if block.elem_id}


def markdown(page):
    """The texts of a built page."""
    return "\n".join(
        str(block.value)
        for block in page.blocks.values()
        if type(block).__name__ == "Markdown"
    )


@pytest.mark.integration
def test_page_offers_only_the_query_kinds_of_the_model(separator, tmp_path):
    from speechbrain_textsep.demo.page import build_page

    page = build_page(separator, "tiny", str(tmp_path))
    common = {"recording", "separate", "status", "estimate", "residual", "figure"}
    assert page_fields(page) == common | {"query", "images"}
    assert "takes text and images as queries; no negative" in markdown(page)
    assert "up to" not in markdown(page)  # no limit given

    class AudioQueries(QuerySeparator):
        QUERY_KINDS = ("text", "audio")
        NEGATIVE_QUERIES = True

    other = AudioQueries(modules=separator.mods, hparams=vars(separator.hparams))
    page = build_page(other, "tiny", str(tmp_path), max_seconds=30)
    assert page_fields(page) == common | {"query", "negative", "audio-query"}
    assert "takes text and example recordings as queries, and a negative" in (
        markdown(page)
    )
    assert "up to 30 s" in markdown(page)


@pytest.mark.unit
def test_demo_command_refuses_bad_options_and_models(tmp_path, capsys, monkeypatch):
    missing = str(tmp_path / "missing")
    cases = [
        (["--max-seconds", "0"], "--max-seconds must be > 0"),
        (["--examples", "-1"], "--examples must be >= 0"),
        (["--port", "70000"], "--port must be in 1-65535"),
        ([], f"cannot load the model {missing}"),
    ]
    for options, message in cases:
        assert main(["demo", "--model", missing, *options]) == 2
        assert message in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "gradio", None)  # as if not installed
    assert main(["demo", "--model", missing]) == 2
    assert "pip install 'speechbrain-textsep[demo]'" in capsys.readouterr().err
