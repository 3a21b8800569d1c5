"""Tests for the SynthMUSIC dataset (speechbrain_textsep.data.synthmusic)."""

import csv
import glob
import os

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from speechbrain_textsep.data import synthmusic
from speechbrain_textsep.data.synthmusic import (
    INSTRUMENTS,
    MANIFEST_FIELDS,
    MIXTURE_FIELDS,
    MUSIC11_CLASSES,
    prepare_synthmusic,
    render_clip,
    render_frames,
)

pytestmark = pytest.mark.unit

SR = 16000


def _render(label, seed, duration=1.0, **kwargs):
    inst = INSTRUMENTS[label]
    kwargs.setdefault("note_range", (inst.low, inst.high))
    return render_clip(inst.program, seed, duration, is_drums=inst.is_drums, **kwargs)


def _centroid(x):
    spectrum = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    return float((spectrum * freqs).sum() / spectrum.sum())


def _read_csv(path):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [dict(zip(header, row)) for row in reader]
    return header, rows


def test_class_tables():
    assert set(MUSIC11_CLASSES) <= set(INSTRUMENTS)
    assert "erhu" not in INSTRUMENTS
    assert len(MUSIC11_CLASSES) == 10
    for name, inst in INSTRUMENTS.items():
        assert 0 <= inst.program <= 127, name
        assert 0 <= inst.low <= inst.high <= 127, name


def test_render_deterministic():
    a = _render("violin", seed=3)
    b = _render("violin", seed=3)
    c = _render("violin", seed=4)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_cached_synth_renders_like_a_fresh_one():
    synthmusic._SYNTHS.clear()
    fresh = _render("trumpet", seed=11)
    _render("piano", seed=5)  # leaves ringing voices in the cached synth
    _render("drum", seed=5)
    np.testing.assert_array_equal(_render("trumpet", seed=11), fresh)


@pytest.mark.parametrize("label", sorted(INSTRUMENTS))
def test_clip_properties(label):
    x = _render(label, seed=7, duration=1.0)
    assert x.shape == (SR,)
    assert np.isfinite(x).all()
    peak = np.abs(x).max()
    assert 0.85 <= peak <= 1.0
    assert np.sqrt(np.mean(x**2)) > 1e-2  # not silent


def test_clip_length_other_rate():
    x = _render("flute", seed=0, duration=0.75, sample_rate=8000)
    assert x.shape == (6000,)


def test_instruments_sound_different():
    # same pitch range, so only the timbre differs: the trumpet is brighter
    shared = (60, 72)
    trumpet = [_centroid(_render("trumpet", s, note_range=shared)) for s in range(3)]
    flute = [_centroid(_render("flute", s, note_range=shared)) for s in range(3)]
    assert np.mean(trumpet) > 1.3 * np.mean(flute)
    # with their own ranges, a tuba is much darker than a violin
    tuba = [_centroid(_render("tuba", s)) for s in range(3)]
    violin = [_centroid(_render("violin", s)) for s in range(3)]
    assert np.mean(violin) > 2 * np.mean(tuba)


def test_render_errors(tmp_path):
    missing = str(tmp_path / "nope.sf2")
    with pytest.raises(FileNotFoundError, match="nope.sf2"):
        render_clip(0, 0, 1.0, soundfont=missing)
    with pytest.raises(ValueError):
        render_clip(0, 0, 1.0, note_range=(80, 60))
    with pytest.raises(ValueError, match="acoustic_guitar"):
        prepare_synthmusic(tmp_path, classes=["cello", "erhu"])


def test_frames():
    frames = render_frames("cello", seed=1, n_frames=3, size=96)
    assert len(frames) == 3
    assert all(f.size == (96, 96) and f.mode == "RGB" for f in frames)
    again = render_frames("cello", seed=1, n_frames=3, size=96)
    for f, g in zip(frames, again):
        np.testing.assert_array_equal(np.asarray(f), np.asarray(g))

    def arr(label, seed, i=0):
        return np.asarray(render_frames(label, seed, 3, 96)[i], dtype=np.float32)

    # frames of one clip differ, clips of one class differ,
    # and clips of one class are closer than clips of two classes
    assert np.abs(arr("cello", 1, 0) - arr("cello", 1, 1)).mean() > 0
    same = np.abs(arr("cello", 1) - arr("cello", 2)).mean()
    other = np.abs(arr("cello", 1) - arr("flute", 2)).mean()
    assert 0 < same < other


def _mtimes(folder):
    files = glob.glob(os.path.join(folder, "**", "*"), recursive=True)
    return {f: os.stat(f).st_mtime_ns for f in files if os.path.isfile(f)}


def test_prepare_synthmusic(tmp_path):
    opts = dict(
        classes=["cello", "flute"],
        n_train=2,
        n_valid=1,
        n_test=2,
        duration=1.0,
        n_test_mixtures=3,
    )
    paths = prepare_synthmusic(tmp_path, **opts)
    assert set(paths) == {"train", "valid", "test", "test_mixtures"}
    counts = {"train": 2, "valid": 1, "test": 2}
    ids = {}
    for split, n in counts.items():
        assert paths[split] == str(tmp_path / f"{split}.csv")
        header, rows = _read_csv(paths[split])
        assert header == MANIFEST_FIELDS
        assert len(rows) == 2 * n
        assert sorted(r["label"] for r in rows) == sorted(["cello", "flute"] * n)
        for row in rows:
            assert row["ID"].startswith(row["label"] + "_")
            assert os.path.isabs(row["audio"]) and os.path.isabs(row["frames"])
            assert row["audio"] == str(tmp_path / "audio" / split / f"{row['ID']}.wav")
            assert row["frames"] == str(tmp_path / "frames" / split / row["ID"])
            audio, sr = sf.read(row["audio"], dtype="float32")
            assert sr == SR and audio.shape == (SR,)
            assert float(row["duration"]) == 1.0
            assert 0.8 < np.abs(audio).max() <= 1.0
            assert int(row["n_frames"]) == 3
            names = sorted(os.listdir(row["frames"]))
            assert names == ["000001.jpg", "000002.jpg", "000003.jpg"]
            with Image.open(os.path.join(row["frames"], names[0])) as img:
                assert img.size == (128, 128)
        ids[split] = {r["ID"]: r for r in rows}

    # splits never share a melody
    train0 = sf.read(ids["train"]["cello_train_0000"]["audio"])[0]
    test0 = sf.read(ids["test"]["cello_test_0000"]["audio"])[0]
    assert not np.array_equal(train0, test0)

    header, mixtures = _read_csv(paths["test_mixtures"])
    assert header == MIXTURE_FIELDS
    assert len(mixtures) == 3
    assert len({frozenset((m["source1"], m["source2"])) for m in mixtures}) == 3
    for m in mixtures:
        assert m["label1"] != m["label2"]
        assert ids["test"][m["source1"]]["label"] == m["label1"]
        assert ids["test"][m["source2"]]["label"] == m["label2"]

    # same options: nothing is rewritten
    before = _mtimes(tmp_path)
    prepare_synthmusic(tmp_path, **opts)
    assert _mtimes(tmp_path) == before
    assert prepare_synthmusic(tmp_path, skip_prep=True) == paths

    # other options: everything is rendered again, stale clips are removed
    prepare_synthmusic(tmp_path, **{**opts, "n_train": 1, "seed": 99})
    after = _mtimes(tmp_path)
    _, rows = _read_csv(paths["train"])
    assert len(rows) == 2
    assert not os.path.exists(ids["train"]["cello_train_0001"]["audio"])
    assert not os.path.exists(ids["train"]["cello_train_0001"]["frames"])
    wav = ids["test"]["cello_test_0000"]["audio"]
    assert after[wav] != before[wav]
    assert not np.array_equal(sf.read(wav)[0], test0)


def test_prepare_parallel_matches_serial(tmp_path):
    opts = dict(
        classes=["violin", "tuba"],
        n_train=32,
        n_valid=0,
        n_test=1,
        duration=0.25,
        n_frames=1,
        n_test_mixtures=1,
    )
    serial = prepare_synthmusic(tmp_path / "serial", num_workers=1, **opts)
    parallel = prepare_synthmusic(tmp_path / "parallel", num_workers=2, **opts)
    for split in ("train", "test"):
        _, rows_s = _read_csv(serial[split])
        _, rows_p = _read_csv(parallel[split])
        assert [r["ID"] for r in rows_s] == [r["ID"] for r in rows_p]
        for rs, rp in zip(rows_s, rows_p):
            with open(rs["audio"], "rb") as fs, open(rp["audio"], "rb") as fp:
                assert fs.read() == fp.read()
    with open(serial["test_mixtures"]) as fs, open(parallel["test_mixtures"]) as fp:
        assert fs.read() == fp.read()
