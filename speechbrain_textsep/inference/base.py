"""The interface every query-conditioned separator of the package shares.

A subclass says which query kinds it takes and implements two methods:
:meth:`BaseQuerySeparator.embed_query` (one :class:`Query` -> a conditioning
vector) and :meth:`BaseQuerySeparator.separate_windows` (mixtures and
conditioning -> estimates). This class does the rest: query validation,
files of any format, rate and channel count, long inputs in cross-faded
windows, files of any length streamed block by block (read, resampled,
separated and written as they go, :mod:`~speechbrain_textsep.inference.streaming`),
residuals (the input with the queried sound removed), batches of files with
a progress bar, atomic output files, and safe loading with
:meth:`BaseQuerySeparator.from_hparams`.

Authors
 * speechbrain-textsep contributors
"""

import os
from dataclasses import dataclass, field

import torch
from speechbrain.inference.interfaces import Pretrained
from speechbrain.utils.fetching import fetch
from speechbrain.utils.logger import get_logger
from tqdm import tqdm

from speechbrain_textsep.inference.audio import (
    AudioReadError,
    check_signal,
    read_audio,
    to_model_input,
)
from speechbrain_textsep.inference.loading import build_from_folder
from speechbrain_textsep.inference.queries import as_query
from speechbrain_textsep.inference.streaming import (
    BLOCK_FRAMES,
    FileStream,
    SecondsBar,
    collect,
    write_stream,
)
from speechbrain_textsep.inference.windowing import WindowStream

logger = get_logger(__name__)


@dataclass
class FileResult:
    """What :meth:`BaseQuerySeparator.separate_files` did with one input.

    Arguments
    ---------
    input : str
        The input file.
    estimate : torch.Tensor, optional
        The estimates (see :meth:`BaseQuerySeparator.separate_file`); None
        when written to files or on error.
    outputs : list of str
        Written audio files, one per query.
    residual : torch.Tensor, optional
        The residuals (mixture minus estimate), when asked and not written.
    residual_outputs : list of str
        Written residual files, one per query, when asked.
    figure : str, optional
        Written spectrogram figure.
    error : str, optional
        Why the input was skipped (nothing was written for it).
    """

    input: str
    estimate: torch.Tensor = None
    outputs: list = field(default_factory=list)
    residual: torch.Tensor = None
    residual_outputs: list = field(default_factory=list)
    figure: str = None
    error: str = None


def slug(text, max_length=40):
    """A file-name-safe version of a query label.

    Example
    -------
    >>> slug(" a dog barking! ")
    'a_dog_barking'
    """
    cleaned = "".join(c if c.isalnum() else "_" for c in text.strip())
    return "_".join(part for part in cleaned.split("_") if part)[:max_length]


class BaseQuerySeparator(Pretrained):
    """Separates the sounds that queries describe; loaded with ``from_hparams``.

    Subclasses set :attr:`QUERY_KINDS` and :attr:`NEGATIVE_QUERIES` and
    implement :meth:`embed_query` and :meth:`separate_windows`.

    Queries are texts or :class:`~speechbrain_textsep.inference.queries.Query`
    objects (text, images, example recordings, negatives). Inputs longer than
    ``window_seconds`` (hyperparameter, default 10) are separated in windows
    overlapping by ``overlap_seconds`` (default 1) and cross-faded; shorter
    ones in one pass.

    Multichannel files: ``channels="mix"`` (default) averages the channels
    into one mono mixture; ``channels="separate"`` separates every channel
    on its own and keeps the channel axis.

    Files: :meth:`separate_file` returns the estimates as tensors;
    :meth:`separate_file_to` writes them to files as they are produced, in
    the memory of a few windows whatever the file's length (same samples,
    to float rounding); :meth:`separate_files` does either for many files.
    """

    #: Positive query kinds the model takes (``text``, ``image``, ``audio``).
    QUERY_KINDS = ("text",)
    #: Whether the model takes negative queries.
    NEGATIVE_QUERIES = False
    HPARAMS_NEEDED = ["sample_rate"]

    @classmethod
    def from_hparams(
        cls,
        source,
        hparams_file="hyperparams.yaml",
        savedir=None,
        overrides=None,
        trust_remote_code=False,
        run_opts=None,
        fetch_config=None,
        **kwargs,
    ):
        """Loads a model folder: local, a URL, or a hub repository id.

        Hub files are cached by ``huggingface_hub`` and found offline
        (``HF_HUB_OFFLINE=1``); a missing file is a clear
        :class:`~speechbrain_textsep.inference.loading.ModelNotAvailableError`.
        Unless ``trust_remote_code`` is set, the folder may build only the
        classes of :mod:`speechbrain_textsep.inference.allowlist` and name
        only files inside itself; anything else is refused with
        :class:`~speechbrain_textsep.inference.loading.UntrustedModelError`
        before anything is built (:mod:`speechbrain_textsep.inference.loading`
        lists exactly what is and is not checked). Weights load with
        ``weights_only=True`` and strict keys.

        Arguments
        ---------
        source : str
            Model folder, URL or Hugging Face repository id.
        hparams_file : str
            Name of the hyperparameters file in the folder.
        savedir : str, optional
            Where fetched files are collected.
        overrides : dict, optional
            Hyperparameter overrides.
        trust_remote_code : bool
            Builds whatever the hyperparameters name and reads the files they
            name wherever they are: runs the folder's code (only for models
            you trust).
        run_opts : dict, optional
            SpeechBrain run options, e.g. ``{"device": "cuda:0"}``.
        fetch_config : speechbrain.utils.fetching.FetchConfig, optional
            Token, revision, ``allow_network``...
        **kwargs : dict
            Passed to the constructor (``freeze_params``).

        Returns
        -------
        BaseQuerySeparator
        """
        hparams = build_from_folder(
            source,
            hparams_file=hparams_file,
            savedir=savedir,
            overrides=overrides,
            trust_remote_code=trust_remote_code,
            fetch_config=fetch_config,
        )
        return cls(
            modules=hparams["modules"], hparams=hparams, run_opts=run_opts, **kwargs
        )

    # ----------------------------------------------------------- subclasses
    def embed_query(self, query):
        """Conditioning vector ``[D]`` of one validated query."""
        raise NotImplementedError

    def separate_windows(self, mixtures, conditioning):
        """``[N, L]`` mixtures and ``[N, Q, D]`` conditioning -> ``[N, Q, L]``."""
        raise NotImplementedError

    # -------------------------------------------------------------- queries
    def check_query(self, query):
        """A validated :class:`Query`; unsupported kinds are a clear error."""
        query = as_query(query)
        name = type(self).__name__
        for kind in query.kinds():
            if kind not in self.QUERY_KINDS:
                raise ValueError(
                    f"{name} does not take {kind} queries (it takes: "
                    f"{', '.join(self.QUERY_KINDS)})"
                )
        negative = query.kinds(negative=True)
        if negative and not self.NEGATIVE_QUERIES:
            raise ValueError(f"{name} does not take negative queries")
        for kind in negative:
            if kind not in self.QUERY_KINDS:
                raise ValueError(f"{name} does not take negative {kind} queries")
        for item in (*query.images, *query.audio, *query.negative_audio):
            if isinstance(item, (str, os.PathLike)) and not os.path.isfile(item):
                raise FileNotFoundError(f"query file not found: {os.fspath(item)}")
        return query

    def embed_queries(self, queries):
        """``[Q, D]`` conditioning of a list of queries (texts or Query)."""
        if not queries:
            raise ValueError("no query given")
        checked = [self.check_query(query) for query in queries]
        with torch.no_grad():
            return torch.stack([self.embed_query(query) for query in checked])

    def load_audio_query(self, item):
        """``[L]`` mono example recording at the model's rate (path or tensor)."""
        if isinstance(item, torch.Tensor):
            signal = item.float()
            check_signal(signal, "the audio query")
            return signal.reshape(-1)
        signal, rate = read_audio(item)
        return to_model_input(signal, rate, self.hparams.sample_rate)[0]

    def _conditioning(self, queries, batch_size):
        """``[B, Q, D]`` conditioning and whether one query each was asked."""
        if isinstance(queries, torch.Tensor):
            single = queries.dim() == 2
            conditioning = queries[:, None] if single else queries
            if conditioning.dim() != 3 or conditioning.shape[0] != batch_size:
                raise ValueError(
                    f"query embeddings must be [B, D] or [B, Q, D] with B = "
                    f"{batch_size}, got {tuple(queries.shape)}"
                )
            return conditioning.float(), single
        if isinstance(queries, (list, tuple)):
            if len(queries) != batch_size:
                raise ValueError(
                    f"expected one query (or one list of queries) per mixture "
                    f"({batch_size}), got {len(queries)}"
                )
            if all(isinstance(q, (list, tuple)) for q in queries):
                counts = {len(q) for q in queries}
                if len(counts) != 1:
                    raise ValueError("every mixture needs the same number of queries")
                flat = [q for per_mixture in queries for q in per_mixture]
                return self.embed_queries(flat).view(
                    batch_size, counts.pop(), -1
                ), False
            return self.embed_queries(list(queries))[:, None], True
        return self.embed_queries([queries])[None].expand(batch_size, -1, -1), True

    # ----------------------------------------------------------- separation
    def window_samples(self):
        """Window length of long inputs (``window_seconds``, default 10 s)."""
        seconds = getattr(self.hparams, "window_seconds", 10.0)
        return int(round(seconds * self.hparams.sample_rate))

    def window_settings(self):
        """``(window, overlap, batch_size)`` of long inputs (samples, windows).

        From the hyperparameters ``window_seconds`` (:meth:`window_samples`),
        ``overlap_seconds`` (default 1) and ``window_batch_size`` (default 1).
        """
        overlap = getattr(self.hparams, "overlap_seconds", 1.0)
        overlap = int(round(overlap * self.hparams.sample_rate))
        batch_size = getattr(self.hparams, "window_batch_size", 1)
        return self.window_samples(), overlap, batch_size

    def _window_separator(self, conditioning):
        """``separate(windows, rows)`` of a :class:`WindowStream`: the model
        on its device; conditioning ``[N, Q, D]`` (one per mixture) or
        ``[Q, D]`` (shared)."""

        def separate(windows, rows):
            if conditioning.dim() == 3:
                cond = conditioning[rows]
            else:
                cond = conditioning.expand(len(rows), -1, -1)
            with torch.no_grad(), self.inference_ctx:
                out = self.separate_windows(
                    windows.to(self.device), cond.to(self.device)
                )
            return out.float().cpu()

        return separate

    def _separate(self, mixtures, conditioning, progress=False):
        """``[B, L]`` (CPU) and ``[B, Q, D]`` -> ``[B, Q, L]`` (CPU), windowed."""
        stream = WindowStream(
            self._window_separator(conditioning), len(mixtures), *self.window_settings()
        )
        rate, parts, done = self.hparams.sample_rate, [], 0
        with SecondsBar(mixtures.shape[-1] / rate, progress, "mixtures") as bar:
            for block in mixtures.split(BLOCK_FRAMES, dim=-1):
                finished = stream.push(block)
                if finished is not None:
                    parts.append(finished)
                    done += finished.shape[-1]
                    bar.advance(done / rate)
            parts.append(stream.finish())
            bar.advance(mixtures.shape[-1] / rate)
        return torch.cat(parts, dim=-1)

    def separate_batch(self, mixtures, queries, progress=False):
        """Separates queried sources from a batch of mixtures.

        Arguments
        ---------
        mixtures : torch.Tensor
            ``[B, L]`` mixtures at the model's sample rate.
        queries : str, Query, list or torch.Tensor
            One query for every mixture (a text or a
            :class:`~speechbrain_textsep.inference.queries.Query`), a list of
            B queries (one per mixture), a list of B lists of Q queries, or
            conditioning embeddings ``[B, D]`` / ``[B, Q, D]``.
        progress : bool
            Progress bar in seconds of audio, with the real-time factor.

        Returns
        -------
        torch.Tensor
            ``[B, L]`` estimates for one query per mixture, ``[B, Q, L]`` for
            lists of queries; on the device of ``mixtures``.
        """
        if not isinstance(mixtures, torch.Tensor):
            raise TypeError(f"mixtures must be a tensor, got {type(mixtures).__name__}")
        if mixtures.dim() != 2:
            raise ValueError(
                f"mixtures must be [batch, time], got {tuple(mixtures.shape)}"
            )
        check_signal(mixtures, "the mixture")
        conditioning, single = self._conditioning(queries, mixtures.shape[0])
        estimates = self._separate(
            mixtures.detach().float().cpu(), conditioning, progress
        )
        estimates = estimates.to(mixtures.device)
        return estimates[:, 0] if single else estimates

    def file_stream(
        self,
        path,
        queries,
        channels="mix",
        resample_back=False,
        residual=False,
        block_frames=BLOCK_FRAMES,
    ):
        """The :class:`~speechbrain_textsep.inference.streaming.FileStream`
        of a file and a list of queries: the block pipeline that
        :meth:`separate_file` and :meth:`separate_file_to` consume.

        Arguments
        ---------
        path : str
            Audio file.
        queries : list
            Queries (texts or :class:`Query`).
        channels : str
            See :meth:`separate_file`.
        resample_back : bool
            See :meth:`separate_file`.
        residual : bool
            Also streams the residuals.
        block_frames : int
            Frames read per block (results do not depend on it).

        Returns
        -------
        FileStream
        """
        conditioning = self.embed_queries(list(queries))
        return FileStream(
            self._window_separator(conditioning),
            os.fspath(path),
            self.hparams.sample_rate,
            *self.window_settings(),
            channels=channels,
            resample_back=resample_back,
            residual=residual,
            block_frames=block_frames,
        )

    def separate_file(
        self,
        path,
        query,
        savedir=None,
        channels="mix",
        resample_back=False,
        progress=False,
        residual=False,
    ):
        """Separates queried sources from an audio file, in memory.

        The file is read, resampled, separated and resampled back in blocks
        (:mod:`~speechbrain_textsep.inference.streaming`); only the returned
        estimates grow with its length. To write long files without holding
        them, use :meth:`separate_file_to`: it gives the same samples.

        Arguments
        ---------
        path : str
            Audio file (any format libsndfile reads); with ``savedir``, also a
            URL or ``<hub repo>/<file>``.
        query : str, Query or list
            One query, or a list of queries (one estimate each).
        savedir : str, optional
            Where a remote file is fetched to.
        channels : str
            ``"mix"``: channels averaged to mono; ``"separate"``: each channel
            separated on its own.
        resample_back : bool
            Returns the estimates at the file's rate and exact length instead
            of the model's rate.
        progress : bool
            Progress bar in seconds of audio, with the real-time factor.
        residual : bool
            Also returns the residuals: the model's mixture input (the mono
            downmix, or each channel with ``channels="separate"``; at the
            file's rate with ``resample_back``) minus each estimate, i.e.
            the recording with the queried sound removed.

        Returns
        -------
        torch.Tensor
            ``[L]`` for one query and ``channels="mix"``; a leading query axis
            ``[Q, ...]`` for a list of queries; a channel axis ``[..., C, L]``
            for ``channels="separate"``. With ``residual``, a tuple
            ``(estimates, residuals)`` of two tensors of that shape.
        """
        several = isinstance(query, (list, tuple))
        path = _local_path(path, savedir)
        stream = self.file_stream(
            path, query if several else [query], channels, resample_back, residual
        )
        estimates, residuals = collect(stream, progress)
        estimates = _per_query(estimates, channels, several)
        if residual:
            return estimates, _per_query(residuals, channels, several)
        return estimates

    def separate_file_to(
        self,
        path,
        query,
        out_dir,
        name=None,
        channels="mix",
        resample_back=False,
        audio_format="wav",
        residual=False,
        progress=False,
    ):
        """Separates queried sources from an audio file straight to files.

        The streaming counterpart of :meth:`separate_file` (same samples):
        blocks are written as they are produced, so memory does not grow
        with the file's length. Outputs are written under temporary names
        and renamed at the end: an error, Ctrl-C or a kill never leaves a
        partial file under an output's name.

        Arguments
        ---------
        path : str
            Audio file.
        query : str, Query or list
            One query, or a list of queries (one output file each).
        out_dir : str
            Output folder (created if needed).
        name : str, optional
            Output name (default: the input's stem); may hold sub-folders.
        channels : str
            See :meth:`separate_file`; with ``"separate"`` the outputs have
            the input's channels.
        resample_back : bool
            Writes at the file's rate and exact length instead of the
            model's rate.
        audio_format : str
            Output extension (``wav``: float WAV, RF64 past 4 GiB; ``flac``,
            ``ogg``, ``mp3``: samples clipped to [-1, 1]).
        residual : bool
            Also writes the residuals (see :meth:`separate_file`).
        progress : bool
            Progress bar in seconds of audio, with the real-time factor.

        Returns
        -------
        FileResult
            ``outputs``: ``<out_dir>/<name>_<query>.<audio_format>`` per
            query; ``residual_outputs``:
            ``<out_dir>/<name>_without_<query>.<audio_format>`` per query.
        """
        queries = [
            self.check_query(q)
            for q in (query if isinstance(query, (list, tuple)) else [query])
        ]
        path = os.fspath(path)
        if name is None:
            name = os.path.splitext(os.path.basename(path))[0]
        labels = [slug(q.label()) for q in queries]
        if len(set(labels)) < len(labels):
            raise ValueError(
                f"queries {[q.label() for q in queries]} would write the same files"
            )
        paths = [
            os.path.join(out_dir, f"{name}_{lab}.{audio_format}") for lab in labels
        ]
        residual_paths = [
            os.path.join(out_dir, f"{name}_without_{lab}.{audio_format}")
            for lab in labels
        ]
        stream = self.file_stream(path, queries, channels, resample_back, residual)
        write_stream(stream, paths, residual_paths if residual else [], progress)
        return FileResult(
            input=path,
            outputs=paths,
            residual_outputs=residual_paths if residual else [],
        )

    def separate_files(
        self,
        paths,
        query,
        out_dir=None,
        names=None,
        channels="mix",
        resample_back=False,
        audio_format="wav",
        plot=False,
        skip_errors=False,
        progress=True,
        residual=False,
    ):
        """Separates queried sources from many files, optionally writing them.

        Arguments
        ---------
        paths : list of str
            Audio files.
        query : str, Query or list
            Query or queries, asked of every file.
        out_dir : str, optional
            Writes ``<name>_<query>.<audio_format>`` per file and query there
            with :meth:`separate_file_to` (streaming: memory does not grow
            with the files' length), and keeps no estimate in memory.
        names : list of str, optional
            Output name of each file (default: the input's stem); may hold
            sub-folders.
        channels : str
            See :meth:`separate_file`.
        resample_back : bool
            See :meth:`separate_file`.
        audio_format : str
            Output file extension (``wav``, ``flac``, ``ogg``, ``mp3``).
        plot : bool
            With ``out_dir``, also writes ``<name>.png`` with the spectrograms
            of the input and the estimates (read back whole from the files).
        skip_errors : bool
            Records the error of an unusable input in its result and goes on
            (nothing is written for it) instead of raising.
        progress : bool
            Progress bars over the files and in seconds of audio.
        residual : bool
            Also gives the residual of each query (see :meth:`separate_file`):
            written as ``<name>_without_<query>.<audio_format>`` with
            ``out_dir``, else kept in :attr:`FileResult.residual`.

        Returns
        -------
        list of FileResult
        """
        queries = [
            self.check_query(q)
            for q in (query if isinstance(query, (list, tuple)) else [query])
        ]
        paths = [os.fspath(p) for p in paths]
        if names is None:
            names = [os.path.splitext(os.path.basename(p))[0] for p in paths]
        if len(names) != len(paths):
            raise ValueError(f"{len(names)} names for {len(paths)} inputs")
        if out_dir is not None:
            taken = {}
            for path, name in zip(paths, names):
                if name in taken:
                    raise ValueError(
                        f"{taken[name]} and {path} would write the same outputs "
                        f"({name}_*); give distinct names"
                    )
                taken[name] = path
        several = len(paths) > 1
        results = []
        for path, name in tqdm(
            list(zip(paths, names)),
            desc="files",
            disable=not progress or not several,
            dynamic_ncols=True,
        ):
            try:
                results.append(
                    self._separate_one(
                        path,
                        name,
                        queries,
                        out_dir,
                        dict(channels=channels, resample_back=resample_back),
                        audio_format,
                        plot,
                        progress,
                        residual,
                    )
                )
            except (OSError, AudioReadError) as e:
                if not skip_errors:
                    raise
                logger.warning(f"skipped {path}: {e}")
                results.append(FileResult(input=path, error=str(e)))
        return results

    def _separate_one(
        self, path, name, queries, out_dir, mode, audio_format, plot, progress, residual
    ):
        """The :class:`FileResult` of one input of :meth:`separate_files`."""
        if out_dir is None:
            stream = self.file_stream(path, queries, residual=residual, **mode)
            estimates, residuals = collect(stream, progress)
            several = len(queries) > 1
            return FileResult(
                input=path,
                estimate=_per_query(estimates, mode["channels"], several),
                residual=None
                if residuals is None
                else _per_query(residuals, mode["channels"], several),
            )
        result = self.separate_file_to(
            path,
            queries,
            out_dir,
            name,
            audio_format=audio_format,
            residual=residual,
            progress=progress,
            **mode,
        )
        if plot:
            result.figure = self._plot(result, queries, os.path.join(out_dir, name))
        return result

    def _plot(self, result, queries, stem):
        """``<stem>.png``: spectrograms of the input and the written estimates."""
        from speechbrain_textsep.visualization import plot_spectrograms

        signal, rate = read_audio(result.input)
        estimates = [read_audio(path) for path in result.outputs]
        out_rate = estimates[0][1]
        panels = {"input": to_model_input(signal, rate, out_rate)[0]}
        for query, (estimate, _) in zip(queries, estimates):
            panels[f"estimate ({query.label()})"] = estimate.mean(0)
        return plot_spectrograms(panels, out_rate, stem + ".png")

    def forward(self, mixtures, queries):
        """Same as :meth:`separate_batch`."""
        return self.separate_batch(mixtures, queries)


def _local_path(path, savedir):
    """``path``, or with ``savedir``, a remote file fetched there."""
    if savedir is not None and not os.path.isfile(os.fspath(path)):
        source, filename = os.path.split(os.fspath(path))
        path = fetch(filename, source=source, savedir=savedir)
    return os.fspath(path)


def _per_query(outputs, channels, several):
    """``[Q, N, L]`` -> the layout :meth:`BaseQuerySeparator.separate_file`
    returns (no channel axis for ``"mix"``, no query axis for one query)."""
    outputs = outputs[:, 0] if channels == "mix" else outputs
    return outputs if several else outputs[0]
