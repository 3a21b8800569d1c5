"""Pretrained interfaces (``from_hparams``) of the separators."""

from speechbrain_textsep.inference.base import BaseQuerySeparator, FileResult
from speechbrain_textsep.inference.clapsep import CLAPSepSeparator
from speechbrain_textsep.inference.interfaces import INTERFACES, load_separator
from speechbrain_textsep.inference.queries import Query
from speechbrain_textsep.inference.separator import QuerySeparator
from speechbrain_textsep.inference.weaksup import WeakSupQuerySeparator

__all__ = [
    "INTERFACES",
    "BaseQuerySeparator",
    "CLAPSepSeparator",
    "FileResult",
    "Query",
    "QuerySeparator",
    "WeakSupQuerySeparator",
    "load_separator",
]
