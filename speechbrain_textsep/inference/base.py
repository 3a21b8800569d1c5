"""The interface every query-conditioned separator of the package shares.

A subclass says which query kinds it takes and implements two methods:
:meth:`BaseQuerySeparator.embed_query` (one :class:`Query` -> a conditioning
vector) and :meth:`BaseQuerySeparator.separate_windows` (mixtures and
conditioning -> estimates). This class does the rest: query validation,
files of any format, rate and channel count, long inputs in cross-faded
windows, batches of files with a progress bar, atomic output files, and safe
loading with :meth:`BaseQuerySeparator.from_hparams`.

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
    resample,
    to_model_input,
    write_audio,
)
from speechbrain_textsep.inference.loading import build_from_folder
from speechbrain_textsep.inference.queries import as_query
from speechbrain_textsep.inference.windowing import separate_in_windows

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
    figure : str, optional
        Written spectrogram figure.
    error : str, optional
        Why the input was skipped (nothing was written for it).
    """

    input: str
    estimate: torch.Tensor = None
    outputs: list = field(default_factory=list)
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

    def _separate(self, mixtures, conditioning, progress=False):
        """``[B, L]`` (CPU) and ``[B, Q, D]`` -> ``[B, Q, L]`` (CPU), windowed."""
        rate = self.hparams.sample_rate
        window = self.window_samples()
        overlap = int(round(getattr(self.hparams, "overlap_seconds", 1.0) * rate))
        batch_size = getattr(self.hparams, "window_batch_size", 1)

        def run(chunk, cond):
            with torch.no_grad(), self.inference_ctx:
                out = self.separate_windows(chunk.to(self.device), cond.to(self.device))
            return out.float().cpu()

        if mixtures.shape[-1] <= window:
            return run(mixtures, conditioning)
        return torch.cat(
            [
                separate_in_windows(
                    lambda chunk, b=b: run(
                        chunk, conditioning[b : b + 1].expand(len(chunk), -1, -1)
                    ),
                    mixtures[b : b + 1],
                    window,
                    overlap,
                    batch_size=batch_size,
                    progress=progress,
                )
                for b in range(mixtures.shape[0])
            ]
        )

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
            Progress bar over the windows of long inputs.

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

    def _separate_path(self, path, queries, savedir, channels, resample_back, progress):
        """Recording ``[C, L]``, its rate, and estimates ``[Q, N, L']``."""
        if savedir is not None and not os.path.isfile(os.fspath(path)):
            source, filename = os.path.split(os.fspath(path))
            path = fetch(filename, source=source, savedir=savedir)
        signal, rate = read_audio(path)
        model_rate = self.hparams.sample_rate
        mixtures = to_model_input(signal, rate, model_rate, channels)
        conditioning = self.embed_queries(queries)
        estimates = self._separate(
            mixtures, conditioning[None].expand(len(mixtures), -1, -1), progress
        ).transpose(0, 1)
        if resample_back:
            estimates = resample(estimates, model_rate, rate, length=signal.shape[-1])
        return signal, rate, estimates

    def separate_file(
        self,
        path,
        query,
        savedir=None,
        channels="mix",
        resample_back=False,
        progress=False,
    ):
        """Separates queried sources from an audio file.

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
            Progress bar over the windows of long files.

        Returns
        -------
        torch.Tensor
            ``[L]`` for one query and ``channels="mix"``; a leading query axis
            ``[Q, ...]`` for a list of queries; a channel axis ``[..., C, L]``
            for ``channels="separate"``.
        """
        queries = query if isinstance(query, (list, tuple)) else [query]
        _, _, estimates = self._separate_path(
            path, queries, savedir, channels, resample_back, progress
        )
        if channels == "mix":
            estimates = estimates[:, 0]
        return estimates if isinstance(query, (list, tuple)) else estimates[0]

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
            (float WAV, or clipped PCM for other formats), and keeps no
            estimate in memory.
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
            of the input and the estimates.
        skip_errors : bool
            Records the error of an unusable input in its result and goes on
            (nothing is written for it) instead of raising.
        progress : bool
            Progress bar over the files (over the windows of a single file).

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
        results = []
        for path, name in tqdm(
            list(zip(paths, names)),
            desc="files",
            disable=not progress or len(paths) < 2,
            dynamic_ncols=True,
        ):
            try:
                results.append(
                    self._separate_one(
                        path,
                        name,
                        queries,
                        out_dir,
                        channels,
                        resample_back,
                        audio_format,
                        plot,
                        progress and len(paths) == 1,
                    )
                )
            except (OSError, AudioReadError) as e:
                if not skip_errors:
                    raise
                logger.warning(f"skipped {path}: {e}")
                results.append(FileResult(input=path, error=str(e)))
        return results

    def _separate_one(
        self,
        path,
        name,
        queries,
        out_dir,
        channels,
        resample_back,
        audio_format,
        plot,
        progress,
    ):
        signal, rate, estimates = self._separate_path(
            path, queries, None, channels, resample_back, progress
        )
        if channels == "mix":
            estimates = estimates[:, 0]
        result = FileResult(input=path)
        if out_dir is None:
            result.estimate = estimates if len(queries) > 1 else estimates[0]
            return result
        out_rate = rate if resample_back else self.hparams.sample_rate
        for query, estimate in zip(queries, estimates):
            out_path = os.path.join(
                out_dir, f"{name}_{slug(query.label())}.{audio_format}"
            )
            result.outputs.append(write_audio(out_path, estimate, out_rate))
        if plot:
            from speechbrain_textsep.visualization import plot_spectrograms

            panels = {"input": to_model_input(signal, rate, out_rate)[0]}
            for query, estimate in zip(queries, estimates):
                panels[f"estimate ({query.label()})"] = estimate.reshape(
                    -1, estimate.shape[-1]
                ).mean(0)
            result.figure = plot_spectrograms(
                panels, out_rate, os.path.join(out_dir, f"{name}.png")
            )
        return result

    def forward(self, mixtures, queries):
        """Same as :meth:`separate_batch`."""
        return self.separate_batch(mixtures, queries)
