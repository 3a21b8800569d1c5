"""Audio and frame extraction from video files, for the MUSIC and VGGSound recipes.

Every video becomes one clip; a prepared ``save_folder`` holds::

    audio/<ID>.wav                    16 kHz mono wav (16-bit PCM by default)
    frames/<ID>/000001.jpg ...        1 frame per second, 224 x 224
    extracted/<ID>.json               per-clip done marker, written last
    train.csv, valid.csv, test.csv    ID,audio,frames,n_frames,label,duration
    test_mixtures.csv                 ID,source1,label1,source2,label2
    failed.csv                        ID,video,label,split,reason,message
    prepare_report.json               counts, failures by reason, timings
    <dataset>_opts.json               options of the last completed run

The manifests have the SynthMUSIC layout, so the same recipes and
:func:`speechbrain_textsep.data.clips.clip_dataset` read them.

Decoding uses PyAV (the ffmpeg libraries its wheels ship). The first audio
and the first video stream are decoded in one pass over the file. The audio
is resampled by ffmpeg's resampler (planar float, channel layout kept),
averaged over its channels and trimmed to the duration its stream declares
(encoder padding). Frame ``k`` (1-based, named with
:data:`speechbrain_textsep.data.clips.FRAME_NAME`) is the picture shown
``(k - 1) / fps`` seconds after the start of the audio stream, so that
``clip_dataset`` finds the frames of a crop by its time; frames are kept as
far as the audio goes. With ``frame_size=224`` (the default) each frame is
resized so that its shorter side is 224 pixels (bicubic, up or down,
honouring a non-square sample aspect ratio) and centre-cropped to 224 x 224,
which is what the CLIP image transform does anyway, done once here.
Display-rotation metadata is ignored. A few undecodable packets are skipped,
as the ffmpeg command line does.

Every output is written under a temporary name and moved into place with
:func:`os.replace`, and the done marker, written last, records the source
file (size and modification time) and the extraction settings. A clip whose
marker matches (same settings; the source unchanged, or deleted since) and
whose outputs are all present is not decoded again, so an interrupted
preparation resumes where it stopped. Clips that cannot be used are never
replaced by silence: :func:`extract_clip` raises :class:`ClipError` with one
of the :data:`FAILURE_REASONS`, and :func:`prepare_video_dataset` leaves such
clips out of the manifests, lists them in ``failed.csv`` and
``prepare_report.json`` and prints a summary.

Authors
 * speechbrain-textsep contributors
"""

import glob
import hashlib
import json
import math
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from typing import NamedTuple, Optional

import numpy as np
import soundfile as sf
from speechbrain.utils.logger import get_logger
from tqdm import tqdm

from speechbrain_textsep.data.synthmusic import (
    MANIFEST_FIELDS,
    MIXTURE_FIELDS,
    SPLITS,
    write_csv,
)
from speechbrain_textsep.data.clips import FRAME_NAME

logger = get_logger(__name__)

#: Bump when the extraction changes, so that older outputs are re-extracted.
EXTRACTION_VERSION = 1

#: File name extensions listed as videos (lower case).
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v")

#: Why a clip was left out, as written in ``failed.csv``.
FAILURE_REASONS = {
    "missing": "the video file does not exist",
    "unreadable": "the file cannot be opened as a media container",
    "no_audio": "no audio stream, or no decodable audio sample",
    "no_video": "no video stream, or no decodable picture",
    "decode_error": "decoding failed part-way through the file",
    "truncated": "far shorter than the duration its header declares",
    "too_short": "shorter than min_duration",
    "silent": "the audio is digital silence (peak below 1e-5)",
}

#: Columns of ``failed.csv``.
FAILED_FIELDS = ["ID", "video", "label", "split", "reason", "message"]

_SILENCE_PEAK = 1e-5
# A few undecodable packets are skipped (as the ffmpeg command line does);
# more than this many, and more than this fraction of them, fail the clip.
_MAX_BAD_PACKETS = 3
_MAX_BAD_FRACTION = 0.01
_TIME_EPS = 1e-6


class ClipError(Exception):
    """A video that cannot become a clip; ``reason`` is a key of FAILURE_REASONS.

    Arguments
    ---------
    reason : str
        One of the keys of :data:`FAILURE_REASONS`.
    message : str
        What exactly went wrong, naming the file.

    Example
    -------
    >>> err = ClipError("missing", "no such file: x.mp4")
    >>> err.reason, str(err)
    ('missing', 'no such file: x.mp4')
    """

    def __init__(self, reason, message):
        if reason not in FAILURE_REASONS:
            raise ValueError(f"unknown failure reason {reason!r}")
        super().__init__(message)
        self.reason = reason


class ExtractionConfig(NamedTuple):
    """Settings of the extraction of one clip (all of them change the outputs).

    Arguments
    ---------
    sample_rate : int
        Sample rate of the written audio (16000 in CLIPSep).
    fps : float
        Frames per second kept from the video (1 in CLIPSep).
    frame_size : int or None
        Side of the square frames after resizing the shorter side and
        centre-cropping; None keeps the decoded pictures unchanged.
    audio_subtype : str
        soundfile subtype of the wav files, e.g. ``"PCM_16"`` or ``"FLOAT"``
        (PCM_16 clips at full scale, as ffmpeg does).
    jpeg_quality : int
        JPEG quality of the frames.

    Example
    -------
    >>> ExtractionConfig().sample_rate, ExtractionConfig().frame_size
    (16000, 224)
    """

    sample_rate: int = 16000
    fps: float = 1.0
    frame_size: Optional[int] = 224
    audio_subtype: str = "PCM_16"
    jpeg_quality: int = 90


def check_config(config=None):
    """Validates extraction settings; returns them as an ExtractionConfig.

    Arguments
    ---------
    config : ExtractionConfig or tuple, optional
        The settings (default ``ExtractionConfig()``).

    Returns
    -------
    ExtractionConfig

    Raises
    ------
    ValueError
        Naming the setting that is wrong.

    Example
    -------
    >>> check_config(ExtractionConfig(frame_size=None)).frame_size is None
    True
    >>> check_config(ExtractionConfig(fps=0))
    Traceback (most recent call last):
    ...
    ValueError: fps must be positive, got 0
    """
    config = ExtractionConfig() if config is None else ExtractionConfig(*config)
    if not config.sample_rate > 0:
        raise ValueError(f"sample_rate must be positive, got {config.sample_rate}")
    if not config.fps > 0:
        raise ValueError(f"fps must be positive, got {config.fps}")
    if config.frame_size is not None and not int(config.frame_size) >= 1:
        raise ValueError(
            f"frame_size must be positive or None, got {config.frame_size}"
        )
    if not 1 <= int(config.jpeg_quality) <= 100:
        raise ValueError(f"jpeg_quality must be in 1-100, got {config.jpeg_quality}")
    if not sf.check_format("WAV", str(config.audio_subtype)):
        raise ValueError(
            f"audio_subtype {config.audio_subtype!r} cannot be written to a wav "
            "file; use e.g. 'PCM_16' or 'FLOAT'"
        )
    return config


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


def _seconds(value, time_base):
    """value * time_base in seconds, or None."""
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _resize_for_clip(image, frame_size, sample_aspect):
    """Resizes the shorter (display) side to frame_size and centre-crops."""
    from PIL import Image

    width, height = image.size
    display_width = width * sample_aspect
    scale = frame_size / min(display_width, height)
    new_w = max(frame_size, int(round(display_width * scale)))
    new_h = max(frame_size, int(round(height * scale)))
    image = image.resize((new_w, new_h), Image.BICUBIC)
    left = (new_w - frame_size) // 2
    top = (new_h - frame_size) // 2
    return image.crop((left, top, left + frame_size, top + frame_size))


class _FrameSampler:
    """Keeps the picture shown at t0, t0 + 1/fps, ... and saves it as a JPEG."""

    def __init__(self, folder, fps, origin, frame_size, sample_aspect, quality):
        self.folder = folder
        self.fps = float(fps)
        self.origin = origin
        self.frame_size = frame_size
        self.sample_aspect = sample_aspect
        self.quality = int(quality)
        self.count = 0  # frames saved
        self.previous = None
        self.first_time = None
        self.last_time = None
        self.last_duration = 0.0
        self.n_decoded = 0

    def _target(self):
        return self.origin + self.count / self.fps

    def _save(self, frame):
        image = frame.to_image()  # RGB
        if self.frame_size is not None:
            image = _resize_for_clip(image, self.frame_size, self.sample_aspect)
        self.count += 1
        path = os.path.join(self.folder, FRAME_NAME.format(self.count))
        image.save(path, format="JPEG", quality=self.quality)

    def add(self, frame, fallback_rate):
        """Takes the next decoded picture (in presentation order)."""
        t = frame.time
        if t is None:  # no timestamp: count frames at the nominal rate
            t = self.origin + self.n_decoded / float(fallback_rate or 25)
        self.n_decoded += 1
        if self.first_time is None:
            self.first_time = t
        # every target time before this picture shows the previous picture
        # (or this one, for targets before the first picture)
        while self._target() < t - _TIME_EPS:
            self._save(self.previous if self.previous is not None else frame)
        self.previous = frame
        self.last_time = t
        duration = _seconds(frame.duration, frame.time_base)
        if duration:
            self.last_duration = duration
        elif fallback_rate:
            self.last_duration = 1.0 / float(fallback_rate)

    def finish(self):
        """Saves the last picture for the targets it covers; returns the end time."""
        if self.previous is None:
            return None
        end = self.last_time + self.last_duration
        while self._target() < end - _TIME_EPS:
            self._save(self.previous)
        if self.count == 0:  # a single picture with no duration
            self._save(self.previous)
        self.previous = None
        return end


def _check_truncation(kind, decoded, declared, path):
    """Raises ClipError('truncated') if far less was decoded than declared."""
    if declared is None or declared <= 0:
        return
    if decoded + max(0.5, 0.1 * declared) < declared:
        raise ClipError(
            "truncated",
            f"{path}: decoded {decoded:.2f} s of {kind} but its header declares "
            f"{declared:.2f} s (incomplete download?)",
        )


def _remove(path):
    """Removes a file or a folder tree if it exists."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def extract_clip(video, audio_path, frames_dir, config=None, min_duration=1.0):
    """Decodes one video into a mono wav file and a folder of frames.

    The audio is resampled to ``config.sample_rate`` and averaged over its
    channels; it is trimmed to the duration the audio stream declares (the
    AAC encoder padding) when that is shorter than what was decoded. The
    frames are sampled at ``config.fps`` as described in the module
    docstring, and only as far as the audio goes. Both outputs are written
    under temporary names and moved into place at the end, replacing older
    outputs; nothing is left behind when the clip fails.

    Arguments
    ---------
    video : str
        Path of the video file.
    audio_path : str
        Where to write the wav file.
    frames_dir : str
        Folder to write ``000001.jpg, 000002.jpg, ...`` into (replaced).
    config : ExtractionConfig, optional
        Sample rate, frame rate, frame size, wav subtype and JPEG quality.
    min_duration : float
        Clips whose audio is shorter (in seconds) fail with ``too_short``.

    Returns
    -------
    dict
        ``n_samples`` (audio samples written), ``duration`` (seconds) and
        ``n_frames`` (frames written).

    Raises
    ------
    ClipError
        If the video is missing, unreadable, has no audio or video stream,
        fails to decode, is truncated, too short or silent (``reason``).

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_textsep.data.synthvideo import write_video
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = write_video(os.path.join(tmp, "v.mp4"), "cello", seed=0, seconds=2.0)
    ...     info = extract_clip(os.path.join(tmp, "v.mp4"), os.path.join(tmp, "v.wav"),
    ...                         os.path.join(tmp, "frames"))
    ...     names = sorted(os.listdir(os.path.join(tmp, "frames")))
    >>> info["n_samples"], info["n_frames"], names
    (32000, 2, ['000001.jpg', '000002.jpg'])
    """
    import av

    config = check_config(config)
    video = os.fspath(video)
    if not os.path.isfile(video):
        raise ClipError("missing", f"video file not found: {video}")

    # leftovers of an interrupted extraction of this clip (any process)
    for stale in glob.glob(glob.escape(frames_dir) + ".tmp*") + glob.glob(
        glob.escape(audio_path) + ".tmp*"
    ):
        _remove(stale)
    suffix = f".tmp{os.getpid()}"
    tmp_frames = frames_dir + suffix
    tmp_audio = audio_path + suffix
    os.makedirs(tmp_frames)
    os.makedirs(os.path.dirname(os.path.abspath(audio_path)), exist_ok=True)
    try:
        audio, n_frames = _decode(av, video, tmp_frames, config)
        duration = len(audio) / config.sample_rate
        if duration < min_duration:
            raise ClipError(
                "too_short",
                f"{video}: {duration:.2f} s of audio, fewer than min_duration="
                f"{min_duration} s",
            )
        peak = float(np.abs(audio).max())
        if not np.isfinite(peak):
            raise ClipError("decode_error", f"{video}: non-finite audio samples")
        if peak < _SILENCE_PEAK:
            raise ClipError("silent", f"{video}: the audio is silent (peak {peak:.2g})")
        sf.write(
            tmp_audio,
            audio,
            config.sample_rate,
            subtype=config.audio_subtype,
            format="WAV",
        )
        os.replace(tmp_audio, audio_path)
        _remove(frames_dir)
        os.replace(tmp_frames, frames_dir)
    finally:
        _remove(tmp_audio)
        _remove(tmp_frames)
    return {"n_samples": len(audio), "duration": duration, "n_frames": n_frames}


def _decode(av, video, frames_dir, config):
    """One demuxing pass: returns the mono audio and writes the frames."""
    try:
        container = av.open(video, metadata_errors="ignore")
    except av.error.FFmpegError as e:
        raise ClipError("unreadable", f"{video}: cannot open ({e})") from e
    with container:
        if not container.streams.audio:
            raise ClipError("no_audio", f"{video}: no audio stream")
        if not container.streams.video:
            raise ClipError("no_video", f"{video}: no video stream")
        a_stream = container.streams.audio[0]
        v_stream = container.streams.video[0]
        origin = _seconds(a_stream.start_time, a_stream.time_base) or 0.0
        rate = v_stream.average_rate or v_stream.guessed_rate
        sar = v_stream.codec_context.sample_aspect_ratio
        sampler = _FrameSampler(
            frames_dir,
            config.fps,
            origin,
            None if config.frame_size is None else int(config.frame_size),
            float(sar) if sar else 1.0,
            config.jpeg_quality,
        )
        resampler = av.AudioResampler(format="fltp", rate=int(config.sample_rate))
        chunks = []
        n_in = 0  # input samples at the stream rate
        in_rate = None
        n_packets = 0
        bad = []  # packets the decoders refused (skipped, as ffmpeg does)
        try:
            for packet in container.demux(a_stream, v_stream):
                n_packets += 1
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError as e:
                    bad.append(str(e))
                    continue
                for frame in frames:
                    if packet.stream.type == "audio":
                        n_in += frame.samples
                        in_rate = frame.sample_rate
                        chunks.extend(f.to_ndarray() for f in resampler.resample(frame))
                    else:
                        sampler.add(frame, rate)
            chunks.extend(f.to_ndarray() for f in resampler.resample(None))
        except (av.error.FFmpegError, ValueError) as e:
            # ValueError: PyAV's resampler or picture conversion refused a frame
            # (e.g. the audio format changes mid-stream)
            raise ClipError("decode_error", f"{video}: decoding failed ({e})") from e
        video_end = sampler.finish()

        if not chunks or n_in == 0:
            raise ClipError("no_audio", f"{video}: no decodable audio samples")
        if video_end is None:
            raise ClipError("no_video", f"{video}: no decodable picture")
        audio = np.concatenate(chunks, axis=1).mean(axis=0).astype(np.float32)
        declared = _seconds(a_stream.duration, a_stream.time_base)
        _check_truncation("audio", n_in / in_rate, declared, video)
        v_declared = _seconds(v_stream.duration, v_stream.time_base)
        _check_truncation("video", video_end - sampler.first_time, v_declared, video)
        if len(bad) > max(_MAX_BAD_PACKETS, _MAX_BAD_FRACTION * n_packets):
            raise ClipError(
                "decode_error",
                f"{video}: {len(bad)} of {n_packets} packets could not be decoded "
                f"(first error: {bad[0]})",
            )
        if declared is not None and 0 < declared < len(audio) / config.sample_rate:
            audio = audio[: int(round(declared * config.sample_rate))]

    # frames only as far as the audio goes
    duration = len(audio) / config.sample_rate
    n_frames = min(sampler.count, max(1, math.ceil(duration * config.fps - _TIME_EPS)))
    for index in range(n_frames + 1, sampler.count + 1):
        os.remove(os.path.join(frames_dir, FRAME_NAME.format(index)))
    return audio, n_frames


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


def _marker_settings(config):
    """What a done marker must match to be reused."""
    return {"version": EXTRACTION_VERSION, **ExtractionConfig(*config)._asdict()}


def _read_marker(paths, video, config):
    """The recorded result if the clip's outputs are complete and current."""
    try:
        with open(paths["marker"], encoding="utf-8") as f:
            marker = json.load(f)
        if marker.get("settings") != _marker_settings(config):
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


def _write_json(path, data):
    """Writes json atomically."""
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
            if os.path.lexists(paths["marker"]):
                os.remove(paths["marker"])
            if not os.path.isfile(clip.video):
                raise ClipError("missing", f"video file not found: {clip.video}")
            fingerprint = source_fingerprint(clip.video)
            info = extract_clip(
                clip.video, paths["audio"], paths["frames"], config, min_duration
            )
            os.makedirs(os.path.dirname(paths["marker"]), exist_ok=True)
            _write_json(
                paths["marker"],
                {
                    "ID": clip.ID,
                    "video": os.path.abspath(clip.video),
                    "source": fingerprint,
                    "settings": _marker_settings(config),
                    "n_samples": info["n_samples"],
                    "n_frames": info["n_frames"],
                },
            )
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


def manifest_paths(save_folder):
    """Paths of the manifests written in ``save_folder``.

    Arguments
    ---------
    save_folder : str
        Root of the prepared dataset.

    Returns
    -------
    dict
        Keys ``"train"``, ``"valid"``, ``"test"``, ``"test_mixtures"``.

    Example
    -------
    >>> sorted(manifest_paths("/out"))
    ['test', 'test_mixtures', 'train', 'valid']
    """
    save_folder = os.path.abspath(os.fspath(save_folder))
    paths = {split: os.path.join(save_folder, f"{split}.csv") for split in SPLITS}
    paths["test_mixtures"] = os.path.join(save_folder, "test_mixtures.csv")
    return paths


def _opts_ok(manifests, opts_file, opts):
    """True if every manifest exists and opts_file records the same options."""
    if not all(os.path.isfile(p) for p in manifests.values()):
        return False
    try:
        with open(opts_file, encoding="utf-8") as f:
            return json.load(f) == opts
    except (OSError, ValueError):
        return False


def prepare_video_dataset(
    name,
    clips,
    save_folder,
    make_mixtures,
    options,
    config=None,
    min_duration=1.0,
    num_workers=1,
    extra_report=None,
    assign_splits=None,
):
    """Extracts listed clips and writes the manifests, the report and the options.

    Writes in ``save_folder``: ``train.csv``, ``valid.csv``, ``test.csv``
    (``ID,audio,frames,n_frames,label,duration``, rows sorted by label and
    ID, failed clips left out), ``test_mixtures.csv``
    (``ID,source1,label1,source2,label2``), ``failed.csv``
    (``ID,video,label,split,reason,message``), ``prepare_report.json`` and
    ``<name>_opts.json``. When the manifests exist and the options file
    records the same options and the same listed files, nothing is done.

    Arguments
    ---------
    name : str
        Dataset name, used in messages and in ``<name>_opts.json``.
    clips : list of VideoClip
        Every listed clip, with its split (or any split, e.g. None, if
        ``assign_splits`` gives them).
    save_folder : str
        Output root.
    make_mixtures : callable
        ``make_mixtures(test_rows) -> list of dict`` with the
        :data:`MIXTURE_FIELDS`; ``test_rows`` are the test manifest rows.
    options : dict
        json-serialisable options of the preparation (compared on reruns).
    config : ExtractionConfig, optional
        Extraction settings.
    min_duration : float
        Minimum audio duration in seconds.
    num_workers : int
        Worker processes.
    extra_report : dict, optional
        More entries for ``prepare_report.json`` (e.g. skipped listings).
    assign_splits : callable, optional
        ``assign_splits(clips) -> clips``: sets the split of the clips that
        were extracted successfully (so that unusable videos do not leave a
        split short); by default the clips keep the split they were listed
        with.

    Returns
    -------
    dict
        Paths of the manifests (see :func:`manifest_paths`).

    Raises
    ------
    RuntimeError
        If every clip failed (the report is written first).
    """
    start = time.time()
    save_folder = os.path.abspath(os.fspath(save_folder))
    clips = [VideoClip(*c) for c in clips]
    if assign_splits is None:
        bad = sorted({str(c.split) for c in clips} - set(SPLITS))
        if bad:
            raise ValueError(f"unknown split name(s) {bad}; expected {SPLITS}")
    config = check_config(config)
    manifests = manifest_paths(save_folder)
    opts = {
        **options,
        "extraction": _marker_settings(config),
        "min_duration": float(min_duration),
        "listing": listing_fingerprint(clips),
    }
    opts_file = os.path.join(save_folder, f"{name.lower()}_opts.json")
    if _opts_ok(manifests, opts_file, opts):
        logger.info("%s is already prepared in %s, skipping", name, save_folder)
        return manifests
    os.makedirs(save_folder, exist_ok=True)
    if os.path.lexists(opts_file):
        os.remove(opts_file)  # a crash from here on must not look "prepared"

    results = extract_clips(clips, save_folder, config, min_duration, num_workers)
    failed = []
    usable = {}
    for clip, result in zip(clips, results):
        if result["status"] != "failed":
            usable[clip.ID] = (clip, result)
            continue
        failed.append(
            {
                "ID": clip.ID,
                "video": clip.video,
                "label": clip.label,
                "split": clip.split or "",
                "reason": result["reason"],
                "message": result["message"],
            }
        )
    if assign_splits is not None:
        assigned = [
            VideoClip(*c) for c in assign_splits([c for c, _ in usable.values()])
        ]
        if sorted(c.ID for c in assigned) != sorted(usable):
            raise RuntimeError("assign_splits must return every usable clip once")
        usable = {c.ID: (c, usable[c.ID][1]) for c in assigned}
    rows = {split: [] for split in SPLITS}
    for clip, result in usable.values():
        if clip.split not in SPLITS:
            raise ValueError(f"clip {clip.ID}: unknown split {clip.split!r}")
        rows[clip.split].append(
            {
                "ID": clip.ID,
                "audio": result["audio"],
                "frames": result["frames"],
                "n_frames": result["n_frames"],
                "label": clip.label,
                "duration": result["duration"],
            }
        )
    failed.sort(key=lambda r: r["ID"])
    write_csv(os.path.join(save_folder, "failed.csv"), FAILED_FIELDS, failed)
    counts = {
        status: sum(r["status"] == status for r in results)
        for status in ("extracted", "reused", "failed")
    }
    reasons = {}
    for row in failed:
        reasons[row["reason"]] = reasons.get(row["reason"], 0) + 1
    report = {
        "dataset": name,
        "save_folder": save_folder,
        "n_listed": len(clips),
        "n_extracted": counts["extracted"],
        "n_reused": counts["reused"],
        "n_failed": counts["failed"],
        "failures": dict(sorted(reasons.items())),
        "n_clips": {split: len(rows[split]) for split in SPLITS},
        "n_labels": {split: len({r["label"] for r in rows[split]}) for split in SPLITS},
        "failed_csv": os.path.join(save_folder, "failed.csv"),
        **(extra_report or {}),
    }
    report_path = os.path.join(save_folder, "prepare_report.json")
    if not any(rows.values()):
        report["seconds"] = round(time.time() - start, 3)
        _write_json(report_path, report)
        _print_summary(report, failed)
        raise RuntimeError(
            f"{name}: none of the {len(clips)} listed videos could be used; "
            f"see {report['failed_csv']}"
        )

    for split in SPLITS:
        rows[split].sort(key=lambda r: (r["label"], r["ID"]))
        write_csv(manifests[split], MANIFEST_FIELDS, rows[split])
    mixtures = make_mixtures(rows["test"])
    write_csv(manifests["test_mixtures"], MIXTURE_FIELDS, mixtures)
    report["n_test_mixtures"] = len(mixtures)
    report["seconds"] = round(time.time() - start, 3)
    _write_json(report_path, report)
    _write_json(opts_file, opts)
    _print_summary(report, failed)
    return manifests


def _print_summary(report, failed, max_lines=20):
    """Prints the outcome of a preparation (and warns about failed clips)."""
    reasons = ", ".join(f"{k}: {v}" for k, v in report["failures"].items())
    clips = ", ".join(f"{k} {v}" for k, v in report["n_clips"].items())
    print(
        f"{report['dataset']}: {report['n_listed']} videos listed, "
        f"{report['n_extracted']} extracted, {report['n_reused']} already done, "
        f"{report['n_failed']} failed{f' ({reasons})' if reasons else ''}; "
        f"clips: {clips}; manifests in {report['save_folder']}"
    )
    for row in failed[:max_lines]:
        print(f"  skipped {row['ID']}: {row['reason']}: {row['message']}")
    if len(failed) > max_lines:
        print(f"  ... {len(failed) - max_lines} more in {report['failed_csv']}")
    if failed:
        logger.warning(
            "%s: %d video(s) skipped, listed in %s",
            report["dataset"],
            len(failed),
            report["failed_csv"],
        )
