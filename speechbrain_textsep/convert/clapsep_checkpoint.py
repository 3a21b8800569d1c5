"""Import of the authors' CLAPSep checkpoint (Aisaka0v0/CLAPSep).

The authors train a PyTorch Lightning module (``model/CLAPSep.py``,
``LightningModule``) whose checkpoint holds ``state_dict`` with three
sub-modules: ``clap_model`` (the whole frozen LAION-CLAP ``CLAP_Module``,
used for the query embeddings), ``audio_branch`` (a deep copy of the CLAP's
HTSAT where loralib ``lora.Linear`` layers, rank 16 and ``lora_alpha`` 1,
replace the ``qkv`` and ``proj`` linear layers of every window attention;
``mark_only_lora_as_trainable(bias="lora_only")`` trains their LoRA matrices
and biases only) and ``decoder_model`` (``HTSAT_Decoder``: FiLM, Swin
decoder and MaskNet, all trained), plus the fixed torchlibrosa STFT bases
``stft.*`` and ``istft.*``. :func:`import_clapsep_checkpoint` maps the
trained part onto :meth:`CLAPSep.trainable_state_dict` and writes a model
folder with the package's one writer
(:mod:`speechbrain_textsep.inference.model_folder`: ``hyperparams.yaml``,
``clapsep.ckpt``, ``clap/`` for a CLAP not fetchable by name, a model card).

Their ``HTSAT_Decoder`` builds its ``layers`` and ``skip`` lists finest
level first, then reverses them (``self.layers[::-1]``, which re-indexes a
``ModuleList``): with ``n`` levels (4), their index ``j`` is our level
``i = n - 1 - j`` (0 = finest, 64x64 tokens). A ``*`` is the rest of the
key, unchanged (``weight``, ``bias``, BatchNorm statistics, the Swin blocks'
``attn.*``, ``mlp.*``, ``norm1/2.*`` and their ``relative_position_*``):

With ``AB`` = ``audio_branch.``, ``DM`` = ``decoder_model.`` (theirs)
and ``<A>`` = ``layers.l.blocks.k.attn.{qkv,proj}``:

=========================================  ======================================
Aisaka0v0/CLAPSep key (``state_dict``)     speechbrain-textsep ``CLAPSep`` key
=========================================  ======================================
``AB<A>.lora_A``                           ``encoder.<A>.adapter_down_proj.weight``
``AB<A>.lora_B``                           ``encoder.<A>.adapter_up_proj.weight``
``AB<A>.bias``                             ``encoder.<A>.pretrained_module.bias``
``AB<A>.weight`` (frozen)                  checked: ``encoder.<A>.pretrained_module``
``AB{patch_embed,bn0,layers}.*`` (frozen)  checked: ``encoder.*``
``AB{spectrogram,logmel}_extractor.*``     checked: ``encoder.{spectrogram,logmel}.*``
``AB{norm,tscam_conv,head}.*``             ignored (HTSAT classifier, unused)
``DMfilm.feature_proj.*``                  ``decoder.bottleneck.proj.*``
``DMfilm.skip_conv.{gamma,beta}.*``        ``decoder.bottleneck.film.{gamma,beta}.*``
``DMfilm.norm.*``                          ``decoder.bottleneck.norm.*``
``DMskip.j.feature_proj.*``                ``decoder.skips.i.proj.*``
``DMskip.j.skip_conv.*``                   ``decoder.skips.i.film.*``
``DMskip.j.norm.*``                        ``decoder.skips.i.norm.*``
``DMlayers.j.blocks.k.*``                  ``decoder.blocks.i.k.*``
``DMlayers.j.downsample.*`` (j >= 1)       ``decoder.expands.i.*``
``DMinverse_patch_embed.norm.*``           ``decoder.out_norm.*``
``DMinverse_patch_embed.proj.*``           ``decoder.inverse_patch_embed.*``
``DMspec_norm.*`` (BatchNorm2d)            ``mask_net.spec_norm.*`` (BatchNorm1d)
``DMmask_net.0.*``                         ``mask_net.input_proj.*``
``DMmask_net.1.*``                         ``mask_net.input_norm.*``
``DMmask_net.2.layers.k.*``                ``mask_net.transformer.layers.k.*``
``DMmask_net.3.*``                         ``mask_net.output_proj.*``
``clap_model.*``                           ignored (the frozen query CLAP)
``stft.*``, ``istft.*``                    ignored (fixed STFT bases)
=========================================  ======================================

Any other key (e.g.
the ``phase_net`` or convolutional MaskNet of their unused variants) is an
error listing it; a trained key of our model that the checkpoint lacks is an
error listing it. A plain state dict of the same keys (e.g. saved by their
commented-out ``on_save_checkpoint``, which keeps only ``lora``,
``attn.qkv.bias``, ``attn.proj.bias`` and ``decoder_model`` keys) is
accepted too; then the frozen weights cannot be checked.

The configuration (decoder width, depths, heads and window, MaskNet width,
layers and feed-forward size, LoRA rank) is read from the tensor shapes;
the MaskNet heads (8) and ``lora_alpha`` (1) are fixed in their code. The
frozen audio-branch weights in the checkpoint are compared with the CLAP
given by ``clap_source`` (``verify_frozen``): a difference means the model
was trained on another CLAP checkpoint.

Known differences outside the weights (see :class:`CLAPSep` and
:mod:`speechbrain_textsep.evaluation.clapsep`): the condition is
L2-normalised at inference too (their test code forgets it), and no
SpecAugment runs on audio queries at inference (their forward hook on the
query CLAP stays on).

Authors
 * speechbrain-textsep contributors
"""

import json
import math
import os
import re
import shutil

import torch

from speechbrain_textsep.convert.clipsep_checkpoint import CheckpointImportError
from speechbrain_textsep.inference.folder_layout import (
    CLAP_SUBFOLDER,
    clap_reference,
)
from speechbrain_textsep.inference.model_folder import write_model_folder

__all__ = [
    "CheckpointImportError",
    "build_imported_model",
    "clapsep_config_from_state",
    "import_clapsep_checkpoint",
    "load_clapsep_checkpoint_state",
    "map_clapsep_state_dict",
    "verify_frozen_weights",
    "write_imported_folder",
]

ENCODER_PREFIX = "audio_branch."
DECODER_PREFIX = "decoder_model."
#: Prefixes of the checkpoint that hold nothing to import.
IGNORED_PREFIXES = ("clap_model.", "stft.", "istft.")
#: HTSAT classifier parts of the audio-branch copy, unused by CLAPSep.
UNUSED_ENCODER_PREFIXES = ("norm.", "tscam_conv.", "head.")
#: Their front-end module names -> ours (:class:`HTSATFeatures`).
ENCODER_RENAMES = {
    "spectrogram_extractor.": "spectrogram.",
    "logmel_extractor.": "logmel.",
}
#: MaskNet heads (hard-coded ``nhead=8`` in their decoder).
AUTHORS_MASKNET_HEADS = 8
#: loralib's default ``lora_alpha`` (their ``process_model`` keeps it).
AUTHORS_LORA_ALPHA = 1.0
CHECKPOINT_FILE = "clapsep.ckpt"
REPORT_FILE = "import_report.json"
_MAX_LISTED = 20

_LORA = re.compile(
    r"(layers\.\d+\.blocks\.\d+\.attn\.(?:qkv|proj))\.(lora_A|lora_B|bias|weight)"
)
_DECODER_FIXED = {
    "film.feature_proj.": "decoder.bottleneck.proj.",
    "film.skip_conv.": "decoder.bottleneck.film.",
    "film.norm.": "decoder.bottleneck.norm.",
    "inverse_patch_embed.norm.": "decoder.out_norm.",
    "inverse_patch_embed.proj.": "decoder.inverse_patch_embed.",
    "spec_norm.": "mask_net.spec_norm.",
    "mask_net.0.": "mask_net.input_proj.",
    "mask_net.1.": "mask_net.input_norm.",
    "mask_net.2.layers.": "mask_net.transformer.layers.",
    "mask_net.3.": "mask_net.output_proj.",
}
_SKIP_PARTS = {"feature_proj": "proj", "skip_conv": "film", "norm": "norm"}


def _listing(keys):
    """Sorted keys for an error message (the first ``_MAX_LISTED``)."""
    keys = sorted(keys)
    shown = ", ".join(keys[:_MAX_LISTED])
    if len(keys) > _MAX_LISTED:
        shown += f", ... ({len(keys) - _MAX_LISTED} more)"
    return shown


def load_clapsep_checkpoint_state(checkpoint, trust_checkpoint=False):
    """Reads the state dict (and Lightning metadata) of the authors' checkpoint.

    Arguments
    ---------
    checkpoint : str or os.PathLike
        A Lightning ``.ckpt`` (``{"state_dict": ..., "epoch": ...}``) or a
        plain state dict.
    trust_checkpoint : bool
        Lightning checkpoints may pickle non-tensor objects (hyperparameters,
        callback states) that ``torch.load(weights_only=True)`` refuses. Only
        for a file you trust, ``True`` loads it with ``weights_only=False``,
        which can run arbitrary code from the file.

    Returns
    -------
    state : dict
        ``{key: tensor}`` (a DDP ``module.`` prefix removed).
    meta : dict
        ``epoch``, ``global_step`` and ``pytorch-lightning_version`` when
        present.

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "last.ckpt")
    >>> torch.save({"epoch": 3, "state_dict": {"stft.w": torch.zeros(1)}}, path)
    >>> load_clapsep_checkpoint_state(path)
    ({'stft.w': tensor([0.])}, {'epoch': 3})
    """
    checkpoint = os.fspath(checkpoint)
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
    try:
        loaded = torch.load(
            checkpoint, map_location="cpu", weights_only=not trust_checkpoint
        )
    except Exception as e:
        if trust_checkpoint:
            raise CheckpointImportError(f"cannot load {checkpoint}: {e}") from e
        raise CheckpointImportError(
            f"cannot load {checkpoint} with torch.load(weights_only=True): {e}. "
            "Lightning checkpoints can hold pickled non-tensor objects; if you "
            "trust this file, pass trust_checkpoint=True (--trust-checkpoint) "
            "to load it with weights_only=False, which can execute code stored "
            "in the file"
        ) from e
    meta = {}
    if isinstance(loaded, dict) and "state_dict" in loaded:
        meta = {
            key: loaded[key]
            for key in ("epoch", "global_step", "pytorch-lightning_version")
            if isinstance(loaded.get(key), (int, str))
        }
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not loaded:
        raise CheckpointImportError(
            f"{checkpoint} holds neither a Lightning checkpoint nor a non-empty "
            f"state dict (got {type(loaded).__name__})"
        )
    bad = [k for k, v in loaded.items() if not isinstance(v, torch.Tensor)]
    if bad or not all(isinstance(k, str) for k in loaded):
        raise CheckpointImportError(
            f"{checkpoint}: the state dict has non-tensor entries: "
            f"{_listing(map(str, bad))}"
        )
    if all(k.startswith("module.") for k in loaded):
        loaded = {k[len("module.") :]: v for k, v in loaded.items()}
    return dict(loaded), meta


def _decoder_key(rest, n_levels):
    """Our key of ``decoder_model.<rest>``, or None if unknown."""
    for theirs, ours in _DECODER_FIXED.items():
        if rest.startswith(theirs):
            return ours + rest[len(theirs) :]
    match = re.fullmatch(r"skip\.(\d+)\.(feature_proj|skip_conv|norm)\.(.+)", rest)
    if match:
        j, part, tail = int(match[1]), match[2], match[3]
        if j < n_levels:
            return f"decoder.skips.{n_levels - 1 - j}.{_SKIP_PARTS[part]}.{tail}"
        return None
    match = re.fullmatch(r"layers\.(\d+)\.blocks\.(\d+)\.(.+)", rest)
    if match and int(match[1]) < n_levels:
        return f"decoder.blocks.{n_levels - 1 - int(match[1])}.{match[2]}.{match[3]}"
    match = re.fullmatch(r"layers\.(\d+)\.downsample\.((?:expand|norm)\..+)", rest)
    if match and 1 <= int(match[1]) < n_levels:
        return f"decoder.expands.{n_levels - 1 - int(match[1])}.{match[2]}"
    return None


def _encoder_key(rest):
    """``(kind, our key)`` of ``audio_branch.<rest>``: kind is "trained",
    "frozen" (to check) or "unused"."""
    match = _LORA.fullmatch(rest)
    if match:
        layer, name = match[1], match[2]
        if name == "lora_A":
            return "trained", f"encoder.{layer}.adapter_down_proj.weight"
        if name == "lora_B":
            return "trained", f"encoder.{layer}.adapter_up_proj.weight"
        if name == "bias":
            return "trained", f"encoder.{layer}.pretrained_module.bias"
        return "frozen", f"encoder.{layer}.pretrained_module.weight"
    if rest.startswith(UNUSED_ENCODER_PREFIXES):
        return "unused", None
    for theirs, ours in ENCODER_RENAMES.items():
        if rest.startswith(theirs):
            return "frozen", "encoder." + ours + rest[len(theirs) :]
    return "frozen", "encoder." + rest


def map_clapsep_state_dict(state):
    """Splits and renames the authors' keys (see the module's table).

    Arguments
    ---------
    state : dict
        The authors' state dict (:func:`load_clapsep_checkpoint_state`).

    Returns
    -------
    trained : dict
        Our key -> tensor of the trained part.
    frozen : dict
        Our key -> tensor of the frozen audio-branch weights (to check).
    ignored : dict
        ``{"clap_model", "stft", "unused"}`` -> number of ignored keys.

    Example
    -------
    >>> state = {"decoder_model.skip.0.norm.weight": torch.ones(2),
    ...          "decoder_model.skip.1.norm.weight": torch.ones(2),
    ...          "audio_branch.layers.0.blocks.0.attn.qkv.lora_A": torch.ones(1),
    ...          "clap_model.model.logit_scale_a": torch.ones(())}
    >>> trained, frozen, ignored = map_clapsep_state_dict(state)
    >>> sorted(trained)  # doctest: +NORMALIZE_WHITESPACE
    ['decoder.skips.0.norm.weight', 'decoder.skips.1.norm.weight',
     'encoder.layers.0.blocks.0.attn.qkv.adapter_down_proj.weight']
    >>> ignored["clap_model"]
    1
    """
    skips = {
        int(m[1])
        for key in state
        if (m := re.match(re.escape(DECODER_PREFIX) + r"skip\.(\d+)\.", key))
    }
    n_levels = max(skips) + 1 if skips else 0
    trained, frozen, unknown = {}, {}, []
    ignored = {"clap_model": 0, "stft": 0, "unused": 0}
    for key, value in state.items():
        if key.startswith(IGNORED_PREFIXES):
            ignored["clap_model" if key.startswith("clap_model.") else "stft"] += 1
        elif key.startswith(ENCODER_PREFIX):
            kind, ours = _encoder_key(key[len(ENCODER_PREFIX) :])
            if kind == "trained":
                trained[ours] = value
            elif kind == "frozen":
                frozen[ours] = value
            else:
                ignored["unused"] += 1
        elif key.startswith(DECODER_PREFIX):
            ours = _decoder_key(key[len(DECODER_PREFIX) :], n_levels)
            if ours is None:
                unknown.append(key)
            else:
                trained[ours] = value
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointImportError(
            f"{len(unknown)} keys of the checkpoint are not part of the CLAPSep "
            "model this package implements (HTSAT_Decoder with phase=False, "
            f"conv=False): {_listing(unknown)}"
        )
    if not trained:
        raise CheckpointImportError(
            "the checkpoint has no audio_branch LoRA nor decoder_model keys: "
            "is it a CLAPSep checkpoint of Aisaka0v0/CLAPSep?"
        )
    return trained, frozen, ignored


def _count(keys, pattern):
    """Distinct values of the first group of ``pattern`` among ``keys``."""
    return len({m[1] for key in keys if (m := re.match(pattern, key))})


def clapsep_config_from_state(trained):
    """``CLAPSep`` keyword arguments read from the shapes of the trained state.

    Arguments
    ---------
    trained : dict
        Our keys -> tensors (:func:`map_clapsep_state_dict`).

    Returns
    -------
    dict
        ``condition_dim, n_fft, lora_rank, lora_alpha, decoder_dim,
        decoder_depths, decoder_heads, decoder_window, mlp_ratio,
        masknet_dim, masknet_heads, masknet_layers, masknet_ff``.
    """
    try:
        n_levels = _count(trained, r"decoder\.skips\.(\d+)\.")
        depths = [
            _count(trained, rf"decoder\.blocks\.{i}\.(\d+)\.") for i in range(n_levels)
        ]
        tables = [
            trained[f"decoder.blocks.{i}.0.attn.relative_position_bias_table"]
            for i in range(n_levels)
        ]
        side = math.isqrt(tables[0].shape[0])
        decoder_dim = int(trained["decoder.out_norm.weight"].shape[0])
        fc1 = trained["decoder.blocks.0.0.mlp.fc1.weight"]
        lora = [v for k, v in trained.items() if k.endswith("adapter_down_proj.weight")]
        config = {
            "condition_dim": int(
                trained["decoder.bottleneck.film.gamma.weight"].shape[1]
            ),
            "n_fft": 2 * (int(trained["mask_net.spec_norm.weight"].shape[0]) - 1),
            "lora_rank": int(lora[0].shape[0]) if lora else 0,
            "lora_alpha": AUTHORS_LORA_ALPHA,
            "decoder_dim": decoder_dim,
            "decoder_depths": depths,
            "decoder_heads": [int(t.shape[1]) for t in tables],
            "decoder_window": (side + 1) // 2,
            "mlp_ratio": fc1.shape[0] / decoder_dim,
            "masknet_dim": int(trained["mask_net.input_proj.weight"].shape[0]),
            "masknet_heads": AUTHORS_MASKNET_HEADS,
            "masknet_layers": _count(
                trained, r"mask_net\.transformer\.layers\.(\d+)\."
            ),
            "masknet_ff": int(
                trained["mask_net.transformer.layers.0.linear1.weight"].shape[0]
            ),
        }
    except (KeyError, IndexError) as e:
        raise CheckpointImportError(
            f"the checkpoint lacks a tensor needed to read the model size: {e}"
        ) from e
    return config


def build_imported_model(trained, config, query_encoder):
    """The CLAPSep of the checkpoint: built on the CLAP, trained part loaded.

    Arguments
    ---------
    trained : dict
        Our keys -> tensors of the trained part (:func:`map_clapsep_state_dict`).
    config : dict
        ``CLAPSep`` sizes (:func:`clapsep_config_from_state`).
    query_encoder : CLAPQueryEncoder
        The CLAP the model was trained with.

    Returns
    -------
    speechbrain_textsep.models.clapsep.CLAPSep
    """
    from speechbrain_textsep.models.clapsep import CLAPSep

    if config["condition_dim"] != 2 * query_encoder.embedding_dim:
        raise CheckpointImportError(
            f"the checkpoint's condition has {config['condition_dim']} values but "
            f"the CLAP embeddings have {query_encoder.embedding_dim} (expected "
            "2 x embedding size): wrong clap_source?"
        )
    model = CLAPSep(query_encoder.audio_branch, **config)
    expected = set(model.trained_keys())
    missing = sorted(expected - set(trained))
    unexpected = sorted(set(trained) - expected)
    if missing or unexpected:
        raise CheckpointImportError(
            "the checkpoint does not match the CLAPSep model built from it: "
            f"{len(missing)} trained keys missing ({_listing(missing)}); "
            f"{len(unexpected)} unexpected ({_listing(unexpected)}); "
            "was the CLAP (clap_source) the one it was trained with?"
        )
    try:
        model.load_trainable_state_dict(trained)
    except RuntimeError as e:
        raise CheckpointImportError(
            f"tensor shapes of the checkpoint do not fit the model: {e}"
        ) from e
    return model


def verify_frozen_weights(model, frozen, clap_source, atol=1e-6):
    """Compares the checkpoint's frozen audio-branch weights with the CLAP's.

    Arguments
    ---------
    model : CLAPSep
        The model built on the CLAP (:func:`build_imported_model`).
    frozen : dict
        Our keys -> the checkpoint's frozen tensors.
    clap_source : str
        The CLAP's name, for the message.
    atol : float
        Tolerance.

    Returns
    -------
    int
        Number of tensors checked.
    """
    ours = model.state_dict()
    absent, different = [], []
    for key, value in frozen.items():
        if key not in ours:
            absent.append(key)
            continue
        ref = ours[key]
        if ref.shape != value.shape or not torch.allclose(
            ref.double(), value.double(), atol=atol, rtol=0
        ):
            different.append(key)
    if absent or different:
        raise CheckpointImportError(
            "the frozen audio-branch weights of the checkpoint do not match "
            f"the CLAP {clap_source!r}: {len(different)} differ "
            f"({_listing(different)}), {len(absent)} unknown "
            f"({_listing(absent)}); give the CLAP it was trained with, or "
            "verify_frozen=False to import anyway"
        )
    return len(frozen)


def write_imported_folder(
    out_dir,
    model,
    config,
    query_encoder,
    checkpoint,
    template=None,
    clap_model_cfg=None,
    tokenizer=None,
):
    """Writes the model folder of the imported model (the package's one writer).

    The CLAP is named by its checkpoint name (with ``clap_model_cfg`` and
    ``tokenizer``) when it can be fetched by name, else saved in ``clap/``
    (:func:`~speechbrain_textsep.inference.folder_layout.clap_reference`).

    Arguments
    ---------
    out_dir : str
        The model folder.
    model : CLAPSep
        The imported model.
    config : dict
        Its sizes.
    query_encoder : CLAPQueryEncoder
        Its CLAP.
    checkpoint : str
        The authors' checkpoint (for the model card).
    template : str, optional
        Template instead of the shipped ``clapsep``.
    clap_model_cfg : dict, optional
        The CLAP architecture given for ``clap_source`` (None: its default).
    tokenizer : str, optional
        The CLAP tokenizer given for ``clap_source`` (None: its default).

    Returns
    -------
    str
        Path of the written ``clapsep.ckpt``.
    """
    source, in_folder = clap_reference(query_encoder.source)
    values = dict(config, clap_source=source, clap_in_folder=in_folder)
    if not in_folder:
        values["clap_model_cfg"] = dict(clap_model_cfg or {})
        values["clap_tokenizer"] = None if tokenizer is None else os.fspath(tokenizer)

    def write_clap(folder):
        if in_folder:
            target = os.path.join(folder, CLAP_SUBFOLDER)
            shutil.rmtree(target, ignore_errors=True)
            query_encoder.save_pretrained_dir(target)

    write_model_folder(
        out_dir,
        "clapsep",
        values,
        {"clapsep": model.trainable_state_dict()},
        title="CLAPSep imported from Aisaka0v0/CLAPSep",
        training=f"Converted from `{os.fspath(checkpoint)}`, a checkpoint of the "
        "authors' code (Aisaka0v0/CLAPSep); trained by them (see their paper).",
        template=template,
        write_files=write_clap,
    )
    return os.path.join(out_dir, CHECKPOINT_FILE)


def import_clapsep_checkpoint(
    checkpoint,
    out_dir,
    clap_source="music_audioset_epoch_15_esc_90.14.pt",
    clap_model_cfg=None,
    tokenizer=None,
    query_encoder=None,
    template=None,
    verify_frozen=True,
    trust_checkpoint=False,
    atol=1e-6,
):
    """Converts the authors' CLAPSep checkpoint into a model folder.

    Steps: :func:`load_clapsep_checkpoint_state`,
    :func:`map_clapsep_state_dict`, :func:`clapsep_config_from_state`,
    :func:`build_imported_model` (on the CLAP of ``clap_source``),
    :func:`verify_frozen_weights`, :func:`write_imported_folder`. The folder
    (``hyperparams.yaml``, ``clapsep.ckpt``: :meth:`CLAPSep.trainable_state_dict`,
    ``clap/`` for a CLAP that cannot be fetched by name, ``README.md``)
    loads with ``CLAPSepSeparator.from_hparams``; ``import_report.json``
    records the configuration, the Lightning epoch and step and the key
    counts.

    Arguments
    ---------
    checkpoint : str or os.PathLike
        Their Lightning checkpoint (``epoch=149-step=....ckpt``) or a state
        dict with the same keys.
    out_dir : str or os.PathLike
        Output folder (created).
    clap_source : str
        The CLAP the model was trained with (see
        :class:`~speechbrain_textsep.encoders.clap.CLAPQueryEncoder`).
    clap_model_cfg : dict or None
        CLAP architecture (None: the checkpoint's default).
    tokenizer : str or None
        CLAP tokenizer (see ``CLAPQueryEncoder``).
    query_encoder : CLAPQueryEncoder or None
        An already built CLAP (then ``clap_source``, ``clap_model_cfg`` and
        ``tokenizer`` are not used).
    template : str or None
        Inference template to use instead of the shipped ``clapsep``.
    verify_frozen : bool
        Compare the frozen audio-branch weights of the checkpoint with the
        CLAP's (an error if they differ by more than ``atol``).
    trust_checkpoint : bool
        See :func:`load_clapsep_checkpoint_state`.
    atol : float
        Tolerance of the frozen-weight check.

    Returns
    -------
    dict
        The report (also written as ``import_report.json``): ``checkpoint``
        (the path written), ``config``, ``lightning``, ``n_trained``,
        ``n_frozen_checked``, ``ignored``.
    """
    from speechbrain_textsep.encoders.clap import CLAPQueryEncoder

    state, meta = load_clapsep_checkpoint_state(checkpoint, trust_checkpoint)
    trained, frozen, ignored = map_clapsep_state_dict(state)
    config = clapsep_config_from_state(trained)
    given_encoder = query_encoder is not None
    if query_encoder is None:
        query_encoder = CLAPQueryEncoder(
            clap_source, model_cfg=clap_model_cfg, tokenizer=tokenizer
        )
    model = build_imported_model(trained, config, query_encoder)
    n_checked = 0
    if verify_frozen and frozen:
        n_checked = verify_frozen_weights(model, frozen, clap_source, atol)
    out_dir = os.fspath(out_dir)
    path = write_imported_folder(
        out_dir,
        model,
        config,
        query_encoder,
        checkpoint,
        template,
        clap_model_cfg=None if given_encoder else clap_model_cfg,
        tokenizer=None if given_encoder else tokenizer,
    )
    report = {
        "checkpoint": path,
        "source": os.fspath(checkpoint),
        "clap_source": query_encoder.source,
        "config": config,
        "lightning": meta,
        "n_trained": len(trained),
        "n_frozen_checked": n_checked,
        "frozen_verified": bool(verify_frozen and frozen),
        "ignored": ignored,
    }
    with open(os.path.join(out_dir, REPORT_FILE), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    return report
