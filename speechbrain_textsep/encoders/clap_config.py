"""Architecture configs, known checkpoints and defaults of the LAION-CLAP encoder.

A CLAP model config is a plain dict (it is written to ``clap_config.json`` in
a CLAP folder): ``embed_dim`` (HTSAT output width), ``audio_cfg``
(laion_clap's ``CLAPAudioCfp`` fields), ``text_cfg`` (``model_type:
roberta``), ``roberta`` (``RobertaConfig`` fields) and optionally
``joint_embed_shape``, ``mlp_act`` and ``htsat`` (a custom-size HTSAT, see
:data:`TINY_CLAP_CFG`). :func:`laion_clap_cfg` gives the config of laion_clap's
own models; :func:`check_clap_cfg` validates any config.

This module also names the checkpoints of the ``lukewys/laion_clap`` hub
repository (:data:`LAION_CLAP_CHECKPOINTS`), CLAPSep's default checkpoint
and text prompt, and the crop modes of the audio preprocessing.

Authors
 * speechbrain-textsep contributors
"""

import copy
import json
from pathlib import Path

from speechbrain_textsep.encoders.laion import clap_module
from speechbrain_textsep.utils.captions import CAPTION_TEMPLATE

__all__ = [
    "CROP_MODES",
    "DEFAULT_CHECKPOINT",
    "LAION_CLAP_CHECKPOINTS",
    "LAION_CLAP_REPO",
    "ROBERTA_BASE_CONFIG",
    "TEXT_TEMPLATE",
    "TINY_CLAP_CFG",
    "TOKENIZER_MAX_LENGTH",
    "check_clap_cfg",
    "laion_clap_cfg",
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

#: Text prompt of CLAPSep for class labels ("The sound of {label}"): the
#: package's caption template (:mod:`speechbrain_textsep.utils.captions`).
TEXT_TEMPLATE = CAPTION_TEMPLATE

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
#: :func:`~speechbrain_textsep.encoders.clap_tokenizer.build_tiny_tokenizer`
#: (at most ``vocab_size`` tokens). Set up for training from scratch in
#: minutes: no dropout nor stochastic depth, and a RoBERTa init std of 0.2
#: (with the default 0.02, the ``<s>`` state that laion_clap pools is the same
#: for every caption up to 1e-5 in cosine, and contrastive training does not
#: start).
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
# Hyperparameters of laion_clap's HTSAT_Swin_Transformer a config may set.
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
        A model config for
        :func:`~speechbrain_textsep.encoders.clap.create_clap`.

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


def _check_branch_types(cfg):
    """Refuses audio models other than HTSAT, fusion and non-RoBERTa text."""
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


def _check_htsat(cfg):
    """Checks the custom ``htsat`` entry, or the laion_clap HTSAT size."""
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
    elif cfg["audio_cfg"].get("model_name") not in _HTSAT_WIDTHS:
        raise ValueError(
            "audio_cfg model_name must be one of laion_clap's HTSAT sizes "
            f"{sorted(_HTSAT_WIDTHS)} (or give an 'htsat' entry), got "
            f"{cfg['audio_cfg'].get('model_name')!r}"
        )
    width = _htsat_width(cfg)
    if int(cfg["embed_dim"]) != width:
        raise ValueError(
            f"model_cfg embed_dim is {cfg['embed_dim']} but its HTSAT outputs "
            f"{width} features (patch width x 2**(levels - 1)); they must match"
        )


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
    >>> check_clap_cfg(TINY_CLAP_CFG)["text_cfg"]["context_length"]
    77
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
    _check_branch_types(cfg)
    cfg["text_cfg"].setdefault("context_length", TOKENIZER_MAX_LENGTH)
    _check_htsat(cfg)
    return cfg
