"""Frozen CLIP query encoder of CLIPSep.

CLIPSep (Dong et al., ICLR 2023) conditions its separator on a CLIP embedding:
at training time the embedding of a video frame (image query), at test time
either an image embedding or the embedding of a text prompt (text query).
The CLIP model is never trained. As in the authors' code, the query is the
*raw* CLIP embedding (no L2 normalisation); the authors use OpenAI's
ViT-B/32 (``model_name="ViT-B-32", pretrained="openai"`` in open_clip),
whose embeddings are 512-dimensional.

- Image query: mean of the CLIP embeddings of several frames (the authors use
  3 frames sampled at 1 fps around the centre of the clip).
- Text query at training time: ``TRAIN_TEMPLATE`` ("a photo of {}").
- Text query at evaluation: prompt ensemble ``PROMPT_ENSEMBLE``, the mean of
  the embeddings of the prompts built from each template.

All loading goes through open_clip (``create_model_and_transforms``,
``get_tokenizer``, ``load_checkpoint``), so the same code path serves built-in
names with pretrained tags, local checkpoint files and the ``local-dir:`` /
``hf-hub:`` schemas. Local checkpoint files load with
``torch.load(weights_only=True)`` (pickled objects are refused), and a
``local-dir:`` folder must hold no symlink leading outside it
(:func:`speechbrain_textsep.utils.paths.check_tree_confined`).
``TINY_CLIP_CFG`` and ``save_local_clip`` build small random CLIP models for
tests and quick starts without any download.
"""

import copy
import json
import os
import pickle
from dataclasses import asdict
from pathlib import Path

import numpy as np
import open_clip
import torch
from open_clip.transform import PreprocessCfg, image_transform_v2
from PIL import Image

from speechbrain_textsep.encoders.prompts import (
    FrozenQueryEncoder,
    check_template,
    embed_with_cache,
    prompt_sets,
)
from speechbrain_textsep.utils.paths import check_tree_confined

__all__ = [
    "CLIPQueryEncoder",
    "CLIPWeightsUnavailableError",
    "PROMPT_ENSEMBLE",
    "TINY_CLIP_CFG",
    "TRAIN_TEMPLATE",
    "save_local_clip",
]

#: Text template used to build text queries from labels at training time.
TRAIN_TEMPLATE = "a photo of {}"

#: Prompt ensemble of the CLIPSep evaluation. The authors' list repeats
#: "a photo of the small {}." twice (which weights it double in the mean);
#: we keep the 4 distinct prompts, each with weight 1/4.
PROMPT_ENSEMBLE = (
    "a photo of {}.",
    "a photo of the small {}.",
    "a low resolution photo of a {}.",
    "a photo of many {}.",
)

#: A tiny CLIP ``model_cfg`` (random init in a few tens of milliseconds) for
#: tests and quick starts. Same tokenizer and context length as real CLIP.
#: In open_clip's vision tower the number of heads is ``width // head_width``
#: (2 here); the text tower takes ``heads`` directly.
TINY_CLIP_CFG = {
    "embed_dim": 32,
    "vision_cfg": {
        "image_size": 32,
        "patch_size": 16,
        "width": 64,
        "layers": 2,
        "head_width": 32,
    },
    "text_cfg": {
        "context_length": 77,
        "vocab_size": 49408,
        "width": 64,
        "heads": 2,
        "layers": 2,
    },
}

# Weights file name that open_clip's 'local-dir:' loader picks first among
# torch pickles (see open_clip.factory._find_checkpoint_in_dir).
_LOCAL_DIR_WEIGHTS = "open_clip_pytorch_model.bin"
_LOCAL_DIR_CONFIG = "open_clip_config.json"


class CLIPWeightsUnavailableError(RuntimeError):
    """CLIP weights named by a tag or 'hf-hub:' id could not be obtained.

    Raised when the weights are neither in the local cache nor downloadable
    (typically: offline, ``HF_HUB_OFFLINE=1``, and never downloaded before).
    """


def _pickled_weights_error(source, error):
    """The error for CLIP weights that ``weights_only=True`` refuses."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    first = lines[0] if lines else type(error).__name__
    reason = next((line for line in lines if "Unsupported" in line), first)
    return ValueError(
        f"refusing the CLIP weights of {source}: they are not plain tensors and "
        f"are only loaded with weights_only=True ({reason})"
    )


def _schema_model_cfg(schema, identifier, cache_dir):
    """The ``model_cfg`` of a 'local-dir:' folder or an 'hf-hub:' repository."""
    if schema == "local-dir":
        config_path = Path(identifier) / _LOCAL_DIR_CONFIG
    else:
        config_path = open_clip.pretrained.download_pretrained_from_hf(
            identifier, filename=_LOCAL_DIR_CONFIG, cache_dir=cache_dir
        )
    with open(config_path, encoding="utf-8") as f:
        return json.load(f)["model_cfg"]


def _tag_quick_gelu(model_name, pretrained):
    """Whether open_clip's pretrained tag was trained with QuickGELU.

    open_clip 3.x only *warns* when a tag trained with QuickGELU (e.g. the
    OpenAI weights) is loaded into a built-in config without it ("ViT-B-32"),
    which gives a model that differs from the original. We force QuickGELU in
    that case so that ("ViT-B-32", "openai") is OpenAI's ViT-B/32.
    """
    tag_cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
    base_cfg = open_clip.get_model_config(model_name) or {}
    return bool(tag_cfg.get("quick_gelu", False)) and not base_cfg.get(
        "quick_gelu", False
    )


class CLIPQueryEncoder(FrozenQueryEncoder):
    """Frozen CLIP encoder turning text or image queries into embeddings.

    The whole CLIP model is frozen (``requires_grad=False``) and kept in eval
    mode, also when a parent module calls ``.train()``. Embeddings are the raw
    (not L2-normalised) CLIP embeddings, computed under ``torch.no_grad()``
    (not ``inference_mode``, so that they can feed trainable layers).

    Text embeddings are cached per final prompt string (labels repeat at every
    training batch); the cache is cleared whenever weights are loaded through
    ``load_state_dict`` (on this module, on the CLIP model or on any parent,
    e.g. by a SpeechBrain Pretrainer or Checkpointer) and when the module is
    moved or cast (``.to()``, ``.half()``...). Call ``clear_cache()`` after
    changing weights by any other means. At most ``max_cache_size`` entries
    are kept (oldest dropped first; 0 disables the cache).

    Where the model comes from:

    - ``model_cfg`` given (an open_clip "model_cfg" dict: ``embed_dim``,
      ``vision_cfg``, ``text_cfg``...): ``open_clip.CLIP(**model_cfg)`` with
      random weights (``pretrained=None``) or the weights of the checkpoint
      file ``pretrained`` (loaded by ``open_clip.load_checkpoint``), the
      default SimpleTokenizer and the OpenAI image normalisation.
      ``model_name`` is ignored.
    - ``model_name`` with a schema, ``"local-dir:/path"`` (a folder with
      ``open_clip_config.json`` and a weights file, see ``save_local_clip``)
      or ``"hf-hub:org/repo"``: config and weights come from there
      (``pretrained`` is ignored).
    - ``model_name`` a built-in open_clip name (``open_clip.list_models()``)
      and ``pretrained`` a tag (``open_clip.list_pretrained_tags_by_model``;
      downloaded and cached by huggingface_hub), a local checkpoint file, or
      None for random weights. Tags trained with QuickGELU (e.g. "openai")
      get QuickGELU. For OpenAI weights from a local file, use the name
      "ViT-B-32-quickgelu".

    Arguments
    ---------
    model_name : str
        open_clip model name, or "local-dir:<folder>" / "hf-hub:<org/repo>".
    pretrained : str or None
        Pretrained tag or checkpoint file path; None for random weights (use
        it when the weights come later, e.g. from a SpeechBrain Pretrainer).
    model_cfg : dict or None
        open_clip model config; when given, builds ``open_clip.CLIP`` from it.
        None or an empty dict: use ``model_name``.
    cache_dir : str or None
        Download cache of open_clip / huggingface_hub (None: their default).
    template : str or None
        Prompt template applied by ``forward(texts=...)`` (e.g. labels at
        training time); None passes texts verbatim. ``encode_text`` does not
        use it.
    device : str or torch.device or None
        Device to move the model to (default: stays on CPU). Afterwards the
        encoder follows ``.to()`` like any module.

    Example
    -------
    >>> encoder = CLIPQueryEncoder(model_cfg=TINY_CLIP_CFG, pretrained=None)
    >>> encoder.embedding_dim
    32
    >>> encoder(texts=["dog", "violin"]).shape  # "a photo of dog", ...
    torch.Size([2, 32])
    >>> encoder.encode_text("violin", ensemble=PROMPT_ENSEMBLE).shape
    torch.Size([1, 32])
    >>> frames = torch.rand(2, 3, 3, 32, 32)  # [batch, frames, 3, H, W]
    >>> encoder(images=frames).shape
    torch.Size([2, 32])
    >>> _ = encoder.train()
    >>> encoder.training, any(p.requires_grad for p in encoder.parameters())
    (False, False)
    """

    #: Maximum number of cached prompt embeddings (0 disables the cache).
    max_cache_size = 4096

    def __init__(
        self,
        model_name="ViT-B-32",
        pretrained="openai",
        model_cfg=None,
        cache_dir=None,
        template=TRAIN_TEMPLATE,
        device=None,
    ):
        super().__init__()
        if template is not None:
            check_template(template)
        if pretrained is not None:
            pretrained = os.fspath(pretrained)
        if not model_cfg:
            model_cfg = None  # None or {} (handy in YAML): use model_name
        if model_cfg is None and open_clip.factory.parse_model_name(model_name)[0]:
            pretrained = None  # 'local-dir:' / 'hf-hub:' hold their weights
        self.template = template
        self.model_name = model_name
        self.pretrained = pretrained

        if model_cfg is not None:
            clip, tokenizer, transform, cfg = self._build_from_cfg(
                model_cfg, pretrained
            )
        else:
            clip, tokenizer, transform, cfg = self._build_open_clip(
                model_name, pretrained, cache_dir
            )
        self.clip = clip
        self.tokenizer = tokenizer
        self.transform = transform
        self.model_cfg = cfg

        self.clip.requires_grad_(False)
        # Weights loaded through load_state_dict (here, on self.clip, or on any
        # parent module) make the cached text embeddings stale.
        self.watch_weights(self.clip)
        if device is not None:
            self.to(device)
        self.train()

    # ------------------------------------------------------------------ build
    @staticmethod
    def _build_from_cfg(model_cfg, pretrained):
        """Builds open_clip.CLIP from a model_cfg dict (random or file weights)."""
        cfg = copy.deepcopy(dict(model_cfg))
        text_cfg = cfg.get("text_cfg", {})
        if text_cfg.get("hf_model_name") or text_cfg.get("hf_tokenizer_name"):
            raise ValueError(
                "model_cfg with a Hugging Face text tower is not supported; "
                "use model_name='local-dir:...' or 'hf-hub:...' instead"
            )
        if pretrained is not None and not os.path.isfile(pretrained):
            raise ValueError(
                "with model_cfg, pretrained must be None (random weights) or a "
                f"checkpoint file path, got {pretrained!r} (not a file)"
            )
        build_cfg = copy.deepcopy(cfg)
        custom_text = build_cfg.pop("custom_text", False)
        model_class = open_clip.CustomTextCLIP if custom_text else open_clip.CLIP
        clip = model_class(**build_cfg)
        if pretrained is not None:
            try:
                open_clip.load_checkpoint(
                    clip, pretrained, strict=True, weights_only=True
                )
            except pickle.UnpicklingError as e:
                raise _pickled_weights_error(pretrained, e) from e

        image_size = clip.visual.image_size
        preprocess_cfg = asdict(
            PreprocessCfg(
                size=image_size,
                mean=open_clip.OPENAI_DATASET_MEAN,
                std=open_clip.OPENAI_DATASET_STD,
            )
        )
        open_clip.set_model_preprocess_cfg(clip, preprocess_cfg)
        transform = open_clip.image_transform(
            image_size,
            is_train=False,
            mean=open_clip.OPENAI_DATASET_MEAN,
            std=open_clip.OPENAI_DATASET_STD,
        )
        tokenizer = open_clip.SimpleTokenizer(
            context_length=text_cfg.get("context_length", 77)
        )
        return clip, tokenizer, transform, cfg

    @staticmethod
    def _build_open_clip(model_name, pretrained, cache_dir):
        """Builds a model through open_clip.create_model_and_transforms."""
        schema, identifier = open_clip.factory.parse_model_name(model_name)
        kwargs = {}
        if schema is None:
            name = identifier.replace("/", "-")
            cfg = open_clip.get_model_config(name)
            if cfg is None:
                raise ValueError(
                    f"unknown open_clip model name {model_name!r}: use a name of "
                    "open_clip.list_models(), 'local-dir:<folder>', "
                    "'hf-hub:<org/repo>', or model_cfg="
                )
            if pretrained is not None:
                tag_cfg = open_clip.get_pretrained_cfg(name, pretrained)
                if tag_cfg:
                    # Resolve the download first, so that a missing cache when
                    # offline gives a clear error (before building the model).
                    try:
                        open_clip.download_pretrained(tag_cfg, cache_dir=cache_dir)
                    except Exception as e:
                        raise CLIPWeightsUnavailableError(
                            f"cannot get the CLIP weights of model {name!r} with "
                            f"pretrained tag {pretrained!r}: they are not in the "
                            f"cache ({cache_dir or 'default cache'}) and could not "
                            "be downloaded (offline? HF_HUB_OFFLINE="
                            f"{os.environ.get('HF_HUB_OFFLINE', '')!r}). Download "
                            "them once with network access (same cache_dir), or "
                            "give a local checkpoint file as pretrained=<path>, "
                            "or a folder as model_name='local-dir:<path>'. "
                            f"Cause: {e}"
                        ) from e
                    if _tag_quick_gelu(name, pretrained):
                        kwargs["force_quick_gelu"] = True
                        cfg["quick_gelu"] = True
                elif not os.path.isfile(pretrained):
                    tags = open_clip.list_pretrained_tags_by_model(name)
                    raise ValueError(
                        f"pretrained={pretrained!r} is neither a pretrained tag of "
                        f"{name!r} (known tags: {tags}) nor an existing file"
                    )
            require = pretrained is not None
        else:
            if schema == "local-dir":
                # Config and weights must be the folder's own files.
                check_tree_confined(identifier, what="CLIP folder")
            # With a schema, config and weights come from the folder / repo and
            # open_clip ignores `pretrained` (whose default is "openai").
            pretrained = None
            cfg = None
            # open_clip only warns (and keeps random weights) when a schema
            # source has no weights; we want an error instead.
            require = True

        try:
            clip = open_clip.create_model(
                model_name,
                pretrained=pretrained,
                cache_dir=cache_dir,
                require_pretrained=require,
                weights_only=True,
                **kwargs,
            )
        except pickle.UnpicklingError as e:
            raise _pickled_weights_error(pretrained or model_name, e) from e
        except Exception as e:
            if schema == "hf-hub":
                raise CLIPWeightsUnavailableError(
                    f"cannot load CLIP model {model_name!r}: its config or weights "
                    f"are not in the cache ({cache_dir or 'default cache'}) and "
                    "could not be downloaded (offline? no open_clip files in the "
                    f"repo?). Cause: {e}"
                ) from e
            raise
        preprocess_cfg = open_clip.get_model_preprocess_cfg(clip)
        transform = image_transform_v2(PreprocessCfg(**preprocess_cfg), is_train=False)
        tokenizer = open_clip.get_tokenizer(model_name, cache_dir=cache_dir)

        if schema is not None:
            cfg = _schema_model_cfg(schema, identifier, cache_dir)
        return clip, tokenizer, transform, cfg

    # ------------------------------------------------------------ properties
    @property
    def embedding_dim(self):
        """Dimension D of the query embeddings (512 for ViT-B/32)."""
        if self.model_cfg is not None and "embed_dim" in self.model_cfg:
            return int(self.model_cfg["embed_dim"])
        return int(self.clip.visual.output_dim)

    @property
    def device(self):
        """Device of the CLIP weights."""
        return next(self.clip.parameters()).device

    @property
    def dtype(self):
        """Floating point type of the CLIP weights."""
        return next(self.clip.parameters()).dtype

    @property
    def image_size(self):
        """(height, width) of the images the vision tower expects."""
        size = self.clip.visual.image_size
        if isinstance(size, int):
            return (size, size)
        return tuple(int(s) for s in size)

    # ------------------------------------------------------------------ text
    def encode_text(self, texts, template=None, ensemble=None):
        """Embeds text queries (labels or free text).

        Arguments
        ---------
        texts : str or list of str
            One query or a batch of queries.
        template : str or None
            Template with a ``{}`` field wrapping each text (e.g.
            ``TRAIN_TEMPLATE``); None uses the texts verbatim.
        ensemble : list of str or None
            Templates whose embeddings are averaged (e.g. ``PROMPT_ENSEMBLE``).
            Exclusive with ``template``.

        Returns
        -------
        torch.Tensor
            Raw CLIP text embeddings, shape ``[B, D]``.

        Example
        -------
        >>> encoder = CLIPQueryEncoder(model_cfg=TINY_CLIP_CFG, pretrained=None)
        >>> emb = encoder.encode_text(["dog", "cat"], template=TRAIN_TEMPLATE)
        >>> emb.shape
        torch.Size([2, 32])
        >>> torch.equal(emb[0], encoder.encode_text("a photo of dog")[0])
        True
        """
        embeddings = [
            self._embed_prompts(prompts)
            for prompts in prompt_sets(texts, template, ensemble)
        ]
        if len(embeddings) == 1:
            return embeddings[0]
        return torch.stack(embeddings).mean(dim=0)

    def _embed_prompts(self, prompts):
        """Embeds final prompt strings, through the cache."""

        def embed(missing):
            tokens = self.tokenizer(missing).to(self.device)
            return self.clip.encode_text(tokens, normalize=False)

        return embed_with_cache(self._cache, prompts, embed, self.max_cache_size)

    # ----------------------------------------------------------------- image
    def preprocess(self, image):
        """Applies the CLIP image transform to one image.

        Arguments
        ---------
        image : PIL.Image.Image or str or os.PathLike or numpy.ndarray
            An image, a path to an image file, or an ``[H, W, 3]`` uint8 array.

        Returns
        -------
        torch.Tensor
            The preprocessed image, shape ``[3, H, W]`` (CLIP input size).

        Example
        -------
        >>> from PIL import Image
        >>> encoder = CLIPQueryEncoder(model_cfg=TINY_CLIP_CFG, pretrained=None)
        >>> encoder.preprocess(Image.new("RGB", (80, 60))).shape
        torch.Size([3, 32, 32])
        """
        if isinstance(image, (str, os.PathLike)):
            path = os.fspath(image)
            try:
                with Image.open(path) as img:
                    img.load()
                    image = img.convert("RGB")
            except Exception as e:
                raise ValueError(f"cannot read image file {path!r}: {e}") from e
        elif isinstance(image, np.ndarray):
            try:
                image = Image.fromarray(image).convert("RGB")
            except Exception as e:
                raise ValueError(
                    f"cannot convert array of shape {image.shape} and dtype "
                    f"{image.dtype} to an image: {e}"
                ) from e
        elif not isinstance(image, Image.Image):
            raise TypeError(
                "expected a PIL image, an image file path or a numpy array, "
                f"got {type(image)}"
            )
        return self.transform(image)

    def _check_pixels(self, x, what, expected):
        """Raises ValueError unless x ends with [3, H, W] at the CLIP size."""
        height, width = self.image_size
        if not torch.is_floating_point(x):
            raise ValueError(
                f"{what} must be a float tensor already preprocessed (see "
                f"preprocess()), got dtype {x.dtype} and shape {tuple(x.shape)}"
            )
        if x.shape[-3] != 3 or tuple(x.shape[-2:]) != (height, width):
            raise ValueError(
                f"{what} has shape {tuple(x.shape)}; expected "
                + expected.format(f"3, {height}, {width}")
            )

    def _embed_pixels(self, pixels):
        """Embeds preprocessed images ``[M, 3, H, W]`` -> ``[M, D]``."""
        with torch.no_grad():
            return self.clip.encode_image(
                pixels.to(device=self.device, dtype=self.dtype), normalize=False
            )

    def encode_image(self, images):
        """Embeds image queries; the frames of one query are averaged.

        Arguments
        ---------
        images : torch.Tensor or list
            Either a float tensor of preprocessed images ``[B, 3, H, W]`` or
            ``[B, N, 3, H, W]`` (N frames per query), or a list (batch) whose
            items are one image or a list of frames, each a PIL image, an image
            file path, a numpy array or a preprocessed ``[3, H, W]`` tensor
            (items may have different numbers of frames).

        Returns
        -------
        torch.Tensor
            Raw CLIP image embeddings averaged over frames, shape ``[B, D]``.

        Example
        -------
        >>> from PIL import Image
        >>> encoder = CLIPQueryEncoder(model_cfg=TINY_CLIP_CFG, pretrained=None)
        >>> frames = [Image.new("RGB", (64, 48), c) for c in ("red", "blue")]
        >>> encoder.encode_image([frames, frames[:1]]).shape
        torch.Size([2, 32])
        """
        if isinstance(images, torch.Tensor):
            expected = "[B, {0}] or [B, N, {0}]"
            if images.dim() not in (4, 5):
                raise ValueError(
                    f"image tensor has shape {tuple(images.shape)}; expected "
                    + expected.format("3, H, W")
                )
            self._check_pixels(images, "image tensor", expected)
            frames = images.unsqueeze(1) if images.dim() == 4 else images
            batch, n_frames = frames.shape[:2]
            if batch == 0 or n_frames == 0:
                raise ValueError(f"empty image tensor of shape {tuple(images.shape)}")
            emb = self._embed_pixels(frames.flatten(0, 1))
            return emb.view(batch, n_frames, -1).mean(dim=1)

        if not isinstance(images, (list, tuple)):
            raise TypeError(
                f"images must be a tensor or a list of images, got {type(images)}"
            )
        if len(images) == 0:
            raise ValueError("empty image batch")
        per_item = []
        for item in images:
            if isinstance(item, torch.Tensor) and item.dim() == 4:
                frames = list(item)
            elif isinstance(item, (list, tuple)):
                frames = list(item)
            else:
                frames = [item]
            if not frames:
                raise ValueError("an image query of the batch has no frames")
            per_item.append(torch.stack([self._as_pixels(f) for f in frames]))
        counts = [len(p) for p in per_item]
        emb = self._embed_pixels(torch.cat(per_item))
        return torch.stack([chunk.mean(dim=0) for chunk in emb.split(counts)])

    def _as_pixels(self, frame):
        """One frame (tensor, PIL image, path, array) -> ``[3, H, W]``."""
        if isinstance(frame, torch.Tensor):
            if frame.dim() != 3:
                raise ValueError(
                    f"image frame tensor has shape {tuple(frame.shape)}; "
                    "expected [3, H, W]"
                )
            self._check_pixels(frame, "image frame tensor", "[{}]")
            return frame.to(device=self.device, dtype=self.dtype)
        return self.preprocess(frame).to(device=self.device, dtype=self.dtype)

    # --------------------------------------------------------------- forward
    def forward(self, texts=None, images=None):
        """Embeds either text queries or image queries (exactly one).

        Texts are wrapped with the instance ``template`` (verbatim if None).

        Arguments
        ---------
        texts : str or list of str or None
            Text queries (see ``encode_text``).
        images : torch.Tensor or list or None
            Image queries (see ``encode_image``).

        Returns
        -------
        torch.Tensor
            Query embeddings, shape ``[B, D]``.
        """
        if (texts is None) == (images is None):
            raise ValueError("give exactly one of texts= or images=")
        if texts is not None:
            return self.encode_text(texts, template=self.template)
        return self.encode_image(images)

    # ------------------------------------------------------------------ save
    def save_pretrained_dir(self, path):
        """Writes the model as an open_clip 'local-dir' folder.

        The folder holds ``open_clip_config.json`` (``model_cfg`` and
        ``preprocess_cfg``) and ``open_clip_pytorch_model.bin`` (the state
        dict), and loads with ``CLIPQueryEncoder("local-dir:<path>")`` or
        ``open_clip.create_model("local-dir:<path>")``.

        Arguments
        ---------
        path : str or os.PathLike
            Folder to write (created if needed).

        Returns
        -------
        pathlib.Path
            The folder.
        """
        if self.model_cfg is None:
            raise ValueError("the model config of this encoder is unknown")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        preprocess_cfg = dict(open_clip.get_model_preprocess_cfg(self.clip))
        config = {"model_cfg": self.model_cfg, "preprocess_cfg": preprocess_cfg}
        with open(path / _LOCAL_DIR_CONFIG, "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2)
        state = {k: v.detach().cpu() for k, v in self.clip.state_dict().items()}
        torch.save(state, path / _LOCAL_DIR_WEIGHTS)
        return path


def save_local_clip(model_cfg, path, seed=0):
    """Writes a randomly initialised CLIP as an open_clip 'local-dir' folder.

    Lets tests and quick starts load a model through the same
    ``"local-dir:<path>"`` route as a real downloaded model. The global RNG
    state is left untouched.

    Arguments
    ---------
    model_cfg : dict
        open_clip model config (e.g. ``TINY_CLIP_CFG``).
    path : str or os.PathLike
        Folder to write (created if needed).
    seed : int
        Seed of the random initialisation.

    Returns
    -------
    pathlib.Path
        The folder.

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.mkdtemp()
    >>> folder = save_local_clip(TINY_CLIP_CFG, tmp)
    >>> encoder = CLIPQueryEncoder(model_name=f"local-dir:{folder}")
    >>> encoder.encode_text("dog").shape
    torch.Size([1, 32])
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = CLIPQueryEncoder(model_cfg=model_cfg, pretrained=None)
    return encoder.save_pretrained_dir(path)
