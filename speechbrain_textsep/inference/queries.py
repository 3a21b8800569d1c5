"""What a user asks a separator for: text, images, example audio, negatives.

Authors
 * speechbrain-textsep contributors
"""

import os
from dataclasses import dataclass, field

import torch

QUERY_KINDS = ("text", "image", "audio")


@dataclass
class Query:
    """One query: the sound to extract, and optionally what to leave out.

    Arguments
    ---------
    text : str, optional
        Description of the target ("a dog barking", "violin").
    images : list
        Images of the target (paths, PIL images, arrays or preprocessed
        tensors); their embeddings are averaged.
    audio : list
        Example recordings of the target (paths or ``[L]`` tensors at the
        model's rate); their embeddings are averaged.
    negative_text : str, optional
        Description of a sound to suppress (models with negative queries).
    negative_audio : list
        Example recordings of sounds to suppress.
    prompt_ensemble : bool
        Embeds ``text`` with the model's prompt ensemble (True) or verbatim.

    Example
    -------
    >>> Query("a dog barking").kinds()
    ['text']
    >>> Query(images=["dog.jpg"], negative_text="speech").kinds(negative=True)
    ['text']
    """

    text: str = None
    images: list = field(default_factory=list)
    audio: list = field(default_factory=list)
    negative_text: str = None
    negative_audio: list = field(default_factory=list)
    prompt_ensemble: bool = True

    def __post_init__(self):
        self.images = _as_list(self.images)
        self.audio = _as_list(self.audio)
        self.negative_audio = _as_list(self.negative_audio)
        for name in ("text", "negative_text"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a str, got {type(value).__name__}")
            if not value.strip():
                raise ValueError(f"empty {name.replace('_', ' ')} query")
        if not (self.kinds() or self.kinds(negative=True)):
            raise ValueError("the query is empty: give a text, images or example audio")

    def kinds(self, negative=False):
        """Query kinds given (``text``, ``image``, ``audio``), positive or not."""
        if negative:
            present = (self.negative_text, (), self.negative_audio)
        else:
            present = (self.text, self.images, self.audio)
        return [kind for kind, value in zip(QUERY_KINDS, present) if value]

    def label(self):
        """A short name of the query, for file names and figure titles."""
        if self.text:
            name = self.text
        elif self.images:
            name = "image " + _stem(self.images[0])
        elif self.audio:
            name = "audio " + _stem(self.audio[0])
        else:
            name = "all"
        if self.negative_text:
            name += " minus " + self.negative_text
        elif self.negative_audio:
            name += " minus audio " + _stem(self.negative_audio[0])
        return name


def as_query(query):
    """A :class:`Query` from a query or a text.

    Example
    -------
    >>> as_query("violin").text
    'violin'
    """
    if isinstance(query, Query):
        return query
    if isinstance(query, str):
        return Query(text=query)
    raise TypeError(
        f"a query is a str or a speechbrain_textsep Query, got {type(query).__name__}"
    )


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike, torch.Tensor)) or not isinstance(
        value, (list, tuple)
    ):
        return [value]
    return list(value)


def _stem(item):
    if isinstance(item, (str, os.PathLike)):
        return os.path.splitext(os.path.basename(os.fspath(item)))[0]
    return str(type(item).__name__)
