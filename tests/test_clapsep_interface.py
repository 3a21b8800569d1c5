"""The CLAPSep interface: text/audio, positive/negative queries, long inputs."""

import pytest
import soundfile as sf
import torch

from speechbrain_textsep.encoders.clap import (
    TINY_CLAP_CFG,
    CLAPQueryEncoder,
    build_tiny_tokenizer,
)
from speechbrain_textsep.evaluation.metrics import sdr
from speechbrain_textsep.inference import CLAPSepSeparator, Query
from speechbrain_textsep.models.clapsep import CLAPSep, clapsep_condition

pytestmark = pytest.mark.integration

RATE = 32000
TINY_MODEL = {
    "lora_rank": 4,
    "decoder_dim": 16,
    "decoder_heads": (1, 2, 4, 8),
    "masknet_dim": 32,
    "masknet_heads": 2,
    "masknet_layers": 1,
    "masknet_ff": 64,
}


@pytest.fixture(scope="module")
def separator(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tok")
    tokenizer = build_tiny_tokenizer(str(folder), ["The sound of a dog", "speech"])
    clap = CLAPQueryEncoder(None, model_cfg=TINY_CLAP_CFG, tokenizer=tokenizer)
    model = CLAPSep(clap.audio_branch, **TINY_MODEL)
    for module in model.modules():  # far from the initial near-constant masks
        if isinstance(module, torch.nn.Linear) and module.weight.requires_grad:
            torch.nn.init.normal_(module.weight, std=0.2)
    hparams = {"sample_rate": RATE, "window_seconds": 3.0, "overlap_seconds": 0.5}
    return CLAPSepSeparator(modules={"clap": clap, "clapsep": model}, hparams=hparams)


def tone(seconds, seed=0):
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * RATE)) / RATE
    return (
        0.3 * torch.sin(2 * torch.pi * 330 * t)
        + 0.05 * torch.randn(len(t), generator=gen)
    )[None]


def test_positive_negative_and_both_text_queries(separator):
    clap = separator.mods.clap
    pos, neg = clap.encode_text(["a dog"]), clap.encode_text(["speech"])
    cases = {
        "P": (Query("a dog"), clapsep_condition(pos, None)),
        "N": (Query(negative_text="speech"), clapsep_condition(None, neg)),
        "P+N": (Query("a dog", negative_text="speech"), clapsep_condition(pos, neg)),
    }
    mixture = tone(1.5)
    outputs = {}
    for name, (query, condition) in cases.items():
        assert torch.allclose(separator.embed_queries([query])[0], condition[0])
        outputs[name] = separator.separate_batch(mixture, query)
        expected = separator.mods.clapsep(mixture, condition)
        assert torch.allclose(outputs[name], expected, atol=1e-6)
    assert not torch.allclose(outputs["P"], outputs["N"])
    several = separator.separate_batch(mixture, [[c[0] for c in cases.values()]])
    assert several.shape == (1, 3, mixture.shape[1])


def test_audio_queries_average_their_shots(separator, tmp_path):
    shots = [tone(1.0, seed=s)[0] for s in range(3)]
    paths = []
    for i, shot in enumerate(shots):
        paths.append(str(tmp_path / f"shot{i}.wav"))
        sf.write(paths[-1], shot.numpy(), RATE, subtype="FLOAT")
    clap = separator.mods.clap
    each = torch.cat([clap.encode_audio(s[None], sample_rate=RATE) for s in shots])
    embedded = separator.embed_queries([Query(audio=paths)])[0]
    assert torch.allclose(embedded[:512], each.mean(0), atol=1e-5)
    assert torch.equal(embedded[512:], torch.zeros(512))
    both = separator.embed_queries([Query("a dog", audio=paths[:1])])[0]
    text = clap.encode_text(["a dog"])[0]
    assert torch.allclose(both[:512], (text + each[0]) / 2, atol=1e-5)


def test_long_inputs_are_windowed_to_their_exact_length(separator):
    mixture = tone(7.3)
    condition = separator.embed_queries(["a dog"])
    windowed = separator.separate_batch(mixture, "a dog")
    assert windowed.shape == mixture.shape and torch.isfinite(windowed).all()
    one_shot = torch.cat(  # the model's own limit is 10.24 s
        [separator.mods.clapsep(mixture, condition)], dim=0
    )
    assert float(sdr(one_shot, mixture)) < 15.0  # masks are not trivial
    assert float(sdr(windowed, one_shot)) > 10.0
    short = tone(0.01)
    assert separator.separate_batch(short, "a dog").shape == short.shape


def test_clapsep_refuses_image_queries(separator):
    with pytest.raises(ValueError, match="CLAPSepSeparator does not take image"):
        separator.separate_batch(tone(0.5), Query(images=[torch.zeros(3, 8, 8)]))
