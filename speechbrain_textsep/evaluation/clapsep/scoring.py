"""The per-item scores of the CLAPSep evaluation, and their table.

The paper's equation (15) defines SDR as the plain ratio
``10 log10(|s|^2 / |s - s_hat|^2)``, but the numbers of its tables come from
torchmetrics' ``signal_distortion_ratio``, the BSS Eval v3 SDR with a 512-tap
distortion filter (``sdr_bss_v3``, computed by
:func:`~speechbrain_textsep.evaluation.metrics.bss_eval_v3_sdr`). It is *not*
museval's v4 "images" SDR of the CLIPSep protocol (``sdr_bss_v4``), which has
no distortion filter and equals the plain SDR. SI-SDR is torchmetrics'
``scale_invariant_signal_distortion_ratio`` *without* zero-mean
(:func:`si_sdr_no_zero_mean`), as in the paper's equation (16). The rows also
hold the plain SDR (``sdr_plain``,
:func:`~speechbrain_textsep.evaluation.metrics.sdr`: what AudioSep calls
"SDR") for comparison with other papers. Improvements are over the mixture.

Authors
 * speechbrain-textsep contributors
"""

import torch

from speechbrain_textsep.evaluation.metrics import bss_eval_v3_sdr, sdr

__all__ = [
    "SCORE_KEYS",
    "SDR_DEFINITION",
    "clapsep_metrics",
    "results_table",
    "si_sdr_no_zero_mean",
]

#: ``(score, score of the mixture, improvement)`` keys of the per-item rows
#: (names of :mod:`speechbrain_textsep.utils.metric_keys`).
SCORE_KEYS = (
    ("sdr_bss_v3", "sdr_bss_v3_mixture", "sdri_bss_v3"),
    ("si_sdr_nzm", "si_sdr_nzm_mixture", "si_sdri_nzm"),
    ("sdr_plain", "sdr_plain_mixture", "sdri_plain"),
)
#: Which measure every key holds (written into the summary).
SDR_DEFINITION = (
    "sdr_bss_v3/sdri_bss_v3: BSS Eval v3 SDR (torchmetrics signal_distortion_"
    "ratio = bss_eval_sources SDR: projection onto the reference filtered by the "
    "best 512-tap FIR filter, whole clip), as the CLAPSep paper's tables; "
    "si_sdr_nzm/si_sdri_nzm: SI-SDR without zero-mean (torchmetrics scale_invariant_"
    "signal_distortion_ratio, the paper's eq. 16); sdr_plain/sdri_plain: plain "
    "SDR 10 log10(|s|^2/|s - s_hat|^2) (the paper's eq. 15, AudioSep's 'SDR'); "
    "*_mixture: score of the unprocessed mixture; improvements over the 0 dB "
    "mixture"
)


def si_sdr_no_zero_mean(estimate, reference):
    """SI-SDR as torchmetrics without zero-mean (the paper's equation 16).

    ``a = (<s_hat, s> + eps) / (|s|^2 + eps)``,
    ``SI-SDR = 10 log10((|a s|^2 + eps) / (|a s - s_hat|^2 + eps))`` with the
    ``eps`` of float32, in float64. Unlike
    :func:`~speechbrain_textsep.evaluation.metrics.si_sdr` (Le Roux et al.,
    both signals made zero-mean first), a DC offset counts as distortion.

    Arguments
    ---------
    estimate : torch.Tensor
        ``[..., L]``.
    reference : torch.Tensor
        ``[..., L]``.

    Returns
    -------
    torch.Tensor
        ``[...]`` float64 SI-SDR in dB.

    Example
    -------
    >>> s = torch.tensor([1.0, -1.0, 1.0, -1.0])
    >>> e = torch.tensor([1.0, 1.0, -1.0, -1.0])
    >>> round(si_sdr_no_zero_mean(2 * s + 0.2 * e, s).item(), 4)
    20.0
    >>> round(si_sdr_no_zero_mean(s + 0.1, s).item(), 4)  # an offset of -20 dB
    20.0
    """
    eps = torch.finfo(torch.float32).eps
    est, ref = estimate.double(), reference.double()
    alpha = ((est * ref).sum(-1, keepdim=True) + eps) / (
        ref.pow(2).sum(-1, keepdim=True) + eps
    )
    scaled = alpha * ref
    ratio = (scaled.pow(2).sum(-1) + eps) / ((scaled - est).pow(2).sum(-1) + eps)
    return 10 * torch.log10(ratio)


def clapsep_metrics(estimate, target, mixture):
    """The scores of one separation: scores, mixture scores, improvements.

    Arguments
    ---------
    estimate : torch.Tensor
        ``[L]`` separated target.
    target : torch.Tensor
        ``[L]`` reference.
    mixture : torch.Tensor
        ``[L]`` input mixture.

    Returns
    -------
    dict
        Floats ``sdr_bss_v3, sdr_bss_v3_mixture, si_sdr_nzm, si_sdr_nzm_mixture,
        sdr_plain, sdr_plain_mixture`` (of the estimate and of the mixture)
        and ``sdri_bss_v3, si_sdri_nzm, sdri_plain`` (see :data:`SDR_DEFINITION`).

    Example
    -------
    >>> s = torch.tensor([1.0, -1.0, 1.0, -1.0] * 200)
    >>> n = torch.tensor([1.0, 1.0, -1.0, -1.0] * 200)
    >>> scores = clapsep_metrics(s + 0.1 * n, s, s + n)
    >>> round(scores["sdri_plain"], 3), round(scores["si_sdri_nzm"], 3)
    (20.0, 20.0)
    """
    estimate, target, mixture = (x.reshape(-1) for x in (estimate, target, mixture))
    if not (estimate.shape == target.shape == mixture.shape):
        raise ValueError(
            "estimate, target and mixture must have the same length, got "
            f"{estimate.numel()}, {target.numel()} and {mixture.numel()}"
        )
    pair = torch.stack([estimate, mixture]).cpu().double()
    reference = target.cpu().double().expand_as(pair)
    values = {
        "sdr_bss_v3": bss_eval_v3_sdr(pair, reference),
        "si_sdr_nzm": si_sdr_no_zero_mean(pair, reference),
        "sdr_plain": sdr(pair, reference),
    }
    scores = {}
    for key, mixture_key, _ in SCORE_KEYS:
        scores[key] = float(values[key][0])
        scores[mixture_key] = float(values[key][1])
    for key, mixture_key, improvement_key in SCORE_KEYS:
        scores[improvement_key] = scores[key] - scores[mixture_key]
    return scores


def results_table(results, metrics=("sdri_bss_v3", "si_sdri_nzm", "sdri_plain")):
    """A Markdown table of the results of an evaluation.

    One row per condition, ``mean ± std`` of each metric (dB); the columns
    are named by their metric keys.

    Arguments
    ---------
    results : dict
        What ``evaluate_clapsep_benchmark`` returned (or its
        ``summary.json``).
    metrics : sequence of str
        Summary keys to show.

    Returns
    -------
    str

    Example
    -------
    >>> stats = {"mean": 1.5, "std": 0.25, "count": 4}
    >>> print(results_table({"conditions": {"text_P": {"sdri_bss_v3": stats}}},
    ...                     metrics=["sdri_bss_v3"]))
    | condition | n | sdri_bss_v3 (dB) |
    |---|---|---|
    | text_P | 4 | 1.50 ± 0.25 |
    """
    header = ["condition", "n"] + [f"{m} (dB)" for m in metrics]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for name, summary in results["conditions"].items():
        cells = [name, str(summary[metrics[0]]["count"])]
        cells += [
            f"{summary[m]['mean']:.2f} ± {summary[m]['std']:.2f}" for m in metrics
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
