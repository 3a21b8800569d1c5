"""Pretrained interface of the text/image-queried separators.

Authors
 * speechbrain-textsep contributors
"""

import os

import torch
from speechbrain.inference.interfaces import Pretrained


def check_mixtures(mixtures):
    """Raises a clear ``ValueError`` for mixtures the separator cannot take.

    Example
    -------
    >>> check_mixtures(torch.zeros(2, 100))
    >>> check_mixtures(torch.full((1, 100), float("nan")))
    Traceback (most recent call last):
    ...
    ValueError: the mixture contains NaN or infinite samples
    """
    if mixtures.dim() != 2:
        raise ValueError(f"mixtures must be [batch, time], got {tuple(mixtures.shape)}")
    if mixtures.shape[-1] == 0:
        raise ValueError("the mixture is empty (0 samples)")
    if not torch.isfinite(mixtures).all():
        raise ValueError("the mixture contains NaN or infinite samples")


class QuerySeparator(Pretrained):
    """Separates the sound a query describes, loaded with ``from_hparams``.

    The model folder (local or on the hub) holds ``hyperparams.yaml``, built
    from ``hparams/clipsep.yaml``, and the checkpoints its ``pretrainer``
    loads (``mask_net.ckpt`` and, for a CLIP not fetched by open_clip,
    ``query_encoder.ckpt``). Text queries are embedded with the prompt
    ensemble ``text_prompts`` of the hyperparameters.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_textsep.encoders.clip import TINY_CLIP_CFG, CLIPQueryEncoder
    >>> from speechbrain_textsep.inference.export import export_model
    >>> from speechbrain_textsep.models.clipsep import CLIPSep
    >>> from speechbrain_textsep.models.unet import AudioUNet
    >>> from speechbrain_textsep.training.experiment import DEFAULT_INFERENCE_HPARAMS
    >>> folder = tempfile.mkdtemp()  # a tiny random model folder
    >>> overrides = {"levels": 3, "ngf": 4, "n_maps": 4, "query_dim": 32,
    ...              "clip_model_cfg": TINY_CLIP_CFG, "clip_pretrained": None,
    ...              "query_encoder_in_folder": True}
    >>> _ = export_model(folder, DEFAULT_INFERENCE_HPARAMS, overrides,
    ...                  CLIPSep(AudioUNet(4, 4, 3), 32, 4),
    ...                  CLIPQueryEncoder(model_cfg=TINY_CLIP_CFG, pretrained=None))
    >>> savedir = tempfile.mkdtemp()
    >>> separator = QuerySeparator.from_hparams(source=folder, savedir=savedir)
    >>> separator.separate_batch(torch.randn(2, 16000), ["violin", "flute"]).shape
    torch.Size([2, 16000])
    """

    MODULES_NEEDED = ["separator", "query_encoder"]
    HPARAMS_NEEDED = ["sample_rate", "text_prompts"]

    def encode_text(self, texts):
        """Query embeddings ``[N, D]`` of texts, averaged over ``text_prompts``."""
        return self.mods.query_encoder.encode_text(
            texts, ensemble=self.hparams.text_prompts
        )

    def _queries(self, queries, batch_size):
        """``[B, D]`` embeddings from a string, B strings or a ``[B, D]`` tensor."""
        if isinstance(queries, torch.Tensor):
            embeddings = queries.to(self.device)
        else:
            texts = (
                [queries] * batch_size if isinstance(queries, str) else list(queries)
            )
            embeddings = self.encode_text(texts)
        if embeddings.dim() != 2 or embeddings.shape[0] != batch_size:
            raise ValueError(
                f"expected one query per mixture ({batch_size}), got "
                f"{embeddings.shape[0] if embeddings.dim() else 0}"
            )
        return embeddings

    def separate_batch(self, mixtures, queries):
        """Separates one queried source from every mixture of a batch.

        Arguments
        ---------
        mixtures : torch.Tensor
            ``[B, L]`` mixtures at the model's sample rate.
        queries : str, list of str or torch.Tensor
            One text for all mixtures, one text per mixture, or ``[B, D]``
            query embeddings.

        Returns
        -------
        torch.Tensor
            ``[B, L]`` estimates.
        """
        check_mixtures(mixtures)
        mixtures = mixtures.to(self.device).float()
        with torch.no_grad():
            embeddings = self._queries(queries, mixtures.shape[0])
            return self.mods.separator(mixtures, embeddings)

    def separate_file(self, path, query, savedir=None):
        """Separates the queried source from an audio file.

        The file is resampled to the model's rate and mixed down to mono by
        SpeechBrain's audio normaliser.

        Arguments
        ---------
        path : str
            Audio file: a local path, or with ``savedir`` a URL or hub file.
        query : str
            Text describing the sound to extract.
        savedir : str, optional
            Where a remote file is fetched to.

        Returns
        -------
        torch.Tensor
            ``[L]`` estimate at the model's sample rate.
        """
        if "://" not in str(path) and not os.path.isfile(path) and savedir is None:
            raise FileNotFoundError(f"audio file not found: {path}")
        mixture = self.load_audio(path, savedir=savedir)
        return self.separate_batch(mixture[None], query)[0]

    def forward(self, mixtures, queries):
        """Same as :meth:`separate_batch`."""
        return self.separate_batch(mixtures, queries)
