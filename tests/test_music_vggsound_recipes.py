"""Every MUSIC and VGGSound recipe config: a --debug run on tiny synthetic videos.

The recipes run in this process (``runpy``, as ``python train.py ...``
would, without paying the imports twelve times) on videos written by
:mod:`speechbrain_textsep.data.synthvideo` and prepared by the recipes' own
``prepare_music`` / ``prepare_vggsound`` calls, with a tiny U-Net, a tiny
random CLIP and a tiny random BERT. The paper-size settings of the configs
are checked without building them (that needs the pretrained CLIP / BERT).
"""

import json
import logging
import os
import runpy
import sys

import pytest
import torch
import yaml

from speechbrain_textsep.data.music import prepare_music
from speechbrain_textsep.data.synthvideo import (
    write_music_videos,
    write_vggsound_videos,
)
from speechbrain_textsep.data.vggsound import prepare_vggsound
from speechbrain_textsep.encoders.bert import save_tiny_bert
from speechbrain_textsep.encoders.clip import TINY_CLIP_CFG
from speechbrain_textsep.inference import QuerySeparator

pytestmark = pytest.mark.recipe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = ["clipsep", "clipsep_nit", "clipsep_text", "labelsep", "bertsep", "pit"]
DATASETS = ["MUSIC", "VGGSound"]
INSTRUMENTS = ["cello", "flute", "trumpet"]
SOUNDS = ["dog barking", "playing violin, fiddle", "rain"]

#: Preparation options, given to the fixtures and (the same) to the recipes,
#: whose prepare call then finds the data done.
MUSIC_PREP = {"valid_ratio": 0.2, "test_ratio": 0.2, "n_test_mixtures": 3}
VGGSOUND_PREP = {"valid_ratio": 0.25}
TINY = {
    "frame_size": 32,
    "prep_num_workers": 1,
    "levels": 5,
    "ngf": 8,
    "n_maps": 8,
    "segment_samples": 16383,
    "batch_size": 4,
    "num_workers": 0,
    "max_test_mixtures": 1,
    "query_dim": 32,
}
EVAL_MODES = {
    "clipsep": ["text", "image"],
    "clipsep_nit": ["text", "image"],
    "clipsep_text": ["text", "image"],
    "labelsep": ["text"],
    "bertsep": ["text"],
    "pit": ["none"],
}


def flow(value):
    """A YAML flow value for a command-line override."""
    return yaml.safe_dump(value, default_flow_style=True).strip()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Tiny MUSIC and VGGSound video sets, prepared, and a tiny BERT."""
    root = tmp_path_factory.mktemp("videos")
    write_music_videos(str(root / "music"), INSTRUMENTS, 5, seconds=2.0)
    music = prepare_music(
        str(root / "music"),
        str(root / "music_prepared"),
        frame_size=32,
        num_workers=1,
        **MUSIC_PREP,
    )
    write_vggsound_videos(str(root / "vggsound"), SOUNDS, 4, 2, seconds=2.0)
    prepare_vggsound(
        str(root / "vggsound"),
        str(root / "vggsound_prepared"),
        frame_size=32,
        num_workers=1,
        **VGGSOUND_PREP,
    )
    words = INSTRUMENTS + SOUNDS + ["a photo of the"]
    bert = save_tiny_bert(str(root / "bert"), words)
    return {"root": str(root), "music_test": music["test"], "bert": bert}


def recipe_args(dataset, config, data, output):
    """Command-line arguments of a tiny run of one recipe config."""
    root = data["root"]
    prepared = os.path.join(root, f"{dataset.lower()}_prepared")
    args = {
        "data_folder": os.path.join(root, dataset.lower()),
        "prepared_folder": prepared,
        "output_folder": output,
        **TINY,
        **(MUSIC_PREP if dataset == "MUSIC" else VGGSOUND_PREP),
    }
    if config == "pit":
        del args["query_dim"]  # no query
    if dataset == "VGGSound":
        args["music_test_csv"] = data["music_test"]  # MUSIC+ as well
    if config.startswith("clipsep"):
        args["clip_pretrained"] = "null"
        args["clip_model_cfg"] = flow(TINY_CLIP_CFG)
    if config == "bertsep":
        args["bert_source"] = data["bert"]
        args["bert_savedir"] = os.path.join(root, "bert_cache")
    argv = [f"hparams/{config}.yaml"]
    for key, value in args.items():
        argv += [f"--{key}", str(value)]
    return argv + ["--debug", "--debug_epochs", "1"]


def run_in_process(dataset, argv, monkeypatch):
    """Runs a recipe's train.py with ``argv``, as ``python train.py`` would.

    SpeechBrain configures the root logger for the experiment (handlers on
    this test's stdout and log file); they are put back as they were.
    """
    recipe = os.path.join(ROOT, "recipes", dataset, "separation")
    monkeypatch.chdir(recipe)
    monkeypatch.setattr(sys, "argv", ["train.py", *argv])
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        runpy.run_path(os.path.join(recipe, "train.py"), run_name="__main__")
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("config", CONFIGS)
def test_recipe_debug_run(dataset, config, data, tmp_path, monkeypatch):
    output = str(tmp_path / "run")
    run_in_process(dataset, recipe_args(dataset, config, data, output), monkeypatch)

    with open(os.path.join(output, "train_log.txt")) as f:
        epochs = [line for line in f if line.startswith("epoch:")]
    assert len(epochs) == 1 and "valid sdri_plain" in epochs[0]

    # The CLIPSep protocol ran on every test set with every query kind.
    with open(os.path.join(output, "test_summary.json")) as f:
        doc = json.load(f)  # the result schema
    assert doc["model_kind"] == ("clipsep" if config.startswith("clipsep") else config)
    summary = doc["results"]
    sets = ["music"] if dataset == "MUSIC" else ["vggsound_clean_plus", "music_plus"]
    if (dataset, config) == ("VGGSound", "labelsep"):
        sets = ["vggsound_clean_plus"]  # MUSIC labels are not VGGSound labels
    assert sorted(summary) == sorted(sets)
    for name in sets:
        assert sorted(summary[name]) == sorted(EVAL_MODES[config])
        for mode in EVAL_MODES[config]:
            assert summary[name][mode]["sdr_bss_v4"]["count"] == 1
            folder = os.path.join(output, "test", name)
            assert os.path.isfile(os.path.join(folder, mode, "test_results.csv"))
        with open(os.path.join(folder, "protocol_summary.json")) as f:
            assert " ± " in json.load(f)[EVAL_MODES[config][0]]["SDR"]

    model = os.path.join(output, "model")
    if config == "pit":
        assert not os.path.exists(model)  # the pretrained interfaces take queries
        return
    state = torch.load(os.path.join(model, "mask_net.ckpt"), weights_only=True)
    assert not any(key.startswith("noise_heads") for key in state)
    if config in ("labelsep", "bertsep"):
        # the baselines' own inference templates load and separate
        separator = QuerySeparator.from_hparams(
            source=model, savedir=str(tmp_path / "savedir")
        )
        label = INSTRUMENTS[0] if dataset == "MUSIC" else SOUNDS[0]
        estimate = separator.separate_batch(torch.randn(2, 8000), [label, label])
        assert estimate.shape == (2, 8000) and torch.isfinite(estimate).all()
        if config == "labelsep":
            with pytest.raises(KeyError, match="no embedding for 'erhu'"):
                separator.separate_batch(torch.randn(1, 8000), ["erhu"])


class _PlainLoader(yaml.SafeLoader):
    """Reads the plain values of a HyperPyYAML file; tagged nodes become None."""


_PlainLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("config", CONFIGS)
def test_configs_have_the_paper_settings(dataset, config):
    path = os.path.join(ROOT, "recipes", dataset, "separation", "hparams", config)
    with open(path + ".yaml") as f:
        hp = yaml.load(f, Loader=_PlainLoader)
    # Adam 1e-3, batch 32, 200k steps, 5k warm-up, decay to 0.1x by 100k,
    # grad-norm clip 1.0; 7-level U-Net, ngf 64, 32 maps, 65535-sample clips.
    assert hp["lr"] == 0.001 and hp["batch_size"] == 32
    assert hp["number_of_epochs"] * hp["steps_per_epoch"] == 200_000
    assert (hp["warmup_steps"], hp["decay_steps"]) == (5000, 100_000)
    assert hp["lr_final_scale"] == 0.1 and hp["max_grad_norm"] == 1.0
    assert (hp["levels"], hp["ngf"], hp["n_maps"]) == (7, 64, 32)
    assert hp["segment_samples"] == 65535 and hp["sample_rate"] == 16000
    assert hp["eval_query_modes"] == EVAL_MODES[config]
    # What changes results is stated in the recipe (no code default)
    assert hp["model_kind"] == ("clipsep" if config.startswith("clipsep") else config)
    assert hp["export"] is (config != "pit")
    assert hp["valid_query_mode"] is None and hp["max_test_mixtures"] is None
    assert hp["sync_batchnorm"] is False and hp["n_query_frames"] == 3
    expected_query = {
        "clipsep": "image",
        "clipsep_nit": "image",
        "pit": "none",
    }.get(config, "text")
    assert hp["query_mode"] == expected_query
    assert hp["nit"] is (config == "clipsep_nit")
    if config.startswith("clipsep"):
        assert (hp["clip_model"], hp["clip_pretrained"]) == ("ViT-B-32", "openai")
        assert len(hp["eval_prompts"]) == 4
    if config == "bertsep":
        assert (hp["bert_source"], hp["query_dim"]) == ("bert-base-uncased", 768)
