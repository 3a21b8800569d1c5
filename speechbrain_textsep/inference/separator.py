"""Pretrained interface of the text/image-queried separators.

Authors
 * speechbrain-textsep contributors
"""

from speechbrain_textsep.inference.base import BaseQuerySeparator
from speechbrain_textsep.inference.queries import as_query
from speechbrain_textsep.processing.spectral import padded_length


class QuerySeparator(BaseQuerySeparator):
    """CLIPSep-family separator (CLIPSep, CLIPSep-Text, CLIPSep-NIT).

    The model folder (local or on the hub) holds ``hyperparams.yaml``, built
    from ``hparams/clipsep.yaml``, and the checkpoints its ``pretrainer``
    loads (``mask_net.ckpt`` and, for a CLIP not fetched by open_clip,
    ``query_encoder.ckpt``). Text queries are embedded with the prompt
    ensemble ``text_prompts`` of the hyperparameters (or verbatim with
    ``Query(text, prompt_ensemble=False)``); image queries (one or more
    images, embeddings averaged) with the CLIP image tower. CLIPSep takes no
    example-audio and no negative queries. Everything else (files, long
    inputs, batches, loading) is :class:`BaseQuerySeparator`.

    Example
    -------
    >>> import tempfile
    >>> import torch
    >>> from speechbrain_textsep.encoders.clip import TINY_CLIP_CFG, CLIPQueryEncoder
    >>> from speechbrain_textsep.inference.model_folder import write_model_folder
    >>> from speechbrain_textsep.models.clipsep import CLIPSep
    >>> from speechbrain_textsep.models.unet import AudioUNet
    >>> folder = tempfile.mkdtemp()  # a tiny random model folder
    >>> values = {"levels": 3, "ngf": 4, "n_maps": 4, "query_dim": 32,
    ...           "clip_model_cfg": TINY_CLIP_CFG, "clip_pretrained": None,
    ...           "query_encoder_in_folder": True}
    >>> encoder = CLIPQueryEncoder(model_cfg=TINY_CLIP_CFG, pretrained=None)
    >>> weights = {"mask_net": CLIPSep(AudioUNet(4, 4, 3), 32, 4).state_dict(),
    ...            "query_encoder": encoder.state_dict()}
    >>> _ = write_model_folder(folder, "clipsep", values, weights)
    >>> savedir = tempfile.mkdtemp()
    >>> separator = QuerySeparator.from_hparams(source=folder, savedir=savedir)
    >>> separator.separate_batch(torch.randn(2, 16000), ["violin", "flute"]).shape
    torch.Size([2, 16000])
    """

    QUERY_KINDS = ("text", "image")
    MODULES_NEEDED = ["separator", "query_encoder"]
    HPARAMS_NEEDED = ["sample_rate", "text_prompts"]

    def encode_text(self, texts):
        """Query embeddings ``[N, D]`` of texts, averaged over ``text_prompts``."""
        return self.mods.query_encoder.encode_text(
            texts, ensemble=self.hparams.text_prompts
        )

    def check_query(self, query):
        """A validated query: a text or images (not both)."""
        query = as_query(query)
        if query.text and query.images:
            raise ValueError(
                "a CLIPSep query is a text or images, not both: give two queries"
            )
        return super().check_query(query)

    def embed_query(self, query):
        """CLIP embedding ``[D]`` of a text query or of images (averaged)."""
        encoder = self.mods.query_encoder
        if query.text:
            if query.prompt_ensemble:
                return self.encode_text([query.text])[0]
            return encoder.encode_text([query.text])[0]
        return encoder.encode_image([query.images])[0]

    def window_samples(self):
        """``window_seconds`` rounded up to a length the U-Net takes unpadded."""
        spectral = self.mods.separator.spectral
        return padded_length(
            super().window_samples(), spectral.hop_length, spectral.frame_multiple
        )

    def separate_windows(self, mixtures, conditioning):
        """Soft-mask estimates ``[N, Q, L]`` (the U-Net runs once a mixture)."""
        return self.mods.separator(mixtures, conditioning)
