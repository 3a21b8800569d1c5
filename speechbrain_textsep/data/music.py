"""Data preparation of the MUSIC dataset (solo instrument videos).

The input is a folder of class folders, the layout of the downloaded solo
videos of MUSIC / MUSIC21::

    data_folder/<instrument>/<video_id>.mp4     (.mkv, .webm, .mov, .avi, .m4v too)

The folder name is the label (verbatim, e.g. ``acoustic_guitar``) and the clip
ID is ``<instrument>_<video_id>`` (characters other than letters, digits,
``_``, ``-`` and ``.`` become ``_``). Each whole video becomes one clip: the
training pipeline crops segments from it. Splits are read from a split file,
or drawn per class (deterministically from ``seed``) among the videos that
were extracted successfully, so that broken videos do not leave a split short
(a video that becomes usable, or unusable, changes the draw of its class).
The test mixtures pair test clips of two different classes, as SynthMUSIC
does.

The outputs (audio, frames, manifests, report) are described in
:mod:`speechbrain_textsep.data.video`.

Authors
 * speechbrain-textsep contributors
"""

import csv
import os

import numpy as np

from speechbrain_textsep.data.synthmusic import pair_test_mixtures, stable_int
from speechbrain_textsep.data.video import manifest_paths, prepare_video_dataset
from speechbrain_textsep.data.video_decode import ExtractionConfig
from speechbrain_textsep.data.video_jobs import VIDEO_EXTENSIONS, VideoClip, safe_id

#: Split names accepted in a split file, and what they mean.
SPLIT_ALIASES = {
    "train": "train",
    "valid": "valid",
    "val": "valid",
    "validation": "valid",
    "dev": "valid",
    "test": "test",
}


def list_music_videos(data_folder, classes=None, extensions=VIDEO_EXTENSIONS):
    """Lists the videos of a MUSIC-style folder of class folders.

    Arguments
    ---------
    data_folder : str
        Folder holding one sub-folder of videos per class.
    classes : list of str, optional
        The class folders to use; all of them by default.
    extensions : tuple of str
        File name extensions of videos (compared in lower case).

    Returns
    -------
    list of tuple
        ``(label, stem, path)`` for every video, sorted by label and stem.

    Raises
    ------
    FileNotFoundError
        If ``data_folder`` or a requested class folder does not exist.
    ValueError
        If no video is found.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     os.makedirs(os.path.join(tmp, "flute"))
    ...     open(os.path.join(tmp, "flute", "abc.mp4"), "w").close()
    ...     [(label, stem) for label, stem, _ in list_music_videos(tmp)]
    [('flute', 'abc')]
    """
    data_folder = os.path.abspath(os.fspath(data_folder))
    if not os.path.isdir(data_folder):
        raise FileNotFoundError(f"MUSIC data_folder not found: {data_folder}")
    found = sorted(
        e.name for e in os.scandir(data_folder) if e.is_dir() and e.name[0] != "."
    )
    if classes is None:
        classes = found
    missing = [c for c in classes if c not in found]
    if missing:
        raise FileNotFoundError(
            f"class folder(s) {missing} not found in {data_folder} (found: {found})"
        )
    extensions = tuple(e.lower() for e in extensions)
    videos = []
    for label in sorted(set(classes)):
        folder = os.path.join(data_folder, label)
        for entry in os.scandir(folder):
            stem, ext = os.path.splitext(entry.name)
            if entry.is_file() and ext.lower() in extensions and stem[:1] != ".":
                videos.append((label, stem, entry.path))
    if not videos:
        raise ValueError(
            f"no video ({', '.join(extensions)}) found in the class folders of "
            f"{data_folder}; expected <data_folder>/<instrument>/<video_id>.mp4"
        )
    return sorted(videos)


def music_clip_id(label, stem):
    """The clip ID of a MUSIC video.

    Arguments
    ---------
    label : str
        Class folder name.
    stem : str
        Video file name without extension.

    Returns
    -------
    str
        ``safe_id(f"{label}_{stem}")``.

    Example
    -------
    >>> music_clip_id("acoustic guitar", "x1-Y")
    'acoustic_guitar_x1-Y'
    """
    return safe_id(f"{label}_{stem}")


def check_ratios(valid_ratio, test_ratio=0.0):
    """Raises ValueError unless both ratios are in [0, 1) and sum below 1.

    Arguments
    ---------
    valid_ratio : float
        Fraction for validation.
    test_ratio : float
        Fraction for test.

    Example
    -------
    >>> check_ratios(0.5, 0.5)
    Traceback (most recent call last):
    ...
    ValueError: valid_ratio + test_ratio must be below 1, got 0.5 + 0.5
    """
    for name, value in (("valid_ratio", valid_ratio), ("test_ratio", test_ratio)):
        if not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    if valid_ratio + test_ratio >= 1:
        raise ValueError(
            "valid_ratio + test_ratio must be below 1, got "
            f"{valid_ratio} + {test_ratio}"
        )


def split_counts(n, valid_ratio, test_ratio):
    """How many of ``n`` clips of a class go to train, valid and test.

    Each count is rounded from its ratio; a non-zero ratio gets at least one
    clip when the class has at least 2 clips (test first, then valid), and
    at least one clip always stays in train.

    Arguments
    ---------
    n : int
        Clips of the class.
    valid_ratio : float
        Fraction for validation.
    test_ratio : float
        Fraction for test.

    Returns
    -------
    tuple of int
        ``(n_train, n_valid, n_test)``.

    Example
    -------
    >>> split_counts(20, 0.1, 0.1), split_counts(3, 0.1, 0.1), split_counts(1, 0.1, 0.1)
    ((16, 2, 2), (1, 1, 1), (1, 0, 0))
    """
    check_ratios(valid_ratio, test_ratio)
    n_test = int(round(n * test_ratio))
    n_valid = int(round(n * valid_ratio))
    if test_ratio > 0 and n_test == 0 and n >= 2:
        n_test = 1
    if valid_ratio > 0 and n_valid == 0 and n - n_test >= 2:
        n_valid = 1
    while n > 0 and n_valid + n_test >= n:
        if n_valid > 0:
            n_valid -= 1
        else:
            n_test -= 1
    return n - n_valid - n_test, n_valid, n_test


def read_split_file(path):
    """Reads a split file: CSV rows ``key,split``, an optional header.

    ``key`` is ``<instrument>/<video_id>`` or ``<video_id>`` (a video file
    extension is ignored); ``split`` is ``train``, ``valid`` (or ``val``,
    ``validation``, ``dev``) or ``test``. Blank lines and lines starting
    with ``#`` are ignored.

    Arguments
    ---------
    path : str
        The split file.

    Returns
    -------
    dict
        ``key -> split`` (``train``, ``valid`` or ``test``).

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = os.path.join(tmp, "split.csv")
    ...     with open(p, "w") as f:
    ...         _ = f.write("key,split\\nflute/abc.mp4,val\\ndef,test\\n")
    ...     read_split_file(p)
    {'flute/abc': 'valid', 'def': 'test'}
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"split file not found: {path}")
    splits = {}
    with open(path, newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            row = [c.strip() for c in row]
            if not row or not row[0] or row[0].startswith("#"):
                continue
            split = SPLIT_ALIASES.get(row[1].lower()) if len(row) >= 2 else None
            if split is None:
                if line_no == 1 and not splits:
                    continue  # a header
                raise ValueError(
                    f"{path}:{line_no}: expected 'key,split' with split in "
                    f"{sorted(SPLIT_ALIASES)}, got {row}"
                )
            key = row[0].replace("\\", "/").strip("/")
            stem, ext = os.path.splitext(key)
            if ext.lower() in VIDEO_EXTENSIONS:
                key = stem
            splits[key] = split
    return splits


def assign_music_splits(clips, valid_ratio=0.1, test_ratio=0.1, seed=1234):
    """Draws the split of every clip, class by class.

    The clips of each class, sorted by ID, are shuffled with a seed derived
    from ``(seed, class)`` and cut into test, valid and train by
    :func:`split_counts`.

    Arguments
    ---------
    clips : list of VideoClip
        The clips (their split is ignored).
    valid_ratio : float
        Fraction of each class for validation.
    test_ratio : float
        Fraction of each class for test.
    seed : int
        Seed of the draw.

    Returns
    -------
    list of VideoClip
        The clips with their split, sorted by ID.

    Example
    -------
    >>> clips = [VideoClip(i, i + ".mp4", "flute", None) for i in "abcde"]
    >>> [c.split for c in assign_music_splits(clips, 0.2, 0.2, seed=0)]
    ['train', 'valid', 'train', 'test', 'train']
    """
    by_label = {}
    for clip in sorted(VideoClip(*c) for c in clips):
        by_label.setdefault(clip.label, []).append(clip)
    out = []
    for label, items in by_label.items():
        rng = np.random.default_rng(stable_int("music-split", seed, label))
        order = rng.permutation(len(items))
        _, n_valid, n_test = split_counts(len(items), valid_ratio, test_ratio)
        for rank, index in enumerate(order):
            if rank < n_test:
                split = "test"
            elif rank < n_test + n_valid:
                split = "valid"
            else:
                split = "train"
            out.append(items[index]._replace(split=split))
    return sorted(out)


def music_clips(
    data_folder, classes=None, split_file=None, extensions=VIDEO_EXTENSIONS
):
    """Lists the MUSIC videos, with their split when a split file gives them.

    Without ``split_file`` the splits are None (drawn after extraction by
    :func:`assign_music_splits`). With ``split_file``, videos it does not
    list are left out, and listed videos that do not exist become
    ``missing`` clips (when their key names the class).

    Arguments
    ---------
    data_folder : str
        Folder of class folders.
    classes : list of str, optional
        Class folders to use (default: all).
    split_file : str, optional
        A split file (see :func:`read_split_file`).
    extensions : tuple of str
        Video file name extensions.

    Returns
    -------
    clips : list of VideoClip
        The clips, sorted by ID.
    extra : dict
        For the report: videos left out by the split file and split-file keys
        that match no video.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     os.makedirs(os.path.join(tmp, "flute"))
    ...     open(os.path.join(tmp, "flute", "abc.mp4"), "w").close()
    ...     clips, _ = music_clips(tmp)
    >>> [(c.ID, c.label, c.split) for c in clips]
    [('flute_abc', 'flute', None)]
    """
    videos = list_music_videos(data_folder, classes, extensions)
    if split_file is None:
        clips = [
            VideoClip(music_clip_id(label, stem), path, label, None)
            for label, stem, path in videos
        ]
        extra = {}
    else:
        clips, extra = _split_file_clips(videos, split_file, data_folder, classes)
    ids = [c.ID for c in clips]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:10]
        raise ValueError(
            f"several videos give the same clip ID {dup} (same stem with different "
            "extensions, or names that differ only in special characters)"
        )
    return sorted(clips), extra


def _split_file_clips(videos, split_file, data_folder, classes):
    """The clips of the videos that a split file lists, with their split.

    Keys of the split file that name a class (``<label>/<stem>``) but match
    no video become clips of a missing file. Returns the clips (unsorted)
    and the report entries of :func:`music_clips`.
    """
    splits = read_split_file(split_file)
    clips = []
    used = set()
    left_out = []
    for label, stem, path in videos:
        key = f"{label}/{stem}"
        if key not in splits:
            key = stem
        if key not in splits:
            left_out.append(f"{label}/{stem}")
            continue
        used.add(key)
        clips.append(VideoClip(music_clip_id(label, stem), path, label, splits[key]))
    unmatched = []
    wanted = None if classes is None else set(classes)
    root = os.path.abspath(os.fspath(data_folder))
    for key, split in splits.items():
        if key in used:
            continue
        if "/" in key:
            label, stem = key.rsplit("/", 1)
            if wanted is None or label in wanted:
                path = os.path.join(root, label, stem + ".mp4")
                clips.append(VideoClip(music_clip_id(label, stem), path, label, split))
                continue
        unmatched.append(key)
    extra = {
        "split_file": os.path.abspath(split_file),
        "n_not_in_split_file": len(left_out),
        "not_in_split_file": left_out[:50],
        "n_split_file_unmatched": len(unmatched),
        "split_file_unmatched": sorted(unmatched)[:50],
    }
    return clips, extra


def music_test_mixtures(test_rows, n_test_mixtures, seed):
    """Pairs of test clips of two different classes (the SynthMUSIC draw).

    Arguments
    ---------
    test_rows : list of dict
        Rows of the test manifest (``ID`` and ``label``).
    n_test_mixtures : int
        Number of mixtures.
    seed : int
        Seed of the draw.

    Returns
    -------
    list of dict
        Rows ``ID, source1, label1, source2, label2``.

    Example
    -------
    >>> rows = [{"ID": "a", "label": "flute"}, {"ID": "b", "label": "cello"}]
    >>> [(m["source1"], m["source2"]) for m in music_test_mixtures(rows, 1, 0)]
    [('b', 'a')]
    """
    test_ids = {}
    for row in sorted(test_rows, key=lambda r: r["ID"]):
        test_ids.setdefault(row["label"], []).append(row["ID"])
    if n_test_mixtures > 0 and len(test_ids) < 2:
        raise ValueError(
            f"test mixtures need test clips of at least two classes, got "
            f"{sorted(test_ids)}; lower test_ratio or use n_test_mixtures=0"
        )
    return pair_test_mixtures(test_ids, int(n_test_mixtures), seed)


def prepare_music(
    data_folder,
    save_folder,
    classes=None,
    split_file=None,
    valid_ratio=0.1,
    test_ratio=0.1,
    n_test_mixtures=500,
    seed=1234,
    sample_rate=16000,
    fps=1.0,
    frame_size=224,
    min_duration=1.0,
    audio_subtype="PCM_16",
    num_workers=None,
    skip_prep=False,
):
    """Prepares MUSIC solo videos: audio, frames and manifests.

    Writes into ``save_folder`` the wav files, the 1-fps frames, the
    manifests ``train.csv``, ``valid.csv``, ``test.csv``
    (``ID,audio,frames,n_frames,label,duration``) and ``test_mixtures.csv``
    (``ID,source1,label1,source2,label2``), plus ``failed.csv``,
    ``prepare_report.json`` and ``music_opts.json``; see
    :mod:`speechbrain_textsep.data.video`. Clips already extracted with the
    same settings are reused; nothing is done when the options and the
    listed videos are those of the last completed run.

    Arguments
    ---------
    data_folder : str
        Folder of class folders of videos (``<instrument>/<video_id>.mp4``).
    save_folder : str
        Output folder.
    classes : list of str, optional
        Class folders to use (default: all).
    split_file : str, optional
        CSV ``key,split`` fixing the splits (see :func:`read_split_file`);
        by default the splits are drawn per class from ``seed``, among the
        usable videos (:func:`assign_music_splits`).
    valid_ratio : float
        Fraction of each class for validation (no split file).
    test_ratio : float
        Fraction of each class for test (no split file).
    n_test_mixtures : int
        Number of 2-source test mixtures to list.
    seed : int
        Seed of the splits and of the test mixtures.
    sample_rate : int
        Sample rate of the audio.
    fps : float
        Frames per second kept.
    frame_size : int or None
        Frames are resized (shorter side) and centre-cropped to this square
        size; None keeps them as decoded.
    min_duration : float
        Videos with less audio (seconds) are reported and skipped.
    audio_subtype : str
        soundfile subtype of the wav files (``"PCM_16"`` or ``"FLOAT"``).
    num_workers : int, optional
        Extraction processes (default ``os.cpu_count()``); does not change
        the outputs.
    skip_prep : bool
        If True, only return the manifest paths.

    Returns
    -------
    dict
        Paths of the manifests: ``"train"``, ``"valid"``, ``"test"``,
        ``"test_mixtures"``.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_textsep.data.synthvideo import write_music_videos
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = write_music_videos(tmp + "/videos", ["cello", "flute"],
    ...                            n_per_class=2, seconds=1.0)
    ...     paths = prepare_music(tmp + "/videos", tmp + "/prepared",
    ...                           n_test_mixtures=1, num_workers=1)
    ...     print(open(paths["test_mixtures"]).read().strip())  # doctest: +ELLIPSIS
    MUSIC: 4 videos listed, 4 extracted, ...
    ID,source1,label1,source2,label2
    mix_00000,cello_...,cello,flute_...,flute
    """
    manifests = manifest_paths(save_folder)
    if skip_prep:
        return manifests
    check_ratios(valid_ratio, test_ratio)
    clips, extra = music_clips(data_folder, classes, split_file)
    options = _music_options(
        data_folder, classes, split_file, valid_ratio, test_ratio, n_test_mixtures, seed
    )
    config = ExtractionConfig(int(sample_rate), float(fps), frame_size, audio_subtype)
    return prepare_video_dataset(
        "MUSIC",
        clips,
        save_folder,
        lambda rows: music_test_mixtures(rows, int(n_test_mixtures), seed),
        options,
        config=config,
        min_duration=min_duration,
        num_workers=os.cpu_count() if num_workers is None else num_workers,
        extra_report=extra,
        assign_splits=None
        if split_file is not None
        else lambda ok: assign_music_splits(ok, valid_ratio, test_ratio, seed),
    )


def _music_options(
    data_folder, classes, split_file, valid_ratio, test_ratio, n_test_mixtures, seed
):
    """The options of ``prepare_music`` recorded in ``music_opts.json``."""
    return {
        "dataset": "MUSIC",
        "data_folder": os.path.abspath(os.fspath(data_folder)),
        "classes": None if classes is None else sorted(classes),
        "split_file": None if split_file is None else os.path.abspath(split_file),
        "valid_ratio": float(valid_ratio),
        "test_ratio": float(test_ratio),
        "n_test_mixtures": int(n_test_mixtures),
        "seed": int(seed),
    }
