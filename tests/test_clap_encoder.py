"""Tests of the frozen LAION-CLAP query encoder (tiny random models, no download)."""

import copy
import json
import socket

import pytest
import torch
import torch.nn.functional as F
import torchaudio

from speechbrain_textsep.encoders.clap import (
    DEFAULT_CHECKPOINT,
    LAION_CLAP_REPO,
    TEXT_TEMPLATE,
    TINY_CLAP_CFG,
    CLAPQueryEncoder,
    CLAPWeightsUnavailableError,
    build_tiny_tokenizer,
    check_clap_cfg,
    clap_audio_input,
    laion_clap_cfg,
    load_clap_checkpoint,
    save_local_clap,
    tokenize,
)

D = 512
RATE = 48000
CLIP = 480000
CAPTIONS = [
    "The sound of violin",
    "The sound of flute",
    "The sound of acoustic guitar",
    "a dog barking in the rain",
]


@pytest.fixture(scope="module")
def tokenizer_folder(tmp_path_factory):
    return build_tiny_tokenizer(tmp_path_factory.mktemp("clap_tok"), CAPTIONS)


def make_encoder(tokenizer_folder, seed=0, **kwargs):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CLAPQueryEncoder(
            None, model_cfg=TINY_CLAP_CFG, tokenizer=tokenizer_folder, **kwargs
        )


@pytest.fixture(scope="module")
def encoder(tokenizer_folder):
    return make_encoder(tokenizer_folder, 0)


@pytest.fixture(scope="module")
def clips():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(2, 3 * RATE, generator=gen) * 0.1


def no_network(monkeypatch):
    """Offline mode, and a list of the connections anything tried."""
    import huggingface_hub.constants

    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"network disabled in tests ({address})")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


@pytest.mark.unit
def test_shapes_and_normalisation(encoder, clips):
    assert encoder.embedding_dim == D
    assert encoder.sample_rate == RATE and encoder.clip_samples == CLIP
    text = encoder.encode_text(["The sound of violin", "a cat"])
    audio = encoder.encode_audio(clips, sample_rate=RATE)
    assert text.shape == (2, D) and audio.shape == (2, D)
    torch.testing.assert_close(text.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(audio.norm(dim=-1), torch.ones(2))
    assert not text.requires_grad and not audio.requires_grad
    assert encoder.encode_text("violin").shape == (1, D)
    assert encoder.encode_audio(clips[0], RATE).shape == (1, D)
    # A list of clips of different lengths (at 48 kHz by default).
    assert encoder.encode_audio([clips[0], clips[1, :RATE]]).shape == (2, D)
    # forward: texts with the instance template, or audio.
    assert encoder.template is None
    torch.testing.assert_close(encoder(texts=["a cat"]), text[1:])
    torch.testing.assert_close(encoder(audio=clips, sample_rate=RATE), audio)


@pytest.mark.unit
def test_template_and_ensemble(encoder, tokenizer_folder):
    out = encoder.encode_text(["violin", "flute"], template=TEXT_TEMPLATE)
    torch.testing.assert_close(
        out, encoder.encode_text(["The sound of violin", "The sound of flute"])
    )
    with_template = make_encoder(tokenizer_folder, 0, template=TEXT_TEMPLATE)
    torch.testing.assert_close(with_template(texts=["violin", "flute"]), out)
    ensemble = ["The sound of {}", "a {} playing"]
    mean = encoder.encode_text("violin", ensemble=ensemble)
    parts = [encoder.encode_text("violin", template=t) for t in ensemble]
    torch.testing.assert_close(mean, F.normalize(sum(parts), dim=-1))


@pytest.mark.unit
def test_embeddings_are_laion_clap_embeddings(encoder, clips):
    # Text: laion_clap's get_text_embedding on laion_clap's tokenisation.
    texts = ["The sound of violin", "a dog"]
    tokens = encoder.tokenizer(
        texts, padding="max_length", truncation=True, max_length=77, return_tensors="pt"
    )
    assert tokens["input_ids"].shape == (2, 77)
    with torch.no_grad():
        ref = encoder.clap.get_text_embedding(dict(tokens))
        # CLAP.forward(audio=None) is the unnormalised text embedding.
        raw = encoder.clap(None, tokenize(encoder.tokenizer, texts), device="cpu")
    torch.testing.assert_close(encoder.encode_text(texts), ref)
    torch.testing.assert_close(ref, F.normalize(raw, dim=-1))
    assert encoder.clap.text_branch_type == "roberta"
    # Audio: CLAP.forward(text=None) on the repeat-padded 10 s input.
    padded = clap_audio_input(clips, RATE, TINY_CLAP_CFG["audio_cfg"])
    with torch.no_grad():
        raw = encoder.clap({"waveform": padded}, None, device="cpu")
    torch.testing.assert_close(
        encoder.encode_audio(clips, RATE), F.normalize(raw, dim=-1)
    )


@pytest.mark.unit
def test_audio_branch_and_htsat_input(encoder):
    branch = encoder.audio_branch
    assert branch is encoder.clap.audio_branch
    assert type(branch).__name__ == "HTSAT_Swin_Transformer"
    # 10 s at 48 kHz, hop 480 -> 1001 frames x 64 mel bins, interpolated to
    # the 1024 x 64 the HTSAT reshapes into a 256 x 256 image.
    assert branch.spec_size * branch.freq_ratio == 1024
    assert branch.spec_size // branch.freq_ratio == 64
    with torch.no_grad():
        spec = branch.spectrogram_extractor(torch.zeros(1, CLIP))
        mel = branch.logmel_extractor(spec)
        image = branch.reshape_wav2img(mel)
        out = branch({"waveform": torch.zeros(2, CLIP)}, device="cpu")
    assert mel.shape == (1, 1, 1001, 64)
    assert image.shape == (1, 1, 256, 256)
    # The tiny HTSAT outputs 16 * 2**3 = 128 features; the projection maps
    # them to the 512-d joint space.
    assert out["embedding"].shape == (2, TINY_CLAP_CFG["embed_dim"])
    assert encoder.clap.audio_projection[0].in_features == 128
    assert encoder.clap.audio_projection[-1].out_features == D
    assert encoder.clap.text_projection[0].in_features == 32
    # A copy (as CLAPSep makes) is independent and trainable.
    copied = copy.deepcopy(branch).requires_grad_(True)
    assert all(p.requires_grad for p in copied.parameters())
    assert not any(p.requires_grad for p in encoder.parameters())


@pytest.mark.unit
def test_resampling(encoder):
    gen = torch.Generator().manual_seed(1)
    x16 = torch.randn(2, 32000, generator=gen) * 0.1
    x48 = torchaudio.functional.resample(x16, 16000, RATE)
    assert encoder.preprocess_audio(x16, 16000).shape == (2, CLIP)
    torch.testing.assert_close(
        encoder.encode_audio(x16, sample_rate=16000), encoder.encode_audio(x48, RATE)
    )
    x44 = torchaudio.functional.resample(x48, RATE, 44100)
    emb44 = encoder.encode_audio(x44, sample_rate=44100)
    assert emb44.shape == (2, D)
    # Same sound at another rate: nearly the same embedding.
    cosine = (emb44 * encoder.encode_audio(x48, RATE)).sum(-1)
    assert (cosine > 0.99).all()


@pytest.mark.unit
def test_repeat_pad_and_crop():
    cfg = {"sample_rate": 10, "clip_samples": 10}
    short = torch.arange(1.0, 4.0)  # 3 samples: repeated 3 times, then 0
    out = clap_audio_input(short, 10, cfg)
    assert out.tolist() == [[1, 2, 3, 1, 2, 3, 1, 2, 3, 0]]
    long = torch.arange(16.0)
    assert clap_audio_input(long, 10, cfg)[0, 0] == 3  # centred
    assert clap_audio_input(long, 10, cfg, crop="start")[0, 0] == 0
    torch.manual_seed(0)
    starts = {
        int(clap_audio_input(long, 10, cfg, crop="random")[0, 0]) for _ in range(50)
    }
    assert starts == set(range(7))  # uniform over the 7 possible crops
    exact = torch.arange(10.0)
    assert torch.equal(clap_audio_input(exact, 10, cfg)[0], exact)


@pytest.mark.unit
def test_frozen_and_eval(encoder):
    assert all(not p.requires_grad for p in encoder.parameters())
    parent = torch.nn.ModuleDict({"enc": encoder, "head": torch.nn.Linear(D, 1)})
    parent.train()
    assert parent["head"].training and not encoder.training
    assert all(not m.training for m in encoder.clap.modules())
    parent.requires_grad_(True)
    parent.train()  # re-freezes
    assert all(not p.requires_grad for p in encoder.parameters())
    loss = parent["head"](encoder(texts=["violin"])).sum()
    loss.backward()
    assert parent["head"].weight.grad is not None


@pytest.mark.unit
def test_cache(tokenizer_folder):
    enc = make_encoder(tokenizer_folder, 0)
    first = enc.encode_text(["violin", "flute"])
    assert set(enc._cache) == {"violin", "flute"}
    again = enc.encode_text(["flute", "violin"])
    assert torch.equal(again[0], first[1])
    other = make_encoder(tokenizer_folder, 1)
    enc.load_state_dict(other.state_dict())
    assert not enc._cache
    torch.testing.assert_close(enc.encode_text("violin"), other.encode_text("violin"))
    enc.encode_text("violin")
    enc.double()
    assert not enc._cache
    assert enc.encode_text("violin").dtype == torch.float64
    enc.max_cache_size = 0
    enc.clear_cache()
    enc.encode_text("cello")
    assert not enc._cache


@pytest.mark.integration
def test_folder_roundtrip(encoder, tokenizer_folder, clips, tmp_path):
    folder = encoder.save_pretrained_dir(tmp_path / "tiny")
    config = json.loads((folder / "clap_config.json").read_text())
    assert config["model_cfg"] == check_clap_cfg(TINY_CLAP_CFG)
    assert (folder / "clap_model.pt").is_file()
    assert (folder / "tokenizer_config.json").is_file()
    loaded = CLAPQueryEncoder(folder)
    assert loaded.model_cfg == encoder.model_cfg
    texts = ["The sound of violin", "unseen words here"]
    # (close, not bitwise: the fixture's cached text embeddings were computed
    # in batches of other sizes)
    torch.testing.assert_close(loaded.encode_text(texts), encoder.encode_text(texts))
    assert torch.equal(
        loaded.encode_audio(clips, RATE), encoder.encode_audio(clips, RATE)
    )
    # save_local_clap: the same weights as a seeded random init.
    seeded = save_local_clap(TINY_CLAP_CFG, tmp_path / "seeded", CAPTIONS, seed=0)
    loaded = CLAPQueryEncoder(seeded)
    assert torch.equal(
        loaded.encode_audio(clips, RATE), encoder.encode_audio(clips, RATE)
    )
    torch.testing.assert_close(loaded.encode_text(texts), encoder.encode_text(texts))


@pytest.mark.integration
def test_laion_checkpoint_file(encoder, tokenizer_folder, clips, tmp_path):
    # laion_clap's training format: DDP "module." prefixes inside "state_dict",
    # with the position_ids buffer of old transformers versions.
    state = {"module." + k: v for k, v in encoder.clap.state_dict().items()}
    state["module.text_branch.embeddings.position_ids"] = torch.arange(128)[None]
    ckpt = tmp_path / "epoch_3.pt"
    torch.save({"epoch": 3, "name": "tiny", "state_dict": state}, ckpt)
    loaded = CLAPQueryEncoder(ckpt, model_cfg=TINY_CLAP_CFG, tokenizer=tokenizer_folder)
    assert torch.equal(
        loaded.encode_audio(clips, RATE), encoder.encode_audio(clips, RATE)
    )
    torch.testing.assert_close(
        loaded.encode_text("violin"), encoder.encode_text("violin")
    )
    # A bare state dict loads too.
    bare = tmp_path / "bare.pt"
    torch.save(encoder.clap.state_dict(), bare)
    load_clap_checkpoint(make_encoder(tokenizer_folder, 5).clap, bare)

    # Another architecture: a clear error naming the mismatch.
    other_cfg = copy.deepcopy(TINY_CLAP_CFG)
    other_cfg["roberta"]["num_hidden_layers"] = 1
    with pytest.raises(ValueError, match="does not match the model config"):
        CLAPQueryEncoder(ckpt, model_cfg=other_cfg, tokenizer=tokenizer_folder)
    # Files that need more than weights_only=True are refused.
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"state_dict": state, "args": socket.AF_INET}, unsafe)
    with pytest.raises(ValueError, match="weights_only=True"):
        CLAPQueryEncoder(unsafe, model_cfg=TINY_CLAP_CFG, tokenizer=tokenizer_folder)


@pytest.mark.integration
def test_hub_cache_offline(encoder, tokenizer_folder, clips, tmp_path, monkeypatch):
    attempts = no_network(monkeypatch)
    cache = tmp_path / "hf_cache"
    commit = "0123456789abcdef0123456789abcdef01234567"

    def snapshot(repo):
        folder = cache / ("models--" + repo.replace("/", "--"))
        (folder / "refs").mkdir(parents=True)
        (folder / "refs" / "main").write_text(commit)
        return folder / "snapshots" / commit

    # A laion_clap checkpoint file in a hub repo.
    files = snapshot("textsep/tiny-clap-ckpt")
    files.mkdir(parents=True)
    state = {"module." + k: v for k, v in encoder.clap.state_dict().items()}
    torch.save({"state_dict": state}, files / "tiny.pt")
    loaded = CLAPQueryEncoder(
        "hf-hub:textsep/tiny-clap-ckpt/tiny.pt",
        model_cfg=TINY_CLAP_CFG,
        tokenizer=tokenizer_folder,
        cache_dir=str(cache),
    )
    assert torch.equal(
        loaded.encode_audio(clips, RATE), encoder.encode_audio(clips, RATE)
    )

    # A CLAP folder (save_pretrained_dir) as a hub repo.
    encoder.save_pretrained_dir(snapshot("textsep/tiny-clap"))
    loaded = CLAPQueryEncoder("hf-hub:textsep/tiny-clap", cache_dir=str(cache))
    torch.testing.assert_close(
        loaded.encode_text("violin"), encoder.encode_text("violin")
    )

    with pytest.raises(CLAPWeightsUnavailableError, match="'textsep/tiny-clap-ckpt'"):
        CLAPQueryEncoder(
            "hf-hub:textsep/tiny-clap-ckpt/other.pt",
            model_cfg=TINY_CLAP_CFG,
            tokenizer=tokenizer_folder,
            cache_dir=str(cache),
        )
    assert not attempts, f"tried the network while offline: {attempts}"


@pytest.mark.unit
def test_offline_missing_checkpoint(tmp_path, monkeypatch):
    attempts = no_network(monkeypatch)
    with pytest.raises(CLAPWeightsUnavailableError) as info:
        CLAPQueryEncoder(cache_dir=str(tmp_path))  # the default checkpoint
    message = str(info.value)
    assert DEFAULT_CHECKPOINT in message and LAION_CLAP_REPO in message
    assert "HF_HUB_OFFLINE is set" in message and "source=<path>" in message
    assert not attempts


@pytest.mark.unit
def test_offline_missing_tokenizer(tmp_path, monkeypatch):
    attempts = no_network(monkeypatch)
    # roberta-base text model: its tokenizer defaults to the hub's roberta-base.
    with pytest.raises(CLAPWeightsUnavailableError) as info:
        CLAPQueryEncoder(
            None, model_cfg=laion_clap_cfg("HTSAT-base"), cache_dir=str(tmp_path)
        )
    message = str(info.value)
    assert "'roberta-base'" in message and "tokenizer=<path>" in message
    assert not attempts
    with pytest.raises(CLAPWeightsUnavailableError, match="tokenizer folder not found"):
        CLAPQueryEncoder(None, model_cfg=TINY_CLAP_CFG, tokenizer=str(tmp_path / "no"))
    with pytest.raises(ValueError, match="give its tokenizer"):
        CLAPQueryEncoder(None, model_cfg=TINY_CLAP_CFG)


@pytest.mark.unit
def test_missing_local_files(tokenizer_folder, tmp_path):
    folder = save_local_clap(TINY_CLAP_CFG, tmp_path / "tiny", CAPTIONS)
    (folder / "clap_model.pt").unlink()
    with pytest.raises(CLAPWeightsUnavailableError, match="has no clap_model.pt"):
        CLAPQueryEncoder(folder)
    with pytest.raises(CLAPWeightsUnavailableError, match="neither an existing"):
        CLAPQueryEncoder(tmp_path / "missing.pt", model_cfg=TINY_CLAP_CFG)
    empty = tmp_path / "empty_tokenizer"
    empty.mkdir()
    with pytest.raises(CLAPWeightsUnavailableError, match="empty_tokenizer"):
        CLAPQueryEncoder(None, model_cfg=TINY_CLAP_CFG, tokenizer=empty)
    big = copy.deepcopy(TINY_CLAP_CFG)
    big["roberta"]["vocab_size"] = 100
    with pytest.raises(ValueError, match="vocabulary has 100"):
        CLAPQueryEncoder(None, model_cfg=big, tokenizer=tokenizer_folder)


@pytest.mark.unit
def test_input_errors(encoder):
    for bad in ["", "  ", [], ["violin", " "]]:
        with pytest.raises(ValueError, match="empty text query"):
            encoder.encode_text(bad)
    with pytest.raises(TypeError):
        encoder.encode_text(["violin", 3])
    with pytest.raises(ValueError, match="not both"):
        encoder.encode_text("x", template=TEXT_TEMPLATE, ensemble=[TEXT_TEMPLATE])
    with pytest.raises(ValueError, match="exactly one"):
        encoder()
    with pytest.raises(ValueError, match=r"\(1, 2, 3\)"):
        encoder.encode_audio(torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="empty"):
        encoder.encode_audio(torch.zeros(1, 0))
    with pytest.raises(ValueError, match="NaN"):
        encoder.encode_audio(torch.full((1, 100), float("nan")))
    with pytest.raises(ValueError, match="empty audio batch"):
        encoder.encode_audio([])
    with pytest.raises(ValueError, match="positive"):
        encoder.encode_audio(torch.zeros(1, 100), sample_rate=0)
    with pytest.raises(ValueError, match="crop"):
        CLAPQueryEncoder(None, model_cfg=TINY_CLAP_CFG, crop="middle")


@pytest.mark.unit
def test_config_checks():
    assert check_clap_cfg(TINY_CLAP_CFG)["embed_dim"] == 128
    cfg = laion_clap_cfg("HTSAT-tiny")
    assert cfg["embed_dim"] == 768 and cfg["audio_cfg"]["model_name"] == "tiny"
    for change, message in [
        ({"embed_dim": 64}, "HTSAT outputs 128"),
        ({"enable_fusion": True}, "fusion"),
        ({"text_cfg": {"model_type": "bert"}}, "RoBERTa"),
    ]:
        with pytest.raises(ValueError, match=message):
            check_clap_cfg({**TINY_CLAP_CFG, **change})
    with pytest.raises(ValueError, match="unknown laion_clap HTSAT model"):
        laion_clap_cfg("PANN-14")
    before = copy.deepcopy(TINY_CLAP_CFG)
    check_clap_cfg(TINY_CLAP_CFG)
    assert TINY_CLAP_CFG == before


@pytest.mark.integration
def test_full_htsat_base_roberta_base(tokenizer_folder):
    # The architecture of music_audioset_epoch_15_esc_90.14.pt (random weights).
    cfg = laion_clap_cfg("HTSAT-base")
    enc = CLAPQueryEncoder(None, model_cfg=cfg, tokenizer=tokenizer_folder)
    branch = enc.audio_branch
    assert (branch.embed_dim, list(branch.depths)) == (128, [2, 2, 12, 2])
    assert branch.num_features == 1024 == cfg["embed_dim"]
    assert enc.clap.text_branch.config.hidden_size == 768
    assert enc.embedding_dim == D
    assert enc.encode_text(["The sound of violin", "flute"]).shape == (2, D)
    assert enc.encode_audio(torch.randn(1, RATE) * 0.1, RATE).shape == (1, D)
