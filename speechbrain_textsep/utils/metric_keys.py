"""The names of the separation metrics, the same in every summary and table.

Every summary JSON, per-item CSV, README table and model card of the package
uses these keys, so a figure always says which measure it is. A key ending in
``i`` is an improvement: the score of the estimate minus the score of the
unprocessed mixture against the same reference.

Authors
 * speechbrain-textsep contributors
"""

__all__ = ["METRIC_KEYS", "describe"]

#: key -> what it measures (dB unless said otherwise).
METRIC_KEYS = {
    "sdr_plain": "plain SDR of the estimate (10 log10 of reference energy over "
    "error energy: the SNR, no projection)",
    "sdri_plain": "plain SDR improvement over the mixture",
    "si_sdr": "scale-invariant SDR of the estimate (Le Roux et al., 2019)",
    "si_sdri": "SI-SDR improvement over the mixture",
    "sdr_bss_v4": "BSS Eval v4 SDR (museval, images flavour, one window over "
    "the whole clip: the CLIPSep protocol)",
    "sir_bss_v4": "BSS Eval v4 SIR of the target",
    "sar_bss_v4": "BSS Eval v4 SAR of the target",
    "sdri_bss_v4": "BSS Eval v4 SDR improvement over the mixture",
    "sdr_bss_v4_mixture": "BSS Eval v4 SDR of the mixture itself",
    "si_sdr_nzm": "SI-SDR without removing the mean first (torchmetrics' "
    "default, the CLAPSep paper's eq. 16): a DC offset counts as distortion",
    "si_sdri_nzm": "si_sdr_nzm improvement over the mixture",
    "sdr_bss_v3": "BSS Eval v3 SDR (bss_eval_sources, 512-tap distortion "
    "filter, as mir_eval / torchmetrics: the CLAPSep tables)",
    "sdri_bss_v3": "BSS Eval v3 SDR improvement over the mixture",
    "sdr_plain_mixture": "plain SDR of the mixture itself",
    "si_sdr_mixture": "SI-SDR of the mixture itself",
    "si_sdr_nzm_mixture": "si_sdr_nzm of the mixture itself",
    "sdr_bss_v3_mixture": "BSS Eval v3 SDR of the mixture itself",
    "loss": "the training objective of the model (lower is better)",
    "a2t_top1": "audio-to-text retrieval: fraction of clips whose most similar "
    "caption is their own (CLAP)",
    "t2a_top1": "text-to-audio retrieval: fraction of captions whose most "
    "similar clip has that caption (CLAP)",
    "t2a_rprec": "text-to-audio R-precision (CLAP)",
    "retrieval": "mean of a2t_top1 and t2a_rprec (CLAP model selection)",
}


def describe(key):
    """What a metric key measures.

    Arguments
    ---------
    key : str
        A key of :data:`METRIC_KEYS`.

    Returns
    -------
    str

    Example
    -------
    >>> describe("si_sdri")
    'SI-SDR improvement over the mixture'
    >>> describe("sdri")
    Traceback (most recent call last):
    ...
    KeyError: "unknown metric key 'sdri' (known: sdr_plain, sdri_plain, si_sdr, ..."
    """
    if key not in METRIC_KEYS:
        known = ", ".join(list(METRIC_KEYS)[:3])
        raise KeyError(f"unknown metric key {key!r} (known: {known}, ...")
    return METRIC_KEYS[key]
