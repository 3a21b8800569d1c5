"""Losses of the weakly-supervised bi-modal separation, against values
computed by hand (numpy loops over the formulas of SPEC section 3), and the
differentiable CLAP audio embedding that L_CNT backpropagates through."""

import math

import numpy as np
import pytest
import torch

from speechbrain_textsep.training.weaksup_losses import (
    contrastive_loss,
    crl_loss,
    magnitude_weights,
    semi_supervised_loss,
    url_loss,
    weak_loss,
)

pytestmark = pytest.mark.unit


def np_weight(mag):
    return np.clip(np.log1p(mag), 1e-3, 10)


def random_case(b=2, n=2, p=3, f=4, t=5, seed=0):
    rng = np.random.default_rng(seed)
    mix = rng.uniform(0, 3, (b, f, t))
    sources = rng.uniform(0, 3, (b, n, f, t))
    caption_masks = rng.uniform(0, 1, (b, n, f, t))
    prompt_masks = rng.uniform(0, 1, (b, n, p, f, t))
    prompt_weights = rng.choice([1.0, 0.5, 1 / 3], (b, n, p))
    return mix, sources, caption_masks, prompt_masks, prompt_weights


def tensors(*arrays):
    return [torch.tensor(a, dtype=torch.float64) for a in arrays]


# ------------------------------------------------------------- weights
def test_magnitude_weights_values_and_shape():
    mag = torch.tensor([[0.0, 1e-4, math.e - 1], [math.e**2 - 1, 1e5, 3.0]])
    expected = [[1e-3, 1e-3, 1.0], [2.0, 10.0, math.log(4.0)]]
    assert torch.allclose(magnitude_weights(mag), torch.tensor(expected))
    assert magnitude_weights(torch.rand(2, 3, 4, 5)).shape == (2, 3, 4, 5)


# ----------------------------------------------------------------- URL
def test_url_loss_by_hand():
    # B=1, N=2, F=1, T=2: |X| = [1, 3]
    mix = torch.tensor([[[1.0, 3.0]]])
    sources = torch.tensor([[[[0.5, 1.0]], [[0.0, 2.0]]]])
    masks = torch.tensor([[[[0.5, 0.5]], [[0.2, 1.0]]]])
    # n=0: |0.5 - 0.5| = 0, |1.5 - 1| = 0.5 -> mean(W * err) = log(4) * 0.5 / 2
    # n=1: |0.2 - 0| = 0.2, |3 - 2| = 1 -> (log(2) * 0.2 + log(4) * 1) / 2
    expected = math.log(4) * 0.25 + (math.log(2) * 0.2 + math.log(4)) / 2
    assert url_loss(masks, mix, sources).item() == pytest.approx(expected, rel=1e-6)


def test_url_loss_matches_numpy_loops():
    mix, sources, caption_masks, _, _ = random_case()
    b, n, f, t = sources.shape
    expected = 0.0
    for k in range(n):
        errors = [
            np_weight(mix[i, y, x])
            * abs(caption_masks[i, k, y, x] * mix[i, y, x] - sources[i, k, y, x])
            for i in range(b)
            for y in range(f)
            for x in range(t)
        ]
        expected += sum(errors) / len(errors)
    got = url_loss(*tensors(caption_masks, mix, sources))
    assert got.shape == ()
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_url_loss_perfect_masks_is_zero_and_gradients_reach_masks():
    mix = torch.rand(2, 4, 5) + 0.5
    sources = mix[:, None] * torch.tensor([0.3, 0.7])[None, :, None, None]
    masks = torch.tensor([0.3, 0.7]).expand(2, 4, 5, 2).permute(0, 3, 1, 2).clone()
    assert url_loss(masks, mix, sources).item() == pytest.approx(0.0, abs=1e-7)
    masks = torch.rand(2, 2, 4, 5, requires_grad=True)
    url_loss(masks, mix, sources).backward()
    assert masks.grad.abs().sum() > 0


# ----------------------------------------------------------------- CRL
def test_crl_loss_by_hand():
    # B=1, N=1, P=2, F=1, T=2: |X| = [2, 4], |X_1| = [1, 1]
    mix = torch.tensor([[[2.0, 4.0]]])
    sources = torch.tensor([[[[1.0, 1.0]]]])
    masks = torch.tensor([[[[[0.2, 0.5]], [[0.6, 0.1]]]]])
    weights = torch.tensor([[[1.0, 0.5]]])
    # sum_k c_k M_k = [0.2 + 0.3, 0.5 + 0.05] = [0.5, 0.55]; times |X|: [1, 2.2]
    # error [0, 1.2], weight log1p(|X_1|) = log(2) -> mean = log(2) * 1.2 / 2
    expected = math.log(2) * 0.6
    got = crl_loss(masks, weights, mix, sources)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_crl_loss_matches_numpy_loops():
    mix, sources, _, prompt_masks, prompt_weights = random_case(seed=1)
    b, n, p, f, t = prompt_masks.shape
    expected = 0.0
    for k in range(n):
        total = 0.0
        for i in range(b):
            for y in range(f):
                for x in range(t):
                    recon = sum(
                        prompt_weights[i, k, j] * prompt_masks[i, k, j, y, x]
                        for j in range(p)
                    )
                    err = abs(recon * mix[i, y, x] - sources[i, k, y, x])
                    total += np_weight(sources[i, k, y, x]) * err
        expected += total / (b * f * t)
    got = crl_loss(*tensors(prompt_masks, prompt_weights, mix, sources))
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_crl_duplicated_prompt_counts_once():
    # a clause duplicated with weights 1/2 + 1/2 reconstructs like the clause once
    mix, sources, _, prompt_masks, _ = random_case(b=1, n=1, p=1, seed=2)
    once = crl_loss(*tensors(prompt_masks, np.ones((1, 1, 1)), mix, sources))
    twice_masks = np.concatenate([prompt_masks, prompt_masks], axis=2)
    twice = crl_loss(*tensors(twice_masks, np.full((1, 1, 2), 0.5), mix, sources))
    assert twice.item() == pytest.approx(once.item(), rel=1e-12)


# ----------------------------------------------------------------- CNT
def np_cross_entropy(logits, target):
    logits = np.asarray(logits, dtype=np.float64)
    finite = logits[np.isfinite(logits)]
    return -(logits[target] - np.log(np.exp(finite).sum()))


def test_contrastive_loss_by_hand():
    # B=2, N=1, P=1, D=2; audio rows not normalised (normalised inside)
    audio = torch.tensor([[3.0, 0.0], [0.6, 0.8]]).reshape(2, 1, 1, 2)
    text = torch.tensor([[1.0, 0.0], [0.0, 2.0]]).reshape(2, 1, 1, 2)
    # s = 2: row 0 logits [2, 0], row 1 logits [1.2, 1.6] (positive: col 1)
    expected = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-0.4))) / 2
    got = contrastive_loss(audio, text, 2.0)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # a 0-dim tensor scale (CLAP's exp(logit_scale_a)) is the same
    assert contrastive_loss(audio, text, torch.tensor(2.0)).item() == pytest.approx(
        expected, rel=1e-6
    )


def np_contrastive(audio, text, scale, weights=None):
    """Per n: rows (b, k) against columns (b', k') of the same n; columns with
    the row's own text (other than the diagonal) left out."""
    b, n, p, d = audio.shape
    audio = audio / np.linalg.norm(audio, axis=-1, keepdims=True)
    text = text / np.linalg.norm(text, axis=-1, keepdims=True)
    total = 0.0
    for k in range(n):
        rows = [(i, j) for i in range(b) for j in range(p)]
        losses, row_weights = [], []
        for r, (i, j) in enumerate(rows):
            logits = []
            for c, (i2, j2) in enumerate(rows):
                same_text = np.allclose(text[i, k, j], text[i2, k, j2])
                if c != r and same_text:
                    logits.append(-np.inf)
                else:
                    logits.append(scale * float(audio[i, k, j] @ text[i2, k, j2]))
            losses.append(np_cross_entropy(logits, r))
            row_weights.append(1.0 if weights is None else weights[i, k, j])
        total += np.dot(losses, row_weights) / np.sum(row_weights)
    return total


def test_contrastive_loss_matches_numpy_per_mixture_index():
    rng = np.random.default_rng(3)
    audio = rng.normal(size=(3, 2, 2, 6))
    text = rng.normal(size=(3, 2, 2, 6))
    got = contrastive_loss(*tensors(audio, text), 7.5)
    assert got.item() == pytest.approx(np_contrastive(audio, text, 7.5), rel=1e-10)
    # negatives come from the same mixture index only: changing the texts of
    # n=1 leaves the n=0 term alone
    only_n0 = contrastive_loss(*tensors(audio[:, :1], text[:, :1]), 7.5)
    text[:, 1] = rng.normal(size=(3, 2, 6))
    changed = contrastive_loss(*tensors(audio, text), 7.5)
    n1 = contrastive_loss(*tensors(audio[:, 1:], text[:, 1:]), 7.5)
    assert changed.item() == pytest.approx(only_n0.item() + n1.item(), rel=1e-10)


def test_contrastive_loss_duplicated_prompts_are_not_negatives():
    rng = np.random.default_rng(4)
    audio = rng.normal(size=(2, 1, 3, 5))
    text = rng.normal(size=(2, 1, 3, 5))
    text[0, 0, 2] = text[0, 0, 0]  # a copy from sample_prompts
    text[1, 0, 1] = 2 * text[0, 0, 1]  # the same class in another item
    got = contrastive_loss(*tensors(audio, text), 10.0).item()
    assert got == pytest.approx(np_contrastive(audio, text, 10.0), rel=1e-10)
    # the authors' unmasked version is different (larger)
    a = audio[:, 0].reshape(6, 5)
    u = text[:, 0].reshape(6, 5)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    u = u / np.linalg.norm(u, axis=1, keepdims=True)
    logits = 10.0 * a @ u.T
    unmasked = np.mean([np_cross_entropy(logits[r], r) for r in range(6)])
    assert got < unmasked - 1e-3


def test_contrastive_loss_prompt_weights_and_gradients():
    rng = np.random.default_rng(5)
    audio = rng.normal(size=(2, 2, 2, 4))
    text = rng.normal(size=(2, 2, 2, 4))
    text[1, 0, 1] = text[1, 0, 0]
    weights = np.array([[[1.0, 1.0], [1.0, 1.0]], [[0.5, 0.5], [1.0, 1.0]]])
    audio_t, text_t, weights_t = tensors(audio, text, weights)
    audio_t.requires_grad_(True)
    got = contrastive_loss(audio_t, text_t, 3.0, prompt_weights=weights_t)
    assert got.item() == pytest.approx(
        np_contrastive(audio, text, 3.0, weights), rel=1e-10
    )
    got.backward()  # masked (-inf) logits give no NaN
    assert torch.isfinite(audio_t.grad).all() and audio_t.grad.abs().sum() > 0


def test_contrastive_loss_correct_pairs_lower_loss():
    gen = torch.Generator().manual_seed(6)
    text = torch.nn.functional.normalize(
        torch.randn(4, 2, 2, 16, generator=gen), dim=-1
    )
    noise = 0.01 * torch.randn(4, 2, 2, 16, generator=gen)
    matched = contrastive_loss(text + noise, text, 14.3)
    shuffled = contrastive_loss(text.flip(0), text, 14.3)
    assert matched < shuffled


# ------------------------------------------------------ shape validation
@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: url_loss(
                torch.rand(2, 2, 3, 4), torch.rand(2, 3, 4), torch.rand(2, 3, 3, 4)
            ),
            ValueError,
            "caption_masks has shape",
        ),
        (
            lambda: url_loss(
                torch.rand(2, 2, 3, 4), torch.rand(2, 3, 5), torch.rand(2, 2, 3, 4)
            ),
            ValueError,
            "mixture_mag has shape",
        ),
        (
            lambda: url_loss(
                torch.rand(2, 3, 4), torch.rand(2, 3, 4), torch.rand(2, 2, 3, 4)
            ),
            ValueError,
            r"caption_masks must have shape \[B, N, F, T\]",
        ),
        (
            lambda: url_loss(
                torch.ones(2, 2, 3, 4, dtype=torch.long),
                torch.rand(2, 3, 4),
                torch.rand(2, 2, 3, 4),
            ),
            TypeError,
            "float tensor",
        ),
        (
            lambda: url_loss(
                np.ones((2, 2, 3, 4)), torch.rand(2, 3, 4), torch.rand(2, 2, 3, 4)
            ),
            TypeError,
            "must be a tensor",
        ),
        (
            lambda: crl_loss(
                torch.rand(2, 2, 3, 3, 4),
                torch.rand(2, 2, 2),
                torch.rand(2, 3, 4),
                torch.rand(2, 2, 3, 4),
            ),
            ValueError,
            "prompt_weights has shape",
        ),
        (
            lambda: crl_loss(
                torch.rand(2, 3, 3, 3, 4),
                torch.rand(2, 3, 3),
                torch.rand(2, 3, 4),
                torch.rand(2, 2, 3, 4),
            ),
            ValueError,
            "prompt_masks has shape",
        ),
        (
            lambda: crl_loss(
                torch.rand(2, 2, 3, 4),
                torch.rand(2, 2, 3),
                torch.rand(2, 3, 4),
                torch.rand(2, 2, 3, 4),
            ),
            ValueError,
            r"\[B, N, P, F, T\]",
        ),
        (
            lambda: contrastive_loss(
                torch.rand(2, 1, 3, 8), torch.rand(2, 1, 2, 8), 1.0
            ),
            ValueError,
            "text_embeddings has shape",
        ),
        (
            lambda: contrastive_loss(torch.rand(2, 3, 8), torch.rand(2, 3, 8), 1.0),
            ValueError,
            r"\[B, N, P, D\]",
        ),
        (
            lambda: contrastive_loss(
                torch.rand(2, 1, 3, 8), torch.rand(2, 1, 3, 8), -1.0
            ),
            ValueError,
            "positive",
        ),
        (
            lambda: contrastive_loss(
                torch.rand(2, 1, 3, 8), torch.rand(2, 1, 3, 8), float("nan")
            ),
            ValueError,
            "positive",
        ),
        (
            lambda: contrastive_loss(
                torch.rand(2, 1, 3, 8), torch.rand(2, 1, 3, 8), torch.ones(2)
            ),
            ValueError,
            "scalar",
        ),
        (
            lambda: contrastive_loss(
                torch.rand(2, 1, 3, 8), torch.rand(2, 1, 3, 8), "14"
            ),
            TypeError,
            "number",
        ),
        (
            lambda: contrastive_loss(
                torch.rand(2, 1, 3, 8), torch.rand(2, 1, 3, 8), 1.0, torch.rand(2, 1, 2)
            ),
            ValueError,
            "prompt_weights has shape",
        ),
        (
            lambda: contrastive_loss(
                torch.rand(2, 1, 3, 8),
                torch.rand(2, 1, 3, 8),
                1.0,
                -torch.rand(2, 1, 3),
            ),
            ValueError,
            "non-negative",
        ),
    ],
)
def test_losses_reject_bad_shapes(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ------------------------------------------------------- weighted totals
def test_weak_loss_weights_applied():
    url, crl, cnt = torch.tensor(0.3), torch.tensor(0.7), torch.tensor(2.0)
    # paper defaults: 0.5 * cnt + 5 * (crl + url)
    assert weak_loss(url, crl, cnt).item() == pytest.approx(0.5 * 2.0 + 5 * 1.0)
    got = weak_loss(url, crl, cnt, cnt_weight=0.25, rec_weight=2.0)
    assert got.item() == pytest.approx(0.25 * 2.0 + 2.0 * 1.0)
    got = weak_loss(url, crl, cnt, cnt_weight=1.0, rec_weight=3.0, crl_weight=0.5)
    assert got.item() == pytest.approx(2.0 + 3.0 * 0.3 + 0.5 * 0.7)
    # the CLIPSep-style arm: L_URL only, the others not computed
    got = weak_loss(url, None, None, cnt_weight=0.0, rec_weight=5.0, crl_weight=0.0)
    assert got.item() == pytest.approx(1.5)


def test_weak_loss_gradients_scaled_by_weights():
    parts = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    weak_loss(
        parts[0], parts[1], parts[2], cnt_weight=0.5, rec_weight=4.0, crl_weight=2.0
    ).backward()
    assert parts.grad.tolist() == [4.0, 2.0, 0.5]


def test_semi_supervised_loss_weights_applied():
    sup, weak = torch.tensor(2.0), torch.tensor(3.0)
    assert semi_supervised_loss(sup, weak, 1.0, 1.0).item() == pytest.approx(5.0)
    assert semi_supervised_loss(sup, weak, 0.2, 0.8).item() == pytest.approx(0.4 + 2.4)
    # alternating batches: the missing kind contributes nothing
    assert semi_supervised_loss(sup, None, 0.2, 0.8).item() == pytest.approx(0.4)
    assert semi_supervised_loss(None, weak, 0.2, 0.8).item() == pytest.approx(2.4)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: weak_loss(torch.tensor(1.0), None, torch.tensor(1.0)),
            ValueError,
            "crl is None but its weight is 5",
        ),
        (lambda: weak_loss(None, None, None, 0.0, 0.0), ValueError, "at least one"),
        (
            lambda: weak_loss(
                torch.tensor(1.0), torch.tensor(1.0), torch.tensor(1.0), cnt_weight=-1.0
            ),
            ValueError,
            "cnt_weight must be non-negative",
        ),
        (
            lambda: weak_loss(
                torch.tensor(1.0),
                torch.tensor(1.0),
                torch.tensor(1.0),
                rec_weight=float("inf"),
            ),
            ValueError,
            "rec_weight",
        ),
        (
            lambda: weak_loss(
                torch.tensor(1.0),
                torch.tensor(1.0),
                torch.tensor(1.0),
                cnt_weight="0.5",
            ),
            TypeError,
            "cnt_weight must be a number",
        ),
        (
            lambda: weak_loss(torch.ones(2), torch.tensor(1.0), torch.tensor(1.0)),
            ValueError,
            "url must be a scalar",
        ),
        (
            lambda: semi_supervised_loss(None, None, 1.0, 1.0),
            ValueError,
            "supervised or a weak",
        ),
        (
            lambda: semi_supervised_loss(torch.tensor(1.0), None, -0.1, 1.0),
            ValueError,
            "supervised_weight",
        ),
        (
            lambda: semi_supervised_loss(torch.tensor(1.0), 2.0, 1.0, 1.0),
            ValueError,
            "weak must be a scalar",
        ),
    ],
)
def test_weighted_totals_reject_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ------------------------------------- L_CNT through the frozen tiny CLAP
RATE = 16000
PROMPTS = ["the sound of violin", "a dog barks", "the sound of flute", "a man speaks"]


class ToySeparator(torch.nn.Module):
    """A learnable spectral mask and gain: iSTFT outputs like the separator's."""

    def __init__(self, n_fft=256, hop=64):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.mask_logits = torch.nn.Parameter(torch.linspace(-1, 1, n_fft // 2 + 1))
        self.gain = torch.nn.Parameter(torch.tensor(1.0))
        self.register_buffer("window", torch.hann_window(n_fft))

    def forward(self, waves):
        spec = torch.stft(
            waves, self.n_fft, self.hop, window=self.window, return_complex=True
        )
        spec = spec * torch.sigmoid(self.mask_logits)[:, None]
        out = torch.istft(
            spec, self.n_fft, self.hop, window=self.window, length=waves.shape[-1]
        )
        return self.gain * out


@pytest.fixture(scope="module")
def clap_encoder(tmp_path_factory):
    from speechbrain_textsep.encoders.clap import (
        TINY_CLAP_CFG,
        CLAPQueryEncoder,
        build_tiny_tokenizer,
    )

    tokenizer = build_tiny_tokenizer(tmp_path_factory.mktemp("tok"), PROMPTS)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return CLAPQueryEncoder(None, model_cfg=TINY_CLAP_CFG, tokenizer=tokenizer)


def mixtures(batch=2, seconds=0.5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(batch, int(seconds * RATE), generator=gen)


def test_cnt_gradient_reaches_separator_not_clap(clap_encoder):
    separator = ToySeparator()
    # the encoder inside a trained model: .train() leaves it frozen in eval
    model = torch.nn.ModuleDict({"separator": separator, "clap": clap_encoder})
    model.train()
    before = {k: v.clone() for k, v in clap_encoder.state_dict().items()}

    # B=2 items, N=1 mixture, P=2 prompts: 4 separated outputs
    mix = mixtures().repeat_interleave(2, dim=0)
    outputs = separator(mix)
    audio = clap_encoder.encode_audio_with_grad(outputs, RATE)
    assert audio.shape == (4, clap_encoder.embedding_dim) and audio.requires_grad
    text = clap_encoder.encode_text(PROMPTS)
    loss = contrastive_loss(
        audio.reshape(2, 1, 2, -1), text.reshape(2, 1, 2, -1), clap_encoder.logit_scale
    )
    loss.backward()

    for name, param in separator.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all() and param.grad.abs().sum() > 0, name
    for name, param in clap_encoder.named_parameters():
        assert not param.requires_grad and param.grad is None, name
    assert not clap_encoder.training
    assert not any(m.training for m in clap_encoder.modules())

    torch.optim.SGD(model.parameters(), lr=1.0).step()
    after = clap_encoder.state_dict()  # weights and BN statistics unchanged
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert separator.gain.item() != 1.0


def test_grad_embedding_equals_encode_audio(clap_encoder):
    # a short clip (repeat-padded to 10 s) and one longer than 10 s (cropped)
    gen = torch.Generator().manual_seed(1)
    waves = [
        (0.1 * torch.randn(RATE // 2, generator=gen)).requires_grad_(True),
        (0.1 * torch.randn(RATE * 10 + 1600, generator=gen)).requires_grad_(True),
    ]
    with_grad = clap_encoder.encode_audio_with_grad(waves, RATE)
    without = clap_encoder.encode_audio([w.detach() for w in waves], RATE)
    assert with_grad.requires_grad and without.grad_fn is None
    torch.testing.assert_close(with_grad.detach(), without, atol=1e-5, rtol=0)
    assert torch.allclose(with_grad.norm(dim=-1), torch.ones(2))
    with_grad[1].sum().backward()
    assert waves[0].grad is None or not waves[0].grad.any()
    # the long clip's centre crop gets gradients, its ends none
    grad = waves[1].grad
    assert grad[RATE : 2 * RATE].abs().sum() > 0
    assert not grad[:100].any() and not grad[-100:].any()


def test_grad_embedding_gradient_is_the_true_derivative(clap_encoder):
    import copy

    # float64 copy (the preprocessing rounds to float32, hence a step of 1e-3):
    # central finite differences along a direction of the separator's weights
    encoder = copy.deepcopy(clap_encoder).to(torch.float64)
    separator = ToySeparator().to(torch.float64)
    mix = mixtures(batch=1, seed=3).to(torch.float64)
    gen = torch.Generator().manual_seed(4)
    direction = torch.randn(1, encoder.embedding_dim, generator=gen).double()
    step = [
        torch.randn(p.shape, generator=gen).double() for p in separator.parameters()
    ]

    def objective():
        emb = encoder.encode_audio_with_grad(separator(mix), RATE)
        return (emb * direction).sum()

    objective().backward()
    analytic = sum((p.grad * v).sum() for p, v in zip(separator.parameters(), step))
    values = []
    for sign in (1, -2, 1):
        with torch.no_grad():
            for p, v in zip(separator.parameters(), step):
                p += sign * 1e-3 * v
        values.append(objective().item())
    numeric = (values[0] - values[1]) / 2e-3
    assert abs(analytic.item()) > 1e-3
    assert analytic.item() == pytest.approx(numeric, rel=2e-3)


def test_grad_embedding_refuses_an_unfrozen_clap(clap_encoder):
    try:
        clap_encoder.clap.requires_grad_(True)
        with pytest.raises(RuntimeError, match="needs the CLAP frozen"):
            clap_encoder.encode_audio_with_grad(mixtures(batch=1), RATE)
        clap_encoder.clap.requires_grad_(False)
        clap_encoder.clap.train()
        with pytest.raises(RuntimeError, match="training mode"):
            clap_encoder.encode_audio_with_grad(mixtures(batch=1), RATE)
    finally:
        clap_encoder.train()  # freezes again
    assert not any(p.requires_grad for p in clap_encoder.parameters())
    assert not any(m.training for m in clap_encoder.modules())


def test_logit_scale_is_clap_exp_logit_scale_a(clap_encoder):
    expected = math.exp(float(clap_encoder.clap.logit_scale_a))
    assert clap_encoder.logit_scale == pytest.approx(expected)
    assert clap_encoder.logit_scale == pytest.approx(1 / 0.07, rel=1e-6)  # laion init


def test_batched_resampling_is_the_per_item_preprocessing(clap_encoder):
    from speechbrain_textsep.encoders.clap import clap_audio_input

    cfg = clap_encoder.model_cfg["audio_cfg"]
    waves = mixtures(batch=3, seed=5)
    batched = clap_encoder.preprocess_audio(waves, RATE)  # one resample call
    per_item = clap_audio_input(list(waves), RATE, cfg)  # a list: item by item
    assert torch.equal(batched, per_item)
    waves[1, 100] = float("nan")
    with pytest.raises(ValueError, match="audio item 1 contains NaN"):
        clap_encoder.preprocess_audio(waves, RATE)
