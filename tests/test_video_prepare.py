"""Tests of the MUSIC and VGGSound preparations from (synthetic) video files."""

import csv
import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from PIL import Image

from speechbrain_textsep.data.clips import FRAME_NAME, clip_dataset
from speechbrain_textsep.data.music import prepare_music
from speechbrain_textsep.data.synthmusic import MANIFEST_FIELDS, MIXTURE_FIELDS
from speechbrain_textsep.data.synthvideo import (
    corrupt_video,
    read_frame_index,
    synth_audio,
    write_music_videos,
    write_vggsound_videos,
    write_video,
)
from speechbrain_textsep.data.vggsound import is_music_label, prepare_vggsound
from speechbrain_textsep.data.video_decode import (
    ClipError,
    ExtractionConfig,
    _resize_for_clip,
    extract_clip,
)

pytestmark = pytest.mark.integration

SR = 16000
SECONDS = 3.0
VIDEO_FPS = 8
CLASSES = ("cello", "flute", "trumpet")
VGG_LABELS = ("dog barking", "playing violin, fiddle", "rain")

# broken MUSIC videos: (class folder, stem) -> reason
MUSIC_BROKEN = {
    ("cello", "cut_moov"): "unreadable",
    ("cello", "too_short"): "too_short",
    ("flute", "garbage"): "unreadable",
    ("flute", "audio_only"): "no_video",
    ("trumpet", "mute_video"): "no_audio",
    ("trumpet", "cut_faststart"): "truncated",
    ("trumpet", "silence"): "silent",
}


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, [dict(zip(header, row)) for row in reader]


def _manifests(folder):
    names = ("train", "valid", "test", "test_mixtures")
    return {n: _read_csv(os.path.join(folder, f"{n}.csv")) for n in names}


def _resampled_source(video):
    source = synth_audio(video.label, video.seed, video.seconds, video.audio_rate)
    return torchaudio.functional.resample(
        torch.from_numpy(source), video.audio_rate, SR
    ).numpy()


def _check_audio(row, video):
    audio, rate = sf.read(row["audio"], dtype="float32")
    assert rate == SR and audio.ndim == 1
    assert len(audio) == int(SECONDS * SR)
    assert float(row["duration"]) == pytest.approx(SECONDS)
    reference = _resampled_source(video)
    n = min(len(audio), len(reference))
    assert np.corrcoef(audio[:n], reference[:n])[0, 1] > 0.99


def _check_frames(row, fps=VIDEO_FPS, size=224):
    n_frames = int(row["n_frames"])
    assert n_frames == int(SECONDS)  # 1 fps
    names = sorted(os.listdir(row["frames"]))
    assert names == [FRAME_NAME.format(i) for i in range(1, n_frames + 1)]
    for k, name in enumerate(names, start=1):
        with Image.open(os.path.join(row["frames"], name)) as image:
            assert image.size == (size, size) and image.mode == "RGB"
            # frame k is the picture shown at (k - 1) seconds
            assert read_frame_index(image) == (k - 1) * fps


def _write_music_tree(root):
    videos = write_music_videos(root, CLASSES, n_per_class=3, seconds=SECONDS, seed=0)
    for (label, stem), _ in MUSIC_BROKEN.items():
        path = os.path.join(root, label, f"{stem}.mp4")
        kwargs = {
            "too_short": {"seconds": 0.5},
            "audio_only": {"video": False},
            "mute_video": {"audio": False},
            "cut_faststart": {"faststart": True},
            "silence": {"gain": 0.0},
        }.get(stem, {})
        write_video(path, label, seed=7, **{"seconds": SECONDS, **kwargs})
        if stem in ("cut_moov", "cut_faststart"):
            corrupt_video(path, "truncate", keep=0.5)
        elif stem == "garbage":
            corrupt_video(path, "garbage")
    return {
        f"{v.label}_{os.path.splitext(os.path.basename(v.path))[0]}": v for v in videos
    }


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    """Synthetic MUSIC videos and their serial preparation."""
    root = tmp_path_factory.mktemp("music")
    videos = _write_music_tree(str(root / "videos"))
    save = str(root / "serial")
    kwargs = dict(
        valid_ratio=0.2, test_ratio=0.3, n_test_mixtures=5, seed=3, num_workers=1
    )
    paths = prepare_music(str(root / "videos"), save, **kwargs)
    return {"root": root, "videos": videos, "save": save, "paths": paths, **kwargs}


def test_music_manifests_and_outputs(music):
    manifests = _manifests(music["save"])
    rows = {}
    for split in ("train", "valid", "test"):
        header, split_rows = manifests[split]
        assert header == MANIFEST_FIELDS
        assert split_rows, split
        for row in split_rows:
            assert row["ID"] not in rows
            rows[row["ID"]] = row
    assert sorted(rows) == sorted(music["videos"])  # every good video, only them
    for clip_id, video in music["videos"].items():
        assert rows[clip_id]["label"] == video.label
        _check_audio(rows[clip_id], video)
        _check_frames(rows[clip_id])

    header, mixtures = manifests["test_mixtures"]
    assert header == MIXTURE_FIELDS and len(mixtures) == 5
    test_ids = {r["ID"]: r["label"] for r in manifests["test"][1]}
    for mix in mixtures:
        assert test_ids[mix["source1"]] == mix["label1"]
        assert test_ids[mix["source2"]] == mix["label2"]
        assert mix["label1"] != mix["label2"]


def test_music_broken_videos_reported_and_skipped(music):
    _, failed = _read_csv(os.path.join(music["save"], "failed.csv"))
    expected = {f"{label}_{stem}": r for (label, stem), r in MUSIC_BROKEN.items()}
    assert {r["ID"]: r["reason"] for r in failed} == expected
    for row in failed:
        assert row["message"] and row["video"].endswith(".mp4")
        assert not os.path.exists(
            os.path.join(music["save"], "audio", row["ID"] + ".wav")
        )
    with open(os.path.join(music["save"], "prepare_report.json")) as f:
        report = json.load(f)
    assert report["n_listed"] == len(music["videos"]) + len(MUSIC_BROKEN)
    assert report["n_extracted"] == len(music["videos"])
    assert report["n_failed"] == len(MUSIC_BROKEN)
    reasons = sorted(set(MUSIC_BROKEN.values()))
    assert report["failures"] == {
        r: list(MUSIC_BROKEN.values()).count(r) for r in reasons
    }


def test_music_parallel_equals_serial(music, tmp_path):
    save = str(tmp_path / "parallel")
    kwargs = {k: music[k] for k in ("valid_ratio", "test_ratio", "n_test_mixtures")}
    prepare_music(str(music["root"] / "videos"), save, seed=3, num_workers=2, **kwargs)
    serial, parallel = _manifests(music["save"]), _manifests(save)
    for name in serial:
        text = json.dumps(parallel[name]).replace(save, music["save"])
        assert json.loads(text) == json.loads(json.dumps(serial[name])), name
    clip_id = sorted(music["videos"])[0]
    a, _ = sf.read(os.path.join(save, "audio", f"{clip_id}.wav"))
    b, _ = sf.read(os.path.join(music["save"], "audio", f"{clip_id}.wav"))
    np.testing.assert_array_equal(a, b)


def _mtimes(folder):
    return {
        os.path.relpath(os.path.join(d, f), folder): os.stat(
            os.path.join(d, f)
        ).st_mtime_ns
        for d, _, files in os.walk(folder)
        for f in files
        if f.endswith((".wav", ".jpg"))
    }


def _report(folder):
    with open(os.path.join(folder, "prepare_report.json")) as f:
        return json.load(f)


def test_music_resume(music, tmp_path, capsys):
    save = str(tmp_path / "resumed")
    shutil.copytree(music["save"], save)
    for name in ("train", "valid", "test"):  # the copy's manifests name its files
        path = os.path.join(save, f"{name}.csv")
        with open(path) as f:
            text = f.read().replace(music["save"], save)
        with open(path, "w") as f:
            f.write(text)
    kwargs = {k: music[k] for k in ("valid_ratio", "test_ratio", "n_test_mixtures")}
    videos = str(music["root"] / "videos")

    def run():
        return prepare_music(videos, save, seed=3, num_workers=1, **kwargs)

    # same options, nothing changed: the whole preparation is skipped
    capsys.readouterr()
    before = _mtimes(save)
    report_mtime = os.stat(os.path.join(save, "prepare_report.json")).st_mtime_ns
    run()
    assert capsys.readouterr().out == ""
    assert (
        os.stat(os.path.join(save, "prepare_report.json")).st_mtime_ns == report_mtime
    )

    # an interrupted run: no options file nor manifests, clip A half-written
    # (no marker, a short wav, a frame missing, temporary files), clip B done
    # but its marker not yet written
    clip_a, clip_b = sorted(music["videos"])[:2]
    for name in ("music_opts.json", "test.csv", "test_mixtures.csv"):
        os.remove(os.path.join(save, name))
    os.remove(os.path.join(save, "extracted", f"{clip_a}.json"))
    os.remove(os.path.join(save, "extracted", f"{clip_b}.json"))
    sf.write(os.path.join(save, "audio", f"{clip_a}.wav"), np.zeros(100), SR)
    os.remove(os.path.join(save, "frames", clip_a, FRAME_NAME.format(2)))
    os.makedirs(os.path.join(save, "frames", f"{clip_a}.tmp999"))
    open(os.path.join(save, "audio", f"{clip_a}.wav.tmp999"), "w").close()
    run()
    report = _report(save)
    assert report["n_extracted"] == 2
    assert report["n_reused"] == len(music["videos"]) - 2
    after = _mtimes(save)
    changed = {p for p in before if after.get(p) != before[p]}
    assert changed and all(clip_a in p or clip_b in p for p in changed)
    assert not [p for p in os.listdir(os.path.join(save, "frames")) if ".tmp" in p]
    assert not [p for p in os.listdir(os.path.join(save, "audio")) if ".tmp" in p]
    resumed = _manifests(save)
    serial = _manifests(music["save"])
    for name in serial:
        text = json.dumps(resumed[name]).replace(save, music["save"])
        assert json.loads(text) == json.loads(json.dumps(serial[name])), name
    rows = {r["ID"]: r for s in ("train", "valid", "test") for r in resumed[s][1]}
    _check_audio(rows[clip_a], music["videos"][clip_a])
    _check_frames(rows[clip_a])

    # a modified source video is extracted again, the others are reused
    video = music["videos"][clip_b].path
    st = os.stat(video)
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    run()
    assert _report(save)["n_extracted"] == 1


def test_music_manifests_load_with_clip_dataset(music):
    from torchvision.transforms.functional import to_tensor

    def preprocess(path):
        with Image.open(path) as image:
            return to_tensor(image.convert("RGB"))

    data = clip_dataset(
        music["paths"]["train"], segment_samples=32767, image_preprocess=preprocess
    )
    item = data[0]
    assert item["sig"].shape == (32767,)
    assert item["query_frames"].shape == (3, 3, 224, 224)
    assert item["label"] in CLASSES
    assert float(item["sig"].abs().max()) > 0.1


def test_vggsound(tmp_path):
    root = str(tmp_path / "clips")
    csv_path, videos = write_vggsound_videos(
        root, VGG_LABELS, n_train=3, n_test=2, seconds=SECONDS, seed=1
    )
    # a clip never downloaded, a duplicated row, a broken and a mute clip
    rows = [
        ["notDownload", 30, "rain", "train"],
        [videos[0].youtube_id, videos[0].start, videos[0].label, videos[0].split],
        ["brokenClip1", 12, "dog barking", "test"],
        ["muteClip-_1", 0, "rain", "test"],
    ]
    with open(csv_path, "a", newline="") as f:
        csv.writer(f).writerows(rows)
    corrupt = write_video(os.path.join(root, "brokenClip1_000012.mp4"), "dog", 1)
    corrupt_video(corrupt.path, "garbage")
    write_video(os.path.join(root, "muteClip-_1_000000.mp4"), "rain", 2, audio=False)

    save = str(tmp_path / "prepared")
    paths = prepare_vggsound(root, save, valid_ratio=0.3, seed=5, num_workers=2)
    manifests = _manifests(save)
    by_id = {f"{v.youtube_id}_{v.start:06d}": v for v in videos}
    found = {}
    for split in ("train", "valid", "test"):
        header, split_rows = manifests[split]
        assert header == MANIFEST_FIELDS
        for row in split_rows:
            found[row["ID"]] = split
            video = by_id[row["ID"]]
            assert row["label"] == video.label
            assert (split == "test") == (video.split == "test")
    assert sorted(found) == sorted(by_id)
    for label in VGG_LABELS:  # 3 training clips: 1 to valid
        assert [found[i] for i, v in by_id.items() if v.label == label].count(
            "valid"
        ) == 1
    for clip_id in sorted(by_id)[:3]:
        row = next(
            r
            for s in ("train", "valid", "test")
            for r in manifests[s][1]
            if r["ID"] == clip_id
        )
        _check_audio(row, by_id[clip_id])
        _check_frames(row)

    _, failed = _read_csv(os.path.join(save, "failed.csv"))
    assert {r["ID"]: r["reason"] for r in failed} == {
        "notDownload_000030": "missing",
        "brokenClip1_000012": "unreadable",
        "muteClip-_1_000000": "no_audio",
    }
    report = _report(save)
    assert report["n_duplicate_rows"] == 1 and report["n_failed"] == 3

    # one mixture per test target; interferers never music, never the same label
    test_labels = {r["ID"]: r["label"] for r in manifests["test"][1]}
    header, mixtures = manifests["test_mixtures"]
    assert header == MIXTURE_FIELDS
    assert sorted(m["source1"] for m in mixtures) == sorted(test_labels)
    for mix in mixtures:
        assert test_labels[mix["source2"]] == mix["label2"]
        assert not is_music_label(mix["label2"]) and mix["label2"] != mix["label1"]

    # labels with commas survive the manifest and load through clip_dataset
    data = clip_dataset(paths["test"], segment_samples=16000)
    assert sorted({data[i]["label"] for i in range(len(data))}) == sorted(VGG_LABELS)


@pytest.mark.parametrize(
    "video_fps, seconds, fps, expected",
    [(6, 2.5, 1.0, [0, 6, 12]), (6, 2.5, 2.0, [0, 3, 6, 9, 12]), (10, 1.0, 1.0, [0])],
)
def test_frame_times(tmp_path, video_fps, seconds, fps, expected):
    path = str(tmp_path / "v.mp4")
    write_video(path, "piano", 4, seconds=seconds, fps=video_fps, size=32)
    frames = str(tmp_path / "frames")
    config = ExtractionConfig(fps=fps, frame_size=None)
    info = extract_clip(path, str(tmp_path / "a.wav"), frames, config, min_duration=0.5)
    assert info["n_frames"] == len(expected)
    assert info["n_samples"] == int(seconds * SR)
    indices = []
    for k in range(1, info["n_frames"] + 1):
        with Image.open(os.path.join(frames, FRAME_NAME.format(k))) as image:
            assert image.size == (32, 32)  # frame_size=None keeps the size
            indices.append(read_frame_index(image))
    assert indices == expected


def test_resize_for_clip_centre_crops():
    wide = np.zeros((64, 96, 3), dtype=np.uint8)
    wide[:, 40:56] = 255  # a bar in the middle third
    out = np.asarray(_resize_for_clip(Image.fromarray(wide), 224, 1.0))
    assert out.shape == (224, 224, 3)
    middle = out[:, 112].mean()
    assert middle > 250 and out[:, 5].mean() < 5  # centred, sides cropped


def test_extract_clip_errors(tmp_path):
    with pytest.raises(ClipError) as err:
        extract_clip(
            str(tmp_path / "nope.mp4"), str(tmp_path / "a.wav"), str(tmp_path / "f")
        )
    assert err.value.reason == "missing"
    path = str(tmp_path / "empty.mp4")
    open(path, "w").close()
    with pytest.raises(ClipError) as err:
        extract_clip(path, str(tmp_path / "a.wav"), str(tmp_path / "f"))
    assert err.value.reason == "unreadable" and "empty.mp4" in str(err.value)
    assert sorted(os.listdir(tmp_path)) == ["empty.mp4"]  # nothing left behind
    with pytest.raises(ValueError, match="fps must be positive"):
        extract_clip(path, "a.wav", "f", ExtractionConfig(fps=0))


def test_music_split_file(music, tmp_path):
    cello = sorted(i for i in music["videos"] if i.startswith("cello_"))
    stems = [os.path.basename(music["videos"][i].path)[:-4] for i in cello]
    split_file = tmp_path / "split.csv"
    split_file.write_text(
        "key,split\n"
        f"cello/{stems[0]}.mp4,train\ncello/{stems[1]},train\n{stems[2]},val\n"
        "cello/ghost,test\nnowhere,test\n"
    )
    save = str(tmp_path / "prepared")
    prepare_music(
        str(music["root"] / "videos"),
        save,
        classes=["cello"],
        split_file=str(split_file),
        n_test_mixtures=0,
        num_workers=1,
    )
    manifests = _manifests(save)
    assert [r["ID"] for r in manifests["train"][1]] == cello[:2]
    assert [r["ID"] for r in manifests["valid"][1]] == cello[2:]
    assert manifests["test"][1] == [] and manifests["test_mixtures"][1] == []
    _, failed = _read_csv(os.path.join(save, "failed.csv"))
    assert [(r["ID"], r["reason"], r["split"]) for r in failed] == [
        ("cello_ghost", "missing", "test")
    ]
    report = _report(save)
    assert report["n_not_in_split_file"] == 2  # the two broken cello videos
    assert report["split_file_unmatched"] == ["nowhere"]


def test_vggsound_name_pattern(tmp_path):
    pattern = "{split}/{youtube_id}_{start}_{end}.mp4"
    root = str(tmp_path / "clips")
    write_vggsound_videos(
        root,
        ("rain", "wind noise"),
        n_train=1,
        n_test=1,
        seconds=1.5,
        name_pattern=pattern,
    )
    assert os.path.isdir(os.path.join(root, "test"))
    save = str(tmp_path / "prepared")
    prepare_vggsound(root, save, name_pattern=pattern, valid_ratio=0.0, num_workers=1)
    manifests = _manifests(save)
    assert len(manifests["train"][1]) == 2 and manifests["valid"][1] == []
    assert len(manifests["test"][1]) == 2 and len(manifests["test_mixtures"][1]) == 2
    assert _report(save)["n_failed"] == 0

    # a given list of test targets (e.g. clean clips): one mixture each
    target = manifests["test"][1][0]["ID"]
    targets_file = tmp_path / "clean.txt"
    targets_file.write_text(f"# clean test clips\n{target}\nnot_a_clip\n")
    prepare_vggsound(
        root,
        save,
        name_pattern=pattern,
        valid_ratio=0.0,
        num_workers=1,
        test_targets=str(targets_file),
    )
    assert _report(save)["n_reused"] == 4
    assert [m["source1"] for m in _manifests(save)["test_mixtures"][1]] == [target]
