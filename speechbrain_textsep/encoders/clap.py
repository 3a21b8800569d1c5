"""Frozen LAION-CLAP query encoder of CLAPSep.

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
everything works offline:

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
  :func:`save_local_clap` (config, weights and tokenizer);
- None: random weights from ``model_cfg``.

Weights are read with ``torch.load(weights_only=True)`` and strict keys.

Authors
 * speechbrain-textsep contributors
"""

import copy
import importlib
import inspect
import json
import os
import tempfile
import threading
from pathlib import Path

import torch
import torch.nn.functional as F

from speechbrain_textsep.encoders.laion import clap_module
from speechbrain_textsep.encoders.prompts import (
    FrozenQueryEncoder,
    check_template,
    embed_with_cache,
    prompt_sets,
)

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
    "build_tiny_tokenizer",
    "clap_audio_input",
    "create_clap",
    "laion_clap_cfg",
    "load_clap_checkpoint",
    "load_clap_tokenizer",
    "save_clap_dir",
    "save_local_clap",
    "tokenize",
]

#: Hugging Face repository of the LAION-CLAP checkpoints.
LAION_CLAP_REPO = "lukewys/laion_clap"

#: Checkpoints of :data:`LAION_CLAP_REPO` without feature fusion, with the
#: laion_clap audio model config they need (``amodel`` of laion_clap). The
#: fusion checkpoints (``*-fusion-best.pt``) are not supported.
LAION_CLAP_CHECKPOINTS = {
    "630k-best.pt": "HTSAT-tiny",
    "630k-audioset-best.pt": "HTSAT-tiny",
    "music_audioset_epoch_15_esc_90.14.pt": "HTSAT-base",
    "music_speech_epoch_15_esc_89.25.pt": "HTSAT-base",
    "music_speech_audioset_epoch_15_esc_89.98.pt": "HTSAT-base",
}

#: The checkpoint of CLAPSep.
DEFAULT_CHECKPOINT = "music_audioset_epoch_15_esc_90.14.pt"

#: Text prompt of CLAPSep for class labels ("The sound of {label}").
TEXT_TEMPLATE = "The sound of {}"

#: How a clip longer than the CLAP input (10 s) is cropped: ``"center"``,
#: ``"start"``, or ``"random"`` (laion_clap's "rand_trunc": a uniformly drawn
#: start, from torch's global RNG here, numpy's in laion_clap).
CROP_MODES = ("center", "start", "random")

#: laion_clap's tokenisation length (``max_length=77``).
TOKENIZER_MAX_LENGTH = 77

#: ``RobertaConfig`` of roberta-base, the text branch of laion_clap's
#: "roberta" text model (its weights come from the CLAP checkpoint).
ROBERTA_BASE_CONFIG = {
    "vocab_size": 50265,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-05,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}

#: A tiny CLAP (2.0 M trainable parameters, random init in about a second)
#: for tests and quick recipes. Same audio front end as the real model (48 kHz,
#: 10 s clips, STFT 1024 / hop 480, 64 mel bins, 256 x 256 HTSAT input, 4
#: levels, window 8) and the same 512-d joint space, with a 16-d patch
#: embedding (HTSAT output 16 * 2**3 = 128 = ``embed_dim``), one block per
#: level, and a 2-layer RoBERTa of width 32 whose tokenizer is built by
#: :func:`build_tiny_tokenizer` (at most ``vocab_size`` tokens). Set up for
#: training from scratch in minutes: no dropout nor stochastic depth, and a
#: RoBERTa init std of 0.2 (with the default 0.02, the ``<s>`` state that
#: laion_clap pools is the same for every caption up to 1e-5 in cosine, and
#: contrastive training does not start).
TINY_CLAP_CFG = {
    "embed_dim": 128,
    "joint_embed_shape": 512,
    "mlp_act": "relu",
    "audio_cfg": {
        "model_type": "HTSAT",
        "model_name": "custom",
        "sample_rate": 48000,
        "audio_length": 1024,
        "clip_samples": 480000,
        "mel_bins": 64,
        "window_size": 1024,
        "hop_size": 480,
        "fmin": 50,
        "fmax": 14000,
        "class_num": 10,
    },
    "htsat": {
        "spec_size": 256,
        "patch_size": 4,
        "patch_stride": [4, 4],
        "embed_dim": 16,
        "depths": [1, 1, 1, 1],
        "num_heads": [1, 2, 4, 8],
        "window_size": 8,
        "drop_path_rate": 0.0,
    },
    "text_cfg": {"model_type": "roberta", "context_length": TOKENIZER_MAX_LENGTH},
    "roberta": {
        "vocab_size": 512,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 128,
        "type_vocab_size": 1,
        "layer_norm_eps": 1e-05,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "initializer_range": 0.2,
    },
}

# HTSAT patch-embedding widths of laion_clap's create_htsat_model.
_HTSAT_WIDTHS = {"tiny": 96, "base": 128, "large": 256}
_HTSAT_KEYS = (
    "spec_size",
    "patch_size",
    "patch_stride",
    "embed_dim",
    "depths",
    "num_heads",
    "window_size",
    "mlp_ratio",
    "drop_rate",
    "attn_drop_rate",
    "drop_path_rate",
)
_CONFIG_FILE = "clap_config.json"
_WEIGHTS_FILE = "clap_model.pt"
_HUB_PREFIX = "hf-hub:"
# Buffers of old transformers versions (persistent before 4.31) that laion_clap
# also drops when loading a checkpoint.
_OBSOLETE_KEYS = (
    "text_branch.embeddings.position_ids",
    "text_branch.embeddings.token_type_ids",
)
_SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
_BUILD_LOCK = threading.Lock()


class CLAPWeightsUnavailableError(RuntimeError):
    """CLAP weights or tokenizer files could not be obtained.

    Raised when a checkpoint or tokenizer named by a hub name is neither in
    the local cache nor downloadable (typically: offline, ``HF_HUB_OFFLINE=1``
    and never downloaded), or when a local file or folder is missing.
    """


# ---------------------------------------------------------------- configs
def laion_clap_cfg(amodel="HTSAT-base"):
    """The model config of a laion_clap audio model with the RoBERTa text model.

    Reads laion_clap's own ``model_configs/<amodel>.json`` (audio config and
    HTSAT output width ``embed_dim``) and adds roberta-base
    (:data:`ROBERTA_BASE_CONFIG`) and the 512-d joint space, as
    ``laion_clap.CLAP_Module(enable_fusion=False, amodel=..., tmodel="roberta")``.

    Arguments
    ---------
    amodel : str
        laion_clap audio model name: ``"HTSAT-base"`` (CLAPSep's music
        checkpoints), ``"HTSAT-tiny"`` (the 630k checkpoints) or
        ``"HTSAT-large"``.

    Returns
    -------
    dict
        A model config for :func:`create_clap`.

    Example
    -------
    >>> cfg = laion_clap_cfg("HTSAT-base")
    >>> cfg["embed_dim"], cfg["joint_embed_shape"], cfg["audio_cfg"]["sample_rate"]
    (1024, 512, 48000)
    """
    folder = Path(clap_module().__file__).parent / "model_configs"
    path = folder / f"{amodel}.json"
    if not amodel.startswith("HTSAT") or not path.is_file():
        known = sorted(p.stem for p in folder.glob("HTSAT*.json"))
        raise ValueError(f"unknown laion_clap HTSAT model {amodel!r}; known: {known}")
    with open(path, encoding="utf-8") as f:
        laion = json.load(f)
    return {
        "embed_dim": int(laion["embed_dim"]),
        "joint_embed_shape": 512,
        "mlp_act": "relu",
        "audio_cfg": dict(laion["audio_cfg"]),
        "text_cfg": {
            "model_type": "roberta",
            "context_length": TOKENIZER_MAX_LENGTH,
        },
        "roberta": dict(ROBERTA_BASE_CONFIG),
    }


def _htsat_width(cfg):
    """Output width of the HTSAT a config builds (its patch width x 2**(L-1))."""
    htsat = cfg.get("htsat")
    if htsat:
        return int(htsat["embed_dim"]) * 2 ** (len(htsat["depths"]) - 1)
    return _HTSAT_WIDTHS[cfg["audio_cfg"]["model_name"]] * 8


def check_clap_cfg(model_cfg):
    """Validates a CLAP model config; returns a deep copy.

    Arguments
    ---------
    model_cfg : dict
        ``embed_dim`` (HTSAT output width), ``audio_cfg`` (laion_clap's
        ``CLAPAudioCfp`` fields), ``text_cfg`` (``model_type: roberta``,
        ``context_length``), ``roberta`` (``RobertaConfig`` fields), and
        optionally ``joint_embed_shape`` (512), ``mlp_act`` (``relu``) and
        ``htsat`` (hyperparameters of a custom-size HTSAT).

    Returns
    -------
    dict

    Example
    -------
    >>> bad = dict(TINY_CLAP_CFG, embed_dim=64)
    >>> check_clap_cfg(bad)
    Traceback (most recent call last):
    ...
    ValueError: model_cfg embed_dim is 64 but its HTSAT outputs 128 features ...
    """
    if not isinstance(model_cfg, dict):
        raise TypeError(f"model_cfg must be a dict, got {type(model_cfg)}")
    cfg = copy.deepcopy(dict(model_cfg))
    missing = [
        k for k in ("embed_dim", "audio_cfg", "text_cfg", "roberta") if k not in cfg
    ]
    if missing:
        raise ValueError(f"model_cfg lacks {missing}")
    cfg.setdefault("joint_embed_shape", 512)
    cfg.setdefault("mlp_act", "relu")
    audio, text = cfg["audio_cfg"], cfg["text_cfg"]
    if audio.get("model_type") != "HTSAT":
        raise ValueError(
            f"only HTSAT audio models are supported, got {audio.get('model_type')!r}"
        )
    if cfg.get("enable_fusion"):
        raise ValueError("CLAP models with feature fusion are not supported")
    if text.get("model_type") != "roberta":
        raise ValueError(
            "only the RoBERTa text model ('roberta') is supported, got "
            f"{text.get('model_type')!r}"
        )
    text.setdefault("context_length", TOKENIZER_MAX_LENGTH)
    htsat = cfg.get("htsat")
    if htsat:
        unknown = sorted(set(htsat) - set(_HTSAT_KEYS))
        if unknown or not {"embed_dim", "depths", "num_heads"} <= set(htsat):
            raise ValueError(
                f"model_cfg htsat takes {list(_HTSAT_KEYS)} (embed_dim, depths and "
                f"num_heads required); got {sorted(htsat)}"
            )
        if len(htsat["depths"]) != len(htsat["num_heads"]):
            raise ValueError("model_cfg htsat depths and num_heads differ in length")
    elif audio.get("model_name") not in _HTSAT_WIDTHS:
        raise ValueError(
            "audio_cfg model_name must be one of laion_clap's HTSAT sizes "
            f"{sorted(_HTSAT_WIDTHS)} (or give an 'htsat' entry), got "
            f"{audio.get('model_name')!r}"
        )
    width = _htsat_width(cfg)
    if int(cfg["embed_dim"]) != width:
        raise ValueError(
            f"model_cfg embed_dim is {cfg['embed_dim']} but its HTSAT outputs "
            f"{width} features (patch width x 2**(levels - 1)); they must match"
        )
    return cfg


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
    from transformers import RobertaConfig, RobertaModel

    cfg = check_clap_cfg(model_cfg)
    clap_module()
    model_module = importlib.import_module("clap_module.model")
    context = int(cfg["text_cfg"]["context_length"])
    # Placeholder text branch (laion_clap's "roberta" type would download
    # roberta-base); replaced below.
    placeholder = {
        "model_type": "transformer",
        "context_length": context,
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
        if cfg.get("htsat"):
            original = model_module.create_htsat_model
            model_module.create_htsat_model = _custom_htsat_factory(cfg["htsat"])
            try:
                clap = model_module.CLAP(**kwargs)
            finally:
                model_module.create_htsat_model = original
        else:
            clap = model_module.CLAP(**kwargs)

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
        context_length=context,
        vocab_size=roberta.vocab_size,
        width=roberta.hidden_size,
        heads=roberta.num_attention_heads,
        layers=roberta.num_hidden_layers,
        model_type="roberta",
    )
    return clap


def _read_state_dict(path):
    """State dict of a laion_clap checkpoint file (weights_only, no prefixes)."""
    path = os.fspath(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise CLAPWeightsUnavailableError(
            f"CLAP checkpoint file not found: {path}"
        ) from e
    except Exception as e:
        raise ValueError(
            f"cannot read the CLAP checkpoint {path!r} with "
            f"torch.load(weights_only=True) (not a torch file, or it holds "
            f"objects other than tensors and plain containers): {e}"
        ) from e
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, dict) or not all(
        isinstance(v, torch.Tensor) for v in checkpoint.values()
    ):
        raise ValueError(
            f"{path!r} is not a CLAP checkpoint: expected a state dict or a "
            "dict with a 'state_dict' entry"
        )
    # DistributedDataParallel prefixes ("module.") as in laion_clap's files.
    return {
        (k[len("module.") :] if k.startswith("module.") else k): v
        for k, v in checkpoint.items()
    }


def load_clap_checkpoint(clap, path):
    """Loads a laion_clap checkpoint file into a CLAP, with strict keys.

    Accepts laion_clap's format (``{"state_dict": {"module.<name>": ...},
    ...}``) and a bare state dict. The obsolete RoBERTa buffers
    ``position_ids`` / ``token_type_ids`` of old transformers versions are
    dropped (as laion_clap does); any other missing or unexpected key is an
    error.

    Arguments
    ---------
    clap : torch.nn.Module
        A CLAP from :func:`create_clap`.
    path : str or os.PathLike
        Checkpoint file.

    Returns
    -------
    torch.nn.Module
        ``clap``.
    """
    state = _read_state_dict(path)
    expected = clap.state_dict()
    for key in _OBSOLETE_KEYS:
        if key in state and key not in expected:
            del state[key]
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"the CLAP checkpoint {os.fspath(path)!r} does not match the model "
            f"config: {len(missing)} missing keys {missing[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]} (a fusion "
            "checkpoint? HTSAT-tiny checkpoints (630k-*) need "
            "laion_clap_cfg('HTSAT-tiny'), the music ones HTSAT-base)"
        )
    mismatched = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if state[k].shape != v.shape
    ]
    if mismatched:
        raise ValueError(
            f"the CLAP checkpoint {os.fspath(path)!r} does not match the model "
            f"config, shapes differ (checkpoint vs model): {mismatched[:5]}"
        )
    clap.load_state_dict(state, strict=True)
    return clap


# --------------------------------------------------------------- tokenizer
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
    """
    from transformers import AutoTokenizer

    source = os.fspath(source)
    local = os.path.isdir(source)
    looks_like_path = (
        os.path.isabs(source) or source.startswith((".", "~")) or source.count("/") > 1
    )
    if not local and looks_like_path:
        raise CLAPWeightsUnavailableError(f"tokenizer folder not found: {source}")
    try:
        return AutoTokenizer.from_pretrained(source, cache_dir=cache_dir)
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
    """
    out = tokenizer(
        list(texts),
        padding="max_length",
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    return {"input_ids": out["input_ids"], "attention_mask": out["attention_mask"]}


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
    from transformers import RobertaTokenizerFast

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
        # transformers >= 5 takes vocab/merges, older versions *_file
        params = inspect.signature(RobertaTokenizerFast.__init__).parameters
        if "vocab" in params:
            tokenizer = RobertaTokenizerFast(vocab=vocab, merges=merges)
        else:
            tokenizer = RobertaTokenizerFast(vocab_file=vocab, merges_file=merges)
        tokenizer.model_max_length = TOKENIZER_MAX_LENGTH
        tokenizer.save_pretrained(str(folder))
    return folder


# -------------------------------------------------------------------- audio
def clap_audio_input(waveforms, sample_rate, audio_cfg, crop="center"):
    """Waveforms ready for the HTSAT: resampled, cropped or repeat-padded.

    laion_clap's preprocessing for models without fusion
    (``get_audio_features`` with "rand_trunc" and "repeatpad"): a clip
    longer than ``clip_samples`` (10 s) is cropped to it (see ``crop``); a
    shorter one is repeated ``int(clip_samples / length)`` times, then
    zero-padded.

    Arguments
    ---------
    waveforms : torch.Tensor or list
        ``[N, L]`` or ``[L]`` tensor, or a list of 1-D tensors / arrays of
        any lengths.
    sample_rate : int
        Sample rate of ``waveforms``; resampled to ``audio_cfg["sample_rate"]``.
    audio_cfg : dict
        The CLAP's ``audio_cfg`` (``sample_rate``, ``clip_samples``).
    crop : str
        One of :data:`CROP_MODES`.

    Returns
    -------
    torch.Tensor
        ``[N, clip_samples]`` float32.

    Example
    -------
    >>> cfg = TINY_CLAP_CFG["audio_cfg"]
    >>> x = clap_audio_input(torch.ones(2, 144000), 48000, cfg)  # 3 s
    >>> x.shape, x[0, 3 * 144000 - 1].item(), x[0, 3 * 144000].item()
    (torch.Size([2, 480000]), 1.0, 0.0)
    >>> clap_audio_input(torch.randn(16000), 16000, cfg).shape  # resampled
    torch.Size([1, 480000])
    >>> clap_audio_input([torch.arange(720000.0)], 48000, cfg)[0, 0].item()
    120000.0
    """
    import torchaudio

    if crop not in CROP_MODES:
        raise ValueError(f"crop must be one of {CROP_MODES}, got {crop!r}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int):
        if not (isinstance(sample_rate, float) and sample_rate.is_integer()):
            raise TypeError(f"sample_rate must be an int, got {sample_rate!r}")
        sample_rate = int(sample_rate)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if isinstance(waveforms, torch.Tensor):
        if waveforms.dim() == 1:
            waveforms = waveforms[None]
        if waveforms.dim() != 2:
            raise ValueError(
                f"audio tensor has shape {tuple(waveforms.shape)}; expected [N, L] "
                "(mono waveforms) or [L]"
            )
        items = list(waveforms)
    elif isinstance(waveforms, (list, tuple)):
        items = [torch.as_tensor(w) for w in waveforms]
    else:
        raise TypeError(
            f"waveforms must be a tensor or a list of waveforms, got {type(waveforms)}"
        )
    if not items:
        raise ValueError("empty audio batch")
    target_rate = int(audio_cfg["sample_rate"])
    max_len = int(audio_cfg["clip_samples"])
    out = []
    for i, wav in enumerate(items):
        if wav.dim() != 1:
            raise ValueError(
                f"audio item {i} has shape {tuple(wav.shape)}; expected a mono "
                "waveform [L]"
            )
        if wav.numel() == 0:
            raise ValueError(f"audio item {i} is empty (0 samples)")
        wav = wav.float()
        if not torch.isfinite(wav).all():
            raise ValueError(f"audio item {i} contains NaN or infinite samples")
        if sample_rate != target_rate:
            wav = torchaudio.functional.resample(wav, sample_rate, target_rate)
        length = wav.shape[0]
        if length > max_len:
            if crop == "center":
                start = (length - max_len) // 2
            elif crop == "start":
                start = 0
            else:
                start = int(torch.randint(length - max_len + 1, ()).item())
            wav = wav[start : start + max_len]
        elif length < max_len:
            wav = wav.repeat(max_len // length)
            wav = F.pad(wav, (0, max_len - wav.shape[0]))
        out.append(wav)
    return torch.stack(out)


# --------------------------------------------------------------- save/load
def save_clap_dir(path, clap, model_cfg, tokenizer):
    """Writes a CLAP folder that :class:`CLAPQueryEncoder` loads.

    The folder holds ``clap_config.json`` (``{"model_cfg": ...}``),
    ``clap_model.pt`` (the state dict of laion_clap's ``CLAP``, no
    prefixes: it also loads with :func:`load_clap_checkpoint`) and the
    tokenizer files (``tokenizer.save_pretrained``).

    Arguments
    ---------
    path : str or os.PathLike
        Folder to write (created if needed).
    clap : torch.nn.Module
        The CLAP (e.g. ``encoder.clap`` or a trained one).
    model_cfg : dict
        Its config.
    tokenizer : transformers.PreTrainedTokenizerBase
        Its tokenizer.

    Returns
    -------
    pathlib.Path
        The folder.
    """
    cfg = check_clap_cfg(model_cfg)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with open(path / _CONFIG_FILE, "w", encoding="utf-8") as f:
        json.dump({"model_cfg": cfg}, f, indent=2)
    state = {k: v.detach().cpu() for k, v in clap.state_dict().items()}
    torch.save(state, path / _WEIGHTS_FILE)
    tokenizer.save_pretrained(str(path))
    return path


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


def _hub_download(repo_id, filename, cache_dir):
    """``hf_hub_download`` with a clear error when it cannot get the file."""
    import huggingface_hub
    from huggingface_hub import errors

    try:
        return huggingface_hub.hf_hub_download(repo_id, filename, cache_dir=cache_dir)
    except (
        errors.RepositoryNotFoundError,
        errors.RevisionNotFoundError,
    ) as e:
        raise CLAPWeightsUnavailableError(
            f"cannot get {filename!r} of the hub repository {repo_id!r}: {e}"
        ) from e
    except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled, OSError) as e:
        offline = huggingface_hub.constants.HF_HUB_OFFLINE
        raise CLAPWeightsUnavailableError(
            f"cannot get the CLAP file {filename!r} of the hub repository "
            f"{repo_id!r}: it is not in the Hugging Face cache "
            f"({cache_dir or 'default cache'}) and "
            + (
                "HF_HUB_OFFLINE is set"
                if offline
                else "could not be downloaded (offline? no such file?)"
            )
            + ". Download it once with network access (same cache_dir), e.g. "
            f"`huggingface-cli download {repo_id} {filename}`, or give a local "
            f"checkpoint file or folder as source=<path>. Cause: {e}"
        ) from e
    except errors.EntryNotFoundError as e:
        raise CLAPWeightsUnavailableError(
            f"the hub repository {repo_id!r} has no file {filename!r}: {e}"
        ) from e


def _hub_snapshot(repo_id, cache_dir):
    """``snapshot_download`` of a CLAP folder repo, with a clear error."""
    import huggingface_hub

    try:
        return huggingface_hub.snapshot_download(repo_id, cache_dir=cache_dir)
    except Exception as e:
        raise CLAPWeightsUnavailableError(
            f"cannot get the CLAP folder of the hub repository {repo_id!r}: it is "
            f"not in the Hugging Face cache ({cache_dir or 'default cache'}) and "
            "could not be downloaded (offline? HF_HUB_OFFLINE="
            f"{os.environ.get('HF_HUB_OFFLINE', '')!r}). Cause: {e}"
        ) from e


def _resolve_source(source, model_cfg, tokenizer, cache_dir):
    """``(weights file or None, model_cfg, tokenizer source)`` of a source."""
    if source is None:
        if not model_cfg:
            raise ValueError("source=None (random weights) needs a model_cfg")
        return None, model_cfg, tokenizer

    source = os.fspath(source)
    if source.startswith(_HUB_PREFIX):
        parts = source[len(_HUB_PREFIX) :].strip("/").split("/")
        if len(parts) == 2:
            source = _hub_snapshot("/".join(parts), cache_dir)
        elif len(parts) >= 3:
            repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:])
            path = _hub_download(repo_id, filename, cache_dir)
            amodel = LAION_CLAP_CHECKPOINTS.get(os.path.basename(filename))
            return path, model_cfg or laion_clap_cfg(amodel or "HTSAT-base"), tokenizer
        else:
            raise ValueError(
                f"invalid hub source {source!r}: use 'hf-hub:<org>/<repo>' (a CLAP "
                "folder) or 'hf-hub:<org>/<repo>/<checkpoint file>'"
            )

    if os.path.isdir(source):
        config_path = Path(source) / _CONFIG_FILE
        weights = Path(source) / _WEIGHTS_FILE
        for needed in (config_path, weights):
            if not needed.is_file():
                raise CLAPWeightsUnavailableError(
                    f"the CLAP folder {source!r} has no {needed.name} (write it with "
                    "CLAPQueryEncoder.save_pretrained_dir or save_local_clap)"
                )
        if model_cfg:
            raise ValueError(
                f"source {source!r} is a CLAP folder, which holds its own config: "
                "do not give model_cfg"
            )
        with open(config_path, encoding="utf-8") as f:
            model_cfg = json.load(f)["model_cfg"]
        return str(weights), model_cfg, tokenizer or source

    if os.path.isfile(source):
        amodel = LAION_CLAP_CHECKPOINTS.get(os.path.basename(source))
        return source, model_cfg or laion_clap_cfg(amodel or "HTSAT-base"), tokenizer

    if source in LAION_CLAP_CHECKPOINTS:
        path = _hub_download(LAION_CLAP_REPO, source, cache_dir)
        return (
            path,
            model_cfg or laion_clap_cfg(LAION_CLAP_CHECKPOINTS[source]),
            tokenizer,
        )

    raise CLAPWeightsUnavailableError(
        f"CLAP source {source!r} is neither an existing checkpoint file or CLAP "
        f"folder, nor a checkpoint of {LAION_CLAP_REPO} "
        f"({sorted(LAION_CLAP_CHECKPOINTS)}), nor 'hf-hub:<org>/<repo>[/<file>]'"
    )


def _default_tokenizer(cfg):
    """'roberta-base' for a roberta-base text model; otherwise an error."""
    if cfg["roberta"].get("vocab_size") == ROBERTA_BASE_CONFIG["vocab_size"]:
        return "roberta-base"
    raise ValueError(
        "this CLAP's text model is not roberta-base: give its tokenizer as "
        "tokenizer=<folder> (see build_tiny_tokenizer)"
    )


# ----------------------------------------------------------------- encoder
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
        if crop not in CROP_MODES:
            raise ValueError(f"crop must be one of {CROP_MODES}, got {crop!r}")
        if template is not None:
            check_template(template)
        self.source = None if source is None else os.fspath(source)
        self.crop = crop
        self.template = template

        # Files first (download or cache look-up), so that a missing file is
        # reported before a large model is built.
        weights, cfg, tokenizer = _resolve_source(
            source, model_cfg or None, tokenizer, cache_dir
        )
        cfg = check_clap_cfg(cfg)
        if tokenizer is None:
            tokenizer = _default_tokenizer(cfg)
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
        audio = self.preprocess_audio(waveforms, sample_rate)
        audio = audio.to(device=self.device, dtype=self.dtype)
        with torch.no_grad():
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
