#!/usr/bin/env python3
"""Peak memory and time of separating long files: streaming vs in memory.

For each model (a small random CLIPSep model folder, loaded as ``textsep
separate`` loads it, and a tiny random CLAPSep) and each duration, a 44.1 kHz
stereo 16-bit WAV recording is generated block by block into a temporary
file (never held whole, deleted after use) and separated with two text
queries and their residuals, each run in its own process:

- ``stream``: ``separate_file_to`` (what ``textsep separate --residual``
  runs): read, resample, windows, resample back and write, block by block;
  four float WAV outputs at the input's rate and length;
- ``memory``: ``separate_file(..., residual=True)``, which returns the
  estimates and residuals as tensors (same pipeline, output kept whole);
  only up to ``--memory-max`` seconds, as its output grows with the input.

The peak resident memory of each process (its own high-water mark,
:func:`isolated.peak_rss_mb`; model and a 1 s warm-up included) and the
separation time are printed, with the ratio of each peak to the first
(shortest) run of the same model and mode.

    python benchmarks/separate_streaming.py [--durations 10 600 7200]
        [--models clipsep clapsep] [--memory-max 600] [--full-size]

``--full-size`` uses the paper's CLIPSep (30 M parameters) instead of a
small one (slower; memory is then dominated by the model).

Authors
 * speechbrain-textsep contributors
"""

import argparse
import json
import os
import shutil
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
from speechbrain_textsep.encoders.clip import TINY_CLIP_CFG, CLIPQueryEncoder
from speechbrain_textsep.inference import CLAPSepSeparator, QuerySeparator
from speechbrain_textsep.inference.model_folder import write_model_folder
from speechbrain_textsep.models.clapsep import CLAPSep
from speechbrain_textsep.models.clipsep import CLIPSep
from speechbrain_textsep.models.unet import AudioUNet

QUERIES = ["The sound of a violin", "The sound of a dog"]
RATE, CHANNELS = 44100, 2
TINY_CLAPSEP = {
    "lora_rank": 4,
    "decoder_dim": 16,
    "decoder_heads": (1, 2, 4, 8),
    "masknet_dim": 32,
    "masknet_heads": 2,
    "masknet_layers": 1,
    "masknet_ff": 64,
}


def export_clipsep(folder, full_size):
    """A random CLIPSep model folder (the paper's size or a small one)."""
    torch.manual_seed(0)
    levels, ngf, n_maps, dim = (7, 64, 32, 512) if full_size else (5, 16, 16, 64)
    clip_cfg = {**TINY_CLIP_CFG, "embed_dim": dim}
    mask_net = CLIPSep(
        AudioUNet(out_channels=n_maps, ngf=ngf, levels=levels), dim, n_maps
    )
    encoder = CLIPQueryEncoder(model_cfg=clip_cfg, pretrained=None)
    overrides = {
        "levels": levels,
        "ngf": ngf,
        "n_maps": n_maps,
        "query_dim": dim,
        "clip_model_cfg": clip_cfg,
        "clip_pretrained": None,
        "query_encoder_in_folder": True,
    }
    weights = {"mask_net": mask_net.state_dict(), "query_encoder": encoder.state_dict()}
    write_model_folder(folder, "clipsep", overrides, weights)


def load(kind, folder):
    """The separator, as a user gets it (CLAPSep: built, there is no folder)."""
    if kind == "clipsep":
        return QuerySeparator.from_hparams(source=folder)
    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer(folder, QUERIES)
    clap = CLAPQueryEncoder(None, model_cfg=TINY_CLAP_CFG, tokenizer=tokenizer)
    model = CLAPSep(clap.audio_branch, **TINY_CLAPSEP)
    hparams = {"sample_rate": 32000, "window_seconds": 10.0, "overlap_seconds": 1.0}
    return CLAPSepSeparator(modules={"clap": clap, "clapsep": model}, hparams=hparams)


def write_recording(path, seconds, block_seconds=60):
    """A tone and noise recording, generated and written block by block."""
    rng = np.random.default_rng(0)
    total, done = int(seconds * RATE), 0
    with sf.SoundFile(path, "w", RATE, CHANNELS, subtype="PCM_16") as f:
        while done < total:
            n = min(int(block_seconds * RATE), total - done)
            t = (done + np.arange(n)) / RATE
            tone = 0.3 * np.sin(2 * np.pi * 440 * t)
            noise = 0.05 * rng.standard_normal((n, CHANNELS))
            f.write((tone[:, None] + noise).astype(np.float32))
            done += n


def separate(kind, folder, path, mode, queue):
    """One measurement, in its own process."""
    separator = load(kind, folder)
    work = os.path.dirname(path)
    warm = os.path.join(work, f"warm-up-{mode}.wav")
    sf.write(warm, np.zeros((RATE, CHANNELS), np.float32), RATE)
    separator.separate_file(warm, QUERIES, resample_back=True, residual=True)
    after_load = peak_rss_mb()
    out_dir = os.path.join(work, f"out-{mode}")
    start = time.perf_counter()
    if mode == "stream":
        result = separator.separate_file_to(
            path, QUERIES, out_dir, resample_back=True, residual=True
        )
        frames = [sf.info(p).frames for p in result.outputs + result.residual_outputs]
    else:
        estimates, residuals = separator.separate_file(
            path, QUERIES, resample_back=True, residual=True
        )
        frames = [estimates.shape[-1], residuals.shape[-1]]
    elapsed = time.perf_counter() - start
    shutil.rmtree(out_dir, ignore_errors=True)
    info = sf.info(path)
    assert set(frames) == {info.frames}, (frames, info.frames)
    queue.put(
        {
            "model": kind,
            "mode": mode,
            "seconds_of_audio": info.duration,
            "separate_s": elapsed,
            "real_time_factor": elapsed / info.duration,
            "peak_rss_mb": peak_rss_mb(),
            "rss_after_load_mb": after_load,
        }
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--durations", type=float, nargs="+", default=[10, 600, 7200])
    parser.add_argument("--models", nargs="+", default=["clipsep", "clapsep"])
    parser.add_argument("--memory-max", type=float, default=600)
    parser.add_argument("--full-size", action="store_true")
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; input "
        f"{RATE} Hz, {CHANNELS} channels, PCM_16; {len(QUERIES)} queries with "
        "residuals, written at the input's rate"
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folders = {}
        for kind in args.models:
            folders[kind] = os.path.join(tmp, kind)
            if kind == "clipsep":
                export_clipsep(folders[kind], args.full_size)
            else:
                os.makedirs(folders[kind])
        for seconds in args.durations:
            path = os.path.join(tmp, f"input_{seconds:g}s.wav")
            write_recording(path, seconds)
            for kind in args.models:
                modes = ["stream"] + (["memory"] if seconds <= args.memory_max else [])
                for mode in modes:
                    r = run_isolated(separate, kind, folders[kind], path, mode)
                    results.append(r)
                    first = next(
                        x for x in results if x["model"] == kind and x["mode"] == mode
                    )
                    ratio = r["peak_rss_mb"] / first["peak_rss_mb"]
                    print(
                        f"{kind:8s} {mode:6s} {seconds:7.0f} s: {r['separate_s']:8.1f}"
                        f" s (real-time factor {r['real_time_factor']:.4f}), peak RSS "
                        f"{r['peak_rss_mb']:7.0f} MiB (x{ratio:.2f} the "
                        f"{first['seconds_of_audio']:.0f} s run; after loading "
                        f"{r['rss_after_load_mb']:.0f} MiB)",
                        flush=True,
                    )
            os.remove(path)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
