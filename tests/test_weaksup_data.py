"""Training items of weakly-supervised separation (data/weaksup.py) on real
rendered SynthMUSIC clips."""

import csv
import os
import random

import pytest
import torch

from speechbrain_textsep.data.synthmusic import prepare_synthmusic
from speechbrain_textsep.data.weaksup import (
    MixtureListSet,
    WeakSupTrainSet,
    collate_items,
    read_segment,
    single_source_subset,
)
from speechbrain_textsep.processing.audio_io import read_audio
from speechbrain_textsep.utils.caption_split import label_mixture_caption
from speechbrain_textsep.utils.captions import label_caption

pytestmark = pytest.mark.unit

CLASSES = ["flute", "tuba", "xylophone", "cello", "trumpet", "acoustic_guitar"]
SEGMENT = 8000  # the whole 0.5 s clip: crops are the clip itself


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """6 instruments, 4 training clips each, 0.5 s at 16 kHz."""
    path = str(tmp_path_factory.mktemp("synthmusic6"))
    prepare_synthmusic(
        path,
        classes=CLASSES,
        n_train=4,
        n_valid=1,
        n_test=1,
        duration=0.5,
        n_frames=1,
        n_test_mixtures=3,
    )
    return path


def train_set(folder, **options):
    values = {
        "n_items": 12,
        "segment_samples": SEGMENT,
        "sample_rate": 16000,
        "n_mixtures": 2,
        "n_sources": 3,
        **options,
    }
    return WeakSupTrainSet(os.path.join(folder, "train.csv"), **values)


def clip_audio(folder):
    with open(os.path.join(folder, "train.csv"), newline="") as f:
        return {
            row["ID"]: read_audio(row["audio"], mono=True)[0]
            for row in csv.DictReader(f)
        }


def test_items_are_mixtures_of_distinct_classes_with_captions_and_prompts(folder):
    data = train_set(folder)
    audio = clip_audio(folder)
    for index in range(len(data)):
        item = data[index]
        labels = [label for mixture in item["labels"] for label in mixture]
        assert len(labels) == 6 and len(set(labels)) == 6
        assert item["mixtures"].shape == (2, SEGMENT)
        assert item["prompt_weights"].tolist() == [[1.0] * 3] * 2
        assert item["single_source"] is False
        for n in range(2):
            assert item["captions"][n] == label_mixture_caption(item["labels"][n])
            assert sorted(item["prompts"][n]) == sorted(
                label_caption(label) for label in item["labels"][n]
            )
            clips = item["clips"][n]
            assert [c.rsplit("_train_", 1)[0] for c in clips] == item["labels"][n]
            # gain 1: the mixture is the plain sum of its clips
            expected = sum(audio[c] for c in clips)
            assert torch.allclose(item["mixtures"][n], expected, atol=1e-6)


def test_items_are_reproducible_and_differ_between_epochs(folder):
    first, second = train_set(folder), train_set(folder)
    assert first[3]["clips"] == second[3]["clips"]
    assert torch.equal(first[3]["mixtures"], second[3]["mixtures"])
    assert first[3]["clips"] != first[4]["clips"]
    epoch0 = [first[i]["clips"] for i in range(len(first))]
    first.set_epoch(1)
    assert [first[i]["clips"] for i in range(len(first))] != epoch0
    first.set_epoch(0)
    assert [first[i]["clips"] for i in range(len(first))] == epoch0
    other_seed = train_set(folder, seed=7)
    assert [other_seed[i]["clips"] for i in range(len(first))] != epoch0
    with pytest.raises(IndexError):
        first[len(first)]


def test_gains_scale_each_clip_within_their_range(folder):
    data = train_set(folder, gain_min=0.5, gain_max=1.5, n_mixtures=1, n_sources=1)
    audio = clip_audio(folder)
    ratios = []
    for index in range(len(data)):
        item = data[index]
        clip = audio[item["clips"][0][0]]
        ratios.append(float(item["mixtures"][0] @ clip / (clip @ clip)))
    assert all(0.5 <= r < 1.5 for r in ratios)
    assert max(ratios) - min(ratios) > 0.1


def test_random_crops_come_from_the_clip(folder):
    with open(os.path.join(folder, "train.csv"), newline="") as f:
        row = next(csv.DictReader(f))
    whole = read_audio(row["audio"], mono=True)[0]
    crop = read_segment(row["audio"], 2000, 16000, random.Random(3))
    starts = [s for s in range(0, 6001) if torch.allclose(whole[s : s + 2000], crop)]
    assert starts
    centre = read_segment(row["audio"], 2000, 16000)
    assert torch.equal(centre, whole[3000:5000])
    # resampled to another rate: 0.25 s at 8 kHz
    assert read_segment(row["audio"], 2000, 8000).shape == (2000,)


def test_single_source_subset_is_a_fixed_fraction_of_every_class():
    rows = [{"ID": f"{c}_{i:02d}", "label": c} for c in "abc" for i in range(40)]
    subset = single_source_subset(rows, 0.05, seed=1)
    assert [r["label"] for r in subset] == ["a", "a", "b", "b", "c", "c"]
    assert subset == single_source_subset(list(reversed(rows)), 0.05, seed=1)
    assert subset != single_source_subset(rows, 0.05, seed=2)
    assert len(single_source_subset(rows, 1.0)) == 120
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        single_source_subset(rows, 1.5)


def test_semi_supervised_items_mix_both_kinds_from_disjoint_clips(folder):
    data = train_set(
        folder,
        n_items=40,
        n_sources=2,
        single_source_fraction=0.25,
        single_source_share=0.5,
    )
    rows = [row for group in data.single_by_label.values() for row in group]
    single_ids = {row["ID"] for row in rows}
    assert len(single_ids) == 6  # one clip of each class
    items = [data[i] for i in range(len(data))]
    singles = [item for item in items if item["single_source"]]
    assert 10 <= len(singles) <= 30
    for item in items:
        clips = {c for mixture in item["clips"] for c in mixture}
        if item["single_source"]:
            assert clips <= single_ids
            assert len(item["labels"][0]) == 1
            caption = label_caption(item["labels"][0][0])
            assert item["captions"][0] == caption
            assert item["prompts"][0] == [caption, caption]
            assert item["prompt_weights"][0].tolist() == [0.5, 0.5]
        else:
            assert not clips & single_ids  # mixtures: the other 75 %


def test_captioned_manifests_give_natural_mixtures_and_caption_clauses(
    folder, tmp_path
):
    with open(os.path.join(folder, "train.csv"), newline="") as f:
        rows = list(csv.DictReader(f))[:4]
    captions = [
        "A dog barks while a man speaks",
        "Birds chirp and water flows, followed by a car horn",
        "A man and woman talk",
        "Rain falls",
    ]
    path = tmp_path / "captions.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["ID", "audio", "caption", "duration"])
        writer.writeheader()
        for row, caption in zip(rows, captions):
            writer.writerow(
                {**{k: row[k] for k in ("ID", "audio", "duration")}, "caption": caption}
            )
    data = WeakSupTrainSet(str(path), 6, SEGMENT, 16000, n_mixtures=2, n_prompts=3)
    for index in range(len(data)):
        item = data[index]
        for n in range(2):
            caption = item["captions"][n]
            assert caption in captions and item["clips"][n][0] in {
                r["ID"] for r in rows
            }
            weights = item["prompt_weights"][n]
            clauses = set(item["prompts"][n])
            for clause in clauses:
                copies = [w for p, w in zip(item["prompts"][n], weights) if p == clause]
                assert sum(copies) == pytest.approx(1.0)
    man_and_woman = [
        data[i]["prompts"][n]
        for i in range(len(data))
        for n in range(2)
        if data[i]["captions"][n] == "A man and woman talk"
    ]
    assert man_and_woman
    for prompts in man_and_woman:
        assert prompts == ["a man and woman talk"] * 3
    with pytest.raises(ValueError, match="no single-source clips"):
        WeakSupTrainSet(str(path), 6, SEGMENT, 16000, single_source_share=0.5)


def test_bad_settings_are_refused_with_clear_errors(folder, tmp_path):
    with pytest.raises(ValueError, match="need 8 classes"):
        train_set(folder, n_sources=4)
    with pytest.raises(ValueError, match="single_source_fraction > 0"):
        train_set(folder, single_source_share=0.5)
    with pytest.raises(ValueError, match="single_source_share must be in"):
        train_set(folder, single_source_share=2)
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        WeakSupTrainSet(str(tmp_path / "none.csv"), 1, SEGMENT, 16000)
    bad = tmp_path / "bad.csv"
    bad.write_text("ID,audio,duration\na,a.wav,1.0\n")
    with pytest.raises(ValueError, match="neither a 'label' nor a 'caption'"):
        WeakSupTrainSet(str(bad), 1, SEGMENT, 16000)


def test_valid_mixtures_hold_both_centred_sources(folder, tmp_path):
    data = MixtureListSet(
        os.path.join(folder, "test_mixtures.csv"),
        os.path.join(folder, "test.csv"),
        4000,
        16000,
    )
    with open(os.path.join(folder, "test_mixtures.csv"), newline="") as f:
        pairs = list(csv.DictReader(f))
    with open(os.path.join(folder, "test.csv"), newline="") as f:
        clips = {row["ID"]: row for row in csv.DictReader(f)}
    assert len(data) == len(pairs) == 3
    for item, pair in zip(data, pairs):
        assert item["labels"] == [pair["label1"], pair["label2"]]
        for k, key in enumerate(("source1", "source2")):
            whole = read_audio(clips[pair[key]]["audio"], mono=True)[0]
            assert torch.equal(item["sources"][k], whole[2000:6000])
    broken = tmp_path / "pairs.csv"
    broken.write_text("ID,source1,label1,source2,label2\nm,nope,a,nope2,b\n")
    with pytest.raises(KeyError, match="nope"):
        MixtureListSet(str(broken), os.path.join(folder, "test.csv"), 4000, 16000)


def test_collated_batches_keep_each_items_lists(folder):
    data = train_set(folder)
    batch = collate_items([data[0], data[1]])
    assert batch.mixtures.data.shape == (2, 2, SEGMENT)
    assert batch.prompt_weights.data.shape == (2, 2, 3)
    assert batch.captions == [data[0]["captions"], data[1]["captions"]]
    assert batch.prompts[1] == data[1]["prompts"]
    assert batch.single_source == [False, False]
