"""The error raised when the files of a LAION-CLAP cannot be obtained.

Shared by the checkpoint, tokenizer and hub modules of the CLAP encoder
(:mod:`speechbrain_textsep.encoders.clap_checkpoint`,
:mod:`speechbrain_textsep.encoders.clap_tokenizer`,
:mod:`speechbrain_textsep.encoders.clap_hub`); it is importable from
:mod:`speechbrain_textsep.encoders.clap` too.

Authors
 * speechbrain-textsep contributors
"""

__all__ = ["CLAPWeightsUnavailableError"]


class CLAPWeightsUnavailableError(RuntimeError):
    """CLAP weights or tokenizer files could not be obtained.

    Raised when a checkpoint or tokenizer named by a hub name is neither in
    the local cache nor downloadable (typically: offline, ``HF_HUB_OFFLINE=1``
    and never downloaded), or when a local file or folder is missing.

    Example
    -------
    >>> issubclass(CLAPWeightsUnavailableError, RuntimeError)
    True
    """
