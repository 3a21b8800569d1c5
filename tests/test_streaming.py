"""Streaming separation: equal to the whole-file path, bounded, interruptible.

The references here are computed the straightforward way, on whole signals:
``torchaudio.functional.resample`` on the whole recording, and the windowed
cross-fade written out as a plain loop over :func:`window_starts` (the
algorithm the package used before it streamed).
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from tiny_models import write_tiny_clipsep

from speechbrain_textsep import cli
from speechbrain_textsep.encoders.clap import (
    TINY_CLAP_CFG,
    CLAPQueryEncoder,
    build_tiny_tokenizer,
)
from speechbrain_textsep.inference import CLAPSepSeparator, QuerySeparator
from speechbrain_textsep.inference.audio import AudioReadError, read_audio
from speechbrain_textsep.inference.streaming import FileStream, collect
from speechbrain_textsep.inference.windowing import (
    WindowStream,
    crossfade_weights,
    window_starts,
)
from speechbrain_textsep.models.clapsep import CLAPSep
from speechbrain_textsep.processing.streaming_resample import StreamingResampler

TEXTSEP = os.path.join(os.path.dirname(sys.executable), "textsep")
MODEL_RATE = 16000


# ------------------------------------------------------------------ references
def reference_windows(separate, mixtures, window, overlap):
    """Whole-tensor windowed separation: a loop over the window grid."""
    n_mix, length = mixtures.shape
    if length <= window:
        return separate(mixtures)
    starts = window_starts(length, window, window - overlap)
    weights, total = [], torch.zeros(length)
    for i, start in enumerate(starts):
        fade_in = 0 if i == 0 else starts[i - 1] + window - start
        fade_out = 0 if i == len(starts) - 1 else start + window - starts[i + 1]
        weights.append(crossfade_weights(window, fade_in, fade_out))
        total[start : start + window] += weights[-1]
    output = None
    for b in range(n_mix):
        for start, weight in zip(starts, weights):
            estimate = separate(mixtures[b : b + 1, start : start + window])[0]
            if output is None:
                output = torch.zeros(n_mix, *estimate.shape[:-1], length)
            output[b, ..., start : start + window] += estimate * weight
    return output / total


def whole_file(separate, path, model_rate, window, overlap, channels, back):
    """Estimates and residuals ``[Q, N, L]`` of a file processed whole."""
    signal_, rate = read_audio(path)
    mixture = signal_.mean(0, keepdim=True) if channels == "mix" else signal_
    model_input = mixture
    if rate != model_rate:
        model_input = torchaudio.functional.resample(mixture, rate, model_rate)
    with torch.no_grad():
        estimates = reference_windows(separate, model_input, window, overlap)
    if back:
        if rate != model_rate:
            estimates = torchaudio.functional.resample(estimates, model_rate, rate)
        estimates = estimates[..., : signal_.shape[-1]]
    reference_mixture = mixture if back else model_input
    residuals = reference_mixture[:, None] - estimates
    return estimates.transpose(0, 1), residuals.transpose(0, 1)


def toy_separate(windows, rows=None):
    """A nonlinear 'separator' whose output depends on the whole window."""
    ramp = torch.linspace(0.5, 1.5, windows.shape[-1])
    context = windows.abs().mean(-1, keepdim=True)
    return torch.stack([torch.tanh(3 * windows) * ramp, windows * context], dim=1)


def write_noise(path, rate, channels, length, seed=0, subtype="FLOAT"):
    rng = np.random.default_rng(seed)
    data = (0.3 * rng.standard_normal((length, channels))).astype(np.float32)
    sf.write(path, data, rate, subtype=subtype)
    return path


# -------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny random CLIPSep folder with 0.1 s windows (1792 samples)."""
    return write_tiny_clipsep(
        str(tmp_path_factory.mktemp("model")),
        window_seconds=0.1,
        overlap_seconds=0.03,
        window_batch_size=2,
    )


@pytest.fixture(scope="module")
def separator(model_dir):
    return QuerySeparator.from_hparams(source=model_dir)


def model_reference(separator, queries):
    """``separate`` of :func:`reference_windows` with the model itself."""
    conditioning = separator.embed_queries(queries)

    def separate(windows):
        cond = conditioning.expand(len(windows), -1, -1)
        return separator.separate_windows(windows, cond)

    return separate


# ---------------------------------------------------------------------- tests
@pytest.mark.unit
@pytest.mark.parametrize(
    "orig, new",
    [(44100, 16000), (16000, 44100), (48000, 16000), (22050, 16000), (16000, 32000)],
)
def test_streaming_resampler_equals_whole_signal_resampling(orig, new):
    gen = torch.Generator().manual_seed(0)
    for length in (1, 2, 441, 1000, 4097):
        signal_ = torch.randn(3, length, generator=gen)
        whole = torchaudio.functional.resample(signal_, orig, new)
        for block in (1, 7, 160, 441, 5000) if length < 1000 else (13, 441, 5000):
            stream = StreamingResampler(orig, new)
            parts = [stream.push(part) for part in signal_.split(block, dim=-1)]
            out = torch.cat([*parts, stream.finish()], dim=-1)
            assert out.shape == whole.shape, (length, block)
            assert (out - whole).abs().max() <= 1e-5, (length, block)
    same = StreamingResampler(orig, orig)
    assert torch.equal(same.push(signal_), signal_) and same.finish().shape == (3, 0)


@pytest.mark.unit
def test_window_stream_equals_whole_windowing_at_every_block_edge():
    """Block edges at every position of the window grid (window 12, hop 7)."""
    window, overlap = 12, 5
    gen = torch.Generator().manual_seed(1)
    for length in (1, 11, 12, 13, 19, 20, 26, 40, 53):
        mixtures = torch.randn(2, length, generator=gen)
        expected = reference_windows(toy_separate, mixtures, window, overlap)
        for batch_size in (1, 3):
            for block in range(1, window + (window - overlap) + 3):
                stream = WindowStream(
                    toy_separate, 2, window, overlap, batch_size=batch_size
                )
                parts = [stream.push(part) for part in mixtures.split(block, dim=-1)]
                parts = [part for part in parts if part is not None]
                out = torch.cat([*parts, stream.finish()], dim=-1)
                assert out.shape == expected.shape
                assert (out - expected).abs().max() <= 1e-5, (length, block)


@pytest.mark.unit
@pytest.mark.parametrize("rate", [16000, 44100])
def test_file_stream_block_edges_at_every_window_position(tmp_path, rate):
    """Reading, resampling and windows together, for every block size."""
    window, overlap = 40, 9
    path = write_noise(str(tmp_path / "in.wav"), rate, 2, 337 if rate > 16000 else 150)
    expected = whole_file(toy_separate, path, 16000, window, overlap, "mix", True)
    blocks = range(1, window + 2 * (window - overlap)) if rate == 16000 else (1, 5, 97)
    for block in blocks:
        stream = FileStream(
            toy_separate,
            path,
            16000,
            window,
            overlap,
            resample_back=True,
            residual=True,
            block_frames=block,
        )
        for out, ref in zip(collect(stream), expected):
            assert out.shape == ref.shape
            assert (out - ref).abs().max() <= 1e-5, block


CASES = {
    "1 sample, 44.1 kHz stereo": (44100, 2, 1),
    "one window, 16 kHz mono": (16000, 1, "window"),
    "window + 1, 16 kHz mono": (16000, 1, "window + 1"),
    "several blocks, 48 kHz 5.1": (48000, 6, 23001),
    "22.05 kHz mono": (22050, 1, 9999),
    "44.1 kHz stereo": (44100, 2, 20000),
}


@pytest.mark.integration
@pytest.mark.parametrize("case", CASES)
def test_streaming_equals_whole_file(separator, tmp_path, case):
    rate, channels, length = CASES[case]
    window, overlap, _ = separator.window_settings()
    length = {"window": window, "window + 1": window + 1}.get(length, length)
    path = write_noise(str(tmp_path / "in.wav"), rate, channels, length)
    queries = ["flute", "a dog"]
    separate = model_reference(separator, queries)
    for mode, back in (("mix", True), ("separate", False)):
        expected = whole_file(separate, path, MODEL_RATE, window, overlap, mode, back)
        stream = separator.file_stream(path, queries, mode, back, True, 997)
        for out, ref in zip(collect(stream), expected):
            assert out.shape == ref.shape
            assert (out - ref).abs().max() <= 1e-5
        estimates, residuals = separator.separate_file(
            path, queries, channels=mode, resample_back=back, residual=True
        )
        per_query = (lambda x: x[:, 0]) if mode == "mix" else (lambda x: x)
        assert (estimates - per_query(expected[0])).abs().max() <= 1e-5
        assert (residuals - per_query(expected[1])).abs().max() <= 1e-5


@pytest.mark.integration
def test_clapsep_streaming_equals_whole_file(tmp_path):
    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer(str(tmp_path), ["The sound of a dog"])
    clap = CLAPQueryEncoder(None, model_cfg=TINY_CLAP_CFG, tokenizer=tokenizer)
    model = CLAPSep(
        clap.audio_branch,
        lora_rank=4,
        decoder_dim=16,
        decoder_heads=(1, 2, 4, 8),
        masknet_dim=32,
        masknet_heads=2,
        masknet_layers=1,
        masknet_ff=64,
    )
    hparams = {"sample_rate": 32000, "window_seconds": 0.25, "overlap_seconds": 0.05}
    clapsep = CLAPSepSeparator(
        modules={"clap": clap, "clapsep": model}, hparams=hparams
    )
    path = write_noise(str(tmp_path / "in.wav"), 44100, 2, 12403)  # 2 windows
    window, overlap, _ = clapsep.window_settings()
    separate = model_reference(clapsep, ["a dog"])
    expected = whole_file(separate, path, 32000, window, overlap, "mix", True)
    stream = clapsep.file_stream(path, ["a dog"], "mix", True, True, 1000)
    for out, ref in zip(collect(stream), expected):
        assert out.shape == ref.shape == (1, 1, 12403)
        assert (out - ref).abs().max() <= 1e-5


@pytest.mark.integration
def test_files_written_as_streamed_equal_in_memory_and_residuals(separator, tmp_path):
    path = write_noise(str(tmp_path / "song.flac"), 44100, 2, 30001, subtype="PCM_16")
    queries = ["flute", "a dog"]
    out = tmp_path / "out"
    result = separator.separate_file_to(
        path, queries, str(out), resample_back=True, residual=True
    )
    assert result.outputs == [str(out / "song_flute.wav"), str(out / "song_a_dog.wav")]
    assert result.residual_outputs == [
        str(out / "song_without_flute.wav"),
        str(out / "song_without_a_dog.wav"),
    ]
    assert sorted(os.listdir(out)) == sorted(
        os.path.basename(p) for p in result.outputs + result.residual_outputs
    )
    estimates, residuals = separator.separate_file(
        path, queries, resample_back=True, residual=True
    )
    mixture = read_audio(path)[0].mean(0)
    assert estimates.shape == residuals.shape == (2, 30001)
    for q in range(2):
        written, rate = read_audio(result.outputs[q])
        assert rate == 44100 and torch.equal(written[0], estimates[q])
        assert torch.equal(read_audio(result.residual_outputs[q])[0][0], residuals[q])
        assert (estimates[q] + residuals[q] - mixture).abs().max() <= 1e-6
    # at the model's rate, the residual is the resampled downmix minus the estimate
    estimate, residual = separator.separate_file(path, "flute", residual=True)
    downmix = torchaudio.functional.resample(mixture, 44100, MODEL_RATE)
    assert (estimate + residual - downmix).abs().max() <= 1e-6
    # each channel on its own: residuals per channel
    estimates, residuals = separator.separate_file(
        path, "flute", channels="separate", resample_back=True, residual=True
    )
    assert estimates.shape == residuals.shape == (2, 30001)
    torch.testing.assert_close(estimates + residuals, read_audio(path)[0])


def truncate(path, keep=0.6):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: int(len(data) * keep)])
    return path


@pytest.mark.integration
@pytest.mark.parametrize(
    "extension, message",
    [
        ("wav", r"truncated: .* ends at sample 26\d\d\d \(1\.\d+ s\)"),
        ("flac", r"after sample \d+ \(\d\.\d+ s\) \(truncated or corrupt"),
        ("mp3", r"truncated: it ends at sample \d+ \(\d\.\d+ s\) but its header"),
    ],
)
def test_truncated_input_is_a_clear_error_and_leaves_no_file(
    separator, tmp_path, extension, message
):
    path = str(tmp_path / f"cut.{extension}")
    write_noise(
        path, 22050, 2, 2 * 22050, subtype=None if extension == "mp3" else "PCM_16"
    )
    truncate(path)
    out = tmp_path / "out"
    with pytest.raises(AudioReadError, match=rf"cut\.{extension}.*{message}"):
        separator.separate_file_to(path, ["flute", "a dog"], str(out), residual=True)
    assert not out.exists() or os.listdir(out) == []


@pytest.mark.integration
def test_nan_in_the_middle_stops_with_position_and_removes_outputs(separator, tmp_path):
    """The NaN comes after outputs have started to be written."""
    rate, length, bad = 16000, 200_000, 150_001
    data = 0.1 * np.random.default_rng(0).standard_normal(length).astype(np.float32)
    data[bad] = np.nan
    path = str(tmp_path / "nan.wav")
    sf.write(path, data, rate, subtype="FLOAT")
    out = tmp_path / "out"
    stream = separator.file_stream(path, ["flute"], residual=True)
    produced = 0
    with pytest.raises(AudioReadError, match=r"nan\.wav contains NaN .*sample 150001"):
        for estimates, _, _ in stream:
            produced += estimates.shape[-1]
    assert produced > 100_000  # it failed part-way, not at the start
    with pytest.raises(AudioReadError, match="sample 150001 \\(9.375 s\\)"):
        separator.separate_file_to(path, "flute", str(out), residual=True)
    assert os.listdir(out) == []
    (result,) = separator.separate_files(
        [path], "flute", out_dir=str(out), skip_errors=True, progress=False
    )
    assert "sample 150001" in result.error and os.listdir(out) == []


@pytest.mark.integration
def test_cli_residual_and_progress_in_seconds(model_dir, separator, tmp_path, capsys):
    path = write_noise(str(tmp_path / "song.wav"), 48000, 2, 12345)
    out = tmp_path / "out"
    args = ["separate", path, "--model", model_dir, "--query", "flute"]
    assert cli.main([*args, "--out", str(out), "--residual"]) == 0
    printed, progress = capsys.readouterr()
    names = ["song_flute.wav", "song_without_flute.wav"]
    assert printed.split() == [str(out / name) for name in names]
    assert "s of audio" in progress and "real-time factor" in progress
    estimate, rate = read_audio(str(out / names[0]))
    residual = read_audio(str(out / names[1]))[0]
    assert rate == 48000 and estimate.shape == residual.shape == (1, 12345)
    expected = separator.separate_file(path, "flute", resample_back=True)
    assert (estimate[0] - expected).abs().max() <= 1e-6
    mixture = read_audio(path)[0].mean(0)
    assert (residual[0] - (mixture - expected)).abs().max() <= 1e-6


def wait_for_output(folder, process, timeout=120):
    """Waits until a temporary output holds samples (the run is part-way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if os.path.isdir(folder):
            for name in os.listdir(folder):
                full = os.path.join(folder, name)
                if name.startswith(".tmp-") and os.path.getsize(full) > 65536:
                    return
        time.sleep(0.05)
    raise AssertionError("no output was being written")


@pytest.mark.integration
def test_kill_or_ctrl_c_part_way_leaves_no_final_file(model_dir, tmp_path):
    path = write_noise(
        str(tmp_path / "long.wav"), 16000, 1, 16000 * 300, subtype="PCM_16"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    runs = {}
    for sig in (signal.SIGKILL, signal.SIGINT):
        out = str(tmp_path / f"out-{sig.name}")
        command = [TEXTSEP, "separate", path, "--model", model_dir]
        command += ["--query", "flute", "--residual", "--out", out]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        runs[sig] = (process, out)
    for sig, (process, out) in runs.items():
        wait_for_output(out, process)
        process.send_signal(sig)
    for sig, (process, out) in runs.items():
        _, stderr = process.communicate(timeout=60)
        left = os.listdir(out)
        assert "long_flute.wav" not in left and "long_without_flute.wav" not in left
        if sig == signal.SIGKILL:  # at most temporary files, never a final name
            assert process.returncode == -signal.SIGKILL
            assert left and all(name.startswith(".tmp-") for name in left)
        else:  # Ctrl-C: temporary files removed, a clear message
            assert left == [] and process.returncode == 2, (sig, left)
            assert "interrupted" in stderr and "Traceback" not in stderr
