"""Clip datasets (crops, frames) and the mix-and-separate pairing."""

import os

import pytest
import torch
from speechbrain.dataio.batch import PaddedBatch

from speechbrain_textsep.data.clips import (
    clip_dataset,
    crop_bounds,
    frame_indices,
    pair_partners,
)
from speechbrain_textsep.data.synthmusic import prepare_synthmusic
from speechbrain_textsep.encoders.clip import TINY_CLIP_CFG, CLIPQueryEncoder

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("synth"))
    return prepare_synthmusic(
        folder,
        classes=["flute", "tuba"],
        n_train=2,
        n_valid=1,
        n_test=1,
        duration=1.5,
        n_test_mixtures=1,
    )


def test_crops_are_random_at_training_and_centred_otherwise():
    import random

    rng = random.Random(0)
    starts = {crop_bounds(1000, 100, train=True, rng=rng)[0] for _ in range(50)}
    assert len(starts) > 10 and min(starts) >= 0 and max(starts) <= 900
    assert crop_bounds(1000, 100, train=False) == (450, 550)


def test_frame_indices_stay_inside_the_clip():
    assert frame_indices(0.0, 5, 3) == [1, 2, 3]
    assert frame_indices(10.0, 5, 3) == [3, 4, 5]
    assert frame_indices(1.0, 2, 3) == [1, 2]


def test_clip_dataset_items(manifests):
    data = clip_dataset(manifests["train"], segment_samples=16383, train=True)
    item = data[0]
    assert set(item) == {"id", "sig", "label"}
    assert item["sig"].shape == (16383,) and item["label"] in ("flute", "tuba")
    # clips shorter than the segment are zero-padded
    long = clip_dataset(manifests["valid"], segment_samples=32000)[0]["sig"]
    assert long.shape == (32000,) and long[24000:].abs().max() == 0


def test_clip_dataset_with_image_frames(manifests):
    torch.manual_seed(0)
    encoder = CLIPQueryEncoder(model_cfg=TINY_CLIP_CFG, pretrained=None)
    data = clip_dataset(
        manifests["valid"], 16383, image_preprocess=encoder.preprocess, n_query_frames=3
    )
    batch = PaddedBatch([data[0], data[1]])
    assert batch.query_frames.data.shape == (2, 3, 3, 32, 32)
    assert encoder.encode_image(batch.query_frames.data).shape == (2, 32)


def test_missing_manifest_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        clip_dataset(os.path.join(tmp_path, "nope.csv"), 100)


def test_pairing_picks_other_labels():
    labels = ["a", "b", "a", "c", "b", "a"]
    for seed in range(5):
        partner = pair_partners(labels, torch.Generator().manual_seed(seed))
        for i, j in enumerate(partner.tolist()):
            assert labels[i] != labels[j]
    same = pair_partners(["a", "a", "a"])
    assert same.tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match="at least 2"):
        pair_partners(["a"])
