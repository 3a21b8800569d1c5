#!/usr/bin/env python3
"""Speed and memory of CLIPSep at the paper's full size on this machine.

Prints, for the 7-level ngf-64 U-Net (30.3 M parameters):
  * seconds per training step (mix-and-separate of 2 sources: STFT and warp,
    forward, weighted-BCE loss, backward, Adam step) at batch 8 of 65535
    samples, and the peak resident memory during those steps;
  * seconds to separate 60 s of audio (one query), and the peak memory.

Each measurement runs in its own process so that peaks do not mix. Query
embeddings are random 512-d vectors: the frozen CLIP encoder is not part of
the step (the authors' step time is reported the same way).

    python benchmarks/clipsep_speed.py [--steps 5] [--variants fp32 bf16]

Variants: ``fp32`` is the package default (channels-last U-Net, fused Adam),
``fp32_contiguous`` the same in the default memory layout, ``bf16`` adds
bfloat16 autocast (CPU AMX / GPU tensor cores).

Authors
 * speechbrain-textsep contributors
"""

import argparse
import json
import time

import torch
from isolated import peak_rss_mb, run_isolated

from speechbrain_textsep.models.clipsep import CLIPSep
from speechbrain_textsep.models.separator import MaskSeparator, analyze
from speechbrain_textsep.models.unet import AudioUNet
from speechbrain_textsep.processing.spectral import SpectralMasking
from speechbrain_textsep.training.losses import (
    binary_mask_targets,
    clipsep_loss,
    mixture_weight,
)


def full_size_model(channels_last=True):
    unet = AudioUNet(out_channels=32, ngf=64, levels=7, channels_last=channels_last)
    return CLIPSep(unet, 512, 32)


def train_steps(variant, steps, batch, samples, queue):
    torch.manual_seed(0)
    spectral = SpectralMasking()
    model = full_size_model(variant != "fp32_contiguous").train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    sources = torch.randn(batch, 2, samples) * 0.1
    queries = torch.randn(batch, 2, 512)
    base = peak_rss_mb()
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant == "bf16"):
            with torch.autocast("cpu", enabled=False):
                views = analyze(spectral, sources.sum(1) / 2)
                source_mags = spectral.warp(spectral.stft(sources / 2).abs())
            logits = model(views["log_mag"], queries)
            targets = binary_mask_targets(source_mags, views["mag"])
            loss = clipsep_loss(logits, targets, mixture_weight(views["mag"]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        times.append(time.perf_counter() - start)
    queue.put(
        {
            "variant": variant,
            "step_s": sum(times[1:]) / steps,
            "first_step_s": times[0],
            "peak_rss_mb": peak_rss_mb(),
            "rss_before_mb": base,
        }
    )


def separate_audio(seconds, queue):
    torch.manual_seed(0)
    separator = MaskSeparator(SpectralMasking(), full_size_model()).eval()
    mixture = torch.randn(1, int(seconds * 16000)) * 0.1
    query = torch.randn(1, 512)
    base = peak_rss_mb()
    with torch.inference_mode():
        separator(mixture[:, :16000], query)  # warm-up
        start = time.perf_counter()
        estimate = separator(mixture, query)
        elapsed = time.perf_counter() - start
    assert estimate.shape == mixture.shape
    queue.put(
        {
            "seconds_of_audio": seconds,
            "separate_s": elapsed,
            "real_time_factor": elapsed / seconds,
            "peak_rss_mb": peak_rss_mb(),
            "rss_before_mb": base,
        }
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--samples", type=int, default=65535)
    parser.add_argument("--separate_seconds", type=float, default=60.0)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["fp32_contiguous", "fp32", "bf16"],
        choices=["fp32_contiguous", "fp32", "bf16"],
    )
    args = parser.parse_args()
    n_params = sum(p.numel() for p in full_size_model().parameters())
    print(
        f"CLIPSep full size: {n_params / 1e6:.1f} M parameters, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    results = []
    for variant in args.variants:
        r = run_isolated(train_steps, variant, args.steps, args.batch, args.samples)
        results.append(r)
        print(
            f"train step [{variant:>15}] batch {args.batch} x {args.samples}: "
            f"{r['step_s']:.2f} s/step (first {r['first_step_s']:.2f} s), "
            f"peak RSS {r['peak_rss_mb'] / 1024:.2f} GiB "
            f"({(r['peak_rss_mb'] - r['rss_before_mb']) / 1024:.2f} GiB above the "
            f"{r['rss_before_mb'] / 1024:.2f} GiB before the steps)"
        )
    r = run_isolated(separate_audio, args.separate_seconds)
    results.append(r)
    print(
        f"separate {args.separate_seconds:.0f} s of audio: {r['separate_s']:.2f} s "
        f"(real-time factor {r['real_time_factor']:.3f}), "
        f"peak RSS {r['peak_rss_mb'] / 1024:.2f} GiB"
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
