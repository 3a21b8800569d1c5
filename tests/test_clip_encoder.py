"""Tests of the frozen CLIP query encoder (tiny random models, no download)."""

import copy
import json
import re
import socket

import open_clip
import pytest
import torch
from PIL import Image

from speechbrain_textsep.encoders.clip import (
    PROMPT_ENSEMBLE,
    TINY_CLIP_CFG,
    TRAIN_TEMPLATE,
    CLIPQueryEncoder,
    CLIPWeightsUnavailableError,
    _tag_quick_gelu,
    save_local_clip,
)

D = TINY_CLIP_CFG["embed_dim"]
SIZE = TINY_CLIP_CFG["vision_cfg"]["image_size"]


def make_encoder(seed=0, **kwargs):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CLIPQueryEncoder(model_cfg=TINY_CLIP_CFG, pretrained=None, **kwargs)


@pytest.fixture(scope="module")
def encoder():
    return make_encoder(0)


@pytest.fixture
def image_files(tmp_path):
    paths = []
    for i, color in enumerate(["red", "green", "blue", "white"]):
        path = tmp_path / f"frame{i}.png"
        img = Image.new("RGB", (48 + 8 * i, 40), color)
        img.putpixel((3, 5), (10, 200, 30))
        img.save(path)
        paths.append(path)
    return paths


@pytest.mark.unit
def test_text_shapes(encoder):
    assert encoder.embedding_dim == D
    assert encoder.encode_text(["dog", "a cat on a sofa"]).shape == (2, D)
    assert encoder.encode_text("dog").shape == (1, D)
    out = encoder(texts=["dog", "violin"])
    assert out.shape == (2, D)
    assert not out.requires_grad
    expected = encoder.encode_text(["a photo of dog", "a photo of violin"])
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    assert TRAIN_TEMPLATE == "a photo of {}"
    assert len(PROMPT_ENSEMBLE) == 4 and all("{}" in t for t in PROMPT_ENSEMBLE)


@pytest.mark.unit
def test_text_is_raw_clip_embedding(encoder):
    out = encoder.encode_text(["dog", "cat"], template=TRAIN_TEMPLATE)
    tokens = encoder.tokenizer(["a photo of dog", "a photo of cat"])
    with torch.no_grad():
        ref = encoder.clip.encode_text(tokens)  # not normalised
    torch.testing.assert_close(out, ref)
    assert not torch.allclose(out.norm(dim=-1), torch.ones(2))


@pytest.mark.unit
def test_forward_verbatim_template():
    enc = make_encoder(0, template=None)
    torch.testing.assert_close(enc(texts="dog"), enc.encode_text("dog"))


@pytest.mark.unit
def test_image_shapes(encoder, image_files):
    assert encoder.encode_image(torch.rand(2, 3, SIZE, SIZE)).shape == (2, D)
    assert encoder.encode_image(torch.rand(2, 3, 3, SIZE, SIZE)).shape == (2, D)
    frames = [Image.open(p) for p in image_files]
    out = encoder(images=[frames[:3], [image_files[3]], str(image_files[0])])
    assert out.shape == (3, D)
    assert encoder.preprocess(image_files[0]).shape == (3, SIZE, SIZE)


@pytest.mark.unit
def test_determinism(encoder):
    other = make_encoder(0)
    images = torch.rand(2, 3, SIZE, SIZE)
    torch.testing.assert_close(other.encode_text("dog"), encoder.encode_text("dog"))
    torch.testing.assert_close(other.encode_image(images), encoder.encode_image(images))
    torch.testing.assert_close(
        encoder.encode_image(images), encoder.encode_image(images), rtol=0, atol=0
    )


@pytest.mark.unit
def test_frozen_and_eval(encoder):
    assert all(not p.requires_grad for p in encoder.parameters())
    parent = torch.nn.ModuleDict({"enc": encoder, "head": torch.nn.Linear(D, 1)})
    parent.train()
    assert parent.training and parent["head"].training
    assert not encoder.training
    assert all(not m.training for m in encoder.clip.modules())
    parent.requires_grad_(True)
    parent.train()  # re-freezes
    assert all(not p.requires_grad for p in encoder.parameters())
    # Embeddings feed trainable layers (no inference-mode tensors).
    loss = parent["head"](encoder(texts=["dog"])).sum()
    loss.backward()
    assert parent["head"].weight.grad is not None


@pytest.mark.unit
def test_prompt_ensemble_is_mean(encoder):
    labels = ["dog", "acoustic guitar"]
    out = encoder.encode_text(labels, ensemble=PROMPT_ENSEMBLE)
    per_template = []
    for tpl in PROMPT_ENSEMBLE:
        tokens = encoder.tokenizer([tpl.format(label) for label in labels])
        with torch.no_grad():
            per_template.append(encoder.clip.encode_text(tokens))
    ref = sum(per_template) / len(per_template)
    torch.testing.assert_close(out, ref)
    assert out.shape == (2, D)
    assert "a low resolution photo of a dog." in encoder._cache


@pytest.mark.unit
def test_frames_are_averaged(encoder, image_files):
    frames = torch.rand(2, 3, 3, SIZE, SIZE)
    out = encoder.encode_image(frames)
    with torch.no_grad():
        per_frame = [encoder.clip.encode_image(frames[:, i]) for i in range(3)]
    torch.testing.assert_close(out, sum(per_frame) / 3)

    pixels = [encoder.preprocess(p) for p in image_files]
    out = encoder.encode_image([image_files[:3], image_files[3:]])
    with torch.no_grad():
        emb = encoder.clip.encode_image(torch.stack(pixels))
    torch.testing.assert_close(out[0], emb[:3].mean(0))
    torch.testing.assert_close(out[1], emb[3])
    # Preprocessed frame tensors and PIL images give the same result.
    same = encoder.encode_image([[pixels[0], Image.open(image_files[1])]])
    torch.testing.assert_close(same[0], emb[:2].mean(0))


@pytest.mark.integration
def test_cache(tmp_path):
    enc = make_encoder(0)
    first = enc.encode_text(["dog", "cat"])
    assert set(enc._cache) == {"dog", "cat"}
    again = enc.encode_text(["cat", "dog", "cat"])
    assert torch.equal(again[1], first[0]) and torch.equal(again[0], first[1])

    # load_state_dict with other weights clears the cache.
    other = make_encoder(1)
    expected = other.encode_text("dog")
    enc.load_state_dict(other.state_dict())
    assert not enc._cache
    new = enc.encode_text("dog")
    torch.testing.assert_close(new, expected)
    assert not torch.allclose(new, first[:1])

    # ... also when loading into a parent module or into the CLIP model.
    parent = torch.nn.ModuleDict({"enc": enc})
    enc.encode_text("dog")
    parent.load_state_dict(
        {"enc." + k: v for k, v in make_encoder(0).state_dict().items()}
    )
    assert not enc._cache
    torch.testing.assert_close(enc.encode_text("dog"), first[:1])
    enc.clip.load_state_dict(other.clip.state_dict())
    assert not enc._cache

    # ... and through SpeechBrain's Pretrainer (file -> load_state_dict).
    from speechbrain.utils.parameter_transfer import Pretrainer

    ckpt = tmp_path / "clip_encoder.ckpt"
    torch.save(make_encoder(0).state_dict(), ckpt)
    enc.encode_text("dog")
    pretrainer = Pretrainer(
        collect_in=tmp_path / "collect",
        loadables={"clip_encoder": enc},
        paths={"clip_encoder": str(ckpt)},
    )
    pretrainer.collect_files()
    pretrainer.load_collected()
    assert not enc._cache
    torch.testing.assert_close(enc.encode_text("dog"), first[:1])

    # ... and when the module is cast or moved.
    enc.encode_text("dog")
    enc.double()
    assert not enc._cache
    assert enc.encode_text("dog").dtype == torch.float64


@pytest.mark.unit
def test_cache_size_limit():
    enc = make_encoder(0)
    enc.max_cache_size = 2
    enc.encode_text(["a", "b", "c"])
    assert list(enc._cache) == ["b", "c"]
    enc.max_cache_size = 0
    enc.clear_cache()
    enc.encode_text("a")
    assert not enc._cache


@pytest.mark.integration
def test_load_from_checkpoint_file(encoder, tmp_path):
    ckpt = tmp_path / "tiny_clip.pt"
    torch.save(encoder.clip.state_dict(), ckpt)
    images = torch.rand(2, 3, SIZE, SIZE)
    loaded = CLIPQueryEncoder(model_cfg=TINY_CLIP_CFG, pretrained=str(ckpt))
    torch.testing.assert_close(loaded.encode_text("dog"), encoder.encode_text("dog"))
    torch.testing.assert_close(
        loaded.encode_image(images), encoder.encode_image(images)
    )

    # Built-in name route (model_name + pretrained=<file>) through open_clip's
    # create_model, with the tiny config registered as a built-in.
    cfg_dir = tmp_path / "cfgs"
    cfg_dir.mkdir()
    (cfg_dir / "textsep-tiny-test-clip.json").write_text(json.dumps(TINY_CLIP_CFG))
    open_clip.add_model_config(cfg_dir)
    loaded = CLIPQueryEncoder("textsep-tiny-test-clip", pretrained=str(ckpt))
    torch.testing.assert_close(loaded.encode_text("dog"), encoder.encode_text("dog"))
    torch.testing.assert_close(
        loaded.encode_image(images), encoder.encode_image(images)
    )
    assert loaded.embedding_dim == D


@pytest.mark.integration
def test_local_dir(encoder, tmp_path, image_files):
    folder = encoder.save_pretrained_dir(tmp_path / "tiny")
    config = json.loads((folder / "open_clip_config.json").read_text())
    assert config["model_cfg"] == TINY_CLIP_CFG
    assert "preprocess_cfg" in config
    assert (folder / "open_clip_pytorch_model.bin").is_file()

    loaded = CLIPQueryEncoder(model_name=f"local-dir:{folder}")
    assert loaded.embedding_dim == D
    texts = ["dog", "a violin"]
    torch.testing.assert_close(loaded.encode_text(texts), encoder.encode_text(texts))
    torch.testing.assert_close(
        loaded.encode_image([image_files]), encoder.encode_image([image_files])
    )
    # save_local_clip: same weights as a seeded random init.
    folder = save_local_clip(TINY_CLIP_CFG, tmp_path / "seeded", seed=0)
    loaded = CLIPQueryEncoder(model_name=f"local-dir:{folder}")
    torch.testing.assert_close(loaded.encode_text(texts), encoder.encode_text(texts))


@pytest.mark.unit
def test_local_dir_without_weights_is_an_error(tmp_path):
    folder = save_local_clip(TINY_CLIP_CFG, tmp_path / "tiny")
    (folder / "open_clip_pytorch_model.bin").unlink()
    with pytest.raises(RuntimeError, match="could not be loaded"):
        CLIPQueryEncoder(model_name=f"local-dir:{folder}")


@pytest.mark.unit
def test_text_errors(encoder):
    for bad in ["", "   ", [], ["dog", " "]]:
        with pytest.raises(ValueError, match="empty text query"):
            encoder.encode_text(bad)
    with pytest.raises(TypeError):
        encoder.encode_text(["dog", 3])
    with pytest.raises(ValueError, match="template"):
        encoder.encode_text("dog", template="a photo of")
    with pytest.raises(ValueError, match="not both"):
        encoder.encode_text("dog", template=TRAIN_TEMPLATE, ensemble=PROMPT_ENSEMBLE)
    with pytest.raises(ValueError, match="exactly one"):
        encoder()
    with pytest.raises(ValueError, match="exactly one"):
        encoder(texts="dog", images=torch.rand(1, 3, SIZE, SIZE))


@pytest.mark.unit
def test_image_errors(encoder, tmp_path):
    not_image = tmp_path / "not_an_image.png"
    not_image.write_text("hello")
    with pytest.raises(ValueError, match="not_an_image.png"):
        encoder.encode_image([[not_image]])
    with pytest.raises(ValueError, match="missing.jpg"):
        encoder.preprocess(tmp_path / "missing.jpg")
    for shape in [(3, SIZE, SIZE), (2, 4, SIZE, SIZE), (2, 3, SIZE + 1, SIZE)]:
        with pytest.raises(ValueError, match=re.escape(str(shape))):
            encoder.encode_image(torch.rand(shape))
    with pytest.raises(ValueError, match="float"):
        encoder.encode_image(torch.zeros(1, 3, SIZE, SIZE, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(4, 5\)"):
        encoder.encode_image([torch.rand(4, 5)])


@pytest.mark.unit
def test_constructor_errors(tmp_path):
    with pytest.raises(ValueError, match="checkpoint file"):
        CLIPQueryEncoder(model_cfg=TINY_CLIP_CFG)  # default pretrained="openai"
    with pytest.raises(ValueError, match="unknown open_clip model"):
        CLIPQueryEncoder("no-such-model", pretrained=None)
    with pytest.raises(ValueError, match="neither a pretrained tag"):
        CLIPQueryEncoder("ViT-B-32", pretrained=str(tmp_path / "nope.pt"))
    with pytest.raises(ValueError, match="template"):
        CLIPQueryEncoder(model_cfg=TINY_CLIP_CFG, pretrained=None, template="x")


@pytest.mark.unit
def test_offline_tag_not_cached(tmp_path, monkeypatch):
    import huggingface_hub.constants

    attempts = []

    def no_network(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"network disabled in tests ({address})")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    try:
        CLIPQueryEncoder("ViT-B-32", pretrained="openai", cache_dir=str(tmp_path))
    except CLIPWeightsUnavailableError as e:
        message = str(e)
    else:
        pytest.fail("loading an uncached tag offline did not fail")
    assert "'ViT-B-32'" in message and "'openai'" in message
    assert "local checkpoint file" in message
    assert not attempts, f"open_clip tried the network while offline: {attempts}"


@pytest.mark.unit
def test_hf_hub_from_cache_offline(encoder, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    attempts = []

    def no_network(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    # A huggingface_hub cache holding the repo "textsep/tiny-clip".
    cache = tmp_path / "hf_cache"
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--textsep--tiny-clip"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    encoder.save_pretrained_dir(repo / "snapshots" / commit)

    loaded = CLIPQueryEncoder("hf-hub:textsep/tiny-clip", cache_dir=str(cache))
    assert loaded.pretrained is None and loaded.model_cfg == TINY_CLIP_CFG
    torch.testing.assert_close(loaded.encode_text("dog"), encoder.encode_text("dog"))
    with pytest.raises(CLIPWeightsUnavailableError, match="hf-hub:textsep/other"):
        CLIPQueryEncoder("hf-hub:textsep/other", cache_dir=str(cache))
    assert not attempts


@pytest.mark.unit
def test_openai_tag_uses_quick_gelu():
    assert _tag_quick_gelu("ViT-B-32", "openai")
    assert not _tag_quick_gelu("ViT-B-32-quickgelu", "openai")
    assert not _tag_quick_gelu("ViT-B-32", "laion2b_s34b_b79k")


@pytest.mark.integration
def test_full_vit_b_32_architecture():
    # model_cfg={} (the YAML default of the recipes) means "use model_name".
    enc = CLIPQueryEncoder("ViT-B-32", pretrained=None, model_cfg={})
    assert enc.embedding_dim == 512
    assert enc.model_cfg["embed_dim"] == 512
    assert enc.image_size == (224, 224)
    assert enc.encode_text(["dog", "cat"]).shape == (2, 512)
    assert enc.encode_image(torch.rand(1, 2, 3, 224, 224)).shape == (1, 512)
    assert enc.preprocess(Image.new("RGB", (320, 240))).shape == (3, 224, 224)


@pytest.mark.unit
def test_config_not_mutated():
    before = copy.deepcopy(TINY_CLIP_CFG)
    make_encoder(0)
    assert TINY_CLIP_CFG == before
