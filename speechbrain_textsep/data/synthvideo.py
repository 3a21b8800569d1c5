"""Tiny synthetic videos for testing the MUSIC and VGGSound preparations.

Each video is an mp4 file (H.264 pictures, AAC audio) written with PyAV:

* the audio is a SynthMUSIC rendering (:func:`speechbrain_textsep.data.
  synthmusic.render_clip`) of the instrument of the label (see
  :func:`instrument_for`), at 44.1 kHz, the same on both stereo channels, so
  :func:`synth_audio` gives back exactly what was encoded;
* the pictures are SynthMUSIC frames (:func:`~speechbrain_textsep.data.
  synthmusic.render_frames`, a class-coloured layout of shapes) with a bar
  code in the top eighth that encodes the picture index (8 black or white
  blocks, most significant bit first, index modulo 256), read back by
  :func:`read_frame_index` even after resizing a square picture.

:func:`write_music_videos` writes MUSIC-style class folders
(``root/<class>/<id>.mp4``), :func:`write_vggsound_videos` VGGSound-style
clips named ``<youtube_id>_<start:06d>.mp4`` plus a ``vggsound.csv`` without
header (``youtube_id,start_seconds,label,split``). :func:`write_video`
writes one video (optionally without audio or without pictures) and
:func:`corrupt_video` breaks a file (truncated, garbage or empty).

Everything is derived from seeds; the same arguments give the same files'
content (the mp4 bytes themselves may differ between PyAV versions).

Authors
 * speechbrain-textsep contributors
"""

import csv
import os
from typing import NamedTuple, Optional

import numpy as np

from speechbrain_textsep.data.synthmusic import (
    INSTRUMENTS,
    render_clip,
    render_frames,
    stable_int,
)
from speechbrain_textsep.data.vggsound import NAME_PATTERN

#: Name of the VGGSound-style clips written by :func:`write_vggsound_videos`.
VGGSOUND_NAME_PATTERN = NAME_PATTERN

_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
_BITS = 8


class SynthVideo(NamedTuple):
    """What was written in one synthetic video.

    Arguments
    ---------
    path : str
        The video file.
    label : str
        Its class label.
    instrument : str
        The SynthMUSIC instrument playing the audio (a key of INSTRUMENTS).
    seed : int
        Seed of the audio and the pictures.
    seconds : float
        Duration.
    fps : int
        Picture rate.
    size : int
        Width and height of the pictures.
    audio_rate : int
        Sample rate of the audio stream.
    has_audio : bool
        Whether the file has an audio stream.
    has_video : bool
        Whether the file has a video stream.
    youtube_id : str, optional
        VGGSound-style clips: the (fake) YouTube ID.
    start : int, optional
        VGGSound-style clips: the start second in the CSV.
    split : str, optional
        VGGSound-style clips: ``"train"`` or ``"test"``.
    """

    path: str
    label: str
    instrument: str
    seed: int
    seconds: float
    fps: int
    size: int
    audio_rate: int
    has_audio: bool = True
    has_video: bool = True
    youtube_id: Optional[str] = None
    start: Optional[int] = None
    split: Optional[str] = None


def instrument_for(label):
    """The SynthMUSIC instrument that plays the audio of a label.

    A label that is an instrument name, or contains one (``"playing
    cello"``, ``"acoustic guitar"``), gets that instrument; any other label
    gets one chosen by a stable hash of the label.

    Arguments
    ---------
    label : str
        A class label.

    Returns
    -------
    str
        A key of ``INSTRUMENTS``.

    Example
    -------
    >>> instrument_for("cello"), instrument_for("playing acoustic guitar")
    ('cello', 'acoustic_guitar')
    >>> instrument_for("dog barking") in INSTRUMENTS
    True
    """
    if label in INSTRUMENTS:
        return label
    text = str(label).lower().replace("_", " ")
    for name in sorted(INSTRUMENTS, key=len, reverse=True):
        if name.replace("_", " ") in text:
            return name
    names = sorted(INSTRUMENTS)
    return names[stable_int("synthvideo-instrument", label) % len(names)]


def synth_audio(label, seed, seconds, sample_rate=44100, instrument=None):
    """The mono audio of a synthetic video (what :func:`write_video` encodes).

    Arguments
    ---------
    label : str
        Class label.
    seed : int
        Seed of the melody.
    seconds : float
        Duration.
    sample_rate : int
        Sample rate.
    instrument : str, optional
        Instrument (key of INSTRUMENTS); defaults to ``instrument_for(label)``.

    Returns
    -------
    np.ndarray
        float32 samples, shape ``(round(seconds * sample_rate),)``.

    Example
    -------
    >>> synth_audio("flute", seed=1, seconds=0.5, sample_rate=16000).shape
    (8000,)
    """
    inst = INSTRUMENTS[instrument or instrument_for(label)]
    return render_clip(
        inst.program,
        seed,
        seconds,
        sample_rate=sample_rate,
        note_range=(inst.low, inst.high),
        is_drums=inst.is_drums,
    )


def synth_pictures(label, seed, n_pictures, size=64):
    """The pictures of a synthetic video, with the index bar code.

    Arguments
    ---------
    label : str
        Class label (sets colours and shapes).
    seed : int
        Seed of the per-video jitter.
    n_pictures : int
        Number of pictures.
    size : int
        Width and height (even, at least 16).

    Returns
    -------
    list of np.ndarray
        ``uint8`` RGB arrays of shape ``(size, size, 3)``.

    Example
    -------
    >>> pictures = synth_pictures("cello", seed=0, n_pictures=3, size=64)
    >>> [read_frame_index(p) for p in pictures]
    [0, 1, 2]
    """
    if size < 16 or size % 2:
        raise ValueError(f"size must be even and at least 16, got {size}")
    band = size // _BITS
    out = []
    for index, image in enumerate(render_frames(label, seed, n_pictures, size)):
        pixels = np.array(image, dtype=np.uint8)
        code = index % (1 << _BITS)
        for bit in range(_BITS):
            on = (code >> (_BITS - 1 - bit)) & 1
            x0, x1 = bit * size // _BITS, (bit + 1) * size // _BITS
            pixels[:band, x0:x1] = 255 if on else 0
        out.append(pixels)
    return out


def read_frame_index(image):
    """Reads the picture index from the bar code of a (resized) square picture.

    Arguments
    ---------
    image : PIL.Image.Image or np.ndarray or str
        An RGB picture (or the path of one) made by :func:`synth_pictures`,
        possibly resized.

    Returns
    -------
    int
        The index modulo 256.

    Example
    -------
    >>> read_frame_index(synth_pictures("violin", 0, 6, size=32)[5])
    5
    """
    from PIL import Image

    if isinstance(image, (str, os.PathLike)):
        with Image.open(image) as img:
            image = img.convert("RGB")
    pixels = np.asarray(image, dtype=np.float32)
    height, width = pixels.shape[:2]
    y = height // (2 * _BITS)
    half = max(1, width // (4 * _BITS))
    code = 0
    for bit in range(_BITS):
        x = int((bit + 0.5) * width / _BITS)
        patch = pixels[max(0, y - half // 2) : y + half // 2 + 1, x - half : x + half]
        code = (code << 1) | int(patch.mean() > 127.5)
    return code


def _video_codec():
    """libx264 when PyAV has it, else mpeg4."""
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_video(
    path,
    label,
    seed,
    seconds=3.0,
    fps=8,
    size=64,
    audio_rate=44100,
    audio=True,
    video=True,
    instrument=None,
    faststart=False,
    gain=1.0,
):
    """Writes one synthetic mp4 video.

    Arguments
    ---------
    path : str
        Output file (``.mp4``); parent folders are created.
    label : str
        Class label (pictures and, through :func:`instrument_for`, audio).
    seed : int
        Seed of the audio and the pictures.
    seconds : float
        Duration.
    fps : int
        Picture rate.
    size : int
        Width and height of the pictures (even).
    audio_rate : int
        Sample rate of the AAC stream (stereo, both channels equal).
    audio : bool
        Write an audio stream.
    video : bool
        Write a video stream.
    instrument : str, optional
        Instrument of the audio; defaults to ``instrument_for(label)``.
    faststart : bool
        Put the mp4 index at the start of the file (then a truncated copy is
        still readable, up to where it was cut).
    gain : float
        Factor applied to the audio (0 writes a silent audio stream).

    Returns
    -------
    SynthVideo
        What was written.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     v = write_video(os.path.join(tmp, "a.mp4"), "violin", seed=3, seconds=1.0)
    ...     ok = os.path.getsize(v.path) > 0
    >>> v.instrument, v.fps, ok
    ('violin', 8, True)
    """
    import av

    if not (audio or video):
        raise ValueError("a video needs an audio or a video stream")
    if seconds <= 0 or fps <= 0:
        raise ValueError("seconds and fps must be positive")
    instrument = instrument or instrument_for(label)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(path, "w", format="mp4", options=options) as container:
        v_stream = _add_video_stream(container, fps, size) if video else None
        a_stream = _add_audio_stream(container, audio_rate) if audio else None
        if video:
            n_pictures = max(1, int(round(seconds * fps)))
            pictures = synth_pictures(label, seed, n_pictures, size)
            _mux_pictures(container, v_stream, pictures)
        if audio:
            mono = synth_audio(label, seed, seconds, audio_rate, instrument)
            mono = (mono * np.float32(gain)).astype(np.float32)
            _mux_audio(container, a_stream, mono, audio_rate)
    return SynthVideo(
        path,
        label,
        instrument,
        seed,
        float(seconds),
        int(fps),
        int(size),
        int(audio_rate),
        bool(audio),
        bool(video),
    )


def _add_video_stream(container, fps, size):
    """Adds the (H.264 when available) picture stream to an mp4 container."""
    v_stream = container.add_stream(_video_codec(), rate=int(fps))
    v_stream.width = v_stream.height = int(size)
    v_stream.pix_fmt = "yuv420p"
    if v_stream.codec_context.name == "libx264":
        v_stream.options = {"crf": "16"}
    return v_stream


def _add_audio_stream(container, audio_rate):
    """Adds the stereo AAC stream to an mp4 container."""
    a_stream = container.add_stream("aac", rate=int(audio_rate))
    a_stream.layout = "stereo"
    return a_stream


def _mux_pictures(container, v_stream, pictures):
    """Encodes the RGB pictures (one per time step) and flushes the encoder."""
    import av

    for index, pixels in enumerate(pictures):
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        frame.pts = index
        container.mux(v_stream.encode(frame))
    container.mux(v_stream.encode(None))


def _mux_audio(container, a_stream, mono, audio_rate):
    """Encodes mono audio on both stereo channels and flushes the encoder."""
    import av

    frame = av.AudioFrame.from_ndarray(
        np.stack([mono, mono]), format="fltp", layout="stereo"
    )
    frame.sample_rate = int(audio_rate)
    frame.pts = 0
    container.mux(a_stream.encode(frame))
    container.mux(a_stream.encode(None))


def corrupt_video(path, mode="truncate", keep=0.5, seed=0):
    """Breaks a file in place, the way downloads break.

    Arguments
    ---------
    path : str
        The file to break (it is overwritten).
    mode : str
        ``"truncate"`` keeps the first ``keep`` fraction of the bytes,
        ``"garbage"`` writes random bytes of the same size, ``"empty"``
        leaves a 0-byte file.
    keep : float
        Fraction kept by ``"truncate"``.
    seed : int
        Seed of the garbage.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = os.path.join(tmp, "x.mp4")
    ...     with open(p, "wb") as f:
    ...         _ = f.write(b"0123456789")
    ...     corrupt_video(p, "truncate", keep=0.3)
    ...     os.path.getsize(p)
    3
    """
    size = os.path.getsize(path)
    if mode == "truncate":
        if not 0 <= keep < 1:
            raise ValueError(f"keep must be in [0, 1), got {keep}")
        with open(path, "r+b") as f:
            f.truncate(int(size * keep))
    elif mode == "garbage":
        data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)
        with open(path, "wb") as f:
            f.write(data.tobytes())
    elif mode == "empty":
        open(path, "wb").close()
    else:
        raise ValueError(f"mode must be 'truncate', 'garbage' or 'empty', got {mode!r}")


def write_music_videos(
    root,
    classes=("cello", "flute", "trumpet"),
    n_per_class=3,
    seconds=3.0,
    seed=0,
    **kwargs,
):
    """Writes MUSIC-style solo videos: ``root/<class>/<id>.mp4``.

    Arguments
    ---------
    root : str
        Output folder (the ``data_folder`` of ``prepare_music``).
    classes : list of str
        Class (folder) names; each is played by ``instrument_for(class)``.
    n_per_class : int
        Videos per class.
    seconds : float
        Duration of every video.
    seed : int
        Seed of the whole set (each video gets one from ``(seed, class, i)``).
    **kwargs
        More arguments of :func:`write_video` (``fps``, ``size``, ...).

    Returns
    -------
    list of SynthVideo
        The videos written, class by class. Their file stems are 11-character
        fake YouTube IDs.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     videos = write_music_videos(tmp, ["cello"], n_per_class=1, seconds=1.0)
    ...     print(os.path.relpath(videos[0].path, tmp))
    cello/UGPRd0Q1_UW.mp4
    """
    videos = []
    for label in classes:
        for index in range(int(n_per_class)):
            video_seed = stable_int("synthvideo-music", seed, label, index)
            name = _youtube_id(video_seed)
            path = os.path.join(os.fspath(root), label, f"{name}.mp4")
            videos.append(write_video(path, label, video_seed, seconds, **kwargs))
    return videos


def _youtube_id(seed):
    """An 11-character fake YouTube ID."""
    rng = np.random.default_rng(seed)
    return "".join(_ID_CHARS[i] for i in rng.integers(len(_ID_CHARS), size=11))


def write_vggsound_videos(
    root,
    labels=("dog barking", "playing violin, fiddle", "rain"),
    n_train=3,
    n_test=1,
    seconds=3.0,
    seed=0,
    name_pattern=VGGSOUND_NAME_PATTERN,
    csv_name="vggsound.csv",
    **kwargs,
):
    """Writes VGGSound-style clips and their label CSV.

    The clips are ``root/<name_pattern>`` (by default
    ``<youtube_id>_<start:06d>.mp4``) and ``root/<csv_name>`` lists them as
    VGGSound's ``vggsound.csv`` does, without header:
    ``youtube_id,start_seconds,label,split`` (split ``train`` or ``test``).

    Arguments
    ---------
    root : str
        Output folder (the ``data_folder`` of ``prepare_vggsound``).
    labels : list of str
        Labels (any text; commas are quoted in the CSV).
    n_train : int
        Training clips per label.
    n_test : int
        Test clips per label.
    seconds : float
        Duration of every clip.
    seed : int
        Seed of the whole set.
    name_pattern : str
        ``str.format`` pattern of the clip names, with fields ``youtube_id``,
        ``start``, ``end`` (start + 10), ``label`` and ``split``.
    csv_name : str
        Name of the CSV file in ``root``.
    **kwargs
        More arguments of :func:`write_video` (``fps``, ``size``, ...).

    Returns
    -------
    csv_path : str
        The label CSV.
    videos : list of SynthVideo
        The clips written (with ``youtube_id``, ``start`` and ``split``).

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     csv_path, videos = write_vggsound_videos(
    ...         tmp, ["dog barking"], n_train=1, n_test=0, seconds=1.0)
    ...     print(open(csv_path).read().strip())
    ...     print(os.path.basename(videos[0].path))
    zmsWYCE8L-9,121,dog barking,train
    zmsWYCE8L-9_000121.mp4
    """
    root = os.fspath(root)
    os.makedirs(root, exist_ok=True)
    videos = []
    rows = []
    for label in labels:
        for index in range(int(n_train) + int(n_test)):
            split = "train" if index < int(n_train) else "test"
            video = _write_vggsound_video(
                root, label, index, split, seed, seconds, name_pattern, kwargs
            )
            videos.append(video)
            rows.append([video.youtube_id, video.start, label, split])
    csv_path = os.path.join(root, csv_name)
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return csv_path, videos


def _write_vggsound_video(root, label, index, split, seed, seconds, pattern, kwargs):
    """Writes clip ``index`` of a label; returns its SynthVideo (with the ID)."""
    video_seed = stable_int("synthvideo-vggsound", seed, label, index)
    youtube_id = _youtube_id(video_seed)
    start = int(np.random.default_rng(video_seed).integers(0, 300))
    name = pattern.format(
        youtube_id=youtube_id,
        start=start,
        end=start + 10,
        label=label,
        split=split,
    )
    video = write_video(os.path.join(root, name), label, video_seed, seconds, **kwargs)
    return video._replace(youtube_id=youtube_id, start=start, split=split)
