"""Losses of the weakly-supervised bi-modal separation (Mahmud et al., 2024).

A training item holds N mixtures x_1..x_N of sources, each with a caption
T_n and P single-source prompts t_{n,k} weighted c_{n,k}
(:func:`~speechbrain_textsep.utils.caption_split.sample_prompts`); the
separator sees their mean x (the "mixture of mixtures") and returns sigmoid
masks M(x, query) on its STFT magnitude |X|. With
W(Y) = clamp(log1p(|Y|), 1e-3, 10) (:func:`magnitude_weights`, SPEC
section 3):

- :func:`url_loss`, the unsupervised reconstruction of each mixture from its
  caption: sum_n mean(W(X) * | M(x, T_n) |X| - |X_n| |);
- :func:`crl_loss`, the consistency reconstruction of each mixture from its
  single-source prompts: sum_n mean(W(X_n) * | sum_k c_{n,k} M(x, t_{n,k})
  |X| - |X_n| |) (the weight is the one of the mixture reconstructed, as
  the authors compute it);
- :func:`contrastive_loss`, the bi-modal semantic similarity: the frozen
  CLAP audio embedding of each prompt's separated output against the
  prompts' CLAP text embeddings, cross-entropy audio -> text per mixture
  index n over the batch;
- :func:`weak_loss`, their weighted total 0.5 L_CNT + 5 (L_CRL + L_URL), and
  :func:`semi_supervised_loss`, lambda_s L_supervised + lambda_u L_weak.

Shapes: ``B`` items, ``N`` mixtures per item, ``P`` prompts per mixture,
``F x T`` STFT bins, ``D`` embedding size. All losses are scalars.

Authors
 * speechbrain-textsep contributors
"""

import math

import torch
import torch.nn.functional as F

from speechbrain_textsep.training.losses import mixture_weight

__all__ = [
    "contrastive_loss",
    "crl_loss",
    "magnitude_weights",
    "semi_supervised_loss",
    "url_loss",
    "weak_loss",
]

#: Two prompt text embeddings whose cosine similarity is at least
#: ``1 - DUPLICATE_TOL`` are the same prompt (see :func:`contrastive_loss`).
DUPLICATE_TOL = 1e-5


def _check_tensor(name, tensor, dims, letters):
    """Raises a clear error unless ``tensor`` is a float tensor of ``dims`` dims."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(tensor).__name__}")
    if tensor.dim() != dims:
        raise ValueError(
            f"{name} must have shape [{', '.join(letters)}], got {tuple(tensor.shape)}"
        )
    if not tensor.is_floating_point():
        raise TypeError(f"{name} must be a float tensor, got {tensor.dtype}")


def _check_same(name, tensor, expected, reference):
    """Raises ValueError unless ``tensor.shape == expected``."""
    if tuple(tensor.shape) != tuple(expected):
        raise ValueError(
            f"{name} has shape {tuple(tensor.shape)}, expected {tuple(expected)} "
            f"to match {reference}"
        )


def _check_magnitudes(mixture_mag, source_mags):
    """Validates ``mixture_mag [B, F, T]`` against ``source_mags [B, N, F, T]``."""
    _check_tensor("mixture_mag", mixture_mag, 3, "BFT")
    _check_tensor("source_mags", source_mags, 4, "BNFT")
    b, _, f, t = source_mags.shape
    _check_same("mixture_mag", mixture_mag, (b, f, t), "source_mags [B, N, F, T]")


def magnitude_weights(mag):
    """Time-frequency loss weights ``clamp(log1p(mag), 1e-3, 10)``.

    The weight of CLIPSep's losses
    (:func:`~speechbrain_textsep.training.losses.mixture_weight`), here of
    the shape of ``mag``.

    Arguments
    ---------
    mag : torch.Tensor
        Magnitudes of any shape with at least one dimension.

    Returns
    -------
    torch.Tensor
        Weights of the shape of ``mag``.

    Example
    -------
    >>> magnitude_weights(torch.tensor([[0.0, math.e - 1, 1e9]]))
    tensor([[1.0000e-03, 1.0000e+00, 1.0000e+01]])
    """
    return mixture_weight(mag).squeeze(1)


def url_loss(caption_masks, mixture_mag, source_mags):
    """Unsupervised reconstruction loss L_URL of each mixture from its caption.

    sum_n mean_{b, f, t}(W(X) * | M(x, T_n) |X| - |X_n| |), with W the
    :func:`magnitude_weights` of the mixture of mixtures.

    Arguments
    ---------
    caption_masks : torch.Tensor
        ``[B, N, F, T]`` sigmoid masks M(x, T_n) of the N captions.
    mixture_mag : torch.Tensor
        ``[B, F, T]`` magnitude |X| of x, the mean of the N mixtures.
    source_mags : torch.Tensor
        ``[B, N, F, T]`` magnitudes |X_n| of the N mixtures.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Example
    -------
    >>> mix = torch.tensor([[[2.0, 0.0]]])  # [B=1, F=1, T=2]
    >>> sources = torch.tensor([[[[1.0, 0.0]], [[1.5, 0.0]]]])  # N=2
    >>> masks = torch.full((1, 2, 1, 2), 0.5)
    >>> round(url_loss(masks, mix, sources).item(), 4)  # log(3) * (0 + 0.5) / 2
    0.2747
    """
    _check_magnitudes(mixture_mag, source_mags)
    _check_tensor("caption_masks", caption_masks, 4, "BNFT")
    _check_same("caption_masks", caption_masks, source_mags.shape, "source_mags")
    weight = magnitude_weights(mixture_mag)[:, None]
    error = weight * (caption_masks * mixture_mag[:, None] - source_mags).abs()
    return error.mean(dim=(0, 2, 3)).sum()


def crl_loss(prompt_masks, prompt_weights, mixture_mag, source_mags):
    """Consistency reconstruction loss L_CRL of each mixture from its prompts.

    sum_n mean_{b, f, t}(W(X_n) * | sum_k c_{n,k} M(x, t_{n,k}) |X| - |X_n| |),
    with W the :func:`magnitude_weights` of the mixture reconstructed and
    c_{n,k} the prompt weights (1/copies of a duplicated prompt).

    Arguments
    ---------
    prompt_masks : torch.Tensor
        ``[B, N, P, F, T]`` sigmoid masks M(x, t_{n,k}) of the P prompts of
        each mixture.
    prompt_weights : torch.Tensor
        ``[B, N, P]`` weights c_{n,k}.
    mixture_mag : torch.Tensor
        ``[B, F, T]`` magnitude |X| of the mixture of mixtures.
    source_mags : torch.Tensor
        ``[B, N, F, T]`` magnitudes |X_n| of the N mixtures.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Example
    -------
    >>> mix = torch.tensor([[[2.0]]])  # [B=1, F=1, T=1]
    >>> sources = torch.tensor([[[[1.0]]]])  # N=1
    >>> masks = torch.tensor([[[[[0.2]], [[0.6]]]]])  # P=2
    >>> weights = torch.tensor([[[1.0, 0.5]]])
    >>> round(crl_loss(masks, weights, mix, sources).item(), 4)  # log(2) * 0
    0.0
    """
    _check_magnitudes(mixture_mag, source_mags)
    _check_tensor("prompt_masks", prompt_masks, 5, "BNPFT")
    _check_tensor("prompt_weights", prompt_weights, 3, "BNP")
    b, n, f, t = source_mags.shape
    p = prompt_masks.shape[2]
    _check_same("prompt_masks", prompt_masks, (b, n, p, f, t), "source_mags")
    _check_same("prompt_weights", prompt_weights, (b, n, p), "prompt_masks")
    mask_sum = (prompt_weights[..., None, None] * prompt_masks).sum(dim=2)
    weight = magnitude_weights(source_mags)
    error = weight * (mask_sum * mixture_mag[:, None] - source_mags).abs()
    return error.mean(dim=(0, 2, 3)).sum()


def _check_scale(logit_scale):
    """``logit_scale`` as a positive finite number or 0-dim tensor."""
    if isinstance(logit_scale, torch.Tensor):
        if logit_scale.numel() != 1:
            raise ValueError(
                f"logit_scale must be a scalar, got shape {tuple(logit_scale.shape)}"
            )
        value = float(logit_scale)
        logit_scale = logit_scale.reshape(())
    elif isinstance(logit_scale, (int, float)) and not isinstance(logit_scale, bool):
        value = float(logit_scale)
    else:
        raise TypeError(f"logit_scale must be a number, got {logit_scale!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"logit_scale must be positive and finite, got {value}")
    return logit_scale


def _contrastive_inputs(audio_embeddings, text_embeddings, prompt_weights):
    """Validates the inputs of :func:`contrastive_loss`."""
    _check_tensor("audio_embeddings", audio_embeddings, 4, "BNPD")
    _check_tensor("text_embeddings", text_embeddings, 4, "BNPD")
    _check_same(
        "text_embeddings", text_embeddings, audio_embeddings.shape, "audio_embeddings"
    )
    if prompt_weights is not None:
        _check_tensor("prompt_weights", prompt_weights, 3, "BNP")
        _check_same(
            "prompt_weights",
            prompt_weights,
            audio_embeddings.shape[:3],
            "the embeddings [B, N, P, D]",
        )
        if (prompt_weights < 0).any() or not (prompt_weights.sum(dim=(0, 2)) > 0).all():
            raise ValueError(
                "prompt_weights must be non-negative with a positive sum for "
                "each mixture index n"
            )


def _one_mixture_index(audio, text, logit_scale, weights):
    """Cross-entropy audio -> text over ``[R, D]`` rows (duplicates masked)."""
    with torch.no_grad():
        same = text @ text.T >= 1 - DUPLICATE_TOL
        same.fill_diagonal_(False)
    logits = logit_scale * audio @ text.T
    logits = logits.masked_fill(same, float("-inf"))
    targets = torch.arange(len(audio), device=audio.device)
    losses = F.cross_entropy(logits, targets, reduction="none")
    if weights is None:
        return losses.mean()
    return (losses * weights).sum() / weights.sum()


def contrastive_loss(
    audio_embeddings, text_embeddings, logit_scale, prompt_weights=None
):
    """Bi-modal semantic similarity loss L_CNT (audio -> text cross-entropy).

    For each mixture index n, the B * P audio embeddings a (CLAP audio
    embedding of each prompt's separated output) are scored against the
    B * P text embeddings u of the prompts, logits = s a u^T with s CLAP's
    own ``exp(logit_scale_a)``; positives are on the diagonal (each output
    with its own prompt). The cross-entropy is averaged over the rows and
    summed over n. Both embeddings are L2-normalised here.

    Duplicated prompts are not negatives of themselves: a column whose text
    embedding is the row's own prompt's (cosine similarity at least
    ``1 - DUPLICATE_TOL``: the same text, a copy added by
    :func:`~speechbrain_textsep.utils.caption_split.sample_prompts` or the
    same class in another item) is left out of that row's softmax. (The
    authors' code keeps them as negatives.)

    Arguments
    ---------
    audio_embeddings : torch.Tensor
        ``[B, N, P, D]`` audio embeddings of the separated outputs.
    text_embeddings : torch.Tensor
        ``[B, N, P, D]`` text embeddings of the prompts.
    logit_scale : float or torch.Tensor
        s, the multiplier of the cosine similarities (CLAP's
        ``exp(logit_scale_a)``, :attr:`CLAPQueryEncoder.logit_scale`), > 0.
    prompt_weights : torch.Tensor or None
        ``[B, N, P]`` row weights (e.g. 1/copies, so that every clause counts
        once); None: every row counts the same, as the authors.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Example
    -------
    >>> text = torch.eye(2).reshape(2, 1, 1, 2)  # B=2 items, N=1, P=1
    >>> round(contrastive_loss(text, text, 1.0).item(), 4)  # -log(e / (e + 1))
    0.3133
    """
    _contrastive_inputs(audio_embeddings, text_embeddings, prompt_weights)
    logit_scale = _check_scale(logit_scale)
    audio = F.normalize(audio_embeddings, dim=-1)
    text = F.normalize(text_embeddings, dim=-1)
    b, n, p, d = audio.shape
    total = audio.new_zeros(())
    for index in range(n):
        weights = None
        if prompt_weights is not None:
            weights = prompt_weights[:, index].reshape(b * p)
        total = total + _one_mixture_index(
            audio[:, index].reshape(b * p, d),
            text[:, index].reshape(b * p, d),
            logit_scale,
            weights,
        )
    return total


def _check_weight(name, weight):
    """``weight`` as a non-negative finite float."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise TypeError(f"{name} must be a number, got {weight!r}")
    if not math.isfinite(weight) or weight < 0:
        raise ValueError(f"{name} must be non-negative and finite, got {weight}")
    return float(weight)


def _weighted_sum(terms):
    """Sum of weight * loss over ``(name, loss, weight)`` (None: weight 0)."""
    total = None
    for name, loss, weight in terms:
        if loss is None:
            if weight != 0:
                raise ValueError(f"{name} is None but its weight is {weight}")
            continue
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError(f"{name} must be a scalar loss tensor, got {loss!r}")
        term = weight * loss.reshape(())
        total = term if total is None else total + term
    return total


def weak_loss(url, crl, cnt, cnt_weight=0.5, rec_weight=5.0, crl_weight=None):
    """The weakly-supervised total: cnt_weight L_CNT + rec_weight (L_CRL + L_URL).

    The defaults are the paper's (0.5 and 5); the recipes set them in their
    hparams. ``crl_weight`` overrides the weight of L_CRL alone (the
    CLIPSep-style arm trains on L_URL only: ``cnt_weight=0, crl_weight=0``).
    A loss that is not computed may be None when its weight is 0.

    Arguments
    ---------
    url : torch.Tensor or None
        Scalar L_URL (:func:`url_loss`).
    crl : torch.Tensor or None
        Scalar L_CRL (:func:`crl_loss`).
    cnt : torch.Tensor or None
        Scalar L_CNT (:func:`contrastive_loss`).
    cnt_weight : float
        Weight of L_CNT.
    rec_weight : float
        Weight of the reconstruction losses L_URL and L_CRL.
    crl_weight : float or None
        Weight of L_CRL (None: ``rec_weight``).

    Returns
    -------
    torch.Tensor
        Scalar total.

    Raises
    ------
    ValueError
        A negative or non-finite weight, a None loss with a non-zero weight,
        a loss that is not a scalar tensor, or no loss at all.

    Example
    -------
    >>> one = torch.tensor(1.0)
    >>> weak_loss(url=one, crl=2 * one, cnt=4 * one)
    tensor(17.)
    >>> weak_loss(url=one, crl=None, cnt=None, cnt_weight=0, crl_weight=0)
    tensor(5.)
    """
    cnt_weight = _check_weight("cnt_weight", cnt_weight)
    rec_weight = _check_weight("rec_weight", rec_weight)
    crl_weight = rec_weight if crl_weight is None else crl_weight
    crl_weight = _check_weight("crl_weight", crl_weight)
    total = _weighted_sum(
        [
            ("url", url, rec_weight),
            ("crl", crl, crl_weight),
            ("cnt", cnt, cnt_weight),
        ]
    )
    if total is None:
        raise ValueError("weak_loss needs at least one of url, crl and cnt")
    return total


def semi_supervised_loss(supervised, weak, supervised_weight, weak_weight):
    """The semi-supervised objective lambda_s L_supervised + lambda_u L_weak.

    L_supervised is the mix-and-separate loss on single-source clips,
    L_weak the :func:`weak_loss` on captioned mixtures. A batch that holds
    only one kind gives None for the other, which then contributes nothing
    (alternating batches); the weights come from the recipe's hparams.

    Arguments
    ---------
    supervised : torch.Tensor or None
        Scalar supervised loss (None: no single-source part in this batch).
    weak : torch.Tensor or None
        Scalar weak loss (None: no mixture part in this batch).
    supervised_weight : float
        lambda_s.
    weak_weight : float
        lambda_u.

    Returns
    -------
    torch.Tensor
        Scalar total.

    Raises
    ------
    ValueError
        Both losses None, a bad weight, or a loss that is not a scalar.

    Example
    -------
    >>> semi_supervised_loss(torch.tensor(2.0), torch.tensor(3.0), 1.0, 0.5)
    tensor(3.5000)
    >>> semi_supervised_loss(None, torch.tensor(3.0), 1.0, 0.5)
    tensor(1.5000)
    """
    supervised_weight = _check_weight("supervised_weight", supervised_weight)
    weak_weight = _check_weight("weak_weight", weak_weight)
    if supervised is None and weak is None:
        raise ValueError("semi_supervised_loss needs a supervised or a weak loss")
    terms = []
    if supervised is not None:
        terms.append(("supervised", supervised, supervised_weight))
    if weak is not None:
        terms.append(("weak", weak, weak_weight))
    return _weighted_sum(terms)
