"""Captions of class labels for the data pipelines (``data`` layer entry point).

The one caption builder of the package, :func:`label_caption` with its
default :data:`CAPTION_TEMPLATE` (``"The sound of {}"``), is defined in
:mod:`speechbrain_textsep.utils.captions` so that the query encoders, which
sit below ``data`` in the layer order, can use it too; it is re-exported
here, so ``from speechbrain_textsep.data.captions import label_caption``
works for the data, evaluation and training code.

Example
-------
>>> label_caption("acoustic_guitar")
'The sound of acoustic guitar'

Authors
 * speechbrain-textsep contributors
"""

from speechbrain_textsep.utils.captions import CAPTION_TEMPLATE, label_caption

__all__ = ["CAPTION_TEMPLATE", "label_caption"]
