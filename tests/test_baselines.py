"""The CLIPSep paper's baselines: LabelSep, BERTSep and PIT (modules and losses)."""

import math

import pytest
import torch
import torch.nn.functional as F

from speechbrain_textsep.encoders.bert import BERTQueryEncoder, save_tiny_bert
from speechbrain_textsep.encoders.labels import (
    LabelQueryEncoder,
    UnknownLabelError,
    labels_from_manifests,
)
from speechbrain_textsep.models.clipsep import CLIPSep
from speechbrain_textsep.models.pit import PITSep
from speechbrain_textsep.models.separator import MaskSeparator
from speechbrain_textsep.models.unet import AudioUNet
from speechbrain_textsep.processing.spectral import SpectralMasking
from speechbrain_textsep.training.brain import best_permutation
from speechbrain_textsep.training.losses import (
    binary_mask_targets,
    clipsep_loss,
    mixture_weight,
    pit_mask_loss,
)

pytestmark = pytest.mark.integration

LABELS = ["cello", "flute", "trumpet"]


def tiny_unet(n_maps=8):
    return AudioUNet(out_channels=n_maps, ngf=4, levels=3)


def mixture_batch(batch=2, n_sources=2, seed=0):
    """Random warped magnitudes: log-magnitude input, targets and weight."""
    generator = torch.Generator().manual_seed(seed)
    sources = torch.rand(batch, n_sources, 16, 8, generator=generator)
    mix = sources.sum(1)
    log_mag = torch.log(mix + 1e-10)[:, None]
    return log_mag, binary_mask_targets(sources, mix), mixture_weight(mix)


# ---------------------------------------------------------------- LabelSep
def test_label_encoder_maps_labels_and_rejects_unknown_ones():
    encoder = LabelQueryEncoder(LABELS, embedding_dim=512)
    assert encoder.embedding.weight.shape == (3, 512)
    out = encoder(["trumpet", "cello", "trumpet"])
    assert out.shape == (3, 512)
    assert torch.equal(out[0], out[2])
    assert torch.equal(out[1], encoder.embedding.weight[0])
    # the text API: a template or an ensemble that formats to the label
    assert torch.equal(
        encoder.encode_text("flute", template="{}")[0],
        out.new_tensor(encoder.embedding.weight[1].tolist()),
    )
    assert torch.equal(
        encoder.encode_text(["flute"], ensemble=["{}", "{}"]), encoder(["flute"])
    )
    with pytest.raises(UnknownLabelError, match="'erhu'.*'cello', 'flute', 'trumpet'"):
        encoder(["erhu"])
    with pytest.raises(UnknownLabelError, match="'a photo of flute'"):
        encoder.encode_text(["flute"], template="a photo of {}")
    with pytest.raises(RuntimeError, match="no labels yet"):
        LabelQueryEncoder()(["cello"])
    with pytest.raises(ValueError, match="duplicate"):
        LabelQueryEncoder(["a", "a"])


def test_label_list_travels_with_the_weights(tmp_path):
    encoder = LabelQueryEncoder(LABELS, embedding_dim=8)
    path = tmp_path / "encoder.ckpt"
    torch.save(encoder.state_dict(), path)
    restored = LabelQueryEncoder(embedding_dim=8)
    restored.load_state_dict(torch.load(path, weights_only=True))
    assert restored.labels == LABELS
    assert torch.equal(restored(LABELS), encoder(LABELS))
    other = LabelQueryEncoder(["dog", "rain"], embedding_dim=8)
    with pytest.raises(ValueError, match="label list of the checkpoint"):
        other.load_state_dict(torch.load(path, weights_only=True))


def test_labels_from_manifests(tmp_path):
    for name, labels in (("train.csv", ["flute", "cello"]), ("valid.csv", ["tuba"])):
        rows = "".join(f"{i},{label}\n" for i, label in enumerate(labels))
        (tmp_path / name).write_text("ID,label\n" + rows)
    assert labels_from_manifests(str(tmp_path / "train.csv")) == ["cello", "flute"]
    both = [str(tmp_path / "train.csv"), str(tmp_path / "valid.csv")]
    assert labels_from_manifests(both) == ["cello", "flute", "tuba"]
    (tmp_path / "bad.csv").write_text("ID,name\n0,x\n")
    with pytest.raises(ValueError, match="no 'label' column"):
        labels_from_manifests(str(tmp_path / "bad.csv"))


def test_labelsep_loss_trains_the_embedding_of_the_used_labels():
    torch.manual_seed(0)
    encoder = LabelQueryEncoder(LABELS, embedding_dim=512)
    model = CLIPSep(tiny_unet(), query_dim=512, n_maps=8)
    log_mag, targets, weight = mixture_batch()
    queries = encoder(["cello", "flute", "flute", "cello"]).view(2, 2, 512)
    logits = model(log_mag, queries)
    assert logits.shape == (2, 2, 16, 8)
    clipsep_loss(logits, targets, weight).backward()
    grad = encoder.embedding.weight.grad
    assert grad[0].abs().sum() > 0 and grad[1].abs().sum() > 0
    assert grad[2].abs().sum() == 0  # trumpet was not queried
    assert model.query_proj.weight.grad.abs().sum() > 0


# ----------------------------------------------------------------- BERTSep
@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("tiny_bert"))
    return save_tiny_bert(folder, LABELS + ["a photo of the"])


def test_bert_encoder_loads_a_local_folder_and_stays_frozen(bert_folder, tmp_path):
    encoder = BERTQueryEncoder(bert_folder, save_path=str(tmp_path))
    assert encoder.embedding_dim == 32
    emb = encoder.encode_text(LABELS)
    assert emb.shape == (3, 32) and not emb.requires_grad
    assert not torch.allclose(emb[0], emb[1])
    encoder.train()
    assert not encoder.training and not encoder.text_encoder.model.training
    assert not any(p.requires_grad for p in encoder.parameters())
    # the same text alone and in a padded batch gives the same embedding
    # (mean pooling over real tokens only), also through the cache
    alone = BERTQueryEncoder(bert_folder, save_path=str(tmp_path))
    encoder.clear_cache()
    padded = encoder.encode_text(["cello", "a photo of the flute"])
    assert torch.allclose(padded[0], alone.encode_text("cello")[0], atol=1e-5)
    ensemble = encoder.encode_text(["flute"], ensemble=["{}", "a photo of the {}"])
    manual = (
        encoder.encode_text("flute") + encoder.encode_text("a photo of the flute")
    ) / 2
    assert torch.allclose(ensemble, manual)


def test_bert_pooling_choices(bert_folder, tmp_path):
    cls = BERTQueryEncoder(bert_folder, save_path=str(tmp_path), pooling="cls")
    tokens, states = cls.text_encoder(["a photo of the cello"], return_tokens=True)
    assert torch.allclose(cls.encode_text("a photo of the cello")[0], states[0, 0])
    mean = BERTQueryEncoder(bert_folder, save_path=str(tmp_path), pooling="mean")
    assert torch.allclose(
        mean.encode_text("a photo of the cello")[0], states[0].mean(0)
    )
    with pytest.raises(ValueError, match="pooling must be one of"):
        BERTQueryEncoder(bert_folder, save_path=str(tmp_path), pooling="max")


def test_bert_encoder_explains_a_missing_model(tmp_path):
    empty = tmp_path / "not_a_model"
    empty.mkdir()
    with pytest.raises(OSError, match="cannot load the BERT model or tokenizer"):
        BERTQueryEncoder(str(empty), save_path=str(tmp_path / "cache"))


def test_bertsep_trains_the_projection_not_bert(bert_folder, tmp_path):
    torch.manual_seed(0)
    encoder = BERTQueryEncoder(bert_folder, save_path=str(tmp_path))
    model = CLIPSep(tiny_unet(), query_dim=encoder.embedding_dim, n_maps=8)
    log_mag, targets, weight = mixture_batch()
    queries = encoder.encode_text(["cello", "flute", "flute", "trumpet"]).view(2, 2, -1)
    clipsep_loss(model(log_mag, queries), targets, weight).backward()
    assert model.query_proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in encoder.parameters())


# --------------------------------------------------------------------- PIT
def test_pit_model_shapes_and_gradients():
    torch.manual_seed(0)
    model = PITSep(tiny_unet(), n_maps=8)
    log_mag, targets, weight = mixture_batch()
    logits = model(log_mag)
    assert logits.shape == (2, 2, 16, 8)
    loss, perms = pit_mask_loss(logits, targets, weight)
    loss.backward()
    assert len(perms) == 2 and all(sorted(p) == [0, 1] for p in perms)
    assert model.head.weight.grad.abs().sum() > 0
    assert model.unet.up[0][-1].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="PITSep takes no query"):
        model(log_mag, torch.zeros(2, 2, 8))


def test_pit_loss_matches_a_hand_computed_value():
    # One item, 1 x 2 time-frequency bins, weights 2 and 1.
    # output 0 = sigmoid([0, ln 3]) = [0.5, 0.75]; output 1 = [0.75, 0.5]
    # source 0 = [1, 0], source 1 = [0, 1]
    logits = torch.tensor([[0.0, math.log(3)], [math.log(3), 0.0]]).view(1, 2, 1, 2)
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(1, 2, 1, 2)
    weight = torch.tensor([2.0, 1.0]).view(1, 1, 1, 2)
    ln2, ln43 = math.log(2), math.log(4 / 3)
    # L(o0, s0) = (2 ln2 + ln4) / 2, L(o1, s1) = (2 ln4 + ln2) / 2
    straight = ((2 * ln2 + 2 * ln2) / 2 + (4 * ln2 + ln2) / 2) / 2
    # L(o0, s1) = (2 ln2 + ln 4/3) / 2, L(o1, s0) = (2 ln 4/3 + ln2) / 2
    crossed = ((2 * ln2 + ln43) / 2 + (2 * ln43 + ln2) / 2) / 2
    assert crossed < straight
    loss, perms = pit_mask_loss(logits, targets, weight)
    assert loss.item() == pytest.approx(crossed, rel=1e-6)
    assert perms == [(1, 0)]  # source 0 <- output 1, source 1 <- output 0

    # A second item whose outputs are in the sources' order: the batch mean.
    batch_logits = torch.cat([logits, logits.flip(1)])
    batch_loss, batch_perms = pit_mask_loss(
        batch_logits, targets.expand(2, -1, -1, -1), weight.expand(2, -1, -1, -1)
    )
    assert batch_loss.item() == pytest.approx(crossed, rel=1e-6)
    assert batch_perms == [(1, 0), (0, 1)]


def test_pit_loss_is_the_authors_min_over_assignments():
    torch.manual_seed(1)
    logits = torch.randn(3, 2, 4, 5)
    targets = (torch.rand(3, 2, 4, 5) > 0.5).float()
    weight = torch.rand(3, 1, 4, 5) * 3

    def pair_loss(o, s):
        bce = F.binary_cross_entropy(
            logits[:, o].sigmoid(), targets[:, s], reduction="none"
        )
        return (bce * weight[:, 0]).mean(dim=(1, 2))

    straight = (pair_loss(0, 0) + pair_loss(1, 1)) / 2
    crossed = (pair_loss(0, 1) + pair_loss(1, 0)) / 2
    expected = torch.minimum(straight, crossed).mean()
    loss, _ = pit_mask_loss(logits, targets, weight)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    swapped, _ = pit_mask_loss(logits.flip(1), targets, weight)
    assert swapped.item() == pytest.approx(loss.item(), rel=1e-6)
    l1, _ = pit_mask_loss(logits, targets, weight, kind="l1")
    assert l1.item() > 0
    with pytest.raises(ValueError, match="batch, sources, freq, time"):
        pit_mask_loss(logits[0], targets[0], weight[0])


def test_query_free_separator_and_best_permutation():
    spectral = SpectralMasking(
        n_fft=64, hop_length=16, win_length=64, n_warped=16, frame_multiple=8
    )
    separator = MaskSeparator(spectral, PITSep(tiny_unet(), n_maps=8))
    estimates = separator(torch.randn(3, 1000))
    assert estimates.shape == (3, 2, 1000)
    sources = torch.randn(3, 2, 1000)
    mixture = sources.sum(1, keepdim=True).expand(-1, 2, -1)
    outputs = torch.stack([sources[0], sources[1].flip(0), sources[2]])
    aligned = best_permutation(outputs, sources, mixture)
    assert torch.equal(aligned, sources)


@pytest.mark.parametrize("kind", ["labelsep", "bertsep", "pit"])
def test_baselines_fit_a_fixed_batch(kind, bert_folder, tmp_path):
    """A few Adam steps on one batch lower each baseline's training loss."""
    torch.manual_seed(0)
    log_mag, targets, weight = mixture_batch(batch=4, seed=3)
    labels = [["cello", "flute"], ["flute", "trumpet"]] * 2
    if kind == "pit":
        model = PITSep(tiny_unet(), n_maps=8)
        params = list(model.parameters())

        def loss_fn():
            return pit_mask_loss(model(log_mag), targets, weight)[0]

    else:
        if kind == "labelsep":
            encoder = LabelQueryEncoder(LABELS, embedding_dim=16)
        else:
            encoder = BERTQueryEncoder(bert_folder, save_path=str(tmp_path))
        model = CLIPSep(tiny_unet(), query_dim=encoder.embedding_dim, n_maps=8)
        params = list(model.parameters()) + list(encoder.parameters())

        def loss_fn():
            flat = [label for pair in labels for label in pair]
            queries = encoder(flat) if kind == "labelsep" else encoder.encode_text(flat)
            logits = model(log_mag, queries.view(4, 2, -1))
            return clipsep_loss(logits, targets, weight)

    optimizer = torch.optim.Adam([p for p in params if p.requires_grad], lr=0.01)
    first = loss_fn().item()
    for _ in range(100):
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.9 * first
