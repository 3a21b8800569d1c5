"""Frozen BERT sentence embeddings: the query encoder of the BERTSep baseline.

BERTSep (a text-queried baseline of CLIPSep, Dong et al., ICLR 2023) trains
the CLIPSep separator with BERT text embeddings of the labels instead of CLIP
embeddings: ``e = BERT(text)`` then ``Linear(hidden, 32)`` (the mask network
is :class:`~speechbrain_textsep.models.clipsep.CLIPSep` with
``query_dim = hidden``).

The BERT model and its tokenizer are loaded through SpeechBrain's Hugging
Face text encoder (:class:`speechbrain.integrations.huggingface.textencoder.
TextEncoder`, ``speechbrain.lobes.models.huggingface_transformers`` before
SpeechBrain 1.1), so a hub name (``bert-base-uncased``), a hub cache or a
local folder written by ``save_pretrained`` all work. The model is frozen and
kept in eval mode (no dropout), also when a parent module calls
``.train()``.

Sentence embedding: the mean of the last hidden states over the real
(non-padding) tokens, ``[CLS]`` and ``[SEP]`` included (``pooling="mean"``),
or the last hidden state of ``[CLS]`` (``pooling="cls"``). The authors load
per-label embeddings precomputed by a script that is not in their
repository (256-d vectors, so not bert-base's 768), so their model and
pooling cannot be recovered; mean pooling is our choice, as raw ``[CLS]``
states of a BERT not fine-tuned for sentence tasks are poor sentence
embeddings.

:func:`save_tiny_bert` writes a small random BERT and a word-level tokenizer
to a folder, which loads through the same path offline (tests, quick starts).

Authors
 * speechbrain-textsep contributors
"""

import inspect
import os
import re

import torch
from torch import nn

try:  # SpeechBrain >= 1.1
    from speechbrain.integrations.huggingface.textencoder import TextEncoder
except ImportError:  # SpeechBrain 1.0
    from speechbrain.lobes.models.huggingface_transformers.textencoder import (
        TextEncoder,
    )

__all__ = ["BERTQueryEncoder", "POOLINGS", "save_tiny_bert"]

#: Sentence-embedding poolings of :class:`BERTQueryEncoder`.
POOLINGS = ("mean", "cls")

_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


class BERTQueryEncoder(nn.Module):
    """Frozen BERT text encoder turning text queries into sentence embeddings.

    Embeddings are cached per final prompt string (labels repeat at every
    training batch); the cache is cleared when weights are loaded through
    ``load_state_dict`` and when the module is moved or cast.

    Arguments
    ---------
    source : str
        Hugging Face hub name (e.g. ``"bert-base-uncased"``) or a local folder
        with the model and tokenizer files.
    save_path : str
        Download cache of the Hugging Face files.
    pooling : str
        ``"mean"`` (mean of the token states, padding excluded) or ``"cls"``.

    Example
    -------
    >>> import tempfile
    >>> folder = save_tiny_bert(tempfile.mkdtemp(), ["a photo of violin", "flute"])
    >>> encoder = BERTQueryEncoder(folder, save_path=tempfile.mkdtemp())
    >>> encoder.embedding_dim
    32
    >>> encoder.encode_text(["violin", "flute"], template="a photo of {}").shape
    torch.Size([2, 32])
    >>> _ = encoder.train()
    >>> encoder.training, any(p.requires_grad for p in encoder.parameters())
    (False, False)
    """

    #: Maximum number of cached prompt embeddings (0 disables the cache).
    max_cache_size = 4096

    def __init__(self, source="bert-base-uncased", save_path="", pooling="mean"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.source = str(source)
        self.pooling = pooling
        self._cache = {}
        try:
            self.text_encoder = TextEncoder(self.source, str(save_path), freeze=True)
        except (OSError, ValueError) as e:
            raise OSError(
                f"cannot load the BERT model or tokenizer {self.source!r}: it is "
                "neither a local folder with config.json, weights and tokenizer "
                "files nor a Hugging Face hub name available in the cache or "
                f"online (offline? HF_HUB_OFFLINE="
                f"{os.environ.get('HF_HUB_OFFLINE', '')!r}). Cause: {e}"
            ) from e
        self.text_encoder.requires_grad_(False)
        self.text_encoder.register_load_state_dict_pre_hook(
            lambda *args, **kwargs: self.clear_cache()
        )
        self.train()

    @property
    def embedding_dim(self):
        """Size of the sentence embeddings (the BERT hidden size)."""
        return int(self.text_encoder.config.hidden_size)

    @property
    def device(self):
        """Device of the BERT weights."""
        return next(self.text_encoder.parameters()).device

    def train(self, mode=True):
        """Keeps BERT in eval mode (frozen, no dropout) whatever ``mode``."""
        self.text_encoder.requires_grad_(False)
        return super().train(False)

    def clear_cache(self):
        """Empties the cache of text embeddings."""
        self._cache.clear()

    def _apply(self, fn, *args, **kwargs):
        self.clear_cache()
        return super()._apply(fn, *args, **kwargs)

    def _embed(self, prompts):
        """Sentence embeddings ``[N, H]`` of distinct final prompts."""
        tokens, states = self.text_encoder(prompts, return_tokens=True)
        if self.pooling == "cls":
            return states[:, 0]
        mask = tokens["attention_mask"].to(states.dtype)[..., None]
        return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def encode_text(self, texts, template=None, ensemble=None):
        """Embeds text queries.

        Arguments
        ---------
        texts : str or list of str
            One query or a batch of queries.
        template : str or None
            Template with a ``{}`` field wrapping each text; None uses the
            texts verbatim.
        ensemble : list of str or None
            Templates whose embeddings are averaged. Exclusive with
            ``template``.

        Returns
        -------
        torch.Tensor
            ``[B, H]`` sentence embeddings.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
            raise ValueError(f"text queries must be non-empty strings, got {texts}")
        if template is not None and ensemble is not None:
            raise ValueError("give either a template or an ensemble, not both")
        templates = [template] if ensemble is None else list(ensemble)
        if not templates:
            raise ValueError("empty prompt ensemble")
        embeddings = []
        for tpl in templates:
            prompts = texts if tpl is None else [tpl.format(text) for text in texts]
            missing = [p for p in dict.fromkeys(prompts) if p not in self._cache]
            found = {}
            if missing:
                with torch.no_grad():
                    new = self._embed(missing)
                found = dict(zip(missing, new))
                if self.max_cache_size > 0:
                    self._cache.update(found)
                    while len(self._cache) > self.max_cache_size:
                        del self._cache[next(iter(self._cache))]
            embeddings.append(
                torch.stack([found.get(p, self._cache.get(p)) for p in prompts])
            )
        return torch.stack(embeddings).mean(dim=0)

    def forward(self, texts):
        """Same as :meth:`encode_text` with the texts verbatim."""
        return self.encode_text(texts)


def save_tiny_bert(folder, texts, hidden_size=32, num_layers=2, num_heads=2, seed=0):
    """Writes a small random BERT and a word-level tokenizer to a folder.

    The vocabulary holds BERT's special tokens and the lower-cased words of
    ``texts``; the folder loads with :class:`BERTQueryEncoder` (or
    ``transformers.AutoModel`` / ``AutoTokenizer``) like a downloaded model.
    The global RNG state is left untouched.

    Arguments
    ---------
    folder : str
        Folder to write (created if needed).
    texts : list of str
        Texts whose words make the vocabulary (e.g. labels and prompts).
    hidden_size : int
        Hidden size (the embedding size).
    num_layers : int
        Transformer layers.
    num_heads : int
        Attention heads.
    seed : int
        Seed of the random initialisation.

    Returns
    -------
    str
        The folder.
    """
    from transformers import BertConfig, BertModel, BertTokenizer

    words = sorted({w for t in texts for w in re.findall(r"\w+|[^\w\s]", t.lower())})
    os.makedirs(folder, exist_ok=True)
    vocab_file = os.path.join(folder, "vocab.txt")
    with open(vocab_file, "w", encoding="utf-8") as f:
        f.write("\n".join(_SPECIAL_TOKENS + words) + "\n")
    # transformers >= 5 takes `vocab`, older versions `vocab_file`
    if "vocab" in inspect.signature(BertTokenizer.__init__).parameters:
        tokenizer = BertTokenizer(vocab=vocab_file)
    else:
        tokenizer = BertTokenizer(vocab_file=vocab_file)
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(_SPECIAL_TOKENS) + len(words),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=128,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(config)
    model.save_pretrained(folder)
    return folder
