"""Decoding of one video file into a mono wav file and a folder of frames.

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

Both outputs are written under temporary names and moved into place with
:func:`os.replace`. Videos that cannot be used are never replaced by
silence: :func:`extract_clip` raises :class:`ClipError` with one of the
:data:`FAILURE_REASONS`. Extracting many clips, resumably and in parallel,
is the job of :mod:`speechbrain_textsep.data.video_jobs`.

Authors
 * speechbrain-textsep contributors
"""

import glob
import math
import os
import shutil
from typing import NamedTuple, Optional

import numpy as np
import soundfile as sf

from speechbrain_textsep.data.clips import FRAME_NAME

#: Bump when the extraction changes, so that older outputs are re-extracted.
EXTRACTION_VERSION = 1

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


def extraction_settings(config):
    """What the outputs of an extraction depend on: the version and the settings.

    Arguments
    ---------
    config : ExtractionConfig or tuple
        The extraction settings.

    Returns
    -------
    dict
        ``version`` (:data:`EXTRACTION_VERSION`) and the fields of ``config``.

    Example
    -------
    >>> settings = extraction_settings(ExtractionConfig())
    >>> settings["version"] == EXTRACTION_VERSION, settings["fps"]
    (True, 1.0)
    """
    return {"version": EXTRACTION_VERSION, **ExtractionConfig(*config)._asdict()}


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

    _remove_leftovers(frames_dir, audio_path)
    suffix = f".tmp{os.getpid()}"
    tmp_frames = frames_dir + suffix
    tmp_audio = audio_path + suffix
    os.makedirs(tmp_frames)
    os.makedirs(os.path.dirname(os.path.abspath(audio_path)), exist_ok=True)
    try:
        audio, n_frames = _decode(av, video, tmp_frames, config)
        duration = len(audio) / config.sample_rate
        _check_audio(audio, duration, video, min_duration)
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


def _remove_leftovers(frames_dir, audio_path):
    """Removes the leftovers of an interrupted extraction of a clip (any process)."""
    for stale in glob.glob(glob.escape(frames_dir) + ".tmp*") + glob.glob(
        glob.escape(audio_path) + ".tmp*"
    ):
        _remove(stale)


def _check_audio(audio, duration, video, min_duration):
    """Raises ClipError if the decoded audio is too short, non-finite or silent."""
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
        streams = (container.streams.audio[0], container.streams.video[0])
        sampler = _frame_sampler(*streams, frames_dir, config)
        demuxed = _demux(av, container, streams, sampler, config, video)
        video_end = sampler.finish()
        audio = _mono_audio(demuxed, streams, sampler, video_end, config, video)
    n_frames = _drop_frames_past_audio(frames_dir, sampler.count, len(audio), config)
    return audio, n_frames


def _frame_sampler(a_stream, v_stream, frames_dir, config):
    """The sampler of the frames, timed from the start of the audio stream."""
    origin = _seconds(a_stream.start_time, a_stream.time_base) or 0.0
    sar = v_stream.codec_context.sample_aspect_ratio
    return _FrameSampler(
        frames_dir,
        config.fps,
        origin,
        None if config.frame_size is None else int(config.frame_size),
        float(sar) if sar else 1.0,
        config.jpeg_quality,
    )


class _Demuxed(NamedTuple):
    """What one pass decoded: resampled audio chunks and packet counts."""

    chunks: list  # (channels, samples) arrays at the output rate
    n_in: int  # input samples at the stream rate
    in_rate: Optional[int]
    n_packets: int
    bad: list  # errors of the packets the decoders refused


def _demux(av, container, streams, sampler, config, video):
    """Decodes every packet: resamples the audio, hands pictures to the sampler."""
    a_stream, v_stream = streams
    rate = v_stream.average_rate or v_stream.guessed_rate
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
    return _Demuxed(chunks, n_in, in_rate, n_packets, bad)


def _mono_audio(demuxed, streams, sampler, video_end, config, video):
    """Checks what was decoded; returns the mono audio, trimmed as declared."""
    a_stream, v_stream = streams
    if not demuxed.chunks or demuxed.n_in == 0:
        raise ClipError("no_audio", f"{video}: no decodable audio samples")
    if video_end is None:
        raise ClipError("no_video", f"{video}: no decodable picture")
    audio = np.concatenate(demuxed.chunks, axis=1).mean(axis=0).astype(np.float32)
    declared = _seconds(a_stream.duration, a_stream.time_base)
    _check_truncation("audio", demuxed.n_in / demuxed.in_rate, declared, video)
    v_declared = _seconds(v_stream.duration, v_stream.time_base)
    _check_truncation("video", video_end - sampler.first_time, v_declared, video)
    bad, n_packets = demuxed.bad, demuxed.n_packets
    if len(bad) > max(_MAX_BAD_PACKETS, _MAX_BAD_FRACTION * n_packets):
        raise ClipError(
            "decode_error",
            f"{video}: {len(bad)} of {n_packets} packets could not be decoded "
            f"(first error: {bad[0]})",
        )
    if declared is not None and 0 < declared < len(audio) / config.sample_rate:
        audio = audio[: int(round(declared * config.sample_rate))]
    return audio


def _drop_frames_past_audio(frames_dir, n_saved, n_samples, config):
    """Deletes the frames after the end of the audio; returns how many are kept."""
    duration = n_samples / config.sample_rate
    n_frames = min(n_saved, max(1, math.ceil(duration * config.fps - _TIME_EPS)))
    for index in range(n_frames + 1, n_saved + 1):
        os.remove(os.path.join(frames_dir, FRAME_NAME.format(index)))
    return n_frames
