"""Pretrained interface of weakly-supervised bi-modal separation (text queries).

Authors
 * speechbrain-textsep contributors
"""

from speechbrain_textsep.inference.base import BaseQuerySeparator
from speechbrain_textsep.models.weaksup import text_conditions
from speechbrain_textsep.processing.spectral import padded_length


class WeakSupQuerySeparator(BaseQuerySeparator):
    """Text-queried separator of Mahmud et al. (ICLR 2024), loaded with
    ``from_hparams`` (template ``weaksup``).

    A query is a text: its frozen CLAP text embedding and token sequence
    (``n_tokens`` tokens), packed into one condition
    (:func:`~speechbrain_textsep.models.weaksup.pack_text_condition`). With
    ``text_template`` set in the hyperparameters (e.g. ``"The sound of {}"``,
    the prompt of models trained on labels), a query's text is wrapped in it
    unless the query asks for its text verbatim
    (``Query(text, prompt_ensemble=False)``). No image, audio or negative
    queries. Inputs longer than ``window_seconds`` (default: the 131070
    training samples) are separated in cross-faded windows.

    Example
    -------
    >>> import tempfile
    >>> import torch
    >>> from speechbrain_textsep.encoders.clap import (
    ...     TINY_CLAP_CFG, CLAPQueryEncoder, build_tiny_tokenizer)
    >>> from speechbrain_textsep.inference.model_folder import write_model_folder
    >>> from speechbrain_textsep.models.weaksup import WeakSupMaskNet
    >>> tok = build_tiny_tokenizer(tempfile.mkdtemp(), ["The sound of violin"])
    >>> clap = CLAPQueryEncoder(None, model_cfg=TINY_CLAP_CFG, tokenizer=tok)
    >>> size = {"n_maps": 4, "ngf": 4, "levels": 3, "attn_levels": 2, "heads": 2}
    >>> net = WeakSupMaskNet(**size, token_dim=clap.token_dim)
    >>> values = {**size, "n_fft": 254, "win_length": 254, "hop_length": 64,
    ...           "n_tokens": 16, "clap_source": "clap", "clap_in_folder": True}
    >>> folder = write_model_folder(
    ...     tempfile.mkdtemp(), "weaksup", values, {"mask_net": net.state_dict()},
    ...     write_files=lambda out: clap.save_pretrained_dir(f"{out}/clap"))
    >>> separator = WeakSupQuerySeparator.from_hparams(source=folder)
    >>> separator.separate_batch(torch.randn(2, 8000), ["violin", "flute"]).shape
    torch.Size([2, 8000])
    """

    QUERY_KINDS = ("text",)
    MODULES_NEEDED = ["clap", "separator"]
    HPARAMS_NEEDED = ["sample_rate", "n_tokens"]

    def query_text(self, query):
        """The text that is embedded: the query's, in ``text_template`` if set."""
        template = getattr(self.hparams, "text_template", None)
        if template and query.prompt_ensemble:
            return template.format(query.text)
        return query.text

    def embed_query(self, query):
        """Packed condition ``[C]``: CLAP text embedding, tokens and their mask."""
        text = self.query_text(query)
        return text_conditions(self.mods.clap, [text], self.hparams.n_tokens)[0]

    def window_samples(self):
        """``window_seconds`` rounded up to a length the U-Net takes unpadded."""
        spectral = self.mods.separator.spectral
        return padded_length(
            super().window_samples(), spectral.hop_length, spectral.frame_multiple
        )

    def separate_windows(self, mixtures, conditioning):
        """``[N, L]`` and ``[N, Q, C]`` -> ``[N, Q, L]`` (one U-Net pass a query)."""
        return self.mods.separator(mixtures, conditioning)
