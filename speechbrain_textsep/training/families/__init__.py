"""The model families of the experiment runner, by the recipe's ``model_kind``.

See :mod:`speechbrain_textsep.training.runner` for how a family plugs in.
"""

from speechbrain_textsep.training.families.base import Family
from speechbrain_textsep.training.families.clap import CLAPFamily
from speechbrain_textsep.training.families.clapsep import CLAPSepFamily
from speechbrain_textsep.training.families.clipsep import CLIPSepFamily
from speechbrain_textsep.training.families.weaksup import WeakSupFamily

__all__ = ["FAMILIES", "Family", "family_class"]

#: ``model_kind`` -> the :class:`Family` subclass that trains it.
FAMILIES = {
    kind: family
    for family in (CLIPSepFamily, CLAPSepFamily, CLAPFamily, WeakSupFamily)
    for kind in family.kinds
}


def family_class(kind):
    """The family of a ``model_kind``.

    Example
    -------
    >>> family_class("labelsep").__name__, family_class("clap").__name__
    ('CLIPSepFamily', 'CLAPFamily')
    """
    if kind not in FAMILIES:
        raise ValueError(
            f"no training family for model_kind {kind!r} (known: {', '.join(FAMILIES)})"
        )
    return FAMILIES[kind]
