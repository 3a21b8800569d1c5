"""Pretrained interface of CLAPSep: text and audio, positive and negative queries.

Authors
 * speechbrain-textsep contributors
"""

import torch

from speechbrain_textsep.inference.base import BaseQuerySeparator
from speechbrain_textsep.models.clapsep import clapsep_condition


class CLAPSepSeparator(BaseQuerySeparator):
    """CLAPSep separator, loaded with ``from_hparams`` (``hparams/clapsep.yaml``).

    A query names what to extract (positive) and/or what to suppress
    (negative), each by a text, one or more example recordings (their CLAP
    audio embeddings averaged: the 1/5/10-shot queries of the paper), or
    both (the text and audio embeddings averaged, ``a = 0.5`` as in the
    paper's multimodal tests). Texts are embedded verbatim (write "The sound
    of a dog" style queries for label-like texts). The condition is
    ``[e_pos, e_neg]`` with zeros for a missing side, L2-normalised by the
    model, as at training.

    The model takes at most 10.24 s: longer inputs are separated in windows
    of ``window_seconds`` (at most 10.24 s) overlapping by
    ``overlap_seconds`` and cross-faded (see :class:`BaseQuerySeparator`),
    and the output is trimmed to the input's exact length.
    """

    QUERY_KINDS = ("text", "audio")
    NEGATIVE_QUERIES = True
    MODULES_NEEDED = ["clap", "clapsep"]
    HPARAMS_NEEDED = ["sample_rate"]

    def _embed_side(self, text, audio):
        """``[D]`` embedding of one side of a query, or None."""
        clap = self.mods.clap
        parts = []
        if text:
            parts.append(clap.encode_text([text])[0])
        if audio:
            clips = [self.load_audio_query(item) for item in audio]
            embeddings = torch.stack(
                [
                    clap.encode_audio(
                        clip[None].to(self.device), sample_rate=self.hparams.sample_rate
                    )[0]
                    for clip in clips
                ]
            )
            parts.append(embeddings.mean(dim=0))
        if not parts:
            return None
        return torch.stack(parts).mean(dim=0)

    def embed_query(self, query):
        """Condition ``[2 D]``: positive and negative embeddings (zeros if absent)."""
        positive = self._embed_side(query.text, query.audio)
        negative = self._embed_side(query.negative_text, query.negative_audio)
        return clapsep_condition(
            None if positive is None else positive[None],
            None if negative is None else negative[None],
            embedding_dim=self.mods.clap.embedding_dim,
        )[0]

    def window_samples(self):
        """``window_seconds``, at most what the model takes (10.24 s)."""
        return min(super().window_samples(), self.mods.clapsep.max_samples)

    def separate_windows(self, mixtures, conditioning):
        """``[N, L]`` and ``[N, Q, 2 D]`` -> ``[N, Q, L]``, one pass per query."""
        return torch.stack(
            [
                self.mods.clapsep(mixtures, conditioning[:, q])
                for q in range(conditioning.shape[1])
            ],
            dim=1,
        )
