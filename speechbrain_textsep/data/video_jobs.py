"""Resumable, parallel extraction of the clips of a video dataset.

Every listed video (a :class:`VideoClip`) becomes one clip in ``save_folder``::

    audio/<ID>.wav                    16 kHz mono wav (16-bit PCM by default)
    frames/<ID>/000001.jpg ...        1 frame per second, 224 x 224
    extracted/<ID>.json               per-clip done marker, written last

decoded by :func:`speechbrain_textsep.data.video_decode.extract_clip`. The
done marker, written last, records the source file (size and modification
time) and the extraction settings. A clip whose marker matches (same
settings; the source unchanged, or deleted since) and whose outputs are all
present is not decoded again, so an interrupted preparation resumes where
it stopped. :func:`extract_clips` runs :func:`process_clip` over many clips
in worker processes; a clip that cannot be used comes back as ``failed``,
with the :class:`~speechbrain_textsep.data.video_decode.ClipError` reason.

Authors
 * speechbrain-textsep contributors
"""

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from typing import NamedTuple, Optional

import soundfile as sf
from tqdm import tqdm

from speechbrain_textsep.data.clips import FRAME_NAME
from speechbrain_textsep.data.video_decode import (
    ClipError,
    ExtractionConfig,
    check_config,
    extract_clip,
    extraction_settings,
)

#: File name extensions listed as videos (lower case).
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v")


class VideoClip(NamedTuple):
    """One video listed by a dataset (before extraction).

    Arguments
    ---------
    ID : str
        Clip identifier, used in output paths (letters, digits, ``_``, ``-``, ``.``).
    video : str
        Path of the video file (it may be missing: then it is reported).
    label : str
        Class label (the text query at training time).
    split : str or None
        ``"train"``, ``"valid"`` or ``"test"`` (None while not yet drawn).

    Example
    -------
    >>> VideoClip("violin_abc", "/data/violin/abc.mp4", "violin", "train").split
    'train'
    """

    ID: str
    video: str
    label: str
    split: Optional[str]


def safe_id(text):
    """Turns text into a clip ID usable in file names (other characters -> ``_``).

    Arguments
    ---------
    text : str
        Any text, e.g. a file name stem.

    Returns
    -------
    str
        ``text`` with every character that is not an ASCII letter, a digit,
        ``_``, ``-`` or ``.`` replaced by ``_`` (and no leading ``.``).

    Example
    -------
    >>> safe_id("acoustic guitar/ab c#1")
    'acoustic_guitar_ab_c_1'
    """
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
    out = "".join(c if c in allowed else "_" for c in str(text))
    if not out or out.startswith("."):
        out = "_" + out
    return out


def clip_paths(save_folder, clip_id):
    """Paths of the outputs of one clip.

    Arguments
    ---------
    save_folder : str
        Root of the prepared dataset.
    clip_id : str
        The clip ID.

    Returns
    -------
    dict
        ``audio`` (wav), ``frames`` (folder) and ``marker`` (done marker) paths.

    Example
    -------
    >>> paths = clip_paths("/out", "violin_abc")
    >>> paths["audio"], paths["frames"]
    ('/out/audio/violin_abc.wav', '/out/frames/violin_abc')
    >>> paths["marker"]
    '/out/extracted/violin_abc.json'
    """
    return {
        "audio": os.path.join(save_folder, "audio", f"{clip_id}.wav"),
        "frames": os.path.join(save_folder, "frames", clip_id),
        "marker": os.path.join(save_folder, "extracted", f"{clip_id}.json"),
    }


def source_fingerprint(video):
    """Size and modification time of a file, or None if it does not exist.

    Arguments
    ---------
    video : str
        Path of a file.

    Returns
    -------
    list or None
        ``[size_in_bytes, mtime_ns]``.

    Example
    -------
    >>> source_fingerprint("/no/such/file.mp4") is None
    True
    """
    try:
        st = os.stat(video)
    except OSError:
        return None
    return [int(st.st_size), int(st.st_mtime_ns)]


def _read_marker(paths, video, config):
    """The recorded result if the clip's outputs are complete and current."""
    try:
        with open(paths["marker"], encoding="utf-8") as f:
            marker = json.load(f)
        if marker.get("settings") != extraction_settings(config):
            return None
        current = source_fingerprint(video)
        if current is not None and marker.get("source") != current:
            return None  # changed since (a deleted source keeps its outputs)
        n_frames, n_samples = int(marker["n_frames"]), int(marker["n_samples"])
        info = sf.info(paths["audio"])
        if info.frames != n_samples or info.samplerate != int(config.sample_rate):
            return None
        present = set(os.listdir(paths["frames"]))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError):
        return None
    if any(FRAME_NAME.format(i) not in present for i in range(1, n_frames + 1)):
        return None
    return {
        "n_samples": n_samples,
        "duration": n_samples / int(config.sample_rate),
        "n_frames": n_frames,
    }


def write_json(path, data):
    """Writes data as (indented) json, atomically.

    Arguments
    ---------
    path : str
        The json file; it is written under a temporary name and moved there.
    data : object
        json-serialisable data.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_json(os.path.join(tmp, "a.json"), {"n": 1})
    ...     print(open(os.path.join(tmp, "a.json")).read())
    {
      "n": 1
    }
    """
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def process_clip(clip, save_folder, config=None, min_duration=1.0):
    """Extracts one clip unless its outputs are complete already.

    Arguments
    ---------
    clip : VideoClip
        The clip (ID, video path, label, split).
    save_folder : str
        Root of the outputs (see :func:`clip_paths`).
    config : ExtractionConfig, optional
        Extraction settings.
    min_duration : float
        Minimum audio duration in seconds (also applied to reused clips).

    Returns
    -------
    dict
        ``ID``, ``status`` (``"extracted"``, ``"reused"`` or ``"failed"``),
        and either the manifest fields ``audio, frames, n_frames, duration``
        or ``reason`` and ``message``.

    Example
    -------
    >>> clip = VideoClip("x", "/no/such/video.mp4", "violin", "train")
    >>> result = process_clip(clip, "/tmp/unused")
    >>> result["status"], result["reason"]
    ('failed', 'missing')
    """
    config = ExtractionConfig() if config is None else ExtractionConfig(*config)
    clip = VideoClip(*clip)
    paths = clip_paths(save_folder, clip.ID)
    result = {"ID": clip.ID}
    info = _read_marker(paths, clip.video, config)
    status = "reused"
    try:
        if info is None:
            status = "extracted"
            info = _extract_and_mark(clip, paths, config, min_duration)
        elif info["duration"] < min_duration:
            raise ClipError(
                "too_short",
                f"{clip.video}: {info['duration']:.2f} s of audio, fewer than "
                f"min_duration={min_duration} s",
            )
    except ClipError as e:
        result.update(status="failed", reason=e.reason, message=str(e))
        return result
    result.update(
        status=status,
        audio=os.path.abspath(paths["audio"]),
        frames=os.path.abspath(paths["frames"]),
        n_frames=info["n_frames"],
        duration=info["duration"],
    )
    return result


def _extract_and_mark(clip, paths, config, min_duration):
    """Extracts a clip afresh and writes its done marker; returns the info."""
    if os.path.lexists(paths["marker"]):
        os.remove(paths["marker"])
    if not os.path.isfile(clip.video):
        raise ClipError("missing", f"video file not found: {clip.video}")
    fingerprint = source_fingerprint(clip.video)
    info = extract_clip(
        clip.video, paths["audio"], paths["frames"], config, min_duration
    )
    os.makedirs(os.path.dirname(paths["marker"]), exist_ok=True)
    write_json(
        paths["marker"],
        {
            "ID": clip.ID,
            "video": os.path.abspath(clip.video),
            "source": fingerprint,
            "settings": extraction_settings(config),
            "n_samples": info["n_samples"],
            "n_frames": info["n_frames"],
        },
    )
    return info


def _process_star(args):
    """process_clip(*args), for executor.map."""
    return process_clip(*args)


def extract_clips(clips, save_folder, config=None, min_duration=1.0, num_workers=1):
    """Extracts (or reuses) every clip, in ``num_workers`` processes.

    Arguments
    ---------
    clips : list of VideoClip
        The clips to extract; their IDs must be unique.
    save_folder : str
        Root of the outputs.
    config : ExtractionConfig, optional
        Extraction settings.
    min_duration : float
        Minimum audio duration in seconds.
    num_workers : int
        Worker processes; 1 (or 0) extracts in this process. The results do
        not depend on it.

    Returns
    -------
    list of dict
        The result of :func:`process_clip` for every clip, in order.

    Example
    -------
    >>> clips = [VideoClip("a", "/no/a.mp4", "dog", "train")]
    >>> [r["reason"] for r in extract_clips(clips, "/tmp/unused")]
    ['missing']
    """
    clips = [VideoClip(*c) for c in clips]
    ids = [c.ID for c in clips]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:10]
        raise ValueError(f"duplicate clip IDs: {dup}")
    save_folder = os.path.abspath(os.fspath(save_folder))
    config = check_config(config)
    tasks = [(c, save_folder, config, float(min_duration)) for c in clips]
    workers = max(1, min(int(num_workers or 1), len(tasks)))
    progress = tqdm(total=len(tasks), desc="extracting", unit="clip")
    results = []
    try:
        if workers == 1:
            for task in tasks:
                results.append(_process_star(task))
                progress.update()
        else:
            chunksize = max(1, min(16, len(tasks) // (8 * workers)))
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for result in pool.map(_process_star, tasks, chunksize=chunksize):
                    results.append(result)
                    progress.update()
    finally:
        progress.close()
    return results


def listing_fingerprint(clips):
    """A hash of the clips (IDs, paths, labels, splits, sizes, mtimes).

    Arguments
    ---------
    clips : list of VideoClip
        The listed clips.

    Returns
    -------
    str
        A hex digest that changes when a clip or its source file changes.

    Example
    -------
    >>> a = listing_fingerprint([VideoClip("a", "/no/a.mp4", "dog", "train")])
    >>> b = listing_fingerprint([VideoClip("a", "/no/a.mp4", "dog", "test")])
    >>> len(a), a == b
    (64, False)
    """
    digest = hashlib.sha256()
    for clip in sorted(VideoClip(*c) for c in clips):
        item = [*clip, source_fingerprint(clip.video)]
        digest.update(json.dumps(item).encode("utf-8"))
    return digest.hexdigest()
