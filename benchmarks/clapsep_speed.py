#!/usr/bin/env python3
"""Seconds and peak memory of CLAPSep separating 10 s and 60 s on this machine.

The separator is the paper's full size (HTSAT-base copy with LoRA rank 16,
Swin decoder, MaskNet: 113 M parameters in the module, 44 M trainable;
random weights, since no checkpoint can be downloaded here), used through
``CLAPSepSeparator.separate_file``: read, resample to 32 kHz, windows of
10 s overlapping by 1 s for longer inputs, cross-fade, exact length. The
query embedding comes from a small random CLAP (512-d): it is computed once
per query and is not what is timed. Each duration runs in its own process.

    python benchmarks/clapsep_speed.py [--durations 10 60]

Authors
 * speechbrain-textsep contributors
"""

import argparse
import json
import os
import tempfile
import time

import numpy as np
import soundfile as sf
import torch
from isolated import peak_rss_mb, run_isolated

from speechbrain_textsep.encoders.clap import (
    TINY_CLAP_CFG,
    CLAPQueryEncoder,
    build_tiny_tokenizer,
)
from speechbrain_textsep.inference import CLAPSepSeparator
from speechbrain_textsep.models.clapsep import CLAPSep
from speechbrain_textsep.models.htsat_features import build_htsat

RATE = 32000


def write_recording(path, seconds):
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * RATE)) / RATE
    data = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))
    sf.write(path, data.astype(np.float32), RATE, subtype="FLOAT")


def separate(folder, path, queue):
    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer(folder, ["The sound of a violin"])
    clap = CLAPQueryEncoder(None, model_cfg=TINY_CLAP_CFG, tokenizer=tokenizer)
    model = CLAPSep(build_htsat())
    counts = model.parameter_counts()
    separator = CLAPSepSeparator(
        modules={"clap": clap, "clapsep": model},
        hparams={"sample_rate": RATE, "window_seconds": 10.0, "overlap_seconds": 1.0},
    )
    warm = os.path.join(folder, "warm-up.wav")
    write_recording(warm, 1.0)
    separator.separate_file(warm, "The sound of a violin")
    base = peak_rss_mb()
    start = time.perf_counter()
    estimate = separator.separate_file(path, "The sound of a violin")
    elapsed = time.perf_counter() - start
    info = sf.info(path)
    assert estimate.shape == (info.frames,)
    queue.put(
        {
            "seconds_of_audio": info.duration,
            "separate_s": elapsed,
            "real_time_factor": elapsed / info.duration,
            "peak_rss_mb": peak_rss_mb(),
            "rss_after_load_mb": base,
            "parameters": counts,
        }
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--durations", type=float, nargs="+", default=[10, 60])
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in args.durations:
            path = os.path.join(tmp, f"input_{seconds:g}s.wav")
            write_recording(path, seconds)
            r = run_isolated(separate, tmp, path)
            results.append(r)
            if len(results) == 1:
                print(
                    f"CLAPSep full size: {r['parameters']}, torch "
                    f"{torch.__version__}, {torch.get_num_threads()} threads"
                )
            print(
                f"separate_file {seconds:5.0f} s: {r['separate_s']:6.2f} s (real-time "
                f"factor {r['real_time_factor']:.3f}), peak RSS "
                f"{r['peak_rss_mb'] / 1024:.2f} GiB (after loading and a 1 s "
                f"warm-up: {r['rss_after_load_mb'] / 1024:.2f} GiB)"
            )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
