"""Conversion of checkpoints from other implementations into model folders.

- :func:`import_clipsep_checkpoint`: a CLIPSep / CLIPSep-NIT checkpoint of the
  authors' code (sony/CLIPSep: ``best_model.pt`` and ``train-args.json``) to a
  folder for :meth:`speechbrain_textsep.inference.QuerySeparator.from_hparams`.
- :func:`import_clapsep_checkpoint`: the authors' CLAPSep Lightning checkpoint
  (Aisaka0v0/CLAPSep) to a folder for
  :meth:`speechbrain_textsep.inference.CLAPSepSeparator.from_hparams`.

Both write the folder with
:func:`speechbrain_textsep.inference.model_folder.write_model_folder`.
"""

from speechbrain_textsep.convert.clapsep_checkpoint import (  # noqa: E402
    import_clapsep_checkpoint,
)
from speechbrain_textsep.convert.clipsep_checkpoint import (
    CheckpointImportError,
    import_clipsep_checkpoint,
)

__all__ = [
    "CheckpointImportError",
    "import_clapsep_checkpoint",
    "import_clipsep_checkpoint",
]
