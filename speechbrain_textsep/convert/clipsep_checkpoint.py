"""Import of the authors' CLIPSep and CLIPSep-NIT checkpoints (sony/CLIPSep).

The authors' training script saves ``torch.save(model.state_dict())`` of a
``torch.nn.DataParallel`` model (every key starts with ``module.``) to
``checkpoints/best_model.pt``, and its command-line arguments to
``train-args.json``. :func:`import_clipsep_checkpoint` turns that pair into a
model folder for :meth:`speechbrain_textsep.inference.QuerySeparator.from_hparams`.

The checkpoint holds no CLIP weights: the authors load OpenAI's CLIP
ViT-B/32 (``clip.load("ViT-B/32")``), which is open_clip's ``ViT-B-32`` with
``pretrained="openai"``; the folder names it and open_clip fetches it.

Their model (``image_model`` "clip" with ``fusion`` "late": class
``CLIPSep``; "clipsepnit", formerly "clippit4": class ``CLIPPITSepV4``) has a
recursive U-Net ``sound_net`` (``bn0``, then nested ``unet_block`` modules
whose layers sit in one ``nn.Sequential`` called ``model``), the query projection
``frame_net``, the map combination ``synth_net`` and, for NIT, the noise heads
``pit_nets``. With ``B0 = sound_net.unet_block.model``,
``B1 = B0 + ".1.model"`` and ``Bi = B(i-1) + ".3.model"`` the block of U-Net
level ``i`` (0 outermost, ``L - 1`` innermost), the keys map as follows (a
``*`` of a BatchNorm is ``weight``, ``bias``, ``running_mean``,
``running_var``, ``num_batches_tracked``):

==========================================  =================================
sony/CLIPSep key (``module.`` stripped)     speechbrain-textsep ``CLIPSep`` key
==========================================  =================================
``sound_net.bn0.*``                         ``unet.input_norm.*``
``B0.0.weight`` (level 0 down conv)         ``unet.down.0.weight``
``B0.4.weight``, ``B0.4.bias`` (last conv)  ``unet.up.0.2.weight``, ``.bias``
``Bi.1.weight`` (down conv, 0 < i < L-1)    ``unet.down.i.1.weight``
``Bi.2.*`` (down BatchNorm)                 ``unet.down.i.2.*``
``Bi.6.weight`` (up conv)                   ``unet.up.i.2.weight``
``Bi.7.*`` (up BatchNorm)                   ``unet.up.i.3.*``
``B(L-1).1.weight`` (innermost down conv)   ``unet.down.(L-1).1.weight``
``B(L-1).4.weight`` (innermost up conv)     ``unet.up.(L-1).2.weight``
``B(L-1).5.*`` (innermost up BatchNorm)     ``unet.up.(L-1).3.*``
``frame_net.weight``, ``frame_net.bias``    ``query_proj.weight``, ``.bias``
``synth_net.scale``                         ``map_scale``
``synth_net.bias``                          ``map_bias``
``pit_nets.{0,1}.weight``, ``.bias`` (NIT)  dropped: training only
==========================================  =================================

Every other key, or a missing one, is an error (``num_batches_tracked`` may be
absent: inference does not use it). Sizes come from the weights (the authors'
``ngf`` is fixed to 64 in code, not in ``train-args.json``) and are checked
against ``channels`` and ``layers`` of ``train-args.json``; the STFT settings
(``n_fft``, ``hop_len``, ``win_len``) and ``audio_rate`` are copied.

Same numbers, different code (verified on re-implementations of their
modules in ``tests/test_import_clipsep.py``):

- Their down blocks start with an in-place ``LeakyReLU``, so the skip they
  concatenate is ``LeakyReLU(x)``; every decoder level starts with a ``ReLU``
  and ``ReLU(LeakyReLU(x)) = ReLU(x)``, so the plain skip of
  :class:`~speechbrain_textsep.models.unet.AudioUNet` gives the same output.
- They add 1e-10 to the magnitude before the warp, we after it: the warp
  interpolates with weights that sum to one (to float32 rounding), so it is
  the same.
- Their warp always has 256 rows (hard-coded), hence ``n_warped: 256``.

Their front end, reproduced by the folder's settings (see
:mod:`speechbrain_textsep.processing.spectral`): ``pad_mode: constant``
(``librosa.stft`` pads with zeros, ``torch.stft`` by reflection),
``warp_grid: float32_grid_sample`` (their ``grid_sample`` on a float32
grid, whose time axis lets neighbouring frames leak in) and ``stft_dtype:
float64`` (numpy's FFT). Measured against their code (sony/CLIPSep 22b6f91,
librosa 0.9.2, on the CPU) with random weights, CLIPSep and CLIPSep-NIT, 5
levels / 8 maps and 7 levels / 32 maps, on two 65535-sample mixtures (their
demo clip with noise or a harmonic tone): their ``evaluate.py`` soft-mask
path (``--no-binary``, ``--no-pit``) and the imported folder agree to
6.1e-6 in the masks and 7.5e-7 in the waveforms (peaks 0.33 to 0.5). With
the earlier front end (reflect padding, exact warp, float32 FFT) the masks
differed by up to 0.15 and the waveforms by up to 0.073; with only the warp
exact, 1.9e-5 (masks); with only a float32 FFT, 2.5e-4 (masks: ~5e-3 in
log-magnitude at bins 120 dB below the loudest one).

Differences that remain by design (same measurements, waveform differences
over their output):

- Length: their ``infer.py`` (without ``-a``) tiles the input to the next
  multiple of 65535 samples beyond its length (a 65535-sample file becomes
  131070) and separates it in one pass; this package zero-pads to a multiple
  of ``2 ** levels`` frames and separates in 10 s windows. 65535 samples: up
  to 0.18; 3 s: up to 0.17. With ``-a 65535`` on a 65535-sample file their
  ``infer.py`` gives the ``evaluate.py`` numbers (8.8e-7). Their ``istft``
  returns ``(T - 1) * hop`` samples (65280 of 65535); ours the input length.
- Queries: text queries go through the 4-prompt ensemble of their
  ``evaluate.py`` (``--prompt_ens``, the default); their ``infer.py`` embeds
  the raw text, which ``Query(text, prompt_ensemble=False)`` does. The size
  depends on OpenAI's CLIP weights, which cannot be fetched here: not
  measured. Their CLIP runs in float16 on the GPU (``clip.load`` on CUDA).
- Noise heads: dropped. For CLIPSep-NIT their ``evaluate.py`` (``--pit``,
  the default) masks with ``min(1, query mask + mask of noise head 0)``;
  the imported model gives the query mask (their ``--no-pit``): the masks
  differ by up to 0.97 and the waveforms by up to 0.30.
- Masks and output: their ``infer.py`` binarises the mask (threshold 0.5)
  by default for models trained with binary masks (for CLIPSep-NIT,
  ``--no-binary`` skips the sigmoid too); their evaluation and this package
  use the soft mask. They clip the output to [-1, 1]; this package does not.

Authors
 * speechbrain-textsep contributors
"""

import json
import os

import torch

from speechbrain_textsep.inference.model_folder import write_model_folder
from speechbrain_textsep.models.clipsep import CLIPSep
from speechbrain_textsep.models.unet import AudioUNet

__all__ = [
    "AUTHORS_CLIP",
    "CheckpointImportError",
    "clipsep_key_map",
    "import_clipsep_checkpoint",
    "load_authors_state_dict",
    "map_authors_state_dict",
    "read_train_args",
]

#: The authors' query encoder (``clip.load("ViT-B/32")``) in open_clip terms.
AUTHORS_CLIP = {"clip_model": "ViT-B-32", "clip_pretrained": "openai"}
#: Size of OpenAI's ViT-B/32 embeddings (the authors' ``nn.Linear(512, ...)``).
AUTHORS_QUERY_DIM = 512
#: Rows of the log-frequency spectrogram (hard-coded in the authors' code).
AUTHORS_N_WARPED = 256
#: Their front end (see ``processing/spectral.py``): ``librosa.stft`` pads with
#: zeros and runs numpy's float64 FFT; the warp is ``grid_sample`` on a float32 grid.
AUTHORS_FRONT_END = {
    "pad_mode": "constant",
    "warp_grid": "float32_grid_sample",
    "stft_dtype": "float64",
}
#: ``image_model`` values of ``train-args.json`` that can be imported.
SUPPORTED_IMAGE_MODELS = {
    "clip": "CLIPSep",
    "clipsepnit": "CLIPSep-NIT",
    "clippit4": "CLIPSep-NIT",  # earlier name of clipsepnit in their code
}
#: Prefix of the NIT noise heads, dropped (they are used by the training loss).
NOISE_HEAD_PREFIX = "pit_nets."
DATA_PARALLEL_PREFIX = "module."
OPTIONAL_SUFFIX = ".num_batches_tracked"
BATCHNORM_SUFFIXES = (
    "weight",
    "bias",
    "running_mean",
    "running_var",
    "num_batches_tracked",
)
_FIRST_CONV = "sound_net.unet_block.model.0.weight"
_MAX_LISTED = 30


class CheckpointImportError(ValueError):
    """The checkpoint or ``train-args.json`` cannot be imported (says why)."""


def _listing(keys):
    """Sorted keys for an error message, the first ``_MAX_LISTED`` of them."""
    keys = sorted(keys)
    shown = ", ".join(keys[:_MAX_LISTED])
    if len(keys) > _MAX_LISTED:
        shown += f", ... ({len(keys) - _MAX_LISTED} more)"
    return shown


def _block_prefix(level):
    """Prefix of the ``nn.Sequential`` of U-Net level ``level`` in their keys."""
    prefix = "sound_net.unet_block.model"
    if level >= 1:
        prefix += ".1.model"
    return prefix + ".3.model" * max(level - 1, 0)


def clipsep_key_map(levels):
    """Maps the authors' CLIPSep keys to the keys of our ``CLIPSep``.

    Arguments
    ---------
    levels : int
        Down-sampling levels of the U-Net (7 in the paper).

    Returns
    -------
    dict
        ``{their key: our key}`` without the ``module.`` prefix and without
        the NIT noise heads (which are dropped).

    Example
    -------
    >>> mapping = clipsep_key_map(levels=7)
    >>> mapping["sound_net.unet_block.model.4.bias"]
    'unet.up.0.2.bias'
    >>> mapping["sound_net.unet_block.model.1.model.3.model.2.running_var"]
    'unet.down.2.2.running_var'
    >>> mapping["synth_net.scale"], mapping["frame_net.weight"]
    ('map_scale', 'query_proj.weight')
    """
    if levels < 2:
        raise ValueError(f"a U-Net has at least 2 levels, got {levels}")
    mapping = {
        "frame_net.weight": "query_proj.weight",
        "frame_net.bias": "query_proj.bias",
        "synth_net.scale": "map_scale",
        "synth_net.bias": "map_bias",
    }

    def batchnorm(theirs, ours):
        for suffix in BATCHNORM_SUFFIXES:
            mapping[f"{theirs}.{suffix}"] = f"{ours}.{suffix}"

    batchnorm("sound_net.bn0", "unet.input_norm")
    for level in range(levels):
        block = _block_prefix(level)
        if level == 0:
            # [down conv, submodule, ReLU, Upsample, up conv with bias]
            mapping[f"{block}.0.weight"] = "unet.down.0.weight"
            mapping[f"{block}.4.weight"] = "unet.up.0.2.weight"
            mapping[f"{block}.4.bias"] = "unet.up.0.2.bias"
        elif level == levels - 1:
            # [LeakyReLU, down conv, ReLU, Upsample, up conv, up BN]
            mapping[f"{block}.1.weight"] = f"unet.down.{level}.1.weight"
            mapping[f"{block}.4.weight"] = f"unet.up.{level}.2.weight"
            batchnorm(f"{block}.5", f"unet.up.{level}.3")
        else:
            # [LeakyReLU, down conv, down BN, submodule, ReLU, Upsample,
            #  up conv, up BN]
            mapping[f"{block}.1.weight"] = f"unet.down.{level}.1.weight"
            batchnorm(f"{block}.2", f"unet.down.{level}.2")
            mapping[f"{block}.6.weight"] = f"unet.up.{level}.2.weight"
            batchnorm(f"{block}.7", f"unet.up.{level}.3")
    return mapping


def load_authors_state_dict(checkpoint):
    """Loads a checkpoint of the authors' code, without the ``module.`` prefix.

    Arguments
    ---------
    checkpoint : str or os.PathLike
        ``best_model.pt`` (or ``model_<step>.pt``): a state_dict saved by
        ``torch.save``, loaded with ``weights_only=True`` onto the CPU.

    Returns
    -------
    dict
        ``{key: tensor}`` with the DataParallel prefix ``module.`` removed.

    Example
    -------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "best_model.pt")
    >>> torch.save({"module.synth_net.bias": torch.zeros(1)}, path)
    >>> load_authors_state_dict(path)
    {'synth_net.bias': tensor([0.])}
    """
    checkpoint = os.fspath(checkpoint)
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointImportError(
            f"cannot load {checkpoint} as a state_dict of tensors (torch.load "
            f"with weights_only=True): {e}"
        ) from e
    if not isinstance(state, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor)
        for key, value in state.items()
    ):
        raise CheckpointImportError(
            f"{checkpoint} is not a state_dict ({{name: tensor}}) as saved by "
            f"the authors' train.py; got a {type(state).__name__}"
        )
    if not state:
        raise CheckpointImportError(f"{checkpoint} holds an empty state_dict")
    prefixed = [key.startswith(DATA_PARALLEL_PREFIX) for key in state]
    if all(prefixed):
        return {key[len(DATA_PARALLEL_PREFIX) :]: v for key, v in state.items()}
    if any(prefixed):
        raise CheckpointImportError(
            f"{checkpoint} mixes keys with and without the DataParallel prefix "
            f"'module.': {_listing(k for k in state if not k.startswith('module.'))}"
        )
    return dict(state)  # saved without DataParallel: accepted as is


def _get(args, key, kind, default=None, required=True):
    """``args[key]`` checked to be of type ``kind`` (bool is not an int)."""
    if key not in args:
        if required:
            raise CheckpointImportError(f"train-args.json has no {key!r}")
        return default
    value = args[key]
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind is int and not (is_int and value > 0):
        raise CheckpointImportError(
            f"train-args.json: {key!r} must be a positive integer, got {value!r}"
        )
    if kind is bool and not isinstance(value, bool):
        raise CheckpointImportError(
            f"train-args.json: {key!r} must be true or false, got {value!r}"
        )
    if kind is str and not isinstance(value, str):
        raise CheckpointImportError(
            f"train-args.json: {key!r} must be a string, got {value!r}"
        )
    return value


def read_train_args(train_args):
    """Reads and checks the ``train-args.json`` of the authors' ``train.py``.

    Arguments
    ---------
    train_args : str or os.PathLike or dict
        Path of ``train-args.json``, or its loaded content.

    Returns
    -------
    dict
        ``model`` ("CLIPSep" or "CLIPSep-NIT"), ``sample_rate``, ``n_fft``,
        ``hop_length``, ``win_length``, ``n_maps`` (their ``channels``) and
        ``levels`` (their ``layers``; their U-Net has at least 5 levels).

    Example
    -------
    >>> args = {"image_model": "clipsepnit", "fusion": "late", "audio_rate": 16000,
    ...         "n_fft": 1024, "hop_len": 256, "win_len": 1024, "channels": 32,
    ...         "layers": 7, "binary_mask": True, "log_freq": True}
    >>> read_train_args(args)["model"]
    'CLIPSep-NIT'
    >>> try:
    ...     read_train_args({**args, "image_model": "clip", "fusion": "early"})
    ... except CheckpointImportError as e:
    ...     print(str(e).split(";")[0])
    train-args.json: fusion 'early' (CLIPSepV2) is not implemented here
    """
    if not isinstance(train_args, dict):
        path = os.fspath(train_args)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"train-args.json not found: {path}")
        try:
            with open(path, encoding="utf-8") as f:
                train_args = json.load(f)
        except (OSError, ValueError) as e:
            raise CheckpointImportError(f"cannot read {path} as JSON: {e}") from e
        if not isinstance(train_args, dict):
            raise CheckpointImportError(f"{path} is not a JSON object")

    # Missing keys get the defaults of the authors' infer.py / train.py.
    image_model = _get(train_args, "image_model", str, "clip", required=False)
    if image_model not in SUPPORTED_IMAGE_MODELS:
        raise CheckpointImportError(
            f"train-args.json: image_model {image_model!r} is not supported; "
            f"only CLIPSep ('clip') and CLIPSep-NIT ('clipsepnit', 'clippit4') "
            "can be imported (the baselines 'sop', 'label_only', 'bert' and "
            "'pit' have other query networks)"
        )
    if image_model == "clip":
        fusion = _get(train_args, "fusion", str, "late", required=False)
        if fusion != "late":
            variant = {"early": "CLIPSepV2", "middle": "CLIPSepV3"}.get(fusion, "?")
            raise CheckpointImportError(
                f"train-args.json: fusion {fusion!r} ({variant}) is not "
                "implemented here; only the late fusion of CLIPSep (fusion "
                "'late') can be imported"
            )
    if not _get(train_args, "binary_mask", bool, True, required=False):
        raise CheckpointImportError(
            "train-args.json: binary_mask is false (a ratio mask used without "
            "sigmoid); only models trained with binary masks (mask = "
            "sigmoid(logit)) can be imported"
        )
    if not _get(train_args, "log_freq", bool, True, required=False):
        raise CheckpointImportError(
            "train-args.json: log_freq is false; only models on the "
            "log-frequency warped spectrogram can be imported"
        )
    settings = {
        "model": SUPPORTED_IMAGE_MODELS[image_model],
        "sample_rate": _get(train_args, "audio_rate", int),
        "n_fft": _get(train_args, "n_fft", int),
        "hop_length": _get(train_args, "hop_len", int),
        "win_length": _get(train_args, "win_len", int),
        "n_maps": _get(train_args, "channels", int),
        "levels": max(_get(train_args, "layers", int), 5),
    }
    if settings["win_length"] > settings["n_fft"]:
        raise CheckpointImportError(
            f"train-args.json: win_len {settings['win_length']} is larger than "
            f"n_fft {settings['n_fft']}"
        )
    if AUTHORS_N_WARPED % 2 ** settings["levels"]:
        raise CheckpointImportError(
            f"train-args.json: layers {train_args['layers']} does not fit the "
            f"{AUTHORS_N_WARPED} frequency rows (at most 8 levels)"
        )
    return settings


def _count_levels(state):
    """U-Net levels of a stripped authors' state_dict (deepest block + 1)."""
    levels = 0
    while any(key.startswith(_block_prefix(levels) + ".") for key in state):
        levels += 1
    return levels


def map_authors_state_dict(state, levels, nit):
    """Renames an authors' state_dict to the keys of our ``CLIPSep``.

    Arguments
    ---------
    state : dict
        The authors' state_dict without ``module.`` prefixes.
    levels : int
        U-Net levels.
    nit : bool
        The checkpoint is CLIPSep-NIT: its ``pit_nets`` are expected (and
        dropped); for CLIPSep they are unexpected keys.

    Returns
    -------
    dict
        Our state_dict (without the noise heads).

    Example
    -------
    >>> state = {theirs: torch.zeros(1) for theirs in clipsep_key_map(5)}
    >>> len(map_authors_state_dict(state, 5, nit=False)) == len(state)
    True
    >>> import textwrap
    >>> try:
    ...     map_authors_state_dict({**state, "frame_net.fc.weight": torch.ones(1)},
    ...                            5, nit=False)
    ... except CheckpointImportError as e:
    ...     print(textwrap.fill(str(e), 70))
    the checkpoint has 1 key(s) that are not part of the authors' 5-level
    CLIPSep: frame_net.fc.weight
    """
    mapping = clipsep_key_map(levels)
    name = "CLIPSep-NIT" if nit else "CLIPSep"
    noise_keys = {k for k in state if k.startswith(NOISE_HEAD_PREFIX)} if nit else set()
    unexpected = set(state) - set(mapping) - noise_keys
    if unexpected:
        raise CheckpointImportError(
            f"the checkpoint has {len(unexpected)} key(s) that are not part of "
            f"the authors' {levels}-level {name}: {_listing(unexpected)}"
        )
    missing = {
        key for key in mapping if key not in state and not key.endswith(OPTIONAL_SUFFIX)
    }
    if nit:
        missing |= {
            f"{NOISE_HEAD_PREFIX}{i}.{p}"
            for i in range(2)
            for p in ("weight", "bias")
            if f"{NOISE_HEAD_PREFIX}{i}.{p}" not in state
        }
    if missing:
        raise CheckpointImportError(
            f"the checkpoint lacks {len(missing)} key(s) of the authors' "
            f"{levels}-level {name}: {_listing(missing)}"
        )
    return {mapping[key]: value for key, value in state.items() if key in mapping}


def _build_mask_net(state, settings):
    """Our ``CLIPSep`` with the sizes of the weights, checked against the args."""
    levels = _count_levels(state)
    nit = settings["model"] == "CLIPSep-NIT"
    # No U-Net at all: list the keys missing from the one train-args.json says.
    ours = map_authors_state_dict(
        state, levels if levels >= 2 else settings["levels"], nit=nit
    )
    if levels != settings["levels"]:
        raise CheckpointImportError(
            f"the checkpoint has a {levels}-level U-Net but train-args.json "
            f"says {settings['levels']} levels (layers)"
        )
    first, query_weight = state[_FIRST_CONV], state["frame_net.weight"]
    if first.dim() != 4 or query_weight.dim() != 2:
        raise CheckpointImportError(
            f"{_FIRST_CONV} must be a conv weight (4-d) and frame_net.weight a "
            f"linear weight (2-d); got shapes {tuple(first.shape)} and "
            f"{tuple(query_weight.shape)}"
        )
    ngf, in_channels = first.shape[:2]
    if in_channels != 1:
        raise CheckpointImportError(
            f"the U-Net of the checkpoint takes {in_channels} input channels; "
            "CLIPSep takes the log-magnitude only (1 channel)"
        )
    n_maps, query_dim = query_weight.shape
    if n_maps != settings["n_maps"]:
        raise CheckpointImportError(
            f"the checkpoint has {n_maps} U-Net maps but train-args.json says "
            f"channels {settings['n_maps']}"
        )
    mask_net = CLIPSep(
        AudioUNet(out_channels=n_maps, ngf=ngf, levels=levels),
        query_dim=query_dim,
        n_maps=n_maps,
    )
    expected = mask_net.state_dict()
    wrong = [
        f"{key} {tuple(value.shape)} (expected {tuple(expected[key].shape)})"
        for key, value in ours.items()
        if value.shape != expected[key].shape
    ]
    if wrong:
        raise CheckpointImportError(
            f"{len(wrong)} tensor(s) of the checkpoint do not have the shapes of "
            f"a {levels}-level U-Net with ngf {ngf} and {n_maps} maps (our key "
            f"names): {_listing(wrong)}"
        )
    unset = [k for k in expected if k not in ours and not k.endswith(OPTIONAL_SUFFIX)]
    if unset:  # cannot happen if the key map covers the model
        raise CheckpointImportError(f"parameters left unset: {_listing(unset)}")
    mask_net.load_state_dict(ours, strict=False)
    mask_net.eval()
    return mask_net, {"levels": levels, "ngf": int(ngf), "query_dim": int(query_dim)}


def _folder_values(settings, sizes, query_encoder):
    """Template values of the imported model (sizes, front end, CLIP)."""
    overrides = {
        "sample_rate": settings["sample_rate"],
        "n_fft": settings["n_fft"],
        "hop_length": settings["hop_length"],
        "win_length": settings["win_length"],
        "n_warped": AUTHORS_N_WARPED,
        **AUTHORS_FRONT_END,
        "levels": sizes["levels"],
        "ngf": sizes["ngf"],
        "n_maps": settings["n_maps"],
        "query_dim": sizes["query_dim"],
    }
    if query_encoder is None:
        if sizes["query_dim"] != AUTHORS_QUERY_DIM:
            raise CheckpointImportError(
                f"the checkpoint takes {sizes['query_dim']}-d queries but the "
                f"authors' CLIP ViT-B/32 gives {AUTHORS_QUERY_DIM}-d embeddings; "
                "give the matching query_encoder"
            )
        overrides.update(AUTHORS_CLIP)
        overrides.update({"clip_model_cfg": {}, "query_encoder_in_folder": False})
    else:
        if query_encoder.embedding_dim != sizes["query_dim"]:
            raise CheckpointImportError(
                f"the query encoder gives {query_encoder.embedding_dim}-d "
                f"embeddings but the checkpoint takes {sizes['query_dim']}-d "
                "queries"
            )
        if not query_encoder.model_cfg:
            raise CheckpointImportError(
                "the model config of the query encoder is unknown; it cannot "
                "be stored in the folder"
            )
        overrides.update(
            {
                "clip_model": query_encoder.model_name,
                "clip_pretrained": None,
                "clip_model_cfg": dict(query_encoder.model_cfg),
                "query_encoder_in_folder": True,
            }
        )
    return overrides


def import_clipsep_checkpoint(
    checkpoint, train_args, out_dir, template=None, query_encoder=None
):
    """Writes a ``from_hparams`` model folder from an authors' checkpoint.

    Reads ``train-args.json`` (refusing settings that this package does not
    implement), renames the weights (see the table of the module docstring;
    the NIT noise heads are dropped) and writes ``hyperparams.yaml`` and
    ``mask_net.ckpt`` (and a model card) with
    :func:`speechbrain_textsep.inference.model_folder.write_model_folder`.

    Arguments
    ---------
    checkpoint : str or os.PathLike
        ``best_model.pt`` of the authors' ``train.py`` (CLIPSep or CLIPSep-NIT).
    train_args : str or os.PathLike or dict
        Its ``train-args.json`` (or the loaded dict).
    out_dir : str or os.PathLike
        Model folder to write (created if needed; files in it are replaced).
    template : str, optional
        Inference hyperparameters template (default: the shipped ``clipsep``).
    query_encoder : speechbrain_textsep.encoders.clip.CLIPQueryEncoder, optional
        By default the folder names the authors' CLIP (open_clip ``ViT-B-32``,
        ``pretrained: openai``), fetched by open_clip when the folder is
        loaded. Given, this encoder is stored in the folder instead
        (``query_encoder.ckpt``), e.g. a local copy of the weights (~350 MB)
        for offline use, or a tiny CLIP in tests; its embedding size must be
        the query size of the checkpoint.

    Returns
    -------
    str
        ``out_dir``.

    Example
    -------
    >>> import os, tempfile
    >>> from speechbrain_textsep.models.clipsep import CLIPSep
    >>> from speechbrain_textsep.models.unet import AudioUNet
    >>> tmp = tempfile.mkdtemp()
    >>> ours = CLIPSep(AudioUNet(out_channels=4, ngf=2, levels=5), 512, 4)
    >>> theirs = {"module." + key: ours.state_dict()[value]
    ...           for key, value in clipsep_key_map(5).items()}
    >>> torch.save(theirs, os.path.join(tmp, "best_model.pt"))
    >>> args = {"image_model": "clip", "fusion": "late", "audio_rate": 16000,
    ...         "n_fft": 1024, "hop_len": 256, "win_len": 1024, "channels": 4,
    ...         "layers": 5, "binary_mask": True, "log_freq": True}
    >>> out = import_clipsep_checkpoint(os.path.join(tmp, "best_model.pt"), args,
    ...                                 os.path.join(tmp, "model"))
    >>> sorted(os.listdir(out))
    ['README.md', 'hyperparams.yaml', 'mask_net.ckpt']
    >>> text = open(os.path.join(out, "hyperparams.yaml")).read()
    >>> "clip_model: ViT-B-32" in text, "clip_pretrained: openai" in text
    (True, True)
    >>> "warp_grid: float32_grid_sample" in text, "pad_mode: constant" in text
    (True, True)
    """
    settings = read_train_args(train_args)
    state = load_authors_state_dict(checkpoint)
    mask_net, sizes = _build_mask_net(state, settings)

    overrides = _folder_values(settings, sizes, query_encoder)
    out_dir = os.fspath(out_dir)
    weights = {"mask_net": mask_net.state_dict()}
    if query_encoder is not None:
        weights["query_encoder"] = query_encoder.state_dict()
    write_model_folder(
        out_dir,
        "clipsep",
        overrides,
        weights,
        title="CLIPSep imported from sony/CLIPSep",
        training=f"Converted from `{os.fspath(checkpoint)}`, a checkpoint of the "
        "authors' code (sony/CLIPSep); trained by them (see their paper).",
        template=template,
    )
    return out_dir
