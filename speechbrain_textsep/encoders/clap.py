"""Frozen LAION-CLAP query encoder of CLAPSep, and the CLAP model builder.

CLAPSep (Ma et al., 2024) conditions its separator on LAION-CLAP embeddings:
the model of ``laion_clap`` with an HTSAT-base audio encoder, a RoBERTa text
encoder and no feature fusion (checkpoint
``music_audioset_epoch_15_esc_90.14.pt``), whose joint embeddings are
512-dimensional. The whole CLAP is frozen; CLAPSep also deep-copies its audio
branch (the HTSAT) to extract multi-level features of the mixture
(:attr:`CLAPQueryEncoder.audio_branch`).

Embeddings are the ones of laion_clap's ``CLAP.get_text_embedding`` and
``CLAP.get_audio_embedding``: projected to the joint space and
**L2-normalised**.

- Text: laion_clap's RoBERTa tokenisation (``max_length=77``, padding to
  ``max_length``, truncation), then the ``pooler_output`` of RoBERTa and the
  text projection.
- Audio: resampled to 48 kHz, then laion_clap's preprocessing for models
  without fusion: a clip longer than 10 s (480000 samples) is cropped to 10 s
  (laion_clap crops at random; here ``crop="center"`` by default, see
  :data:`CROP_MODES`), a shorter one is repeated ``int(480000 / length)``
  times and zero-padded to 10 s ("repeatpad"). HTSAT computes its own STFT
  (window 1024, hop 480: 1001 frames), 64-bin log-mel, and interpolates the
  frames to the 1024 x 64 it reshapes into a 256 x 256 "image". As CLAPSep
  (``get_audio_embedding_from_data(..., use_tensor=True)``), the waveform
  is not rounded to 16 bits as laion_clap's numpy path does.

All the model code is laion_clap's (``CLAP``, ``HTSAT_Swin_Transformer``,
reached through :func:`~speechbrain_textsep.encoders.laion.clap_module`,
never ``import laion_clap``, whose ``__init__`` downloads tokenizers). Two
things are done differently from ``laion_clap.CLAP_Module`` so that
everything works offline (:func:`create_clap`):

- laion_clap builds the RoBERTa text branch with
  ``RobertaModel.from_pretrained("roberta-base")`` (a download). Here the CLAP
  is built with a placeholder text branch, which is then replaced by a
  ``RobertaModel`` built from a ``RobertaConfig`` (roberta-base's for the real
  checkpoints: their weights overwrite it anyway) and a text projection of
  the same shape; ``text_branch_type`` becomes ``"roberta"``, so laion_clap's
  own ``encode_text`` runs. The tokenizer comes from a local folder or the
  Hugging Face cache (``AutoTokenizer``).
- laion_clap's ``create_htsat_model`` only knows three HTSAT sizes. A config
  with an ``"htsat"`` entry (small test models, :data:`TINY_CLAP_CFG`) builds
  laion_clap's ``HTSAT_Swin_Transformer`` with those hyperparameters instead.

Where the weights come from (``source``):

- a known checkpoint name of the ``lukewys/laion_clap`` hub repository
  (:data:`LAION_CLAP_CHECKPOINTS`, e.g. the default
  ``"music_audioset_epoch_15_esc_90.14.pt"``): downloaded and cached by
  ``huggingface_hub.hf_hub_download``, then found offline in the cache;
- ``"hf-hub:<org>/<repo>/<file>"`` (a laion_clap checkpoint in any repo) or
  ``"hf-hub:<org>/<repo>"`` (a repo holding a :meth:`save_pretrained_dir`
  folder);
- a local laion_clap checkpoint file (``{"state_dict": {"module.…": …}}``
  as laion_clap's training writes it, or a bare state dict);
- a local folder written by :meth:`CLAPQueryEncoder.save_pretrained_dir` /
  :func:`save_local_clap` (config, weights and tokenizer), whose files must
  all resolve inside it;
- None: random weights from ``model_cfg``.

Weights are read with ``torch.load(weights_only=True)`` and strict keys.

The pieces live in their own modules, and every name listed in ``__all__``
is importable from here:

- :mod:`~speechbrain_textsep.encoders.clap_config`: model configs, known
  checkpoints, defaults;
- :mod:`~speechbrain_textsep.encoders.clap_checkpoint`: checkpoint files and
  CLAP folders;
- :mod:`~speechbrain_textsep.encoders.clap_tokenizer`: the RoBERTa tokenizer;
- :mod:`~speechbrain_textsep.encoders.clap_audio`: audio preprocessing;
- :mod:`~speechbrain_textsep.encoders.clap_hub`: source resolution and hub
  downloads;
- :mod:`~speechbrain_textsep.encoders.clap_errors`: the error raised when
  files cannot be obtained.

Authors
 * speechbrain-textsep contributors
"""

import importlib
import os
import threading
from pathlib import Path

import torch
import torch.nn.functional as F

from speechbrain_textsep.encoders.clap_audio import check_crop, clap_audio_input
from speechbrain_textsep.encoders.clap_checkpoint import (
    load_clap_checkpoint,
    save_clap_dir,
)
from speechbrain_textsep.encoders.clap_config import (
    CROP_MODES,
    DEFAULT_CHECKPOINT,
    LAION_CLAP_CHECKPOINTS,
    LAION_CLAP_REPO,
    ROBERTA_BASE_CONFIG,
    TEXT_TEMPLATE,
    TINY_CLAP_CFG,
    TOKENIZER_MAX_LENGTH,
    check_clap_cfg,
    laion_clap_cfg,
)
from speechbrain_textsep.encoders.clap_errors import CLAPWeightsUnavailableError
from speechbrain_textsep.encoders.clap_hub import resolve_clap_source
from speechbrain_textsep.encoders.clap_tokenizer import (
    build_tiny_tokenizer,
    default_tokenizer,
    load_clap_tokenizer,
    tokenize,
)
from speechbrain_textsep.encoders.laion import clap_module
from speechbrain_textsep.encoders.prompts import (
    FrozenQueryEncoder,
    check_template,
    check_texts,
    embed_with_cache,
    prompt_sets,
)
from speechbrain_textsep.processing.audio_io import resample

__all__ = [
    "CLAPQueryEncoder",
    "CLAPWeightsUnavailableError",
    "CROP_MODES",
    "DEFAULT_CHECKPOINT",
    "LAION_CLAP_CHECKPOINTS",
    "LAION_CLAP_REPO",
    "ROBERTA_BASE_CONFIG",
    "TEXT_TEMPLATE",
    "TINY_CLAP_CFG",
    "TOKENIZER_MAX_LENGTH",
    "build_tiny_tokenizer",
    "check_clap_cfg",
    "clap_audio_input",
    "create_clap",
    "laion_clap_cfg",
    "load_clap_checkpoint",
    "load_clap_tokenizer",
    "save_clap_dir",
    "save_local_clap",
    "tokenize",
]

# Serialises the temporary swap of laion_clap's create_htsat_model.
_BUILD_LOCK = threading.Lock()


# -------------------------------------------------------------------- model
def _custom_htsat_factory(htsat):
    """A ``create_htsat_model`` building laion_clap's HTSAT with ``htsat``."""
    kwargs = dict(htsat)
    if "patch_stride" in kwargs:
        kwargs["patch_stride"] = tuple(kwargs["patch_stride"])

    def create(audio_cfg, enable_fusion=False, fusion_type="None"):
        htsat_module = importlib.import_module("clap_module.htsat")
        return htsat_module.HTSAT_Swin_Transformer(
            num_classes=audio_cfg.class_num,
            config=audio_cfg,
            enable_fusion=enable_fusion,
            fusion_type=fusion_type,
            **kwargs,
        )

    return create


def _build_laion_clap(cfg, model_module):
    """laion_clap's ``CLAP`` with a placeholder text branch (see create_clap)."""
    # Placeholder text branch (laion_clap's "roberta" type would download
    # roberta-base); replaced by _attach_roberta.
    placeholder = {
        "model_type": "transformer",
        "context_length": int(cfg["text_cfg"]["context_length"]),
        "vocab_size": 1,
        "width": 8,
        "heads": 1,
        "layers": 1,
    }
    kwargs = {
        "embed_dim": int(cfg["embed_dim"]),
        "audio_cfg": dict(cfg["audio_cfg"]),
        "text_cfg": placeholder,
        "joint_embed_shape": int(cfg["joint_embed_shape"]),
        "mlp_act": cfg["mlp_act"],
    }
    with _BUILD_LOCK:
        if not cfg.get("htsat"):
            return model_module.CLAP(**kwargs)
        original = model_module.create_htsat_model
        model_module.create_htsat_model = _custom_htsat_factory(cfg["htsat"])
        try:
            return model_module.CLAP(**kwargs)
        finally:
            model_module.create_htsat_model = original


def _attach_roberta(clap, cfg, model_module):
    """Replaces the placeholder text branch by RoBERTa and its projection."""
    from transformers import RobertaConfig, RobertaModel

    roberta = RobertaConfig(**cfg["roberta"])
    for name in ("token_embedding", "positional_embedding", "ln_final"):
        delattr(clap, name)
    del clap.vocab_size
    clap.text_branch = RobertaModel(roberta)
    joint = clap.joint_embed_shape
    clap.text_projection = torch.nn.Sequential(
        torch.nn.Linear(roberta.hidden_size, joint),
        clap.audio_projection[1],  # laion_clap shares one activation module
        torch.nn.Linear(joint, joint),
    )
    clap.text_branch_type = "roberta"
    clap.text_cfg = model_module.CLAPTextCfg(
        context_length=int(cfg["text_cfg"]["context_length"]),
        vocab_size=roberta.vocab_size,
        width=roberta.hidden_size,
        heads=roberta.num_attention_heads,
        layers=roberta.num_hidden_layers,
        model_type="roberta",
    )


def create_clap(model_cfg):
    """laion_clap's ``CLAP`` with a RoBERTa text branch, random weights.

    The model is trainable (nothing frozen) and built offline: no
    ``RobertaModel.from_pretrained`` (see the module docstring). Draws from
    torch's global RNG.

    laion_clap's ``CLAP.__init__`` is run as is, with a placeholder text
    branch (a 1-layer, width-8 "transformer") that is then replaced by the
    RoBERTa text branch and its projection. For a config with an ``htsat``
    entry, laion_clap's ``create_htsat_model`` (which knows only the tiny,
    base and large sizes) is swapped, under a lock and only while
    ``CLAP.__init__`` runs, for a function that builds laion_clap's
    ``HTSAT_Swin_Transformer`` with those hyperparameters.

    Arguments
    ---------
    model_cfg : dict
        See :func:`check_clap_cfg` (e.g. :data:`TINY_CLAP_CFG`,
        ``laion_clap_cfg("HTSAT-base")``).

    Returns
    -------
    clap_module.model.CLAP

    Example
    -------
    >>> clap = create_clap(TINY_CLAP_CFG)
    >>> type(clap).__name__, clap.text_branch_type, type(clap.text_branch).__name__
    ('CLAP', 'roberta', 'RobertaModel')
    >>> type(clap.audio_branch).__name__
    'HTSAT_Swin_Transformer'
    """
    cfg = check_clap_cfg(model_cfg)
    clap_module()
    model_module = importlib.import_module("clap_module.model")
    clap = _build_laion_clap(cfg, model_module)
    _attach_roberta(clap, cfg, model_module)
    return clap


def save_local_clap(model_cfg, path, texts, seed=0):
    """Writes a randomly initialised CLAP and a tiny tokenizer to a folder.

    Lets tests and quick recipes load a CLAP through the same folder route as
    a trained one. The tokenizer is trained on ``texts``
    (:func:`build_tiny_tokenizer`, at most the RoBERTa ``vocab_size``
    tokens). The global RNG state is left untouched.

    Arguments
    ---------
    model_cfg : dict
        CLAP config (e.g. :data:`TINY_CLAP_CFG`).
    path : str or os.PathLike
        Folder to write (created if needed).
    texts : list of str
        Texts to train the tokenizer on.
    seed : int
        Seed of the random initialisation.

    Returns
    -------
    pathlib.Path
        The folder.

    Example
    -------
    >>> import tempfile
    >>> texts = ["The sound of cello"]
    >>> folder = save_local_clap(TINY_CLAP_CFG, tempfile.mkdtemp(), texts)
    >>> sorted(p.name for p in folder.iterdir())[:2]
    ['clap_config.json', 'clap_model.pt']
    """
    cfg = check_clap_cfg(model_cfg)
    path = Path(path)
    build_tiny_tokenizer(path, texts, vocab_size=cfg["roberta"]["vocab_size"])
    tokenizer = load_clap_tokenizer(path)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        clap = create_clap(cfg)
    return save_clap_dir(path, clap, cfg, tokenizer)


# ----------------------------------------------------------------- encoder
def _one_resample_call(waveforms, rate, target_rate):
    """Whether a ``[N, L]`` float batch can be resampled in one call."""
    return (
        isinstance(waveforms, torch.Tensor)
        and waveforms.dim() == 2
        and waveforms.shape[0] > 0
        and waveforms.shape[1] > 0
        and waveforms.is_floating_point()
        and type(rate) is int
        and 0 < rate != target_rate
    )


class CLAPQueryEncoder(FrozenQueryEncoder):
    """Frozen LAION-CLAP encoder turning text or audio queries into embeddings.

    The CLAP (laion_clap's ``CLAP``, attribute :attr:`clap`) is frozen
    (``requires_grad=False``) and kept in eval mode, also when a parent
    module calls ``.train()``. Embeddings are laion_clap's
    ``get_text_embedding`` / ``get_audio_embedding``: ``[N, 512]``,
    **L2-normalised**, computed under ``torch.no_grad()``.

    Text embeddings are cached per final prompt string; the cache is
    cleared when weights are loaded through ``load_state_dict`` (here, on the
    CLAP or on any parent) and when the module is moved or cast. At most
    ``max_cache_size`` entries are kept (0 disables the cache).

    See the module docstring for the sources (``source``) and for how audio
    is preprocessed.

    Arguments
    ---------
    source : str or os.PathLike or None
        A checkpoint name of ``lukewys/laion_clap`` (default: CLAPSep's
        ``music_audioset_epoch_15_esc_90.14.pt``), ``"hf-hub:<org>/<repo>"``
        or ``"hf-hub:<org>/<repo>/<file>"``, a local checkpoint file, a folder
        written by :meth:`save_pretrained_dir`, or None (random weights from
        ``model_cfg``).
    model_cfg : dict or None
        Architecture (see :func:`check_clap_cfg`). Default for checkpoints:
        HTSAT-base (HTSAT-tiny for the 630k checkpoints) with roberta-base;
        a folder brings its own.
    tokenizer : str or os.PathLike or None
        Tokenizer folder or hub name. Default: the folder's for a folder,
        else ``"roberta-base"`` (from the Hugging Face cache offline).
    cache_dir : str or None
        Hugging Face cache (None: its default).
    crop : str
        How clips longer than 10 s are cropped (:data:`CROP_MODES`).
    template : str or None
        Template applied by ``forward(texts=...)`` (e.g. :data:`TEXT_TEMPLATE`
        for labels); None passes texts verbatim.
    device : str or torch.device or None
        Device to move the model to (default: stays on CPU).

    Example
    -------
    >>> import tempfile
    >>> tok = build_tiny_tokenizer(tempfile.mkdtemp(), ["The sound of violin"])
    >>> encoder = CLAPQueryEncoder(None, model_cfg=TINY_CLAP_CFG, tokenizer=tok)
    >>> encoder.embedding_dim, encoder.sample_rate
    (512, 48000)
    >>> text = encoder.encode_text(["violin", "flute"], template=TEXT_TEMPLATE)
    >>> audio = encoder.encode_audio(torch.randn(3, 16000), sample_rate=16000)
    >>> text.shape, audio.shape
    (torch.Size([2, 512]), torch.Size([3, 512]))
    >>> bool(torch.allclose(audio.norm(dim=-1), torch.ones(3)))
    True
    >>> _ = encoder.train()
    >>> encoder.training, any(p.requires_grad for p in encoder.parameters())
    (False, False)
    """

    #: Maximum number of cached prompt embeddings (0 disables the cache).
    max_cache_size = 4096

    def __init__(
        self,
        source=DEFAULT_CHECKPOINT,
        model_cfg=None,
        tokenizer=None,
        cache_dir=None,
        crop="center",
        template=None,
        device=None,
    ):
        super().__init__()
        check_crop(crop)
        if template is not None:
            check_template(template)
        self.source = None if source is None else os.fspath(source)
        self.crop = crop
        self.template = template

        # Files first (download or cache look-up), so that a missing file is
        # reported before a large model is built.
        weights, cfg, tokenizer = resolve_clap_source(
            source, model_cfg or None, tokenizer, cache_dir
        )
        cfg = check_clap_cfg(cfg)
        if tokenizer is None:
            tokenizer = default_tokenizer(cfg)
        self.tokenizer = load_clap_tokenizer(tokenizer, cache_dir=cache_dir)
        vocab = int(cfg["roberta"]["vocab_size"])
        if len(self.tokenizer) > vocab:
            raise ValueError(
                f"the tokenizer {os.fspath(tokenizer)!r} has {len(self.tokenizer)} "
                f"tokens but the CLAP text model's vocabulary has {vocab}"
            )
        self.model_cfg = cfg
        self.clap = create_clap(cfg)
        if weights is not None:
            load_clap_checkpoint(self.clap, weights)

        self.clap.requires_grad_(False)
        self.watch_weights(self.clap)
        if device is not None:
            self.to(device)
        self.train()

    # ------------------------------------------------------------ properties
    @property
    def audio_branch(self):
        """The CLAP's audio encoder (laion_clap's ``HTSAT_Swin_Transformer``)."""
        return self.clap.audio_branch

    @property
    def embedding_dim(self):
        """Dimension of the joint embeddings (512)."""
        return int(self.clap.joint_embed_shape)

    @property
    def sample_rate(self):
        """Sample rate of the CLAP audio input (48000)."""
        return int(self.model_cfg["audio_cfg"]["sample_rate"])

    @property
    def clip_samples(self):
        """Samples of one CLAP audio input (480000: 10 s)."""
        return int(self.model_cfg["audio_cfg"]["clip_samples"])

    @property
    def device(self):
        """Device of the CLAP weights."""
        return next(self.clap.parameters()).device

    @property
    def dtype(self):
        """Floating point type of the CLAP weights."""
        return next(self.clap.parameters()).dtype

    @property
    def logit_scale(self):
        """CLAP's audio-text logit multiplier ``exp(logit_scale_a)`` (a float)."""
        return float(self.clap.logit_scale_a.detach().exp())

    # ------------------------------------------------------------------ text
    def encode_text(self, texts, template=None, ensemble=None):
        """Embeds text queries (captions or labels).

        Arguments
        ---------
        texts : str or list of str
            One query or a batch of queries.
        template : str or None
            Template with a ``{}`` field wrapping each text (e.g.
            :data:`TEXT_TEMPLATE`); None uses the texts verbatim.
        ensemble : list of str or None
            Templates whose embeddings are averaged, then L2-normalised again.
            Exclusive with ``template``.

        Returns
        -------
        torch.Tensor
            ``[N, 512]`` L2-normalised CLAP text embeddings.
        """
        embeddings = [
            self._embed_prompts(prompts)
            for prompts in prompt_sets(texts, template, ensemble)
        ]
        if len(embeddings) == 1:
            return embeddings[0]
        return F.normalize(torch.stack(embeddings).mean(dim=0), dim=-1)

    def _embed_prompts(self, prompts):
        """Embeds final prompt strings, through the cache."""

        def embed(missing):
            tokens = tokenize(
                self.tokenizer,
                missing,
                max_length=int(self.model_cfg["text_cfg"]["context_length"]),
            )
            return self.clap.get_text_embedding(tokens)

        return embed_with_cache(self._cache, prompts, embed, self.max_cache_size)

    @property
    def token_dim(self):
        """Width of the text tower's hidden states (768 for roberta-base)."""
        return int(self.model_cfg["roberta"]["hidden_size"])

    @property
    def n_tokens(self):
        """Tokens per text of the tokenizer (laion_clap's ``max_length``: 77)."""
        return int(self.model_cfg["text_cfg"]["context_length"])

    def encode_text_tokens(self, texts, max_length=None):
        """The text tower's token sequence of each text, before pooling.

        The last hidden states of the RoBERTa (``last_hidden_state``; what
        laion_clap pools into :meth:`encode_text` is its first token),
        computed under ``torch.no_grad()`` with laion_clap's tokenisation
        (padding to ``max_length``, truncation). Texts are used verbatim.
        Padding positions are zeros and ``False`` in the mask: what a model
        attends to is only the real tokens.

        Arguments
        ---------
        texts : str or list of str
            One text or a batch of texts.
        max_length : int or None
            Tokens per text ``S`` (None: :attr:`n_tokens`, 77; at most that).
            Longer texts are truncated (keeping the final ``</s>``).

        Returns
        -------
        tokens : torch.Tensor
            ``[N, S, token_dim]`` hidden states (on the CLAP's device).
        mask : torch.Tensor
            ``[N, S]`` bool, True for the real tokens.

        Example
        -------
        >>> import tempfile
        >>> tok = build_tiny_tokenizer(tempfile.mkdtemp(), ["The sound of violin"])
        >>> encoder = CLAPQueryEncoder(None, model_cfg=TINY_CLAP_CFG, tokenizer=tok)
        >>> tokens, mask = encoder.encode_text_tokens(["violin", "The sound of violin"])
        >>> tokens.shape, mask.shape, mask.dtype
        (torch.Size([2, 77, 32]), torch.Size([2, 77]), torch.bool)
        >>> bool(mask[0].sum() < mask[1].sum()), bool(tokens[~mask].abs().max() == 0)
        (True, True)
        >>> short, _ = encoder.encode_text_tokens("violin", max_length=16)
        >>> short.shape, bool(torch.allclose(short, tokens[:1, :16], atol=1e-5))
        (torch.Size([1, 16, 32]), True)
        """
        texts = check_texts(texts)
        limit = self.n_tokens
        max_length = limit if max_length is None else int(max_length)
        if not 2 <= max_length <= limit:
            raise ValueError(
                f"max_length must be between 2 and {limit} tokens, got {max_length}"
            )
        batch = tokenize(self.tokenizer, texts, max_length=max_length)
        mask = batch["attention_mask"].to(self.device).bool()
        with torch.no_grad():
            hidden = self.clap.text_branch(
                input_ids=batch["input_ids"].to(self.device),
                attention_mask=mask.long(),
            )["last_hidden_state"]
        return hidden * mask[..., None].to(hidden.dtype), mask

    # ----------------------------------------------------------------- audio
    def preprocess_audio(self, waveforms, sample_rate=None):
        """Waveforms as the HTSAT takes them (see :func:`clap_audio_input`).

        Arguments
        ---------
        waveforms : torch.Tensor or list
            ``[N, L]`` or ``[L]`` tensor, or a list of 1-D waveforms.
        sample_rate : int or None
            Their sample rate (None: already at :attr:`sample_rate`).

        Returns
        -------
        torch.Tensor
            ``[N, clip_samples]`` at 48 kHz.
        """
        rate = self.sample_rate if sample_rate is None else sample_rate
        if _one_resample_call(waveforms, rate, self.sample_rate):
            # the same samples as item by item, several times faster
            waveforms = resample(waveforms.float(), rate, self.sample_rate)
            rate = self.sample_rate
        return clap_audio_input(
            waveforms, rate, self.model_cfg["audio_cfg"], crop=self.crop
        )

    def encode_audio(self, waveforms, sample_rate=None):
        """Embeds audio queries (example recordings).

        Arguments
        ---------
        waveforms : torch.Tensor or list
            ``[N, L]`` or ``[L]`` mono waveforms, or a list of 1-D waveforms
            of any lengths.
        sample_rate : int or None
            Their sample rate; resampled to 48 kHz (None: already 48 kHz).

        Returns
        -------
        torch.Tensor
            ``[N, 512]`` L2-normalised CLAP audio embeddings.
        """
        with torch.no_grad():
            return self._embed_audio(waveforms, sample_rate)

    def encode_audio_with_grad(self, waveforms, sample_rate=None):
        """Embeds waveforms differentiably (gradients flow to the waveforms).

        The embedding of :meth:`encode_audio` (the same preprocessing:
        resampling to 48 kHz, crop or repeat-pad to 10 s, then the HTSAT),
        computed with autograd on: a separator's outputs get gradients
        through the frozen CLAP (the weakly-supervised contrastive loss),
        while the CLAP weights stay frozen (``requires_grad=False``, eval
        mode) and receive none. With ``crop="random"`` the crop differs from
        call to call.

        Arguments
        ---------
        waveforms : torch.Tensor or list
            ``[N, L]`` or ``[L]`` mono waveforms (or a list of 1-D ones).
        sample_rate : int or None
            Their sample rate (None: already 48 kHz).

        Returns
        -------
        torch.Tensor
            ``[N, 512]`` L2-normalised CLAP audio embeddings, part of the
            autograd graph of ``waveforms``.

        Raises
        ------
        RuntimeError
            The CLAP was unfrozen (a weight requiring grad, or a sub-module
            in training mode).

        Example
        -------
        >>> import tempfile
        >>> tok = build_tiny_tokenizer(tempfile.mkdtemp(), ["The sound of violin"])
        >>> encoder = CLAPQueryEncoder(None, model_cfg=TINY_CLAP_CFG, tokenizer=tok)
        >>> wav = torch.randn(2, 16000, requires_grad=True)
        >>> emb = encoder.encode_audio_with_grad(wav, sample_rate=16000)
        >>> emb.sum().backward()
        >>> wav.grad.shape, encoder.clap.audio_projection[0].weight.grad
        (torch.Size([2, 16000]), None)
        """
        if any(p.requires_grad for p in self.clap.parameters()) or any(
            m.training for m in self.clap.modules()
        ):
            raise RuntimeError(
                "encode_audio_with_grad needs the CLAP frozen: its weights "
                "require grad or it is in training mode (call .train() on the "
                "encoder, which freezes it again)"
            )
        return self._embed_audio(waveforms, sample_rate)

    def _embed_audio(self, waveforms, sample_rate):
        """laion_clap's audio embedding of preprocessed waveforms."""
        audio = self.preprocess_audio(waveforms, sample_rate)
        audio = audio.to(device=self.device, dtype=self.dtype)
        return self.clap.get_audio_embedding([{"waveform": w} for w in audio])

    # --------------------------------------------------------------- forward
    def forward(self, texts=None, audio=None, sample_rate=None):
        """Embeds either text queries or audio queries (exactly one).

        Texts are wrapped with the instance ``template`` (verbatim if None).

        Arguments
        ---------
        texts : str or list of str or None
            Text queries (see :meth:`encode_text`).
        audio : torch.Tensor or list or None
            Audio queries (see :meth:`encode_audio`).
        sample_rate : int or None
            Sample rate of ``audio``.

        Returns
        -------
        torch.Tensor
            ``[N, 512]`` query embeddings.
        """
        if (texts is None) == (audio is None):
            raise ValueError("give exactly one of texts= or audio=")
        if texts is not None:
            return self.encode_text(texts, template=self.template)
        return self.encode_audio(audio, sample_rate)

    # ------------------------------------------------------------------ save
    def save_pretrained_dir(self, path):
        """Writes the CLAP as a folder that ``CLAPQueryEncoder(path)`` loads.

        See :func:`save_clap_dir` (config, weights and tokenizer).

        Arguments
        ---------
        path : str or os.PathLike
            Folder to write (created if needed).

        Returns
        -------
        pathlib.Path
            The folder.
        """
        return save_clap_dir(path, self.clap, self.model_cfg, self.tokenizer)
