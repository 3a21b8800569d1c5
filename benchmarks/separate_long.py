#!/usr/bin/env python3
"""Real-time factor and peak memory of ``separate_file`` on long recordings.

A model folder of the paper's full CLIPSep size (7-level ngf-64 U-Net,
30.3 M parameters, 512-d queries; random weights, and a small random CLIP
text tower with 512-d embeddings since no pretrained CLIP can be downloaded
here: the text encoder runs once per query) is exported and loaded with
``QuerySeparator.from_hparams``. For each duration, a recording is written to
disk and separated by ``separate_file`` (read, resample, windows of 10 s
overlapping by 1 s, cross-fade) in its own process, so that the peak
resident memory of one input does not hide another's.

    python benchmarks/separate_long.py [--durations 10 60 600]
        [--rate 16000] [--channels 1] [--one-shot 60]

``--one-shot`` also separates those durations in a single pass (window
longer than the input), to show how memory grows without windows.

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

from speechbrain_textsep.encoders.clip import TINY_CLIP_CFG, CLIPQueryEncoder
from speechbrain_textsep.inference import QuerySeparator
from speechbrain_textsep.inference.model_folder import write_model_folder
from speechbrain_textsep.models.clipsep import CLIPSep
from speechbrain_textsep.models.unet import AudioUNet

CLIP_512 = {**TINY_CLIP_CFG, "embed_dim": 512}


def export_full_size(folder):
    torch.manual_seed(0)
    mask_net = CLIPSep(AudioUNet(out_channels=32, ngf=64, levels=7), 512, 32)
    encoder = CLIPQueryEncoder(model_cfg=CLIP_512, pretrained=None)
    overrides = {
        "levels": 7,
        "ngf": 64,
        "n_maps": 32,
        "query_dim": 512,
        "clip_model_cfg": CLIP_512,
        "clip_pretrained": None,
        "query_encoder_in_folder": True,
    }
    weights = {"mask_net": mask_net.state_dict(), "query_encoder": encoder.state_dict()}
    write_model_folder(folder, "clipsep", overrides, weights)
    return sum(p.numel() for p in mask_net.parameters())


def write_recording(path, seconds, rate, channels):
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    data = np.stack(
        [tone + 0.05 * rng.standard_normal(len(t)) for _ in range(channels)], axis=1
    )
    sf.write(path, data.astype(np.float32), rate, subtype="FLOAT")


def separate(folder, path, one_shot, queue):
    overrides = {"window_seconds": 1e9} if one_shot else {}
    separator = QuerySeparator.from_hparams(source=folder, overrides=overrides)
    warm = os.path.join(os.path.dirname(path), "warm-up.wav")
    write_recording(warm, 1.0, 16000, 1)
    separator.separate_file(warm, "violin")
    base = peak_rss_mb()
    start = time.perf_counter()
    estimate = separator.separate_file(path, "violin", resample_back=True)
    elapsed = time.perf_counter() - start
    seconds = sf.info(path).duration
    assert estimate.shape == (sf.info(path).frames,)
    queue.put(
        {
            "seconds_of_audio": seconds,
            "one_shot": one_shot,
            "separate_s": elapsed,
            "real_time_factor": elapsed / seconds,
            "peak_rss_mb": peak_rss_mb(),
            "rss_after_load_mb": base,
        }
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--durations", type=float, nargs="+", default=[10, 60, 600])
    parser.add_argument("--rate", type=int, default=16000)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--one-shot", type=float, nargs="*", default=[60])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "model")
        n_params = export_full_size(folder)
        print(
            f"CLIPSep full size: {n_params / 1e6:.1f} M parameters, torch "
            f"{torch.__version__}, {torch.get_num_threads()} threads; input "
            f"{args.rate} Hz, {args.channels} channel(s), output at the input rate"
        )
        runs = [(d, False) for d in args.durations]
        runs += [(d, True) for d in args.one_shot]
        results = []
        for seconds, one_shot in runs:
            path = os.path.join(tmp, f"input_{seconds:g}s.wav")
            write_recording(path, seconds, args.rate, args.channels)
            r = run_isolated(separate, folder, path, one_shot)
            results.append(r)
            os.remove(path)
            mode = "one pass" if one_shot else "windows "
            print(
                f"separate_file {seconds:6.0f} s [{mode}]: {r['separate_s']:7.2f} s "
                f"(real-time factor {r['real_time_factor']:.3f}), peak RSS "
                f"{r['peak_rss_mb'] / 1024:.2f} GiB (after loading and a 1 s "
                f"warm-up: {r['rss_after_load_mb'] / 1024:.2f} GiB)"
            )
        print(json.dumps(results))


if __name__ == "__main__":
    main()
