"""One request of the demo page: a recording and a query in, files out.

Nothing here knows the web page: :func:`separate_request` checks the
inputs, separates with the interface
(:meth:`~speechbrain_textsep.inference.base.BaseQuerySeparator.separate_file`
with ``residual=True``), writes the separated sound, the residual and the
spectrogram figure, and raises :class:`DemoInputError` (or the interface's
own errors) with a message a person can act on.

Authors
 * speechbrain-textsep contributors
"""

import os
import shutil
import time
from dataclasses import dataclass

from speechbrain_textsep.inference.audio import (
    audio_info,
    read_audio,
    to_model_input,
    write_audio,
)
from speechbrain_textsep.inference.base import slug
from speechbrain_textsep.inference.queries import Query
from speechbrain_textsep.visualization import plot_spectrograms

__all__ = [
    "INPUT_ERRORS",
    "DemoInputError",
    "DemoResult",
    "describe_query_kinds",
    "request_folder",
    "separate_request",
    "user_message",
]


class DemoInputError(ValueError):
    """A request the page cannot serve, with what to do instead."""


#: The errors that mean "bad input" (shown on the page; the page goes on):
#: DemoInputError, the interface's AudioReadError, bad queries, missing files.
INPUT_ERRORS = (ValueError, OSError)

#: Names of the query kinds on the page.
KIND_NAMES = {"text": "text", "image": "images", "audio": "example recordings"}


@dataclass
class DemoResult:
    """What one request produced.

    Arguments
    ---------
    estimate : str
        The separated sound (float WAV at the recording's rate and length).
    residual : str
        The recording without it (mixture minus estimate).
    figure : str
        Spectrograms of the mixture, the estimate and the residual (PNG).
    label : str
        The query, in words.
    name : str
        The recording's file name.
    seconds : float
        Length of the recording.
    sample_rate : int
        Its sample rate.
    channels : int
        Its channel count (mixed to mono for the model).
    elapsed : float
        Seconds the request took.
    silent : bool
        The recording is all zeros (so are both outputs).
    """

    estimate: str
    residual: str
    figure: str
    label: str
    name: str
    seconds: float
    sample_rate: int
    channels: int
    elapsed: float
    silent: bool

    def summary(self):
        """One line on what was done, for the page."""
        text = (
            f"Separated '{self.label}' from {self.name}: {self.seconds:.2f} s of audio "
            f"({self.sample_rate} Hz, {self.channels} channel"
            f"{'s' if self.channels > 1 else ''}) in {self.elapsed:.1f} s."
        )
        if self.silent:
            text += " The recording is silent: so are both outputs."
        return text


def user_message(error, recording=None):
    """The message of an input error, with the upload's folder left out.

    Arguments
    ---------
    error : Exception
        The error of a request.
    recording : str, optional
        The uploaded file (a temporary path the user never saw).

    Returns
    -------
    str

    Example
    -------
    >>> error = ValueError("cannot read audio file /tmp/x1/song.wav: bad header")
    >>> user_message(error, "/tmp/x1/song.wav")
    'cannot read audio file song.wav: bad header'
    """
    message = str(error) or type(error).__name__
    if recording:
        message = message.replace(os.fspath(recording), os.path.basename(recording))
    return message


def describe_query_kinds(separator):
    """What the page says about the queries the loaded model takes.

    Arguments
    ---------
    separator : BaseQuerySeparator
        The loaded model.

    Returns
    -------
    str

    Example
    -------
    >>> class Model:
    ...     QUERY_KINDS = ("text", "audio")
    ...     NEGATIVE_QUERIES = True
    >>> describe_query_kinds(Model())
    'This model takes text and example recordings as queries, and a negative text query (a sound to suppress).'
    """  # noqa: E501
    kinds = [KIND_NAMES[kind] for kind in separator.QUERY_KINDS]
    listed = (
        kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " and " + kinds[-1]
    )
    text = f"This model takes {listed} as queries"
    if separator.NEGATIVE_QUERIES:
        return text + ", and a negative text query (a sound to suppress)."
    return text + "; no negative queries."


def build_query(text=None, negative_text=None, images=None, audio=None):
    """The :class:`Query` of the page's fields (empty fields are absent).

    Arguments
    ---------
    text, negative_text : str, optional
        Texts typed on the page (``""`` when left empty).
    images, audio : list of str, optional
        Uploaded files.

    Returns
    -------
    Query

    Example
    -------
    >>> build_query("flute", "").kinds(), build_query("flute", "").negative_text
    (['text'], None)
    >>> build_query("")
    Traceback (most recent call last):
    ...
    ValueError: the query is empty: give a text, images or example audio
    >>> build_query("   ")
    Traceback (most recent call last):
    ...
    ValueError: empty text query
    """
    return Query(
        text=None if text is None or text == "" else text,
        negative_text=None if not negative_text else negative_text,
        images=[os.fspath(p) for p in images or []],
        audio=[os.fspath(p) for p in audio or []],
    )


def request_folder(root, keep=8):
    """A new numbered folder under ``root`` for one request's outputs.

    The page hands its outputs to Gradio, which copies them into its own
    cache, so only the latest ``keep`` folders are kept.

    Arguments
    ---------
    root : str
        Work folder of the page (created).
    keep : int
        Folders kept, the new one included.

    Returns
    -------
    str

    Example
    -------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> [os.path.basename(request_folder(root, keep=2)) for _ in range(3)]
    ['000001', '000002', '000003']
    >>> sorted(os.listdir(root))
    ['000002', '000003']
    """
    os.makedirs(root, exist_ok=True)
    done = sorted(n for n in os.listdir(root) if n.isdigit())
    for name in done[: max(0, len(done) - keep + 1)]:
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    number = int(done[-1]) + 1 if done else 1
    folder = os.path.join(root, f"{number:06d}")
    os.makedirs(folder)
    return folder


def check_recording(path, max_seconds=None):
    """The header of the uploaded recording; refuses none or too long.

    Arguments
    ---------
    path : str or None
        The uploaded (or recorded, or example) file.
    max_seconds : float, optional
        The page's limit.

    Returns
    -------
    soundfile._SoundFileInfo

    Example
    -------
    >>> check_recording(None)
    Traceback (most recent call last):
    ...
    speechbrain_textsep.demo.handler.DemoInputError: no recording: upload or record one, or pick an example
    """  # noqa: E501
    if not path:
        raise DemoInputError("no recording: upload or record one, or pick an example")
    info = audio_info(path)
    seconds = info.frames / info.samplerate
    if max_seconds is not None and seconds > max_seconds:
        raise DemoInputError(
            f"the recording is {seconds:.1f} s long; this page takes at most "
            f"{max_seconds:g} s (textsep demo --max-seconds sets the limit)"
        )
    return info


def separate_request(separator, recording, query, out_dir, max_seconds=None):
    """Separates the queried sound from a recording; writes the outputs.

    Arguments
    ---------
    separator : BaseQuerySeparator
        The loaded model.
    recording : str
        Audio file of any format, rate and channel count the interface reads.
    query : Query
        What to separate (see :func:`build_query`).
    out_dir : str
        Where the outputs are written (created).
    max_seconds : float, optional
        Longer recordings are refused before anything is read.

    Returns
    -------
    DemoResult

    Raises
    ------
    DemoInputError, FileNotFoundError, AudioReadError, ValueError
        With a message naming the problem; nothing is written then.
    """
    start = time.monotonic()
    info = check_recording(recording, max_seconds)
    query = separator.check_query(query)
    estimate, residual = separator.separate_file(
        recording,
        query,
        channels="mix",
        resample_back=True,
        progress=True,
        residual=True,
    )
    signal, rate = read_audio(recording)
    mixture = to_model_input(signal, rate, rate)[0]
    stem = slug(os.path.splitext(os.path.basename(recording))[0]) or "recording"
    label = query.label()
    name = slug(label) or "query"
    os.makedirs(out_dir, exist_ok=True)
    panels = {
        "mixture": mixture,
        f"estimate ({label})": estimate,
        f"residual (without {label})": residual,
    }
    return DemoResult(
        estimate=write_audio(
            os.path.join(out_dir, f"{stem}_{name}.wav"), estimate, rate
        ),
        residual=write_audio(
            os.path.join(out_dir, f"{stem}_without_{name}.wav"), residual, rate
        ),
        figure=plot_spectrograms(panels, rate, os.path.join(out_dir, f"{stem}.png")),
        label=label,
        name=os.path.basename(recording),
        seconds=info.frames / info.samplerate,
        sample_rate=rate,
        channels=info.channels,
        elapsed=time.monotonic() - start,
        silent=bool(mixture.abs().max() == 0),
    )
