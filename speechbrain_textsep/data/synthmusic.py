"""SynthMUSIC: an offline, deterministic stand-in for the MUSIC dataset.

SynthMUSIC renders class-labelled single-instrument clips from the General MIDI
soundfont that ``pretty_midi`` ships (``TimGM6mb.sf2``) with ``tinysoundfont``,
together with synthetic "video frames" whose content identifies the class, so
that the text-, image- and audio-queried separation recipes can be run and
tested without downloading anything.

The on-disk layout and manifests are the same as the ones the MUSIC recipe
writes from real videos::

    data_folder/
        audio/<split>/<ID>.wav
        frames/<split>/<ID>/000001.jpg, 000002.jpg, ...
        train.csv, valid.csv, test.csv      (ID,audio,frames,n_frames,label,duration)
        test_mixtures.csv                   (ID,source1,label1,source2,label2)
        synthmusic_opts.json

Everything is derived from seeds: the same options always give the same
audio and images, whichever the number of worker processes.
"""

import csv
import hashlib
import json
import multiprocessing
import os
from typing import NamedTuple

import numpy as np
import soundfile as sf
from PIL import Image, ImageDraw
from speechbrain.utils.logger import get_logger
from tqdm import tqdm

from speechbrain_textsep.data.clips import FRAME_NAME

logger = get_logger(__name__)

#: Bump when the rendering changes, so that old renders are not reused.
SYNTHMUSIC_VERSION = 1

#: Columns of the per-split manifests (train.csv, valid.csv, test.csv).
MANIFEST_FIELDS = ["ID", "audio", "frames", "n_frames", "label", "duration"]

#: Columns of test_mixtures.csv.
MIXTURE_FIELDS = ["ID", "source1", "label1", "source2", "label2"]

SPLITS = ("train", "valid", "test")


class GMInstrument(NamedTuple):
    """A General MIDI instrument: program number and playable key range.

    Arguments
    ---------
    program : int
        General MIDI program (0-based, e.g. 40 is Violin). For percussion
        (``is_drums=True``) this is the drum-kit preset (0 is Standard).
    low : int
        Lowest MIDI key that is played.
    high : int
        Highest MIDI key that is played (inclusive).
    is_drums : bool
        Whether the instrument is played on a MIDI drum channel, where each
        key is a different percussion sound of the General MIDI drum map.

    Example
    -------
    >>> INSTRUMENTS["violin"]
    GMInstrument(program=40, low=55, high=93, is_drums=False)
    """

    program: int
    low: int
    high: int
    is_drums: bool = False


#: MUSIC21 classes (MUSIC21 spelling) that General MIDI can play, with their
#: GM program and a key range inside the instrument's real (sounding) range.
#: Left out, as General MIDI has nothing close: erhu, pipa and ukulele.
#: Justified extras: guzheng is played with "Koto" (the koto is the Japanese
#: descendant of the guzheng, a long zither with movable bridges), congas and
#: drum are played from the GM percussion map (keys 62-64 are Mute Hi Conga,
#: Open Hi Conga and Low Conga; keys 35-51 are the kit: kicks, snares, toms,
#: hi-hats, crash and ride). The saxophone is the tenor (66) because the alto
#: preset of TimGM6mb is silent on E4.
INSTRUMENTS = {
    "accordion": GMInstrument(21, 53, 81),
    "acoustic_guitar": GMInstrument(24, 40, 76),
    "bagpipe": GMInstrument(109, 67, 81),
    "banjo": GMInstrument(105, 50, 79),
    "bassoon": GMInstrument(70, 36, 67),
    "cello": GMInstrument(42, 36, 72),
    "clarinet": GMInstrument(71, 52, 84),
    "congas": GMInstrument(0, 62, 64, is_drums=True),
    "drum": GMInstrument(0, 35, 51, is_drums=True),
    "electric_bass": GMInstrument(33, 28, 55),
    "flute": GMInstrument(73, 60, 93),
    "guzheng": GMInstrument(107, 50, 86),
    "piano": GMInstrument(0, 40, 88),
    "saxophone": GMInstrument(66, 44, 76),
    "trumpet": GMInstrument(56, 55, 82),
    "tuba": GMInstrument(58, 29, 58),
    "violin": GMInstrument(40, 55, 93),
    "xylophone": GMInstrument(13, 65, 96),
}

#: The classes of the original 11-instrument MUSIC dataset that General MIDI
#: has (all but erhu). This is the default class list.
MUSIC11_CLASSES = [
    "accordion",
    "acoustic_guitar",
    "cello",
    "clarinet",
    "flute",
    "saxophone",
    "trumpet",
    "tuba",
    "violin",
    "xylophone",
]

# Scales used for the melodies, as semitone offsets from a random root.
_SCALES = (
    (0, 2, 4, 5, 7, 9, 11),  # major
    (0, 2, 3, 5, 7, 8, 10),  # natural minor
    (0, 2, 3, 5, 7, 9, 10),  # dorian
    (0, 2, 4, 7, 9),  # major pentatonic
    (0, 3, 5, 7, 10),  # minor pentatonic
)
_STEPS = np.array([-3, -2, -1, 0, 1, 2, 3])
_STEP_PROBS = np.array([0.05, 0.2, 0.25, 0.06, 0.25, 0.14, 0.05])
_SILENCE_PEAK = 1e-5
_PEAK = 0.9

# Per-process cache of loaded synthesizers: (soundfont path, rate) -> (synth, sfid)
_SYNTHS = {}


def default_soundfont():
    """Returns the path of the General MIDI soundfont shipped with pretty_midi.

    Returns
    -------
    path : str
        Path of ``TimGM6mb.sf2`` inside the ``pretty_midi`` package.

    Example
    -------
    >>> os.path.basename(default_soundfont())
    'TimGM6mb.sf2'
    """
    import pretty_midi

    return os.path.join(os.path.dirname(pretty_midi.__file__), "TimGM6mb.sf2")


def _check_soundfont(soundfont):
    """Resolves the soundfont path and raises if it does not exist."""
    path = default_soundfont() if soundfont is None else os.fspath(soundfont)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"SoundFont not found: {path}")
    return os.path.abspath(path)


def _get_synth(soundfont, sample_rate):
    """Returns a cached (synth, sfid), reset to its initial state."""
    import tinysoundfont

    key = (soundfont, int(sample_rate))
    if key not in _SYNTHS:
        synth = tinysoundfont.Synth(samplerate=int(sample_rate))
        sfid = synth.sfload(soundfont)
        _SYNTHS[key] = (synth, sfid)
        return synth, sfid
    synth, sfid = _SYNTHS[key]
    # tsf_reset frees all channel state and ends every voice "quickly" (a
    # release of a few samples, not at once), so render until the output is
    # digital silence: once every voice is free, new notes take the voices in
    # the same order as in a fresh synth, and the output is bit-identical.
    synth.soundfonts[sfid].reset()
    for i in range(64):
        tail = np.frombuffer(synth.generate(1024), dtype=np.float32)
        if i >= 1 and not tail.any():
            return synth, sfid
    del _SYNTHS[key]  # could not drain it: start afresh
    return _get_synth(soundfont, sample_rate)


def _melody(rng, n_total, sample_rate, note_range, is_drums):
    """Draws a random melody as a list of (start, length, key, velocity)."""
    lo, hi = note_range
    keys = np.arange(lo, hi + 1)
    if not is_drums:
        root = int(rng.integers(12))
        scale = _SCALES[int(rng.integers(len(_SCALES)))]
        in_scale = keys[np.isin((keys - root) % 12, scale)]
        if len(in_scale) > 0:
            keys = in_scale
    idx = int(rng.integers(len(keys)))
    events = []
    t = int(round(rng.uniform(0.0, 0.05) * sample_rate))
    while t < n_total:
        if events and rng.random() < 0.12:
            t += int(round(rng.uniform(0.1, 0.4) * sample_rate))
            continue
        length = int(round(rng.uniform(0.15, 0.8) * sample_rate))
        velocity = int(rng.integers(70, 121))
        events.append((t, length, int(keys[idx]), velocity))
        t += length
        if is_drums or rng.random() < 0.1:
            idx = int(rng.integers(len(keys)))
        else:
            idx += int(rng.choice(_STEPS, p=_STEP_PROBS))
            # reflect into range
            period = max(2 * (len(keys) - 1), 1)
            idx %= period
            if idx >= len(keys):
                idx = period - idx
    return events


def render_clip(
    program,
    seed,
    duration,
    sample_rate=16000,
    note_range=(48, 84),
    soundfont=None,
    is_drums=False,
):
    """Renders a random melody played by one General MIDI instrument.

    The melody is a random walk on a random scale within ``note_range``
    (uniformly random keys for drums), with note lengths of 0.15-0.8 s,
    occasional short rests and velocities in 70-120. The same arguments
    always give the same samples.

    Arguments
    ---------
    program : int
        General MIDI program number (0-127), e.g. ``INSTRUMENTS["cello"].program``.
    seed : int
        Seed of the melody.
    duration : float
        Length of the clip in seconds.
    sample_rate : int
        Sample rate of the output; the synthesizer renders at this rate.
    note_range : tuple of int
        Lowest and highest MIDI key (inclusive) of the melody.
    soundfont : str, optional
        Path of an sf2 soundfont; defaults to pretty_midi's ``TimGM6mb.sf2``.
    is_drums : bool
        Play on a MIDI drum channel (``program`` is then the drum kit).

    Returns
    -------
    audio : np.ndarray
        Mono float32 samples, shape ``(round(duration * sample_rate),)``,
        peak-normalised to 0.9.

    Raises
    ------
    FileNotFoundError
        If the soundfont does not exist.
    RuntimeError
        If the rendered clip is silent.

    Example
    -------
    >>> cello = INSTRUMENTS["cello"]
    >>> x = render_clip(cello.program, seed=0, duration=0.5,
    ...                 note_range=(cello.low, cello.high))
    >>> x.shape, x.dtype, round(float(abs(x).max()), 3)
    ((8000,), dtype('float32'), 0.9)
    >>> y = render_clip(cello.program, seed=0, duration=0.5,
    ...                 note_range=(cello.low, cello.high))
    >>> bool((x == y).all())
    True
    """
    lo, hi = _check_render_args(program, duration, note_range)
    soundfont = _check_soundfont(soundfont)
    n_total = int(round(duration * sample_rate))
    rng = np.random.default_rng(seed)
    events = _melody(rng, n_total, sample_rate, (lo, hi), is_drums)
    stereo = _play(events, program, n_total, sample_rate, soundfont, is_drums)
    audio = stereo.mean(axis=1, dtype=np.float64)
    peak = float(np.abs(audio).max()) if len(audio) else 0.0
    if not np.isfinite(peak) or peak < _SILENCE_PEAK:
        raise RuntimeError(
            f"Rendered a silent clip (program={program}, seed={seed}, "
            f"note_range={(lo, hi)}, peak={peak:.3g}); check the soundfont."
        )
    return (audio * (_PEAK / peak)).astype(np.float32)


def _check_render_args(program, duration, note_range):
    """Checks the arguments of ``render_clip``; returns the key range as ints."""
    lo, hi = (int(k) for k in note_range)
    if not 0 <= lo <= hi <= 127:
        raise ValueError(f"note_range must satisfy 0 <= low <= high <= 127: {lo, hi}")
    if not 0 <= int(program) <= 127:
        raise ValueError(f"program must be in 0-127, got {program}")
    if duration <= 0:
        raise ValueError(f"duration must be positive, got {duration}")
    return lo, hi


def _play(events, program, n_total, sample_rate, soundfont, is_drums):
    """Plays the (start, length, key, velocity) events on the synthesizer.

    Returns the ``n_total`` rendered frames as a float32 ``(n_total, 2)``
    stereo array.
    """
    synth, sfid = _get_synth(soundfont, sample_rate)
    chan = 9 if is_drums else 0
    synth.program_select(chan, sfid, 0, int(program), is_drums=bool(is_drums))
    chunks = []
    pos = 0

    def advance(n):
        nonlocal pos
        n = min(n, n_total - pos)
        if n > 0:
            chunks.append(np.frombuffer(synth.generate(n), dtype=np.float32))
            pos += n

    for start, length, key, velocity in events:
        advance(start - pos)
        synth.noteon(chan, key, velocity)
        advance(start + length - pos)
        synth.noteoff(chan, key)
    advance(n_total - pos)
    return np.concatenate(chunks).reshape(-1, 2)


def stable_int(*parts):
    """A 63-bit integer hash of the parts that is stable across processes."""
    text = "/".join(str(p) for p in parts)
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _class_layout(label):
    """The class-specific background and shapes (fractions of the image size)."""
    rng = np.random.default_rng(stable_int("synthmusic-frames", label))
    background = rng.integers(20, 236, size=3)
    shapes = []
    for i in range(4):
        shapes.append(
            {
                "kind": ("ellipse", "rectangle", "triangle", "diamond", "bar")[
                    int(rng.integers(5))
                ],
                "color": rng.integers(0, 256, size=3),
                "center": rng.uniform(0.2, 0.8, size=2),
                # the first shape is the large "body" of the instrument
                "size": rng.uniform(0.35, 0.55) if i == 0 else rng.uniform(0.12, 0.25),
                "angle": rng.uniform(0, np.pi),
            }
        )
    return background, shapes


def _polygon(kind, cx, cy, r, angle):
    """Vertices of a rotated triangle, diamond or bar."""
    if kind == "triangle":
        angles = angle + np.array([0.0, 2.0, 4.0]) * np.pi / 3
        radii = np.full(3, r)
    elif kind == "diamond":
        angles = angle + np.arange(4) * np.pi / 2
        radii = np.array([r, 0.6 * r, r, 0.6 * r])
    else:  # bar: a long thin rectangle, like a neck or a bow
        half_w = np.arctan2(0.15, 1.0)
        angles = angle + np.array([half_w, np.pi - half_w, np.pi + half_w, -half_w])
        radii = np.full(4, r * np.hypot(1.0, 0.15))
    return [(cx + q * np.cos(a), cy + q * np.sin(a)) for a, q in zip(angles, radii)]


def render_frames(label, seed, n_frames=3, size=128):
    """Renders synthetic "video frames" whose content identifies the class.

    Each class has its own background colour and layout of coloured shapes,
    derived from a hash of ``label``. Each clip (``seed``) shifts, scales and
    recolours them slightly, and the shapes drift from frame to frame under
    pixel noise, so frames of one class are similar but never identical.

    Arguments
    ---------
    label : str
        Class name, e.g. ``"violin"``.
    seed : int
        Seed of the per-clip and per-frame jitter.
    n_frames : int
        Number of frames.
    size : int
        Width and height of the square frames in pixels.

    Returns
    -------
    frames : list of PIL.Image.Image
        ``n_frames`` RGB images of ``size`` x ``size`` pixels.

    Example
    -------
    >>> frames = render_frames("violin", seed=0, n_frames=2, size=64)
    >>> len(frames), frames[0].size, frames[0].mode
    (2, (64, 64), 'RGB')
    >>> again = render_frames("violin", seed=0, n_frames=2, size=64)
    >>> bool((np.asarray(frames[1]) == np.asarray(again[1])).all())
    True
    """
    background, shapes = _class_layout(label)
    rng = np.random.default_rng(stable_int("synthmusic-jitter", seed))
    shift = rng.uniform(-0.06, 0.06, size=2)
    brightness = rng.uniform(0.9, 1.1)
    jitter = []
    for _ in shapes:
        jitter.append(
            {
                "offset": shift + rng.uniform(-0.03, 0.03, size=2),
                "drift": rng.uniform(-0.015, 0.015, size=2),
                "scale": rng.uniform(0.9, 1.1),
                "color": rng.normal(0.0, 10.0, size=3),
                "angle": rng.uniform(-0.15, 0.15),
            }
        )
    bg = tuple(int(c) for c in np.clip(background * brightness, 0, 255))

    frames = []
    for f in range(n_frames):
        image = Image.new("RGB", (size, size), bg)
        draw = ImageDraw.Draw(image)
        for shape, jit in zip(shapes, jitter):
            shake = rng.uniform(-0.01, 0.01, size=2)
            cx, cy = (shape["center"] + jit["offset"] + f * jit["drift"] + shake) * size
            r = shape["size"] * jit["scale"] * size / 2
            color = np.clip((shape["color"] + jit["color"]) * brightness, 0, 255)
            color = tuple(int(c) for c in color)
            angle = shape["angle"] + jit["angle"]
            if shape["kind"] == "ellipse":
                draw.ellipse([cx - r, cy - 0.7 * r, cx + r, cy + 0.7 * r], fill=color)
            elif shape["kind"] == "rectangle":
                draw.rectangle([cx - r, cy - 0.6 * r, cx + r, cy + 0.6 * r], fill=color)
            else:
                draw.polygon(_polygon(shape["kind"], cx, cy, r, angle), fill=color)
        pixels = np.asarray(image, dtype=np.float32)
        pixels = pixels + rng.normal(0.0, 6.0, size=pixels.shape)
        frames.append(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)))
    return frames


def _resolve_classes(classes):
    """Checks the class names and returns them as a list."""
    classes = list(MUSIC11_CLASSES if classes is None else classes)
    unknown = [c for c in classes if c not in INSTRUMENTS]
    if unknown:
        raise ValueError(
            f"Unknown SynthMUSIC class(es) {unknown}; valid names are: "
            f"{sorted(INSTRUMENTS)}"
        )
    if len(set(classes)) != len(classes):
        raise ValueError(f"Duplicate class names in {classes}")
    if not classes:
        raise ValueError("At least one class is needed")
    return classes


def _render_one(task):
    """Renders one clip (audio and frames) and returns its manifest row."""
    inst = INSTRUMENTS[task["label"]]
    audio = render_clip(
        inst.program,
        task["seed"],
        task["duration"],
        sample_rate=task["sample_rate"],
        note_range=(inst.low, inst.high),
        soundfont=task["soundfont"],
        is_drums=inst.is_drums,
    )
    sf.write(task["audio"], audio, task["sample_rate"], subtype="PCM_16")
    os.makedirs(task["frames"], exist_ok=True)
    frames = render_frames(
        task["label"], task["seed"], n_frames=task["n_frames"], size=task["frame_size"]
    )
    for i, frame in enumerate(frames, start=1):
        frame.save(os.path.join(task["frames"], FRAME_NAME.format(i)), quality=90)
    return {
        "ID": task["ID"],
        "audio": task["audio"],
        "frames": task["frames"],
        "n_frames": task["n_frames"],
        "label": task["label"],
        "duration": len(audio) / task["sample_rate"],
    }


def pair_test_mixtures(test_ids, n_mixtures, seed):
    """Draws a fixed list of pairs of test clips of two different classes.

    Pairs are unique as long as there are enough distinct pairs.
    """
    labels = sorted(test_ids)
    if n_mixtures > 0 and len([c for c in labels if test_ids[c]]) < 2:
        raise ValueError("Test mixtures need test clips of at least two classes")
    sizes = [len(test_ids[c]) for c in labels]
    n_pairs = (sum(sizes) ** 2 - sum(s * s for s in sizes)) // 2
    rng = np.random.default_rng(stable_int("synthmusic-mixtures", seed))
    seen = set()
    rows = []
    while len(rows) < n_mixtures:
        c1, c2 = rng.choice(len(labels), size=2, replace=False)
        l1, l2 = labels[c1], labels[c2]
        if not test_ids[l1] or not test_ids[l2]:
            continue
        s1 = test_ids[l1][int(rng.integers(len(test_ids[l1])))]
        s2 = test_ids[l2][int(rng.integers(len(test_ids[l2])))]
        key = frozenset((s1, s2))
        if key in seen and len(seen) < n_pairs:
            continue
        seen.add(key)
        rows.append(
            {
                "ID": f"mix_{len(rows):05d}",
                "source1": s1,
                "label1": l1,
                "source2": s2,
                "label2": l2,
            }
        )
    return rows


def write_csv(path, fields, rows):
    """Writes rows (dicts) to a csv file with the given header."""
    tmp = path + ".tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _remove_old_render(data_folder):
    """Deletes the clips listed in the manifests of a previous SynthMUSIC render.

    Only files named in our own manifests (and inside data_folder) are removed,
    so nothing else that lives in data_folder is touched.
    """
    root = os.path.abspath(data_folder) + os.sep
    for split in SPLITS:
        manifest = os.path.join(data_folder, f"{split}.csv")
        if not os.path.isfile(manifest):
            continue
        with open(manifest, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        for row in rows:
            audio, frames = row.get("audio", ""), row.get("frames", "")
            if audio.startswith(root) and os.path.isfile(audio):
                os.remove(audio)
            if frames.startswith(root) and os.path.isdir(frames):
                for name in os.listdir(frames):
                    if name.endswith(".jpg") and name[:-4].isdigit():
                        os.remove(os.path.join(frames, name))
                if not os.listdir(frames):
                    os.rmdir(frames)


def prepare_synthmusic(
    data_folder,
    classes=None,
    n_train=40,
    n_valid=6,
    n_test=8,
    duration=6.0,
    n_frames=3,
    n_test_mixtures=100,
    sample_rate=16000,
    seed=1234,
    skip_prep=False,
    frame_size=128,
    num_workers=None,
):
    """Renders the SynthMUSIC dataset and writes its manifests.

    Writes ``data_folder/audio/<split>/<ID>.wav`` (16-bit PCM, mono),
    ``data_folder/frames/<split>/<ID>/000001.jpg ...``, the manifests
    ``train.csv``, ``valid.csv`` and ``test.csv`` (columns
    ``ID,audio,frames,n_frames,label,duration``, absolute paths, duration in
    seconds) and ``test_mixtures.csv`` (columns
    ``ID,source1,label1,source2,label2``: pairs of test clip IDs of two
    different classes). Every clip has its own seed derived from
    ``(seed, split, class, index)``. Rendering is skipped when the manifests
    exist and ``synthmusic_opts.json`` records the same options.

    Arguments
    ---------
    data_folder : str
        Where to write the dataset.
    classes : list of str, optional
        Class names, keys of ``INSTRUMENTS``; defaults to ``MUSIC11_CLASSES``.
    n_train : int
        Training clips per class.
    n_valid : int
        Validation clips per class.
    n_test : int
        Test clips per class.
    duration : float
        Length of every clip in seconds.
    n_frames : int
        Video frames per clip.
    n_test_mixtures : int
        Number of test mixtures (pairs of test clips) to list.
    sample_rate : int
        Sample rate of the audio.
    seed : int
        Seed of the whole dataset.
    skip_prep : bool
        If True, do nothing and return the manifest paths.
    frame_size : int
        Width and height of the frames in pixels.
    num_workers : int, optional
        Processes used to render; defaults to ``os.cpu_count()``. Small
        datasets are rendered in this process. Does not change the output.

    Returns
    -------
    manifests : dict
        Paths of the manifests, keys ``"train"``, ``"valid"``, ``"test"`` and
        ``"test_mixtures"``.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     paths = prepare_synthmusic(
    ...         tmp, classes=["cello", "flute"], n_train=1, n_valid=1, n_test=1,
    ...         duration=0.5, n_frames=1, n_test_mixtures=1)
    ...     with open(paths["test_mixtures"]) as f:
    ...         print(f.read().strip())
    ID,source1,label1,source2,label2
    mix_00000,cello_test_0000,cello,flute_test_0000,flute
    """
    data_folder = os.path.abspath(os.fspath(data_folder))
    manifests = {split: os.path.join(data_folder, f"{split}.csv") for split in SPLITS}
    manifests["test_mixtures"] = os.path.join(data_folder, "test_mixtures.csv")
    if skip_prep:
        return manifests

    counts = {"train": n_train, "valid": n_valid, "test": n_test}
    opts = _synthmusic_opts(
        classes,
        counts,
        duration=duration,
        n_frames=n_frames,
        frame_size=frame_size,
        n_test_mixtures=n_test_mixtures,
        sample_rate=sample_rate,
        seed=seed,
    )
    opts_file = os.path.join(data_folder, "synthmusic_opts.json")
    if _skip(manifests, opts_file, opts):
        logger.info("SynthMUSIC is already prepared in %s, skipping", data_folder)
        return manifests

    os.makedirs(data_folder, exist_ok=True)
    if os.path.isfile(opts_file):
        _remove_old_render(data_folder)
        os.remove(opts_file)  # a crash from here on must not look "prepared"

    tasks = _clip_tasks(data_folder, opts, counts, seed)
    rows = _render_tasks(tasks, num_workers, data_folder)
    _write_manifests(manifests, tasks, rows, opts["classes"], n_test_mixtures, seed)

    with open(opts_file, "w", encoding="utf-8") as f:
        json.dump(opts, f, indent=2)
    logger.info("SynthMUSIC manifests written to %s", data_folder)
    return manifests


def _synthmusic_opts(classes, counts, **options):
    """Checks the options of ``prepare_synthmusic``; returns them as a dict.

    ``counts`` maps each split to its number of clips per class; ``options``
    holds ``duration``, ``n_frames``, ``frame_size``, ``n_test_mixtures``,
    ``sample_rate`` and ``seed``. The dict is the one recorded in
    ``synthmusic_opts.json``.
    """
    classes = _resolve_classes(classes)
    soundfont = _check_soundfont(None)
    n_test_mixtures = options["n_test_mixtures"]
    for name, value in list(counts.items()) + [("n_test_mixtures", n_test_mixtures)]:
        if int(value) < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    duration, n_frames = options["duration"], options["n_frames"]
    if duration <= 0 or n_frames < 1 or options["frame_size"] < 1:
        raise ValueError("duration, n_frames and frame_size must be positive")
    return {
        "version": SYNTHMUSIC_VERSION,
        "classes": classes,
        "instruments": {c: list(INSTRUMENTS[c]) for c in classes},
        "n_train": int(counts["train"]),
        "n_valid": int(counts["valid"]),
        "n_test": int(counts["test"]),
        "duration": float(duration),
        "n_frames": int(n_frames),
        "frame_size": int(options["frame_size"]),
        "n_test_mixtures": int(n_test_mixtures),
        "sample_rate": int(options["sample_rate"]),
        "seed": int(options["seed"]),
        "soundfont": soundfont,
    }


def _clip_tasks(data_folder, opts, counts, seed):
    """Lists one render task per clip, split by split and class by class.

    ``counts`` maps each split to its number of clips per class and ``seed``
    is the dataset seed, both as given to ``prepare_synthmusic``. Also creates
    the ``audio/<split>`` folders.
    """
    tasks = []
    for split in SPLITS:
        os.makedirs(os.path.join(data_folder, "audio", split), exist_ok=True)
        for label in opts["classes"]:
            for index in range(counts[split]):
                clip_id = f"{label}_{split}_{index:04d}"
                clip_seed = stable_int("synthmusic", seed, split, label, index)
                tasks.append(
                    {
                        "ID": clip_id,
                        "split": split,
                        "label": label,
                        "seed": clip_seed,
                        "audio": os.path.join(
                            data_folder, "audio", split, f"{clip_id}.wav"
                        ),
                        "frames": os.path.join(data_folder, "frames", split, clip_id),
                        "n_frames": opts["n_frames"],
                        "frame_size": opts["frame_size"],
                        "duration": opts["duration"],
                        "sample_rate": opts["sample_rate"],
                        "soundfont": opts["soundfont"],
                    }
                )
    return tasks


def _render_tasks(tasks, num_workers, data_folder):
    """Renders the clips of ``tasks``, in parallel if there are many.

    Returns their manifest rows in the order of ``tasks``.
    """
    if num_workers is None:
        num_workers = os.cpu_count() or 1
    workers = max(1, min(int(num_workers), len(tasks)))
    if len(tasks) < 64:
        workers = 1
    logger.info(
        "Rendering %d SynthMUSIC clips to %s with %d process(es)",
        len(tasks),
        data_folder,
        workers,
    )
    progress = tqdm(total=len(tasks), desc="SynthMUSIC", unit="clip")
    if workers > 1:
        with multiprocessing.Pool(workers) as pool:
            rows = []
            for row in pool.imap(_render_one, tasks, chunksize=8):
                rows.append(row)
                progress.update()
    else:
        rows = []
        for task in tasks:
            rows.append(_render_one(task))
            progress.update()
    progress.close()
    return rows


def _write_manifests(manifests, tasks, rows, classes, n_test_mixtures, seed):
    """Writes the per-split manifests and test_mixtures.csv."""
    test_ids = {label: [] for label in classes}
    for split in SPLITS:
        split_rows = [r for r, t in zip(rows, tasks) if t["split"] == split]
        write_csv(manifests[split], MANIFEST_FIELDS, split_rows)
        if split == "test":
            for row in split_rows:
                test_ids[row["label"]].append(row["ID"])
    mixtures = pair_test_mixtures(test_ids, int(n_test_mixtures), seed)
    write_csv(manifests["test_mixtures"], MIXTURE_FIELDS, mixtures)


def _skip(manifests, opts_file, opts):
    """True if all manifests exist and were written with the same options."""
    if not all(os.path.isfile(p) for p in manifests.values()):
        return False
    if not os.path.isfile(opts_file):
        return False
    try:
        with open(opts_file, encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return False
    return saved == opts
