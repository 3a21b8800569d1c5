"""CLAPSep training: the SynthMUSIC and AudioCaps recipes on tiny data."""

import csv
import glob
import json
import os
import shutil

import pytest
import soundfile as sf
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from recipe_runs import CLASSES, DATA_KEYS, TINY, options, read_log, run_script

from speechbrain_textsep.encoders.clap import (
    TINY_CLAP_CFG,
    CLAPQueryEncoder,
    save_local_clap,
)
from speechbrain_textsep.training.clapsep_brain import (
    CLAPSepBrain,
    QueryAugmentation,
    sample_query_sides,
)

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYNTH = os.path.join(ROOT, "recipes", "SynthMUSIC", "clapsep")
AUDIOCAPS = os.path.join(ROOT, "recipes", "AudioCaps", "separation")
# The data options of the shared tiny SynthMUSIC (conftest.data_folder, 16 kHz:
# the pipeline resamples to 32 kHz), so that the recipe finds it rendered.
DATA = {key: TINY[key] for key in DATA_KEYS}
DATA["data_sample_rate"] = 16000
TRAIN = {"batch_size": 4}
# Tiny CLAPSep sizes for the AudioCaps recipe (paper sizes in its yaml)
TINY_MODEL = {
    "lora_rank": 4,
    "decoder_dim": 16,
    "decoder_heads": "[1, 2, 4, 8]",
    "masknet_dim": 32,
    "masknet_heads": 2,
    "masknet_layers": 1,
    "masknet_ff": 64,
    "drop_path_rate": 0.0,
}


def run(recipe, hparams, args, **values):
    """Runs a recipe's train.py as a user would; returns its output."""
    script = os.path.join(recipe, "train.py")
    return run_script(script, [hparams] + args + options(**values), recipe)


@pytest.fixture(scope="module")
def clap_folder(tmp_path_factory):
    """A tiny CLAP folder (random weights, tokenizer trained on the captions)."""
    folder = tmp_path_factory.mktemp("clap")
    captions = [f"The sound of {c}" for c in CLASSES] + ["a dog barks", "rain"]
    return str(save_local_clap(TINY_CLAP_CFG, folder, captions))


@pytest.fixture(scope="module")
def trained(data_folder, clap_folder, tmp_path_factory):
    """The SynthMUSIC recipe, 3 epochs (18 steps), then resumed to 4."""
    output = str(tmp_path_factory.mktemp("clapsep"))
    common = [
        os.path.join(SYNTH, "hparams", "clapsep_tiny.yaml"),
        ["--data_folder", data_folder, "--output_folder", output],
    ]
    options = {**DATA, **TRAIN, "clap_folder": clap_folder}
    first = run(SYNTH, *common, number_of_epochs=3, **options)
    epochs = read_log(output)
    resumed = run(SYNTH, *common, number_of_epochs=4, **options)
    return {"output": output, "epochs": epochs, "log": first, "resumed": resumed}


def test_recipe_trains_and_validates(trained):
    epochs = trained["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert epochs[-1]["steps"] == 18  # 24 clips in batches of 4
    for e in epochs:
        assert all(
            key in e for key in ("valid loss", "valid sdri_plain", "valid si_sdri")
        )
    with open(os.path.join(trained["output"], "test_summary.json")) as f:
        doc = json.load(f)  # the result schema
    assert (doc["model_kind"], doc["experiment"]) == ("clapsep", "clapsep_tiny")
    stats = doc["results"]["test"]["text_PN"]
    assert stats["si_sdri"]["count"] == 6  # every test clip mixed with a partner
    assert set(stats) == {"sdr_plain", "sdri_plain", "si_sdr", "si_sdri"}
    rows = os.path.join(trained["output"], "test", "test", "text_PN")
    with open(os.path.join(rows, "test_results.csv")) as f:
        items = list(csv.DictReader(f))
    assert [r["query_kind"] for r in items] == ["text_PN"] * 6
    assert all(r["query"].startswith("The sound of ") for r in items)


def test_resume_from_checkpoint(trained):
    epochs = read_log(trained["output"])
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4]
    assert epochs[-1]["steps"] == epochs[-2]["steps"] + 6  # 24 clips / 4
    assert "Loading a checkpoint" in trained["resumed"]


def test_checkpoint_holds_only_trained_keys(trained, clap_folder):
    ckpts = glob.glob(os.path.join(trained["output"], "save", "CKPT*", "clapsep.ckpt"))
    assert ckpts
    state = torch.load(ckpts[0], map_location="cpu", weights_only=True)
    hparams = load_model_hparams(trained["output"], clap_folder)
    model = hparams["clapsep"]
    assert set(state) == set(model.trained_keys())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert trainable <= set(state) and not (frozen & set(state))
    assert any(".lora" in key or "adapter" in key for key in state)
    names = os.listdir(os.path.dirname(ckpts[0]))
    assert "clap.ckpt" not in names  # the frozen CLAP is clap_source


def load_model_hparams(output, clap_folder):
    """The exported hyperparameters, built (the CLAP given as a path)."""
    folder = os.path.join(output, "model")
    clap = os.path.join(folder, "clap")
    with open(os.path.join(folder, "hyperparams.yaml")) as f:
        # written resolved: the CLAP object names its folder itself
        return load_hyperpyyaml(f, {"clap_source": clap, "clap": {"source": clap}})


def test_export_folder_builds_and_loads(trained, clap_folder):
    folder = os.path.join(trained["output"], "model")
    assert {"hyperparams.yaml", "clapsep.ckpt", "clap"} <= set(os.listdir(folder))
    hparams = load_model_hparams(trained["output"], clap_folder)
    assert hparams["interface"] == "CLAPSepSeparator"
    assert hparams["sample_rate"] == 32000 and hparams["clap_in_folder"] is True
    assert hparams["clap_source"].endswith("clap")
    assert set(hparams["modules"]) == {"clap", "clapsep"}
    model = hparams["clapsep"]
    state = torch.load(
        os.path.join(folder, "clapsep.ckpt"), map_location="cpu", weights_only=True
    )
    pretrainer = hparams["pretrainer"]
    pretrainer.set_collect_in(os.path.join(trained["output"], "collected"))
    pretrainer.collect_files(default_source=folder)
    pretrainer.load_collected()
    for key, value in model.trainable_state_dict().items():
        assert torch.equal(value, state[key]), key
    # The exported CLAP is the training one.
    exported = hparams["clap"].encode_text(["The sound of tuba"])
    original = CLAPQueryEncoder(clap_folder).encode_text(["The sound of tuba"])
    assert torch.allclose(exported, original)
    mixture = torch.randn(1, 32000)
    condition = torch.cat([exported, torch.zeros_like(exported)], dim=-1)
    with torch.no_grad():
        expected = model.eval()(mixture, condition)
    assert expected.shape == (1, 32000)
    # The interface finds the CLAP inside the folder and the trained part.
    from speechbrain_textsep.inference import CLAPSepSeparator, Query, load_separator

    separator = load_separator(folder)
    assert isinstance(separator, CLAPSepSeparator)
    estimate = separator.separate_batch(mixture, Query("The sound of tuba"))
    assert torch.allclose(estimate, expected, atol=1e-5)


def small_brain(**hparams):
    """A CLAPSepBrain only used for its query logic (no model)."""
    return CLAPSepBrain(
        modules={"dummy": torch.nn.Linear(1, 1)},
        hparams={
            "sample_rate": 32000,
            "query_mix": (0.25, 0.25, 0.5),
            "multimodal": True,
            "query_augmentation": None,
            "valid_audio_weight": 0.0,
            "snr_weight": 0.9,
            **hparams,
        },
        run_opts={"device": "cpu"},
    )


def test_query_mix_proportions():
    gen = torch.Generator().manual_seed(0)
    pos, neg = sample_query_sides(40000, generator=gen)
    assert bool((pos | neg).all())
    fractions = [(~pos).float().mean(), (~neg).float().mean(), (pos & neg).float()]
    assert abs(fractions[0] - 0.25) < 0.01 and abs(fractions[1] - 0.25) < 0.01
    assert abs(fractions[2].mean() - 0.5) < 0.01
    # Through the brain: a missing query is a zero half of the condition.
    brain = small_brain()
    torch.manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(4000, 8), dim=-1)
    partner = torch.roll(torch.arange(4000), 1)
    cond = brain.make_condition(emb, partner, sb.Stage.TRAIN)
    has_pos, has_neg = cond[:, :8].norm(dim=-1) > 0, cond[:, 8:].norm(dim=-1) > 0
    assert bool((has_pos | has_neg).all())
    assert abs((has_pos & has_neg).float().mean() - 0.5) < 0.04
    assert abs((~has_pos).float().mean() - 0.25) < 0.04
    valid = brain.make_condition(emb, partner, sb.Stage.VALID)
    assert torch.equal(valid, torch.cat([emb, emb[partner]], dim=-1))


def test_query_augmentation_only_at_training(clap_folder):
    brain = small_brain(query_augmentation=QueryAugmentation(32000))
    brain.modules.clap = CLAPQueryEncoder(clap_folder)
    wav = torch.randn(2, 32000) * 0.1
    for stage in (sb.Stage.VALID, sb.Stage.TEST):
        assert brain.query_audio(wav, stage) is wav
    assert not torch.allclose(brain.query_audio(wav, sb.Stage.TRAIN), wav)
    # Audio queries at validation are the plain CLAP embeddings of the clips.
    brain.hparams.valid_audio_weight = 1.0
    captions = ["The sound of tuba", "The sound of flute"]
    emb = brain.query_embeddings(wav, captions, sb.Stage.VALID)
    assert torch.allclose(emb, brain.modules.clap.encode_audio(wav, 32000))


def write_audiocaps(folder, data_folder):
    """An AudioCaps-style folder: SynthMUSIC clips, official-style CSVs.

    One row of every split has no audio file and one an unreadable file.
    """
    audio = os.path.join(folder, "audio")
    csvs = os.path.join(folder, "csv")
    os.makedirs(audio)
    os.makedirs(csvs)
    captions = {
        "flute": "A flute plays a soft melody",
        "tuba": "A tuba plays low notes",
        "xylophone": "Someone strikes a xylophone",
    }
    for split, official in (("train", "train"), ("valid", "val"), ("test", "test")):
        with open(os.path.join(data_folder, f"{split}.csv")) as f:
            clips = list(csv.DictReader(f))
        rows = []
        for i, clip in enumerate(clips):
            ytid = f"{split}{i:03d}xyz"
            shutil.copy(clip["audio"], os.path.join(audio, f"Y{ytid}.wav"))
            for k in range(1 if split == "train" else 2):  # val/test: 2 captions
                rows.append([f"{split}{i}{k}", ytid, 30, captions[clip["label"]]])
        rows.append([f"{split}missing", f"{split}missing", 0, "silence"])
        with open(os.path.join(audio, f"{split}bad.wav"), "w") as f:
            f.write("not audio")
        rows.append([f"{split}bad", f"{split}bad", 0, "broken"])
        with open(os.path.join(csvs, f"{official}.csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["audiocap_id", "youtube_id", "start_time", "caption"])
            writer.writerows(rows)
    return audio, csvs


def test_audiocaps_recipe_debug(data_folder, clap_folder, tmp_path):
    audio, csvs = write_audiocaps(str(tmp_path / "audiocaps"), data_folder)
    output = str(tmp_path / "out")
    prepared = str(tmp_path / "prepared")
    run(
        AUDIOCAPS,
        os.path.join(AUDIOCAPS, "hparams", "clapsep.yaml"),
        ["--debug"],
        audio_folder=audio,
        csv_folder=csvs,
        data_folder=prepared,
        output_folder=output,
        clap_source=clap_folder,
        segment_seconds=1.0,
        batch_size=4,
        num_workers=0,
        **TINY_MODEL,
    )
    with open(os.path.join(prepared, "valid.csv")) as f:
        valid = list(csv.DictReader(f))
    assert len(valid) == 6 and valid[0]["caption"] in (
        "A flute plays a soft melody",
        "A tuba plays low notes",
        "Someone strikes a xylophone",
    )
    assert sf.info(valid[0]["audio"]).samplerate == 16000
    with open(os.path.join(prepared, "audiocaps_skipped.csv")) as f:
        skipped = list(csv.DictReader(f))
    assert sorted(s["reason"].split(":")[0] for s in skipped) == (
        ["missing"] * 3 + ["unreadable"] * 3
    )
    assert len(read_log(output)) == 2  # --debug: 2 epochs
    folder = os.path.join(output, "model")
    assert os.path.isfile(os.path.join(folder, "clapsep.ckpt"))
    with open(os.path.join(folder, "hyperparams.yaml")) as f:
        text = f.read()
    assert "clap_source: clap" in text and "clap_in_folder: true" in text.lower()


def test_brain_training_steps_lower_the_loss(data_folder, clap_folder):
    """The brain's training steps fit a fixed batch (text queries, both sides).

    With the random tiny CLAP, the full query randomisation (sides and
    audio/text weights) makes 20 steps too noisy to show a drop.
    """
    from speechbrain.dataio.batch import PaddedBatch

    from speechbrain_textsep.models.clapsep import CLAPSep
    from speechbrain_textsep.training.families.clapsep import read_clip_segment

    torch.manual_seed(0)
    clap = CLAPQueryEncoder(clap_folder)
    model = CLAPSep(
        clap.audio_branch,
        lora_rank=4,
        decoder_dim=16,
        decoder_heads=(1, 2, 4, 8),
        drop_path_rate=0.0,
        masknet_dim=32,
        masknet_heads=2,
        masknet_layers=1,
        masknet_ff=64,
    )
    brain = CLAPSepBrain(
        modules={"clap": clap, "clapsep": model},
        opt_class=lambda params: torch.optim.AdamW(params, lr=1e-3),
        hparams={
            "sample_rate": 32000,
            "query_mix": (0.0, 0.0, 1.0),
            "multimodal": False,
            "query_augmentation": None,
            "valid_audio_weight": 0.0,
            "snr_weight": 0.9,
            "max_grad_norm": 5.0,
        },
        run_opts={"device": "cpu"},
    )
    brain.init_optimizers()
    with open(os.path.join(data_folder, "train.csv")) as f:
        rows = list(csv.DictReader(f))[::6]
    batch = PaddedBatch(
        [
            {
                "id": row["ID"],
                "sig": read_clip_segment(row["audio"], 1.0, 32000, False),
                "caption": f"The sound of {row['label']}",
            }
            for row in rows
        ]
    )
    losses = [float(brain.fit_batch(batch)) for _ in range(20)]
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.4, losses
    assert brain.optimizer_step == 20
