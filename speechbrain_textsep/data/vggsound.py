"""Data preparation of VGGSound (10-second YouTube clips with a label CSV).

The input is a folder of clips and the label CSV of VGGSound
(``vggsound.csv``: rows ``youtube_id,start_seconds,label,split`` without
header, split ``train`` or ``test``; labels containing commas are quoted).
Clip files are found with ``name_pattern``, a :meth:`str.format` pattern
relative to the clips folder with the fields ``youtube_id``, ``start``
(``start_seconds`` as an int), ``end`` (``start + 10``), ``label`` and
``split``. The default ``"{youtube_id}_{start:06d}.mp4"`` matches e.g.
``---g-f_I2yQ_000001.mp4``; a download named ``<id>_<start>_<end>.mp4`` in
per-split folders would use ``"{split}/{youtube_id}_{start}_{end}.mp4"``.

The clip ID is ``<youtube_id>_<start:06d>``. The CSV's train and test
splits are kept; a validation split is carved, per label and
deterministically from ``seed``, out of the training clips that were
extracted successfully.
Following the CLIPSep protocol, every test clip (or every clip of a given
target list, e.g. hand-picked clean ones) is mixed with one interferer: a test
clip of another label that is not music-like (see :data:`MUSIC_KEYWORDS`),
chosen by a hash of ``(seed, target ID)``.

The outputs (audio, frames, manifests, report) are described in
:mod:`speechbrain_textsep.data.video`.

Authors
 * speechbrain-textsep contributors
"""

import csv
import os

import numpy as np
from speechbrain.utils.logger import get_logger

from speechbrain_textsep.data.music import check_ratios, split_counts
from speechbrain_textsep.data.synthmusic import stable_int
from speechbrain_textsep.data.video import manifest_paths, prepare_video_dataset
from speechbrain_textsep.data.video_decode import ExtractionConfig
from speechbrain_textsep.data.video_jobs import VideoClip, safe_id

logger = get_logger(__name__)

#: Default name of the clip files (see the module docstring).
NAME_PATTERN = "{youtube_id}_{start:06d}.mp4"

#: Labels that contain one of these (case-insensitive substring test) are
#: music-like and never chosen as interferers of the test mixtures. It is
#: deliberately broad: "playing " also catches sports ("playing badminton"),
#: which only makes the interferer pool a little smaller.
MUSIC_KEYWORDS = (
    "playing ",
    "singing",
    "orchestra",
    "music",
    "choir",
    "humming",
    "beat boxing",
    "rapping",
    "yodelling",
    "guitar",
    "drum",
    "piano",
    "organ",
)

_SPLITS = {"train": "train", "test": "test", "val": "valid", "valid": "valid"}


def read_vggsound_csv(csv_file):
    """Reads a VGGSound label CSV.

    Arguments
    ---------
    csv_file : str
        Rows ``youtube_id,start_seconds,label,split`` (a header row, if any,
        is skipped).

    Returns
    -------
    list of tuple
        ``(youtube_id, start, label, split)`` with ``start`` an int and
        ``split`` ``"train"``, ``"valid"`` or ``"test"``, in file order.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = os.path.join(tmp, "vggsound.csv")
    ...     with open(p, "w") as f:
    ...         _ = f.write('---g-f_I2yQ,1,"playing violin, fiddle",test\\n')
    ...     read_vggsound_csv(p)
    [('---g-f_I2yQ', 1, 'playing violin, fiddle', 'test')]
    """
    if not os.path.isfile(csv_file):
        raise FileNotFoundError(f"VGGSound label CSV not found: {csv_file}")
    rows = []
    with open(csv_file, newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 4:
                raise ValueError(
                    f"{csv_file}:{line_no}: expected 4 columns "
                    f"youtube_id,start_seconds,label,split, got {row}"
                )
            youtube_id, start, label, split = (c.strip() for c in row)
            try:
                start = int(float(start))
            except ValueError:
                if line_no == 1:
                    continue  # a header
                raise ValueError(
                    f"{csv_file}:{line_no}: start_seconds is not a number: {row}"
                ) from None
            if split.lower() not in _SPLITS:
                raise ValueError(
                    f"{csv_file}:{line_no}: split must be train or test, got {split!r}"
                )
            rows.append((youtube_id, start, label, _SPLITS[split.lower()]))
    if not rows:
        raise ValueError(f"no clip listed in {csv_file}")
    return rows


def vggsound_clip_id(youtube_id, start):
    """The clip ID of a VGGSound clip.

    Arguments
    ---------
    youtube_id : str
        The YouTube ID.
    start : int
        Start second.

    Returns
    -------
    str
        ``<youtube_id>_<start:06d>`` (unsafe characters replaced by ``_``).

    Example
    -------
    >>> vggsound_clip_id("---g-f_I2yQ", 1)
    '---g-f_I2yQ_000001'
    """
    return safe_id(f"{youtube_id}_{int(start):06d}")


def clip_file(data_folder, name_pattern, youtube_id, start, label, split):
    """The path of a clip file given the name pattern.

    Arguments
    ---------
    data_folder : str
        Folder of the clips.
    name_pattern : str
        :meth:`str.format` pattern with fields ``youtube_id``, ``start``,
        ``end``, ``label`` and ``split``.
    youtube_id : str
        The YouTube ID.
    start : int
        Start second.
    label : str
        The label.
    split : str
        The split in the CSV.

    Returns
    -------
    str
        ``data_folder/<name_pattern filled in>``.

    Example
    -------
    >>> clip_file("/v", NAME_PATTERN, "abc", 30, "dog barking", "train")
    '/v/abc_000030.mp4'
    >>> pattern = "{split}/{youtube_id}_{start}_{end}.mp4"
    >>> clip_file("/v", pattern, "abc", 30, "x", "test")
    '/v/test/abc_30_40.mp4'
    """
    try:
        name = name_pattern.format(
            youtube_id=youtube_id,
            start=int(start),
            end=int(start) + 10,
            label=label,
            split=split,
        )
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(
            f"invalid name_pattern {name_pattern!r} ({e!r}); use the fields "
            "{youtube_id}, {start}, {end}, {label} and {split}"
        ) from None
    return os.path.join(data_folder, name)


def is_music_label(label, keywords=MUSIC_KEYWORDS):
    """Whether a label is music-like (contains one of the keywords).

    Arguments
    ---------
    label : str
        A VGGSound label.
    keywords : tuple of str
        Case-insensitive substrings.

    Returns
    -------
    bool

    Example
    -------
    >>> is_music_label("playing violin, fiddle"), is_music_label("dog barking")
    (True, False)
    """
    text = str(label).lower()
    return any(k.lower() in text for k in keywords)


def vggsound_clips(data_folder, csv_file=None, name_pattern=NAME_PATTERN, labels=None):
    """Lists the VGGSound clips of the CSV, with the CSV's split.

    Arguments
    ---------
    data_folder : str
        Folder of the clip files.
    csv_file : str, optional
        The label CSV; default ``data_folder/vggsound.csv``.
    name_pattern : str
        Clip file names (see :func:`clip_file`).
    labels : list of str, optional
        Only these labels (default: all labels of the CSV).

    Returns
    -------
    clips : list of VideoClip
        Every listed clip (also those whose file is missing), sorted by ID.
    extra : dict
        For the report: duplicated CSV rows left out.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     with open(os.path.join(tmp, "vggsound.csv"), "w") as f:
    ...         _ = f.write("abc,5,rain,test\\n")
    ...     clips, _ = vggsound_clips(tmp)
    >>> [(c.ID, c.label, c.split, os.path.basename(c.video)) for c in clips]
    [('abc_000005', 'rain', 'test', 'abc_000005.mp4')]
    """
    data_folder = os.path.abspath(os.fspath(data_folder))
    if not os.path.isdir(data_folder):
        raise FileNotFoundError(f"VGGSound data_folder not found: {data_folder}")
    if csv_file is None:
        csv_file = os.path.join(data_folder, "vggsound.csv")
    rows = read_vggsound_csv(csv_file)
    if labels is not None:
        known = {r[2] for r in rows}
        unknown = sorted(set(labels) - known)
        if unknown:
            raise ValueError(f"label(s) {unknown} are not in {csv_file}")
        wanted = set(labels)
        rows = [r for r in rows if r[2] in wanted]
    clips = {}
    duplicates = []
    for youtube_id, start, label, split in rows:
        clip_id = vggsound_clip_id(youtube_id, start)
        if clip_id in clips:
            duplicates.append(clip_id)
            continue
        path = clip_file(data_folder, name_pattern, youtube_id, start, label, split)
        clips[clip_id] = VideoClip(clip_id, path, label, split)

    extra = {
        "csv_file": os.path.abspath(csv_file),
        "name_pattern": name_pattern,
        "n_duplicate_rows": len(duplicates),
        "duplicate_rows": duplicates[:50],
    }
    return sorted(clips.values()), extra


def carve_valid(clips, valid_ratio=0.05, seed=1234):
    """Moves a fraction of each label's training clips to the valid split.

    The training clips of each label, sorted by ID, are shuffled with a seed
    derived from ``(seed, label)``; the first
    :func:`~speechbrain_textsep.data.music.split_counts` ``(n, valid_ratio,
    0)[1]`` become validation clips.

    Arguments
    ---------
    clips : list of VideoClip
        Clips with their CSV split (only ``train`` ones can move).
    valid_ratio : float
        Fraction of each label's training clips.
    seed : int
        Seed of the draw.

    Returns
    -------
    list of VideoClip
        The clips, sorted by ID.

    Example
    -------
    >>> clips = [VideoClip(i, i + ".mp4", "rain", "train") for i in "abcd"]
    >>> [c.split for c in carve_valid(clips, 0.25, seed=0)]
    ['train', 'train', 'train', 'valid']
    """
    clips = {c.ID: c for c in (VideoClip(*c) for c in clips)}
    by_label = {}
    for clip in sorted(clips.values()):
        if clip.split == "train":
            by_label.setdefault(clip.label, []).append(clip)
    for label, items in by_label.items():
        rng = np.random.default_rng(stable_int("vggsound-valid", seed, label))
        order = rng.permutation(len(items))
        _, n_valid, _ = split_counts(len(items), valid_ratio, 0.0)
        for index in order[:n_valid]:
            clips[items[index].ID] = items[index]._replace(split="valid")
    return sorted(clips.values())


def read_target_list(targets):
    """Clip IDs of test targets, from a list or a text file (one ID a line).

    Arguments
    ---------
    targets : str or list of str
        A text file path, or the IDs.

    Returns
    -------
    list of str

    Example
    -------
    >>> read_target_list(["abc_000005"])
    ['abc_000005']
    """
    if isinstance(targets, (str, os.PathLike)):
        if not os.path.isfile(targets):
            raise FileNotFoundError(f"test target list not found: {targets}")
        with open(targets, encoding="utf-8") as f:
            return [
                line.strip() for line in f if line.strip() and line.strip()[0] != "#"
            ]
    return [str(t) for t in targets]


def vggsound_test_mixtures(
    test_rows,
    seed=1234,
    music_keywords=MUSIC_KEYWORDS,
    n_test_mixtures=None,
    target_ids=None,
):
    """Pairs each test target with one interferer of a non-music label.

    Arguments
    ---------
    test_rows : list of dict
        Rows of the test manifest (``ID`` and ``label``).
    seed : int
        Seed of the choices.
    music_keywords : tuple of str
        Labels containing one of them are never interferers.
    n_test_mixtures : int, optional
        Keep this many targets (a deterministic random subset, in ID order);
        default all.
    target_ids : list of str, optional
        The targets (IDs of test clips); default every test clip. IDs that
        are not in the test manifest are ignored.

    Returns
    -------
    list of dict
        Rows ``ID, source1, label1, source2, label2`` (source1 the target).

    Example
    -------
    >>> rows = [{"ID": "a", "label": "playing cello"}, {"ID": "b", "label": "rain"},
    ...         {"ID": "c", "label": "dog barking"}]
    >>> [(m["source1"], m["source2"]) for m in vggsound_test_mixtures(rows)]
    [('a', 'c'), ('b', 'c'), ('c', 'b')]
    """
    rows = sorted(test_rows, key=lambda r: r["ID"])
    targets = _choose_targets(rows, target_ids, n_test_mixtures, seed)
    pool = [r for r in rows if not is_music_label(r["label"], music_keywords)]
    if targets and not pool:
        raise ValueError(
            "no test clip of a non-music label to use as interferer; check "
            "music_keywords or the labels"
        )
    per_label = {}
    for row in pool:
        per_label[row["label"]] = per_label.get(row["label"], 0) + 1
    mixtures = []
    for target in targets:
        if per_label.get(target["label"], 0) == len(pool):
            continue  # no interferer of another label
        pick = _pick_interferer(target, pool, seed)
        mixtures.append(
            {
                "ID": f"mix_{len(mixtures):05d}",
                "source1": target["ID"],
                "label1": target["label"],
                "source2": pick["ID"],
                "label2": pick["label"],
            }
        )
    return mixtures


def _choose_targets(rows, target_ids, n_test_mixtures, seed):
    """The test rows (sorted by ID) used as targets of the test mixtures."""
    if target_ids is not None:
        wanted = set(target_ids)
        targets = [r for r in rows if r["ID"] in wanted]
        if len(targets) < len(wanted):
            logger.warning(
                "%d of the %d test targets are not in the test manifest (missing "
                "or unusable clips); they are left out",
                len(wanted) - len(targets),
                len(wanted),
            )
    else:
        targets = rows
    if n_test_mixtures is not None and n_test_mixtures < len(targets):
        rng = np.random.default_rng(stable_int("vggsound-targets", seed))
        keep = np.sort(rng.permutation(len(targets))[: int(n_test_mixtures)])
        targets = [targets[i] for i in keep]
    return targets


def _pick_interferer(target, pool, seed):
    """A pool clip of another label than the target's, drawn uniformly.

    The pool must hold a clip of another label.
    """
    # uniform over the pool clips of other labels (rejection sampling)
    rng = np.random.default_rng(stable_int("vggsound-interferer", seed, target["ID"]))
    pick = pool[int(rng.integers(len(pool)))]
    while pick["label"] == target["label"]:
        pick = pool[int(rng.integers(len(pool)))]
    return pick


def prepare_vggsound(
    data_folder,
    save_folder,
    csv_file=None,
    name_pattern=NAME_PATTERN,
    labels=None,
    valid_ratio=0.05,
    music_keywords=MUSIC_KEYWORDS,
    n_test_mixtures=None,
    test_targets=None,
    seed=1234,
    sample_rate=16000,
    fps=1.0,
    frame_size=224,
    min_duration=1.0,
    audio_subtype="PCM_16",
    num_workers=None,
    skip_prep=False,
):
    """Prepares VGGSound clips: audio, frames and manifests.

    Writes into ``save_folder`` the wav files, the 1-fps frames, the
    manifests ``train.csv``, ``valid.csv``, ``test.csv``
    (``ID,audio,frames,n_frames,label,duration``) and ``test_mixtures.csv``
    (``ID,source1,label1,source2,label2``), plus ``failed.csv`` (missing and
    broken clips, with the reason), ``prepare_report.json`` and
    ``vggsound_opts.json``; see :mod:`speechbrain_textsep.data.video`.
    Clips already extracted with the same settings are reused (also when
    their video was deleted since); nothing is done when the options and the
    listed files are those of the last completed run.

    Arguments
    ---------
    data_folder : str
        Folder of the clip files.
    save_folder : str
        Output folder.
    csv_file : str, optional
        The label CSV; default ``data_folder/vggsound.csv``.
    name_pattern : str
        Clip file names relative to ``data_folder``, a :meth:`str.format`
        pattern with ``{youtube_id}``, ``{start}``, ``{end}``, ``{label}``,
        ``{split}``; default ``"{youtube_id}_{start:06d}.mp4"``.
    labels : list of str, optional
        Only these labels (default: all).
    valid_ratio : float
        Fraction of each label's usable training clips used for validation
        (:func:`carve_valid`).
    music_keywords : tuple of str
        Labels containing one of these are never test interferers.
    n_test_mixtures : int, optional
        Number of test targets (one mixture each); default every target.
    test_targets : str or list of str, optional
        Clip IDs (``<youtube_id>_<start:06d>``), or a text file of them, used
        as test targets (e.g. a clean subset); default every test clip.
    seed : int
        Seed of the validation split and of the test mixtures.
    sample_rate : int
        Sample rate of the audio.
    fps : float
        Frames per second kept.
    frame_size : int or None
        Frames are resized (shorter side) and centre-cropped to this square
        size; None keeps them as decoded.
    min_duration : float
        Clips with less audio (seconds) are reported and skipped.
    audio_subtype : str
        soundfile subtype of the wav files (``"PCM_16"`` or ``"FLOAT"``).
    num_workers : int, optional
        Extraction processes (default ``os.cpu_count()``).
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
    >>> from speechbrain_textsep.data.synthvideo import write_vggsound_videos
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = write_vggsound_videos(tmp + "/clips", ["dog barking", "rain"],
    ...                               n_train=1, n_test=1, seconds=1.0)
    ...     paths = prepare_vggsound(tmp + "/clips", tmp + "/prepared", num_workers=1)
    ...     print(open(paths["test_mixtures"]).read().strip())  # doctest: +ELLIPSIS
    VGGSound: 4 videos listed, 4 extracted, ...
    ID,source1,label1,source2,label2
    mix_00000,4sXoXk0v3DD_000266,rain,B9Z8UBJfD1I_000127,dog barking
    mix_00001,B9Z8UBJfD1I_000127,dog barking,4sXoXk0v3DD_000266,rain
    """
    manifests = manifest_paths(save_folder)
    if skip_prep:
        return manifests
    check_ratios(valid_ratio)
    clips, extra = vggsound_clips(data_folder, csv_file, name_pattern, labels)
    target_ids = None if test_targets is None else read_target_list(test_targets)
    options = {
        "dataset": "VGGSound",
        "data_folder": os.path.abspath(os.fspath(data_folder)),
        "labels": None if labels is None else sorted(labels),
        "valid_ratio": float(valid_ratio),
        "music_keywords": list(music_keywords),
        "n_test_mixtures": n_test_mixtures,
        "test_targets": target_ids,
        "seed": int(seed),
        **extra,
    }
    config = ExtractionConfig(int(sample_rate), float(fps), frame_size, audio_subtype)

    def make_mixtures(test_rows):
        return vggsound_test_mixtures(
            test_rows, seed, tuple(music_keywords), n_test_mixtures, target_ids
        )

    return prepare_video_dataset(
        "VGGSound",
        clips,
        save_folder,
        make_mixtures,
        options,
        config=config,
        min_duration=min_duration,
        num_workers=os.cpu_count() if num_workers is None else num_workers,
        extra_report=extra,
        assign_splits=lambda ok: carve_valid(ok, valid_ratio, seed),
    )
