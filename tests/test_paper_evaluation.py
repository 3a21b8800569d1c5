"""The CLIPSep paper's evaluation protocol: pairs, scoring, summaries, script."""

import csv
import json
import math
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_textsep.data.music import prepare_music
from speechbrain_textsep.data.synthvideo import write_music_videos
from speechbrain_textsep.data.vggsound import is_music_label
from speechbrain_textsep.encoders.clip import TINY_CLIP_CFG, CLIPQueryEncoder
from speechbrain_textsep.evaluation.mixtures import evaluate_mixture_list
from speechbrain_textsep.evaluation.protocol import (
    EvaluationModel,
    load_evaluation_model,
    main,
    make_protocol_pairs,
)
from speechbrain_textsep.inference.model_folder import write_model_folder
from speechbrain_textsep.models.clipsep import CLIPSep
from speechbrain_textsep.models.unet import AudioUNet

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MUSIC_RECIPE = os.path.join(ROOT, "recipes", "MUSIC", "separation")
SR = 16000


def write_manifest(path, rows):
    fields = ["ID", "audio", "frames", "n_frames", "label", "duration"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row.get(key, "") for key in fields})
    return str(path)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def tone_clips(tmp_path_factory):
    """Manifest of 1-s tones: two labels among targets, one noise interferer."""
    folder = tmp_path_factory.mktemp("tones")
    t = np.arange(SR) / SR
    rows = []
    for i, (label, freq) in enumerate(
        [("flute", 440), ("flute", 660), ("cello", 110), ("rain", None)]
    ):
        if freq is None:
            signal = 0.3 * np.random.default_rng(i).standard_normal(SR)
        else:
            signal = 0.5 * np.sin(2 * np.pi * freq * t)
        path = str(folder / f"clip{i}.wav")
        sf.write(path, signal.astype(np.float32), SR)
        rows.append(
            {"ID": f"clip{i}", "audio": path, "label": label, "duration": "1.0"}
        )
    return write_manifest(folder / "clips.csv", rows), rows


def test_pairs_follow_the_authors_draw(tmp_path):
    targets = [{"ID": f"t{i}", "label": f"target{i}"} for i in range(6)]
    interferers = [{"ID": f"i{j}", "label": f"noise{j}"} for j in range(7)]
    out = make_protocol_pairs(
        write_manifest(tmp_path / "t.csv", targets),
        write_manifest(tmp_path / "i.csv", interferers),
        str(tmp_path / "pairs.csv"),
    )
    pairs = read_rows(out)
    for i, pair in enumerate(pairs):
        random.seed(i)  # the authors' MixDatasetV2
        expected = interferers[random.randint(0, len(interferers) - 1)]
        assert (pair["source1"], pair["source2"]) == (f"t{i}", expected["ID"])
        assert pair["label2"] == expected["label"]
    again = make_protocol_pairs(
        str(tmp_path / "t.csv"), str(tmp_path / "i.csv"), str(tmp_path / "p2.csv")
    )
    assert read_rows(again) == pairs


def test_pairs_exclude_self_same_label_and_music(tmp_path):
    clips = [
        {"ID": "a", "label": "dog barking"},
        {"ID": "b", "label": "dog barking"},
        {"ID": "c", "label": "playing violin, fiddle"},
        {"ID": "d", "label": "rain"},
    ]
    path = write_manifest(tmp_path / "c.csv", clips)
    pairs = read_rows(
        make_protocol_pairs(
            path, path, str(tmp_path / "p.csv"), exclude_interferer=is_music_label
        )
    )
    by_target = {p["source1"]: p for p in pairs}
    for pair in pairs:
        assert pair["source2"] != pair["source1"]
        assert pair["label2"] != pair["label1"]
        assert pair["source2"] != "c"  # music-like labels are never interferers
    assert by_target["a"]["source2"] == by_target["b"]["source2"] == "d"
    only_dogs = write_manifest(tmp_path / "d.csv", clips[:2])
    with pytest.raises(ValueError, match="no interferer for target 'a'"):
        make_protocol_pairs(only_dogs, only_dogs, str(tmp_path / "x.csv"))


def test_target_only_scoring_and_oracle_selection(tone_clips, tmp_path):
    clips_csv, rows = tone_clips
    pairs = make_protocol_pairs(clips_csv, clips_csv, str(tmp_path / "pairs.csv"))
    clips = {row["ID"]: row for row in rows}

    def halved(clip_id):
        return (
            torch.from_numpy(sf.read(clips[clip_id]["audio"], dtype="float32")[0]) / 2
        )

    def sources_of(mixture):
        """(target, interferer) of the pair that makes ``mixture``."""
        for pair in read_rows(pairs):
            target, other = halved(pair["source1"]), halved(pair["source2"])
            if torch.allclose(mixture[0], target + other, atol=1e-6):
                return target, other
        raise AssertionError("unknown mixture")

    queries_seen = []

    def oracle(mixture, queries):  # the target with a 40 dB residual
        queries_seen.append(queries)
        target, other = sources_of(mixture)
        return (target + 0.01 * other)[None, None]

    summary = evaluate_mixture_list(
        oracle, pairs, clips_csv, str(tmp_path / "oracle"), SR, SR, scored_sources=(0,)
    )
    targets = [p["label1"] for p in read_rows(pairs)]
    assert queries_seen == [[label] for label in targets]  # only the target
    assert summary["sdr_bss_v4"]["count"] == 4
    results = read_rows(tmp_path / "oracle" / "test_results.csv")
    assert [r["target"] for r in results] == ["clip0", "clip1", "clip2", "clip3"]
    # the leading columns of every per-item CSV (result schema)
    assert list(results[0])[:5] == [
        "item",
        "query_kind",
        "query",
        "target",
        "interferer",
    ]
    assert {r["query_kind"] for r in results} == {"text"}
    assert summary["sdr_bss_v4"]["mean"] == pytest.approx(40, abs=0.5)
    # the mixture column is the BSS Eval SDR of the unprocessed mixture
    for r in results:
        assert float(r["sdr_bss_v4_mixture"]) == pytest.approx(
            float(r["sdr_bss_v4"]) - float(r["sdri_bss_v4"])
        )
        assert float(r["sdr_bss_v4_mixture"]) < 10

    # A query-free model whose outputs come swapped: each target takes the
    # output that separates it best.
    def swapped(mixture, queries):
        target, other = sources_of(mixture)
        return torch.stack([other, target + 0.01 * other])[None]

    pit = evaluate_mixture_list(
        swapped,
        pairs,
        clips_csv,
        str(tmp_path / "pit"),
        SR,
        SR,
        scored_sources=(0,),
        permutation_invariant=True,
    )
    assert pit["sdr_bss_v4"]["mean"] == pytest.approx(40, abs=0.5)
    outputs = {r["output"] for r in read_rows(tmp_path / "pit" / "test_results.csv")}
    assert outputs == {"1"}
    assert "output" not in pit  # a column, not a metric


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    """Tiny MUSIC: 3 instruments x 5 synthetic 2-s videos, prepared."""
    root = tmp_path_factory.mktemp("music")
    write_music_videos(
        str(root / "videos"), ["cello", "flute", "trumpet"], 5, seconds=2.0
    )
    prepare_music(
        str(root / "videos"),
        str(root / "prepared"),
        valid_ratio=0.2,
        test_ratio=0.2,
        n_test_mixtures=3,
        frame_size=32,
        num_workers=1,
    )
    return str(root)


def test_protocol_on_an_exported_clip_model_with_text_and_image_queries(
    music, tmp_path
):
    torch.manual_seed(0)
    folder = str(tmp_path / "model")
    overrides = {
        "levels": 5,
        "ngf": 8,
        "n_maps": 8,
        "query_dim": 32,
        "clip_model_cfg": TINY_CLIP_CFG,
        "clip_pretrained": None,
        "query_encoder_in_folder": True,
    }
    encoder = CLIPQueryEncoder(model_cfg=TINY_CLIP_CFG, pretrained=None)
    weights = {
        "mask_net": CLIPSep(AudioUNet(8, 8, 5), 32, 8).state_dict(),
        "query_encoder": encoder.state_dict(),
    }
    write_model_folder(folder, "clipsep", overrides, weights)
    prepared = os.path.join(music, "prepared")
    out = str(tmp_path / "eval")
    summaries = main(
        [
            "--model",
            folder,
            "--savedir",
            str(tmp_path / "savedir"),
            "--targets",
            os.path.join(prepared, "test.csv"),
            "--interferers",
            os.path.join(prepared, "test.csv"),
            "--queries",
            "text",
            "image",
            "--segment_samples",
            "16383",
            "--output_folder",
            out,
        ]
    )
    assert set(summaries) == {"text", "image"}
    with open(os.path.join(out, "test_summary.json")) as f:
        doc = json.load(f)  # the result schema, this test set named by its folder
    assert doc["model_kind"] == "clipsep" and set(doc["results"]["eval"]) == {
        "text",
        "image",
    }
    assert "sir_bss_v4" in doc["metrics_doc"]
    with open(os.path.join(out, "protocol_summary.json")) as f:
        compact = json.load(f)
    for mode in ("text", "image"):
        results = read_rows(os.path.join(out, mode, "test_results.csv"))
        assert len(results) == 3 and compact[mode]["n"] == 3
        sdr = np.array([float(r["sdr_bss_v4"]) for r in results])
        sem = sdr.std(ddof=1) / math.sqrt(len(sdr))
        expected = f"{sdr.mean():.2f} ± {sem:.2f} (median {np.median(sdr):.2f})"
        assert compact[mode]["SDR"] == expected
        assert summaries[mode]["sdr_bss_v4"]["sem"] == pytest.approx(sem)
    # text and image queries give different embeddings, hence estimates
    text = read_rows(os.path.join(out, "text", "test_results.csv"))
    image = read_rows(os.path.join(out, "image", "test_results.csv"))
    assert [r["target"] for r in text] == [r["target"] for r in image]
    assert any(t["sdr_bss_v4"] != i["sdr_bss_v4"] for t, i in zip(text, image))


def test_image_queries_need_frames():
    model = EvaluationModel(
        separator=None,
        query_encoder=CLIPQueryEncoder(model_cfg=TINY_CLIP_CFG, pretrained=None),
    )
    separate = model.separate_fn("image")
    with pytest.raises(ValueError, match="has no frames"):
        separate(torch.zeros(1, 100), [{"ID": "x", "frames": "", "n_frames": ""}])
    with pytest.raises(ValueError, match=r"takes \['text', 'image'\] queries"):
        model.separate_fn("none")


def test_evaluate_script_on_a_trained_pit_recipe(music, tmp_path):
    """Trains PIT one short epoch with the MUSIC recipe, then evaluates its folder."""
    output = str(tmp_path / "pit")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    train = [
        sys.executable,
        "train.py",
        "hparams/pit.yaml",
        "--data_folder",
        os.path.join(music, "videos"),
        "--prepared_folder",
        os.path.join(music, "prepared"),
        "--output_folder",
        output,
        "--valid_ratio",
        "0.2",
        "--test_ratio",
        "0.2",
        "--n_test_mixtures",
        "3",
        "--frame_size",
        "32",
        "--prep_num_workers",
        "1",
        "--levels",
        "5",
        "--ngf",
        "8",
        "--n_maps",
        "8",
        "--segment_samples",
        "16383",
        "--batch_size",
        "4",
        "--num_workers",
        "0",
        "--number_of_epochs",
        "1",
        "--steps_per_epoch",
        "2",
        "--max_test_mixtures",
        "1",
    ]
    result = subprocess.run(
        train, cwd=MUSIC_RECIPE, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "steps: 2" in open(os.path.join(output, "train_log.txt")).read()
    assert not os.path.exists(os.path.join(output, "model"))  # PIT: not exported
    evaluate = [
        sys.executable,
        "evaluate.py",
        "--model",
        output,
        "--pairs",
        os.path.join(music, "prepared", "test_mixtures.csv"),
        "--clips",
        os.path.join(music, "prepared", "test.csv"),
        "--output_folder",
        str(tmp_path / "eval"),
    ]
    result = subprocess.run(
        evaluate, cwd=MUSIC_RECIPE, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "none queries: SDR" in result.stdout
    rows = read_rows(tmp_path / "eval" / "none" / "test_results.csv")
    assert len(rows) == 3 and {r["output"] for r in rows} <= {"0", "1"}
    # The model evaluated by the script is the trained checkpoint: the same
    # figures as the recipe's own test run on its first pair.
    recipe_rows = read_rows(
        os.path.join(output, "test", "music", "none", "test_results.csv")
    )
    assert float(rows[0]["sdr_bss_v4"]) == pytest.approx(
        float(recipe_rows[0]["sdr_bss_v4"]), abs=1e-4
    )
    model = load_evaluation_model(output)
    assert model.query_free and model.segment_samples == 16383
    untrained = tmp_path / "untrained"
    (untrained / "save").mkdir(parents=True)
    with open(os.path.join(output, "hyperparams.yaml")) as f:
        (untrained / "hyperparams.yaml").write_text(f.read())
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_evaluation_model(str(untrained))
