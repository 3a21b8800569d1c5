"""The RoBERTa tokenizer of the LAION-CLAP encoder: loading, use and training.

laion_clap tokenises captions with roberta-base's tokenizer (``max_length=77``,
padding to ``max_length``, truncation; :func:`tokenize`). The tokenizer is
loaded offline, from a local folder or the Hugging Face cache
(:func:`load_clap_tokenizer`). Small CLAPs trained from scratch (e.g.
:data:`~speechbrain_textsep.encoders.clap_config.TINY_CLAP_CFG`) take a
byte-level BPE trained on their captions (:func:`build_tiny_tokenizer`).

Authors
 * speechbrain-textsep contributors
"""

import inspect
import os
import tempfile
from pathlib import Path

from speechbrain_textsep.encoders.clap_config import (
    ROBERTA_BASE_CONFIG,
    TINY_CLAP_CFG,
    TOKENIZER_MAX_LENGTH,
)
from speechbrain_textsep.encoders.clap_errors import CLAPWeightsUnavailableError

__all__ = [
    "build_tiny_tokenizer",
    "default_tokenizer",
    "load_clap_tokenizer",
    "tokenize",
]

_SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def default_tokenizer(model_cfg):
    """The tokenizer of a CLAP config given none: ``"roberta-base"``.

    Only a roberta-base text model (its vocabulary size) has a default
    tokenizer; any other needs its own tokenizer folder.

    Arguments
    ---------
    model_cfg : dict
        A CLAP model config (see
        :func:`~speechbrain_textsep.encoders.clap_config.check_clap_cfg`).

    Returns
    -------
    str

    Example
    -------
    >>> default_tokenizer({"roberta": ROBERTA_BASE_CONFIG})
    'roberta-base'
    >>> default_tokenizer(TINY_CLAP_CFG)
    Traceback (most recent call last):
    ...
    ValueError: this CLAP's text model is not roberta-base: give its tokenizer ...
    """
    if model_cfg["roberta"].get("vocab_size") == ROBERTA_BASE_CONFIG["vocab_size"]:
        return "roberta-base"
    raise ValueError(
        "this CLAP's text model is not roberta-base: give its tokenizer as "
        "tokenizer=<folder> (see build_tiny_tokenizer)"
    )


def _looks_like_path(source):
    """Whether a tokenizer source is meant as a path rather than a hub name."""
    return (
        os.path.isabs(source) or source.startswith((".", "~")) or source.count("/") > 1
    )


def load_clap_tokenizer(source="roberta-base", cache_dir=None):
    """The RoBERTa tokenizer of a CLAP, from a local folder or the hub cache.

    Arguments
    ---------
    source : str or os.PathLike
        A folder with tokenizer files (``save_pretrained``, see
        :func:`build_tiny_tokenizer`) or a hub name (``"roberta-base"``).
    cache_dir : str or None
        Hugging Face cache (None: its default).

    Returns
    -------
    transformers.PreTrainedTokenizerBase

    Example
    -------
    >>> try:
    ...     load_clap_tokenizer("./no/such/folder")
    ... except CLAPWeightsUnavailableError as e:
    ...     print(e)
    tokenizer folder not found: ./no/such/folder
    """
    from transformers import AutoTokenizer

    source = os.fspath(source)
    local = os.path.isdir(source)
    if not local and _looks_like_path(source):
        raise CLAPWeightsUnavailableError(f"tokenizer folder not found: {source}")
    try:
        # Never the code a tokenizer folder may ship (auto_map): transformers
        # would import it (or ask on a terminal) with trust_remote_code unset.
        return AutoTokenizer.from_pretrained(
            source, cache_dir=cache_dir, trust_remote_code=False
        )
    except (OSError, ValueError) as e:
        if local:
            raise CLAPWeightsUnavailableError(
                f"cannot load a tokenizer from the folder {source!r} (no "
                f"tokenizer files?). Cause: {e}"
            ) from e
        raise CLAPWeightsUnavailableError(
            f"cannot load the CLAP tokenizer {source!r}: it is not in the Hugging "
            f"Face cache ({cache_dir or 'default cache'}) and could not be "
            "downloaded (offline? HF_HUB_OFFLINE="
            f"{os.environ.get('HF_HUB_OFFLINE', '')!r}). Download it once with "
            "network access, or give a local tokenizer folder as tokenizer=<path>. "
            f"Cause: {e}"
        ) from e


def tokenize(tokenizer, texts, max_length=TOKENIZER_MAX_LENGTH):
    """laion_clap's text tokenisation: padded to ``max_length``, truncated.

    Arguments
    ---------
    tokenizer : transformers.PreTrainedTokenizerBase
        The CLAP's RoBERTa tokenizer.
    texts : list of str
        Texts.
    max_length : int
        Tokens per text (77 in laion_clap).

    Returns
    -------
    dict
        ``input_ids`` and ``attention_mask``, ``[N, max_length]`` tensors.

    Example
    -------
    >>> import tempfile
    >>> tokenizer = load_clap_tokenizer(build_tiny_tokenizer(tempfile.mkdtemp(), "a"))
    >>> tokenize(tokenizer, ["a", "b"], max_length=8)["attention_mask"].tolist()
    [[1, 1, 1, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0, 0]]
    """
    out = tokenizer(
        list(texts),
        padding="max_length",
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    return {"input_ids": out["input_ids"], "attention_mask": out["attention_mask"]}


def _roberta_tokenizer(vocab, merges):
    """A ``RobertaTokenizerFast`` from vocab and merges files."""
    from transformers import RobertaTokenizerFast

    # transformers >= 5 takes vocab/merges, older versions *_file
    params = inspect.signature(RobertaTokenizerFast.__init__).parameters
    if "vocab" in params:
        return RobertaTokenizerFast(vocab=vocab, merges=merges)
    return RobertaTokenizerFast(vocab_file=vocab, merges_file=merges)


def build_tiny_tokenizer(
    folder, texts, vocab_size=TINY_CLAP_CFG["roberta"]["vocab_size"]
):
    """Trains a small byte-level BPE on texts and saves it as a RoBERTa tokenizer.

    The vocabulary holds RoBERTa's special tokens (``<s>`` 0, ``<pad>`` 1,
    ``</s>`` 2, ``<unk>`` 3, ``<mask>`` 4), the 256 byte symbols (so that any
    text can be tokenised) and merges learnt from ``texts``, at most
    ``vocab_size`` tokens in all. The folder loads with
    ``AutoTokenizer.from_pretrained`` and :func:`load_clap_tokenizer`.
    Deterministic for given texts.

    Arguments
    ---------
    folder : str or os.PathLike
        Folder to write (created if needed).
    texts : list of str
        Training texts (e.g. the captions).
    vocab_size : int
        Maximum vocabulary size (at most the RoBERTa ``vocab_size``).

    Returns
    -------
    pathlib.Path
        The folder.

    Example
    -------
    >>> import tempfile
    >>> folder = build_tiny_tokenizer(tempfile.mkdtemp(), ["The sound of violin"])
    >>> tokenizer = load_clap_tokenizer(folder)
    >>> tokens = tokenize(tokenizer, ["The sound of violin", "anything else"])
    >>> tokens["input_ids"].shape, tokens["input_ids"][0, 0].item()
    (torch.Size([2, 77]), 0)
    """
    from tokenizers import ByteLevelBPETokenizer

    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise ValueError("build_tiny_tokenizer needs at least one text")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        texts,
        vocab_size=int(vocab_size),
        min_frequency=1,
        special_tokens=_SPECIAL_TOKENS,
        show_progress=False,
    )
    with tempfile.TemporaryDirectory() as tmp:
        vocab, merges = bpe.save_model(tmp)
        tokenizer = _roberta_tokenizer(vocab, merges)
        tokenizer.model_max_length = TOKENIZER_MAX_LENGTH
        tokenizer.save_pretrained(str(folder))
    return folder
