"""Conversion of checkpoints from other implementations into model folders.

- :func:`import_clipsep_checkpoint`: a CLIPSep / CLIPSep-NIT checkpoint of the
  authors' code (sony/CLIPSep: ``best_model.pt`` and ``train-args.json``) to a
  folder for :meth:`speechbrain_textsep.inference.QuerySeparator.from_hparams`.
"""

from speechbrain_textsep.convert.clipsep_checkpoint import (
    CheckpointImportError,
    import_clipsep_checkpoint,
)

__all__ = ["CheckpointImportError", "import_clipsep_checkpoint"]
