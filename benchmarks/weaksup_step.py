#!/usr/bin/env python3
"""Seconds and peak memory of one weakly-supervised training step on the CPU.

One optimiser step of :class:`~speechbrain_textsep.training.weaksup_brain.WeakSupBrain`
with the weak loss (0.5 L_CNT + 5 (L_CRL + L_URL)) at the paper's size: items
of N = 2 mixtures of 2 sources (P = 2 prompts each) of 131070 samples at
16 kHz, the paper's U-Net (STFT 1022 / 256: 512 x 512; ngf 64, 7 levels,
text attention at the 3 deepest with 8 heads) and a CLAP of the real
architecture (HTSAT-base + roberta-base, laion_clap's music checkpoint
config) with random weights (no checkpoint can be downloaded here; the
cost does not depend on the weights). The paper's batch is 16 items; each
batch size runs in its own process (peak RSS is per process).

The share of CLAP is the time of the L_CNT audio path alone (iSTFT outputs
-> resampling to 48 kHz -> HTSAT embedding, forward and backward to the
waveforms) on the same number of outputs, measured in the same process
after the step, over the step's time.

    python benchmarks/weaksup_step.py [--batches 1 2] [--threads 2]

Authors
 * speechbrain-textsep contributors
"""

import argparse
import json
import tempfile
import time

import torch
from isolated import peak_rss_mb, run_isolated

SAMPLES = 131070
RATE = 16000
N_MIXTURES = 2
N_PROMPTS = 2


def build(folder):
    """The paper-size separator and a CLAP of the real architecture (random)."""
    from speechbrain_textsep.encoders.clap import (
        CLAPQueryEncoder,
        build_tiny_tokenizer,
    )
    from speechbrain_textsep.encoders.clap_config import laion_clap_cfg
    from speechbrain_textsep.models.weaksup import WeakSupMaskNet, WeakSupSeparator
    from speechbrain_textsep.processing.spectral import SpectralMasking

    cfg = laion_clap_cfg("HTSAT-base")
    texts = ["The sound of violin", "The sound mixture of violin and flute"]
    tokenizer = build_tiny_tokenizer(folder, texts)
    clap = CLAPQueryEncoder(None, model_cfg=cfg, tokenizer=tokenizer)
    spectral = SpectralMasking(
        n_fft=1022,
        hop_length=256,
        win_length=1022,
        n_warped=None,
        frame_multiple=128,
        pad_mode="constant",
    )
    net = WeakSupMaskNet(
        n_maps=32,
        ngf=64,
        levels=7,
        attn_levels=3,
        heads=8,
        query_dim=clap.embedding_dim,
        token_dim=clap.token_dim,
    )
    return clap, WeakSupSeparator(spectral, net)


def batch_of(batch_size):
    """A collated batch of random items (the data pipeline's layout)."""
    from speechbrain_textsep.data.weaksup import collate_items

    labels = ["violin", "flute", "cello", "tuba"]
    items = []
    for i in range(batch_size):
        captions = [f"The sound mixture of {labels[0]} and {labels[1]}"] * N_MIXTURES
        prompts = [[f"The sound of {label}" for label in labels[:N_PROMPTS]]] * 2
        items.append(
            {
                "id": str(i),
                "mixtures": 0.1 * torch.randn(N_MIXTURES, SAMPLES),
                "captions": captions,
                "prompts": prompts,
                "prompt_weights": torch.ones(N_MIXTURES, N_PROMPTS),
                "single_source": False,
            }
        )
    return collate_items(items)


def clap_path_seconds(clap, n_outputs):
    """Forward and backward of the L_CNT audio path on ``n_outputs`` waveforms."""
    waveforms = 0.1 * torch.randn(n_outputs, SAMPLES, requires_grad=True)
    start = time.perf_counter()
    embeddings = clap.encode_audio_with_grad(waveforms, sample_rate=RATE)
    embeddings.sum().backward()
    return time.perf_counter() - start


def step(batch_size, threads, queue):
    import speechbrain as sb

    from speechbrain_textsep.training.weaksup_brain import WeakSupBrain

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as folder:
        clap, separator = build(folder)
    hparams = {
        "rec_weight": 5.0,
        "crl_weight": 5.0,
        "cnt_weight": 0.5,
        "supervised_weight": 1.0,
        "weak_weight": 1.0,
        "contrastive_prompt_weights": True,
        "n_tokens": 77,
        "condition_cache_size": 64,
        "text_template": "The sound of {}",
        "sample_rate": RATE,
    }
    brain = WeakSupBrain(
        modules={"separator": separator, "clap": clap},
        hparams=hparams,
        opt_class=lambda params: torch.optim.Adam(params, lr=1e-4, weight_decay=1e-4),
        run_opts={"device": "cpu"},
    )
    brain.init_optimizers()
    brain.modules.train()
    brain.on_stage_start(sb.Stage.TRAIN, 1)
    batch = batch_of(batch_size)
    brain.conditions(batch.captions[0] + batch.prompts[0][0])  # texts cached
    base = peak_rss_mb()
    start = time.perf_counter()
    outputs = brain.compute_forward(batch, sb.Stage.TRAIN)
    loss = brain.compute_objectives(outputs, batch, sb.Stage.TRAIN)
    forward = time.perf_counter() - start
    loss.backward()
    brain.optimizer.step()
    brain.optimizer.zero_grad()
    elapsed = time.perf_counter() - start
    peak = peak_rss_mb()
    del outputs, loss
    clap_seconds = clap_path_seconds(clap, batch_size * N_MIXTURES * N_PROMPTS)
    queue.put(
        {
            "batch": batch_size,
            "threads": threads,
            "step_s": elapsed,
            "forward_s": forward,
            "clap_path_s": clap_seconds,
            "clap_share": clap_seconds / elapsed,
            "peak_rss_gib": peak / 1024,
            "rss_before_step_gib": base / 1024,
            "separator_parameters": sum(p.numel() for p in separator.parameters()),
            "clap_parameters": sum(p.numel() for p in clap.parameters()),
        }
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    results = []
    for batch_size in args.batches:
        r = run_isolated(step, batch_size, args.threads)
        results.append(r)
        print(
            f"batch {batch_size:2d} x {SAMPLES} samples ({N_MIXTURES} mixtures, "
            f"{N_PROMPTS} prompts each): step {r['step_s']:.1f} s (forward "
            f"{r['forward_s']:.1f} s), CLAP audio path {r['clap_path_s']:.1f} s "
            f"({100 * r['clap_share']:.0f} %), peak RSS {r['peak_rss_gib']:.2f} GiB "
            f"({r['threads']} threads)",
            flush=True,
        )
    if len(results) >= 2:
        a, b = results[0], results[-1]
        per_item_s = (b["step_s"] - a["step_s"]) / (b["batch"] - a["batch"])
        per_item_gib = (b["peak_rss_gib"] - a["peak_rss_gib"]) / (
            b["batch"] - a["batch"]
        )
        more = 16 - a["batch"]
        print(
            "linear extrapolation to batch 16: step "
            f"{a['step_s'] + per_item_s * more:.0f} s, peak RSS "
            f"{a['peak_rss_gib'] + per_item_gib * more:.1f} GiB"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
