"""Pretrained interfaces (``from_hparams``) of the separators."""

from speechbrain_textsep.inference.separator import QuerySeparator

__all__ = ["QuerySeparator"]
