"""Mask targets and losses of CLIPSep and CLIPSep-NIT.

All tensors live in the warped magnitude domain: ``mix`` is ``[B, F, T]``,
``sources`` and masks are ``[B, N, F, T]``.

Authors
 * speechbrain-textsep contributors
"""

import torch
import torch.nn.functional as F
from speechbrain.nnet.losses import PitWrapper

BCE_EPS = 1e-7


def mixture_weight(mix):
    """Time-frequency weight ``clamp(log1p(|X|), 1e-3, 10)`` of the mask losses.

    Arguments
    ---------
    mix : torch.Tensor
        ``[B, F, T]`` mixture magnitude.

    Returns
    -------
    torch.Tensor
        ``[B, 1, F, T]`` weight, broadcastable over sources.

    Example
    -------
    >>> mixture_weight(torch.tensor([[[0.0, 1e5]]]))
    tensor([[[[1.0000e-03, 1.0000e+01]]]])
    """
    return torch.log1p(mix).clamp(1e-3, 10)[:, None]


def binary_mask_targets(sources, mix):
    """Binary masks ``1[|S_n| > 0.5 |X|]``.

    Example
    -------
    >>> sources, mix = torch.tensor([[[[1.0, 0.2]]]]), torch.tensor([[[1.5, 1.0]]])
    >>> binary_mask_targets(sources, mix)
    tensor([[[[1., 0.]]]])
    """
    return (sources > 0.5 * mix[:, None]).to(sources.dtype)


def ratio_mask_targets(sources, mix, eps=1e-10):
    """Ratio masks ``clamp(|S_n| / |X|, 0, 1)``.

    Example
    -------
    >>> ratio_mask_targets(torch.tensor([[[[1.0, 0.2]]]]), torch.tensor([[[2.0, 0.1]]]))
    tensor([[[[0.5000, 1.0000]]]])
    """
    return (sources / (mix[:, None] + eps)).clamp(0, 1)


def mask_loss(probs, targets, weight, kind="bce"):
    """Weighted per-item mask loss, averaged over frequency and time.

    Arguments
    ---------
    probs : torch.Tensor
        ``[B, ..., F, T]`` predicted masks in [0, 1].
    targets : torch.Tensor
        Target masks of the same shape.
    weight : torch.Tensor
        Weight broadcastable to ``probs``.
    kind : str
        ``"bce"`` (binary masks, the paper) or ``"l1"`` (ratio masks).

    Returns
    -------
    torch.Tensor
        ``[B, ...]`` loss of every item.

    Example
    -------
    >>> p = torch.tensor([[[0.5, 0.5]]])
    >>> t = torch.tensor([[[1.0, 0.0]]])
    >>> mask_loss(p, t, torch.ones(1)).item() == -torch.log(torch.tensor(0.5)).item()
    True
    """
    probs, targets = probs.float(), targets.float()
    if kind == "bce":
        # Written out because F.binary_cross_entropy refuses to run under CUDA
        # autocast. Clamping the probabilities (not the logs) keeps gradients
        # finite where NIT's min(1, .) reaches exactly 0 or 1.
        probs = probs.clamp(BCE_EPS, 1 - BCE_EPS)
        per_bin = -(targets * torch.log(probs) + (1 - targets) * torch.log1p(-probs))
    elif kind == "l1":
        per_bin = (probs - targets).abs()
    else:
        raise ValueError(f"unknown mask loss {kind!r}: use 'bce' or 'l1'")
    return (per_bin * weight).mean(dim=(-2, -1))


def clipsep_loss(logits, targets, weight, kind="bce"):
    """CLIPSep loss: the weighted mask loss averaged over batch and sources.

    Arguments
    ---------
    logits : torch.Tensor
        ``[B, N, F, T]`` mask logits.
    targets : torch.Tensor
        ``[B, N, F, T]`` target masks.
    weight : torch.Tensor
        ``[B, 1, F, T]`` weight from :func:`mixture_weight`.
    kind : str
        ``"bce"`` or ``"l1"``.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Example
    -------
    >>> loss = clipsep_loss(torch.zeros(1, 2, 1, 1), torch.ones(1, 2, 1, 1),
    ...                     torch.ones(1, 1, 1, 1))
    >>> round(loss.item(), 4)  # -log(0.5)
    0.6931
    """
    if kind == "bce":
        per_bin = F.binary_cross_entropy_with_logits(
            logits.float(), targets.float(), reduction="none"
        )
        return (per_bin * weight).mean()
    return mask_loss(logits.sigmoid(), targets, weight, kind).mean()


def nit_loss(
    query_logits,
    noise_logits,
    targets,
    weight,
    kind="bce",
    reg_weight=0.1,
    reg_threshold=0.25,
):
    """Noise invariant training loss of CLIPSep-NIT (two sources, two noise heads).

    With query masks ``sigmoid(x_n)`` and noise masks ``sigmoid(nu_k)``, the
    combined masks are ``M_nk = min(1, sigmoid(x_n) + sigmoid(nu_k))``; the loss
    takes the better of the two assignments of noise heads to sources, per
    item, and adds ``reg_weight * relu(mean(sigmoid(nu_1) + sigmoid(nu_2)) -
    reg_threshold)`` so the noise heads do not explain everything.

    Arguments
    ---------
    query_logits : torch.Tensor
        ``[B, 2, F, T]``.
    noise_logits : torch.Tensor
        ``[B, 2, F, T]``.
    targets : torch.Tensor
        ``[B, 2, F, T]`` target masks of the two sources.
    weight : torch.Tensor
        ``[B, 1, F, T]``.
    kind : str
        ``"bce"`` or ``"l1"``.
    reg_weight : float
        Weight of the noise regulariser (0.1).
    reg_threshold : float
        Allowed mean noise-mask activity (0.25).

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Example
    -------
    >>> q = torch.full((1, 2, 1, 1), -100.0)   # query masks ~0
    >>> n = torch.tensor([100.0, -100.0]).view(1, 2, 1, 1)  # noise masks 1, 0
    >>> t = torch.tensor([0.0, 1.0]).view(1, 2, 1, 1)
    >>> w = torch.ones(1, 1, 1, 1)
    >>> # best assignment: source 2 <- noise 1 (exact), source 1 <- noise 2 (exact)
    >>> round(nit_loss(q, n, t, w).item(), 4)  # only the regulariser 0.1 * 0.75
    0.075
    """
    if query_logits.shape[1] != 2 or noise_logits.shape[1] != 2:
        raise ValueError(
            "noise invariant training is defined for 2 sources and 2 heads"
        )
    query = query_logits.float().sigmoid()
    noise = noise_logits.float().sigmoid()
    combined = torch.clamp(query[:, :, None] + noise[:, None, :], max=1.0)
    losses = mask_loss(
        combined, targets[:, :, None].expand_as(combined), weight[:, None], kind
    )  # [B, n, k]
    straight = (losses[:, 0, 0] + losses[:, 1, 1]) / 2
    crossed = (losses[:, 0, 1] + losses[:, 1, 0]) / 2
    invariant = torch.minimum(straight, crossed).mean()
    activity = (noise[:, 0] + noise[:, 1]).mean()
    return invariant + reg_weight * F.relu(activity - reg_threshold)


def _pit_base_loss(kind):
    """Per-bin loss for :class:`speechbrain.nnet.losses.PitWrapper`.

    PitWrapper calls ``base_loss(predictions, targets)`` on one item at a
    time, with the sources on the last axis. The time-frequency weight rides
    along in the targets: ``predictions`` is ``[1, F, T, N, N]`` (logits),
    ``targets`` is ``[2, F, T, N, N]`` with the target masks in row 0 and
    the mixture weight in row 1.
    """

    def base_loss(logits, targets_and_weight):
        targets, weight = targets_and_weight[0], targets_and_weight[1]
        logits = logits[0].float()
        if kind == "bce":
            per_bin = F.binary_cross_entropy_with_logits(
                logits, targets.float(), reduction="none"
            )
        elif kind == "l1":
            per_bin = (logits.sigmoid() - targets.float()).abs()
        else:
            raise ValueError(f"unknown mask loss {kind!r}: use 'bce' or 'l1'")
        return per_bin * weight

    return base_loss


def pit_mask_loss(logits, targets, weight, kind="bce"):
    """Permutation-invariant weighted mask loss of the PIT baseline.

    For every item, the outputs are assigned to the sources by the
    permutation with the smallest mean weighted mask loss (for 2 sources:
    ``min([L(o1, s1) + L(o2, s2)] / 2, [L(o1, s2) + L(o2, s1)] / 2)``, each
    ``L`` the weighted BCE averaged over frequency and time, as the authors'
    ``PITSep``); the loss is the mean over the batch. The search is
    SpeechBrain's :class:`~speechbrain.nnet.losses.PitWrapper`.

    Arguments
    ---------
    logits : torch.Tensor
        ``[B, N, F, T]`` mask logits of the ``N`` outputs.
    targets : torch.Tensor
        ``[B, N, F, T]`` target masks of the ``N`` sources.
    weight : torch.Tensor
        ``[B, 1, F, T]`` weight from :func:`mixture_weight`.
    kind : str
        ``"bce"`` (binary masks) or ``"l1"`` (ratio masks).

    Returns
    -------
    loss : torch.Tensor
        Scalar loss.
    perms : list of tuple
        For every item, ``perms[b][n]`` is the output assigned to source ``n``.

    Example
    -------
    >>> logits = torch.tensor([-100.0, 100.0]).view(1, 2, 1, 1)  # outputs 0, 1
    >>> targets = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)      # swapped
    >>> loss, perms = pit_mask_loss(logits, targets, torch.ones(1, 1, 1, 1))
    >>> round(loss.item(), 6), perms
    (0.0, [(1, 0)])
    """
    if logits.shape != targets.shape or logits.dim() != 4:
        raise ValueError(
            "logits and targets must both be [batch, sources, freq, time], got "
            f"{tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    pit = PitWrapper(_pit_base_loss(kind))
    predictions = logits.permute(0, 2, 3, 1)[:, None]  # [B, 1, F, T, N]
    weight = weight.to(targets.dtype).expand_as(targets)
    packed = torch.stack([targets, weight], dim=1).permute(0, 1, 3, 4, 2)
    losses, perms = pit(predictions, packed)  # [B, 2, F, T, N]
    # PitWrapper's loss_mat[i, j] is the loss of output j against source i
    # and a permutation p assigns output p[i] to source i.
    return losses.mean(), [tuple(p) for p in perms]
