"""Access to laion_clap's model classes without its import-time downloads.

``import laion_clap`` runs ``laion_clap/training/data.py``, which downloads
three Hugging Face tokenizers (``bert-base-uncased``, ``roberta-base``,
``facebook/bart-base``) at import time, so it fails offline. The model code
lives in laion_clap's ``clap_module`` package, which laion_clap itself
imports as a top-level package by appending its own folder to ``sys.path``.
:func:`clap_module` does the same, without running ``laion_clap/__init__``:
the classes are laion_clap's own (CLAP, HTSAT, ClipLoss...), nothing is
replaced.

Authors
 * speechbrain-textsep contributors
"""

import importlib
import importlib.util
import sys


def clap_module():
    """laion_clap's ``clap_module`` package (CLAP, HTSAT, losses, configs).

    Returns
    -------
    module

    Example
    -------
    >>> clap = clap_module()
    >>> clap.htsat.HTSAT_Swin_Transformer.__name__
    'HTSAT_Swin_Transformer'
    """
    spec = importlib.util.find_spec("laion_clap")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("laion_clap is not installed: pip install laion_clap")
    folder = list(spec.submodule_search_locations)[0]
    if folder not in sys.path:
        sys.path.append(folder)
    module = importlib.import_module("clap_module")
    importlib.import_module("clap_module.htsat")
    return module
