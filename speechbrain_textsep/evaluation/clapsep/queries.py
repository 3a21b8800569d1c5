"""The queries of the CLAPSep evaluation: P / N / P+N, text, audio, both.

Text queries are the captions verbatim; ``P`` gives the positive embedding
only, ``N`` the negative only (the other half zeros), ``P+N`` both. Audio
queries average the CLAP audio embeddings of the first ``k`` (1, 5 or 10)
query clips of the caption's class (or a seeded random ``k``-subset);
``"audio+text"`` averages the audio and text embeddings of each side
(``a = 0.5``, as the paper's test).

The evaluation is independent of any interface class: it takes a
``separate(mixture [1, L], positive [1, D] or None, negative [1, D] or None)
-> [1, L]`` callable and embedding callables; :func:`clapsep_separate_fn`
and :func:`clap_embed_fns` make them from a bare
:class:`~speechbrain_textsep.models.clapsep.CLAPSep` and a
:class:`~speechbrain_textsep.encoders.clap.CLAPQueryEncoder` (or from the
modules of a pretrained interface: ``separator.mods.clapsep`` and
``separator.mods.clap``).

Authors
 * speechbrain-textsep contributors
"""

import os
import random

import torch

from speechbrain_textsep.evaluation.clapsep.mixing import load_clip

__all__ = [
    "MODALITIES",
    "VALENCES",
    "QueryEmbeddings",
    "average_shots",
    "clap_embed_fns",
    "clapsep_separate_fn",
    "condition_name",
    "embed_query_samples",
]

#: Query valences: positive only, negative only, both.
VALENCES = ("P", "N", "P+N")
#: Query modalities (``audio+text``: both embeddings averaged, a = 0.5).
MODALITIES = ("text", "audio", "audio+text")


def clapsep_separate_fn(model, embedding_dim=512):
    """A ``separate(mixture, positive, negative)`` callable from a CLAPSep.

    Arguments
    ---------
    model : speechbrain_textsep.models.clapsep.CLAPSep
        The separator (set to eval mode here); its forward L2-normalises the
        condition.
    embedding_dim : int
        Size ``D`` of one query embedding (512).

    Returns
    -------
    callable
        ``separate(mixture [1, L], positive [1, D] or None, negative [1, D]
        or None) -> [1, L]`` under ``torch.no_grad()``, on the model's device.
    """
    from speechbrain_textsep.models.clapsep import clapsep_condition

    model.eval()

    def separate(mixture, positive=None, negative=None):
        device = next(model.parameters()).device
        positive = None if positive is None else positive.to(device).reshape(1, -1)
        negative = None if negative is None else negative.to(device).reshape(1, -1)
        condition = clapsep_condition(positive, negative, embedding_dim)
        with torch.no_grad():
            return model(mixture.to(device).reshape(1, -1), condition).cpu()

    return separate


def clap_embed_fns(query_encoder):
    """``embed_text`` and ``embed_audio`` callables of a CLAP query encoder.

    Arguments
    ---------
    query_encoder : speechbrain_textsep.encoders.clap.CLAPQueryEncoder
        The frozen CLAP (no augmentation).

    Returns
    -------
    embed_text : callable
        ``embed_text(list of str) -> [N, D]`` (texts verbatim).
    embed_audio : callable
        ``embed_audio(list of [L_i] tensors, sample_rate) -> [N, D]``.
    """

    def embed_text(texts):
        return query_encoder.encode_text(list(texts)).cpu()

    def embed_audio(clips, sample_rate):
        return torch.cat(
            [
                query_encoder.encode_audio(clip.reshape(1, -1), sample_rate=sample_rate)
                for clip in clips
            ]
        ).cpu()

    return embed_text, embed_audio


def average_shots(embeddings, shots):
    """Mean of the first ``shots`` embeddings (the paper's k-shot query).

    The mean is not re-normalised (the paper averages; CLAPSep normalises
    the whole condition).

    Arguments
    ---------
    embeddings : torch.Tensor
        ``[N, D]`` embeddings of the listed query clips, in order.
    shots : int
        ``k`` (1 <= k <= N).

    Returns
    -------
    torch.Tensor
        ``[D]``.

    Example
    -------
    >>> average_shots(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), 2)
    tensor([0.5000, 0.5000])
    """
    if not 1 <= shots <= embeddings.shape[0]:
        raise ValueError(
            f"{shots}-shot query asked but only {embeddings.shape[0]} query "
            "clips are listed for this class"
        )
    return embeddings[:shots].mean(dim=0)


def condition_name(modality, valence, shots=None):
    """Name of one evaluated condition, e.g. ``text_P+N`` or ``audio_5shot_N``.

    Arguments
    ---------
    modality : str
        One of :data:`MODALITIES`.
    valence : str
        One of :data:`VALENCES`.
    shots : int or None
        Number of query clips (ignored for text queries).

    Returns
    -------
    str

    Example
    -------
    >>> condition_name("audio+text", "P", 10)
    'audio+text_10shot_P'
    >>> condition_name("text", "P+N")
    'text_P+N'
    """
    if modality == "text":
        return f"text_{valence}"
    return f"{modality}_{shots}shot_{valence}"


def embed_query_samples(
    query_samples, embed_audio, audio_dir, sample_rate, max_shots, shot_seed=None
):
    """CLAP audio embeddings of the query clips chosen for every caption.

    Arguments
    ---------
    query_samples : dict
        ``{caption: [file, ...]}`` (see
        :func:`~speechbrain_textsep.evaluation.clapsep.lists.read_query_samples`).
    embed_audio : callable
        ``embed_audio(list of [L_i] tensors, sample_rate) -> [N, D]``.
    audio_dir : str
        Folder of the query clips (read at their own length).
    sample_rate : int
        Rate the clips are read at.
    max_shots : int
        Number of clips embedded per caption.
    shot_seed : int or None
        None: the first listed clips; else a random subset per caption drawn
        with this seed.

    Returns
    -------
    dict
        ``{caption: [max_shots, D]}`` float32 CPU tensors.
    """
    embeddings = {}
    for caption, files in query_samples.items():
        files = list(files)
        if len(files) < max_shots:
            raise ValueError(
                f"{max_shots}-shot queries asked but only {len(files)} query "
                f"clips are listed for {caption!r}"
            )
        if shot_seed is not None:
            files = random.Random(f"{shot_seed}:{caption}").sample(files, len(files))
        clips = [
            load_clip(os.path.join(audio_dir, name), sample_rate, None)
            for name in files[:max_shots]
        ]
        embeddings[caption] = embed_audio(clips, sample_rate).detach().cpu().float()
        if embeddings[caption].shape[0] != len(clips):
            raise ValueError(
                f"embed_audio returned {embeddings[caption].shape[0]} embeddings "
                f"for {len(clips)} clips"
            )
    return embeddings


class QueryEmbeddings:
    """The query embeddings of one side (positive or negative) of a condition.

    Text embeddings are computed once per caption and cached.

    Arguments
    ---------
    embed_text : callable or None
        ``embed_text(list of str) -> [N, D]``; needed for ``text`` and
        ``audio+text`` queries.
    audio_embeddings : dict or None
        ``{caption: [N, D]}`` from :func:`embed_query_samples`; needed for
        ``audio`` and ``audio+text`` queries.

    Example
    -------
    >>> queries = QueryEmbeddings(
    ...     lambda texts: torch.ones(len(texts), 2),
    ...     {"dog": torch.tensor([[1.0, 0.0], [0.0, 1.0]])},
    ... )
    >>> queries("audio+text", "dog", 2)
    tensor([0.7500, 0.7500])
    """

    def __init__(self, embed_text=None, audio_embeddings=None):
        self.embed_text = embed_text
        self.audio_embeddings = audio_embeddings or {}
        self.text_cache = {}

    def text(self, caption):
        """The ``[D]`` text embedding of a caption (verbatim)."""
        if caption not in self.text_cache:
            embedding = self.embed_text([caption])[0]
            self.text_cache[caption] = embedding.detach().cpu().float()
        return self.text_cache[caption]

    def __call__(self, modality, caption, shots=None):
        """The ``[D]`` query of a caption in a modality (``shots`` clips)."""
        if modality == "text":
            return self.text(caption)
        audio = average_shots(self.audio_embeddings[caption], shots)
        if modality == "audio":
            return audio
        return 0.5 * (audio + self.text(caption))
