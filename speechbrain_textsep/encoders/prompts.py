"""Text queries of the frozen query encoders: validation, templates, cache.

Shared by the CLIP and CLAP query encoders.

Authors
 * speechbrain-textsep contributors
"""

import torch


def check_template(template):
    """Raises ValueError unless ``template`` is a str with one ``{}`` field.

    Example
    -------
    >>> check_template("a photo of {}.")
    >>> check_template("no field")
    Traceback (most recent call last):
    ...
    ValueError: a prompt template must be a str containing '{}', got 'no field'
    """
    if not isinstance(template, str) or "{}" not in template:
        raise ValueError(
            f"a prompt template must be a str containing '{{}}', got {template!r}"
        )
    try:
        template.format("x")
    except (IndexError, KeyError, ValueError) as e:
        raise ValueError(f"invalid prompt template {template!r}: {e}") from e


def check_texts(texts):
    """Returns ``texts`` as a non-empty list of non-blank strings.

    Example
    -------
    >>> check_texts("violin")
    ['violin']
    """
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, (list, tuple)):
        raise TypeError(f"texts must be a str or a list of str, got {type(texts)}")
    if len(texts) == 0:
        raise ValueError("empty text query list")
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"a text query must be a str, got {type(text)}")
        if not text.strip():
            raise ValueError("empty text query")
    return list(texts)


def prompt_sets(texts, template=None, ensemble=None):
    """The prompts to embed: one list of ``len(texts)`` prompts per template.

    Arguments
    ---------
    texts : str or list of str
        Queries.
    template : str or None
        One template (``{}`` is the text); None uses the texts verbatim.
    ensemble : list of str or None
        Templates whose embeddings are averaged (exclusive with ``template``).

    Returns
    -------
    list of list of str

    Example
    -------
    >>> prompt_sets(["dog"], ensemble=["a {}", "the {}"])
    [['a dog'], ['the dog']]
    """
    texts = check_texts(texts)
    if template is not None and ensemble is not None:
        raise ValueError("give either a template or an ensemble, not both")
    if ensemble is None:
        templates = [template]
    else:
        if isinstance(ensemble, str):
            raise TypeError("ensemble must be a list of templates, not a str")
        templates = list(ensemble)
        if not templates:
            raise ValueError("empty prompt ensemble")
    for tpl in templates:
        if tpl is not None:
            check_template(tpl)
    return [
        texts if tpl is None else [tpl.format(t) for t in texts] for tpl in templates
    ]


def embed_with_cache(cache, prompts, embed_missing, max_size=4096):
    """``[N, D]`` embeddings of prompt strings, each computed once.

    Arguments
    ---------
    cache : dict
        Prompt -> embedding; updated in place (oldest entries evicted first).
    prompts : list of str
        Final prompt strings (repeats allowed).
    embed_missing : callable
        Maps the list of prompts not in the cache to ``[M, D]`` embeddings.
    max_size : int
        Most entries kept (0 disables the cache).

    Returns
    -------
    torch.Tensor

    Example
    -------
    >>> cache, calls = {}, []
    >>> def embed(prompts):
    ...     calls.append(list(prompts))
    ...     return torch.ones(len(prompts), 3)
    >>> embed_with_cache(cache, ["a", "b", "a"], embed).shape
    torch.Size([3, 3])
    >>> _ = embed_with_cache(cache, ["a"], embed)
    >>> calls
    [['a', 'b']]
    """
    found = {p: cache[p] for p in prompts if p in cache}
    missing = [p for p in dict.fromkeys(prompts) if p not in found]
    if missing:
        with torch.no_grad():
            new = embed_missing(missing)
        for prompt, emb in zip(missing, new):
            found[prompt] = emb.clone()
        if max_size > 0:
            for prompt in missing:
                cache[prompt] = found[prompt]
            while len(cache) > max_size:
                del cache[next(iter(cache))]
    return torch.stack([found[p] for p in prompts])


class FrozenQueryEncoder(torch.nn.Module):
    """Base of the frozen query encoders: always in eval mode, no gradients,
    and a text-embedding cache (``self._cache``) emptied whenever the weights,
    device or dtype change.

    Subclasses call :meth:`watch_weights` on their pretrained model once it
    is built.
    """

    def __init__(self):
        super().__init__()
        self._cache = {}

    def watch_weights(self, model):
        """Empties the cache when weights are loaded into ``model``."""
        model.register_load_state_dict_pre_hook(self._on_load_state_dict)

    def train(self, mode=True):
        """Keeps the encoder frozen and in eval mode whatever ``mode``.

        Arguments
        ---------
        mode : bool
            Ignored: the encoder always stays in eval mode.

        Returns
        -------
        self
        """
        self.requires_grad_(False)
        return super().train(False)

    def clear_cache(self):
        """Empties the cache of text embeddings."""
        self._cache.clear()

    def _on_load_state_dict(self, *args, **kwargs):
        self.clear_cache()

    def _apply(self, fn, *args, **kwargs):
        # .to() / .cuda() / .half() ...: cached tensors would be on the old
        # device or dtype.
        self.clear_cache()
        return super()._apply(fn, *args, **kwargs)
