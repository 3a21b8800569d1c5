"""The CLAPSep evaluation on a tiny generated benchmark in the authors' layout."""

import csv
import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_textsep.data.synthmusic import INSTRUMENTS, render_clip
from speechbrain_textsep.encoders.clap import (
    TINY_CLAP_CFG,
    CLAPQueryEncoder,
    build_tiny_tokenizer,
)
from speechbrain_textsep.evaluation.clapsep import (
    BenchmarkItem,
    clap_embed_fns,
    clapsep_metrics,
    clapsep_separate_fn,
    evaluate_clapsep_benchmark,
    load_clip,
    make_label_benchmark,
    mix_at_snr,
    read_benchmark_csv,
    read_query_samples,
    results_table,
    si_sdr_no_zero_mean,
    write_benchmark_csv,
)
from speechbrain_textsep.evaluation.metrics import bss_eval_v3_sdr, sdr
from speechbrain_textsep.models.clapsep import CLAPSep
from speechbrain_textsep.utils.metric_keys import METRIC_KEYS

pytestmark = pytest.mark.integration

CLASSES = ("violin", "flute", "cello")
RENDER_RATE = 16000  # rendered at 16 kHz, read back at 32 kHz
RATE = 32000
SECONDS = 1.0


def _tone(seed, n=4000):
    return torch.randn(n, generator=torch.Generator().manual_seed(seed)).double()


# ------------------------------------------------------------- metrics ---
@pytest.mark.unit
def test_metrics_hand_computed():
    s = torch.tensor([1.0, -1.0, 1.0, -1.0] * 250, dtype=torch.float64)
    e = torch.tensor([1.0, 1.0, -1.0, -1.0] * 250, dtype=torch.float64)  # s.e = 0
    # plain SDR: |s|^2 / |0.1 e|^2 = 100 -> 20 dB; SI-SDR ignores the gain 2
    assert sdr(s + 0.1 * e, s).item() == pytest.approx(20.0, abs=1e-6)
    assert si_sdr_no_zero_mean(2 * s + 0.2 * e, s).item() == pytest.approx(
        20.0, abs=1e-6
    )
    # the SI-SDR of the authors has no zero-mean: a DC offset is distortion
    assert si_sdr_no_zero_mean(s + 0.1, s).item() == pytest.approx(20.0, abs=1e-6)
    # plain SDR of a gain-0.5 estimate: 10 log10(1 / 0.25) = 6.02 dB, while
    # the BSS v3 SDR allows the (filter) gain and is huge
    assert sdr(0.5 * s, s).item() == pytest.approx(6.0206, abs=1e-4)
    assert bss_eval_v3_sdr(0.5 * _tone(0), _tone(0)).item() > 100

    # improvements: mixture = s + e (0 dB); estimate = s + 0.1 e
    scores = clapsep_metrics((s + 0.1 * e).float(), s.float(), (s + e).float())
    assert list(scores) == [
        "sdr_bss_v3",
        "sdr_bss_v3_mixture",
        "si_sdr_nzm",
        "si_sdr_nzm_mixture",
        "sdr_plain",
        "sdr_plain_mixture",
        "sdri_bss_v3",
        "si_sdri_nzm",
        "sdri_plain",
    ]
    assert {k for k in scores if not k.endswith("_mixture")} <= set(METRIC_KEYS)
    assert scores["sdr_plain_mixture"] == pytest.approx(0.0, abs=1e-5)
    assert scores["sdri_plain"] == pytest.approx(20.0, abs=1e-4)
    assert scores["si_sdri_nzm"] == pytest.approx(20.0, abs=1e-4)
    assert scores["sdri_bss_v3"] == pytest.approx(
        scores["sdr_bss_v3"] - scores["sdr_bss_v3_mixture"]
    )


@pytest.mark.unit
def test_bss_eval_v3_sdr_is_the_filtered_projection():
    """Against an explicit least-squares projection and mir_eval."""
    ref, noise = _tone(1, 2000), _tone(2, 2000)
    est = torch.cat([torch.zeros(2), ref[:-2]]) * 0.7 + 0.3 * noise
    taps = 16
    # subspace of the reference delayed by 0..taps-1 samples (full length)
    n = ref.numel() + taps - 1
    basis = np.zeros((n, taps))
    for k in range(taps):
        basis[k : k + ref.numel(), k] = ref.numpy()
    target = np.concatenate([est.numpy(), np.zeros(taps - 1)])
    coef, *_ = np.linalg.lstsq(basis, target, rcond=None)
    proj = basis @ coef
    expected = 10 * np.log10((proj**2).sum() / ((target - proj) ** 2).sum())
    assert bss_eval_v3_sdr(est, ref, filter_length=taps).item() == pytest.approx(
        expected, abs=1e-6
    )

    import mir_eval.separation

    ref, est = _tone(3), 0.5 * _tone(3) + 0.5 * _tone(4)
    mir_sdr, *_ = mir_eval.separation.bss_eval_sources(
        ref.numpy()[None], est.numpy()[None], compute_permutation=False
    )
    assert bss_eval_v3_sdr(est, ref).item() == pytest.approx(mir_sdr[0], abs=1e-3)


@pytest.mark.unit
def test_mix_at_zero_db_as_the_authors():
    target, noise = 0.1 * _tone(5).float(), 3.0 * _tone(6).float()
    mixture, t, n = mix_at_snr(target, noise, 0.0)
    assert torch.allclose(mixture, t + n)
    assert torch.equal(t, target)  # no peak above 1: unchanged
    assert sdr(mixture, t).item() == pytest.approx(0.0, abs=1e-4)
    mixture, t, n = mix_at_snr(target * 20, noise, 0.0)  # peak > 1: scaled to 0.9
    assert mixture.abs().max().item() == pytest.approx(0.9)
    assert torch.allclose(mixture, t + n)
    ratio = t / (target * 20)  # the target is scaled with the mixture
    assert torch.allclose(ratio, ratio[0].expand_as(ratio)) and ratio[0] < 1
    assert sdr(mixture, t).item() == pytest.approx(0.0, abs=1e-4)
    with pytest.raises(ValueError, match="interferer is silent"):
        mix_at_snr(target, torch.zeros_like(target))


# ---------------------------------------------------- tiny benchmark ---
@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("clapsep_bench")
    audio = root / "audio"
    audio.mkdir()
    labels, samples = {}, {}
    for c, name in enumerate(CLASSES):
        inst = INSTRUMENTS[name]
        for seed in range(12):  # 2 test clips + 10 query clips per class
            wav = render_clip(
                inst.program,
                100 * c + seed,
                SECONDS,
                sample_rate=RENDER_RATE,
                note_range=(inst.low, inst.high),
            )
            file = f"{name}_{seed}.wav"
            sf.write(audio / file, wav, RENDER_RATE)
            if seed < 2:
                labels[file] = name
            else:
                samples.setdefault(f"the sound of {name}", []).append(file)
    items = make_label_benchmark(labels, n_noises=1, seed=0, template="the sound of {}")
    write_benchmark_csv(items, root / "music_eval.csv")
    with open(root / "music_eval_samples.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["class", "file"])
        for caption, files in samples.items():
            writer.writerow([caption, str(files)])

    tok = build_tiny_tokenizer(str(root / "tok"), list(samples))
    torch.manual_seed(0)
    encoder = CLAPQueryEncoder(None, model_cfg=TINY_CLAP_CFG, tokenizer=tok)
    model = CLAPSep(
        encoder.audio_branch,
        pad_seconds=None,
        lora_rank=4,
        decoder_dim=16,
        decoder_heads=(1, 2, 4, 8),
        masknet_dim=32,
        masknet_heads=4,
        masknet_layers=1,
        masknet_ff=64,
    ).eval()
    yield root, audio, encoder, model


@pytest.mark.integration
def test_authors_layout_round_trip(bench):
    root, audio, _, _ = bench
    items = read_benchmark_csv(root / "music_eval.csv")
    assert len(items) == 6 and all(isinstance(i, BenchmarkItem) for i in items)
    assert items[0].positive_caption == "the sound of violin"
    assert items[0].negative_caption != items[0].positive_caption
    samples = read_query_samples(root / "music_eval_samples.csv")
    assert list(samples) == [f"the sound of {c}" for c in CLASSES]
    assert all(len(files) == 10 for files in samples.values())
    clip = load_clip(audio / items[0].source_file, RATE, 2.0)
    assert clip.shape == (64000,) and clip[33000:].abs().max() == 0  # padded
    bad = root / "bad.csv"
    bad.write_text("source,caption\na.wav,x\n")
    with pytest.raises(ValueError, match="source_file,positive_caption"):
        read_benchmark_csv(bad)


class Recorder:
    """Calls the real separator and records the embeddings it was given."""

    def __init__(self, separate):
        self.separate = separate
        self.calls = []

    def __call__(self, mixture, positive, negative):
        self.calls.append((mixture.clone(), positive, negative))
        return self.separate(mixture, positive, negative)


@pytest.mark.integration
def test_text_queries_p_n_pn(bench, tmp_path):
    root, audio, encoder, model = bench
    embed_text, _ = clap_embed_fns(encoder)
    separate = Recorder(clapsep_separate_fn(model))
    results = evaluate_clapsep_benchmark(
        separate,
        embed_text,
        str(root / "music_eval.csv"),
        str(audio),
        clip_seconds=SECONDS,
        benchmark="music21",
        out_dir=str(tmp_path),
    )
    items = read_benchmark_csv(root / "music_eval.csv")
    assert list(results["conditions"]) == ["text_P", "text_N", "text_P+N"]
    assert len(separate.calls) == 3 * len(items)
    for index, item in enumerate(items):
        p_call, n_call, pn_call = separate.calls[3 * index : 3 * index + 3]
        pos = encoder.encode_text([item.positive_caption])
        neg = encoder.encode_text([item.negative_caption])
        assert n_call[1] is None and p_call[2] is None
        assert torch.allclose(p_call[1], pos) and torch.allclose(n_call[2], neg)
        assert torch.allclose(pn_call[1], pos) and torch.allclose(pn_call[2], neg)
        assert p_call[0].shape == (1, int(RATE * SECONDS))
    for name in ("text_P", "text_N", "text_PplusN"):
        assert os.path.isfile(tmp_path / f"{name}.csv")
        assert os.path.isfile(tmp_path / f"{name}_summary.json")
    with open(tmp_path / "summary.json") as f:
        summary = json.load(f)
    assert summary["n_mixtures"] == len(items)
    assert "512-tap" in summary["sdr_definition"]
    with open(tmp_path / "text_P.csv") as f:
        rows = list(csv.DictReader(f))
    sdri = np.array([float(r["sdri_bss_v3"]) for r in rows])
    stats = summary["conditions"]["text_P"]["sdri_bss_v3"]
    assert stats["mean"] == pytest.approx(sdri.mean())
    assert stats["std"] == pytest.approx(sdri.std(ddof=1))
    assert stats["count"] == len(items)
    assert rows[0]["negative_caption"] == ""  # P only
    for key in ("sdri_bss_v3", "si_sdri_nzm", "sdri_plain", "sdr_plain_mixture"):
        assert key in rows[0] and key in summary["conditions"]["text_P"]
    assert not {"sdri", "snri", "snr", "sdr", "sdr_mix"} & set(rows[0])
    table = results_table(summary).splitlines()
    assert table[0] == (
        "| condition | n | sdri_bss_v3 (dB) | si_sdri_nzm (dB) | sdri_plain (dB) |"
    )
    assert table[2].startswith(f"| text_P | {len(items)} | ")


@pytest.mark.integration
def test_constructed_estimates_give_known_improvements(bench):
    root, audio, encoder, _ = bench
    embed_text, _ = clap_embed_fns(encoder)

    def half_mixture(mixture, positive, negative):
        return 0.5 * mixture

    results = evaluate_clapsep_benchmark(
        half_mixture,
        embed_text,
        str(root / "music_eval.csv"),
        str(audio),
        valences=["P+N"],
        clip_seconds=SECONDS,
    )
    stats = results["conditions"]["text_P+N"]
    # a gain is no distortion for the BSS v3 SDR and SI-SDR: 0 dB improvement
    assert stats["sdri_bss_v3"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert stats["si_sdri_nzm"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert stats["sdr_plain_mixture"]["mean"] == pytest.approx(0.0, abs=1e-4)  # 0 dB
    # plain SDR of 0.5 (t + n): 10 log10(|t|^2 / |0.5 t - 0.5 n|^2) - 0
    expected = []
    for item in read_benchmark_csv(root / "music_eval.csv"):
        t = load_clip(audio / item.source_file, RATE, SECONDS)
        n = load_clip(audio / item.noise_file, RATE, SECONDS)
        _, t, n = mix_at_snr(t, n, 0.0)
        t, n = t.double(), n.double()
        expected.append(10 * torch.log10(t.pow(2).sum() / (0.5 * (t - n)).pow(2).sum()))
    assert stats["sdri_plain"]["mean"] == pytest.approx(
        float(np.mean(expected)), abs=1e-4
    )


@pytest.mark.integration
@pytest.mark.parametrize("modality", ["audio", "audio+text"])
def test_audio_query_shots_are_averaged(bench, modality):
    root, audio, encoder, model = bench
    embed_text, embed_audio = clap_embed_fns(encoder)
    separate = Recorder(clapsep_separate_fn(model))
    samples = read_query_samples(root / "music_eval_samples.csv")
    items = read_benchmark_csv(root / "music_eval.csv")[:2]
    results = evaluate_clapsep_benchmark(
        separate,
        embed_text,
        items,
        str(audio),
        embed_audio=embed_audio,
        query_samples=str(root / "music_eval_samples.csv"),
        modalities=[modality],
        shots=[1, 5, 10],
        clip_seconds=SECONDS,
    )
    names = [f"{modality}_{k}shot_{v}" for k in (1, 5, 10) for v in ("P", "N", "P+N")]
    assert list(results["conditions"]) == names
    caption = items[0].positive_caption
    clips = [load_clip(audio / f, RATE, None) for f in samples[caption]]
    each = torch.cat([encoder.encode_audio(c[None], sample_rate=RATE) for c in clips])
    text = encoder.encode_text([caption])[0]
    for j, k in enumerate((1, 5, 10)):
        positive = separate.calls[3 * j][1][0]  # item 0, k shots, P
        expected = each[:k].mean(dim=0)
        if modality == "audio+text":
            expected = 0.5 * (expected + text)
        assert torch.allclose(positive, expected, atol=1e-6)
    assert not torch.allclose(separate.calls[0][1], separate.calls[6][1])


@pytest.mark.integration
def test_audio_queries_need_samples(bench):
    root, audio, encoder, model = bench
    embed_text, embed_audio = clap_embed_fns(encoder)
    with pytest.raises(ValueError, match="query_samples"):
        evaluate_clapsep_benchmark(
            clapsep_separate_fn(model),
            embed_text,
            str(root / "music_eval.csv"),
            str(audio),
            embed_audio=embed_audio,
            modalities=["audio"],
        )
    with pytest.raises(ValueError, match="11-shot"):
        evaluate_clapsep_benchmark(
            clapsep_separate_fn(model),
            embed_text,
            str(root / "music_eval.csv"),
            str(audio),
            embed_audio=embed_audio,
            modalities=["audio"],
            shots=[11],
            query_samples=str(root / "music_eval_samples.csv"),
        )


@pytest.mark.recipe
def test_evaluate_script_with_a_bare_checkpoint(bench, tmp_path):
    import importlib.util

    root, audio, encoder, model = bench
    encoder.save_pretrained_dir(str(tmp_path / "clap"))
    torch.save(model.trainable_state_dict(), tmp_path / "clapsep.ckpt")
    config = dict(
        pad_seconds=None,
        lora_rank=4,
        decoder_dim=16,
        decoder_heads=[1, 2, 4, 8],
        masknet_dim=32,
        masknet_heads=4,
        masknet_layers=1,
        masknet_ff=64,
    )
    (tmp_path / "config.json").write_text(json.dumps({"config": config}))
    path = os.path.join(
        os.path.dirname(__file__),
        "..",
        "recipes",
        "AudioCaps",
        "separation",
        "evaluate.py",
    )
    spec = importlib.util.spec_from_file_location("clapsep_evaluate", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    results = script.main(
        [
            "--csv",
            str(root / "music_eval.csv"),
            "--audio-dir",
            str(audio),
            "--checkpoint",
            str(tmp_path / "clapsep.ckpt"),
            "--clap-source",
            str(tmp_path / "clap"),
            "--model-config",
            str(tmp_path / "config.json"),
            "--valences",
            "P+N",
            "--max-items",
            "2",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert results["n_mixtures"] == 2
    assert os.path.isfile(tmp_path / "out" / "text_PplusN_summary.json")
