"""Model folders that would run code or read files outside themselves are
refused (unless trusted), in well under a second, and every folder the
package writes still loads without ``trust_remote_code``.

The corpus of attacks: each folder below is a working tiny model folder with
one attack added. Those marked ``runs`` create a marker file when loaded
with ``trust_remote_code=True`` (checked below, so the payloads are real);
the others read a file outside the folder, stall the loader, or reach code
through a path that stays open when trusted. Each is refused from a local
folder and from a Hugging Face cache snapshot with the same contents.
"""

import os
import pickle
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial

import huggingface_hub
import pytest
import torch
import yaml

from speechbrain_textsep.encoders.bert import save_tiny_bert
from speechbrain_textsep.encoders.clap import (
    TINY_CLAP_CFG,
    CLAPQueryEncoder,
    build_tiny_tokenizer,
)
from speechbrain_textsep.encoders.clip import (
    TINY_CLIP_CFG,
    CLIPQueryEncoder,
    save_local_clip,
)
from speechbrain_textsep.encoders.labels import LabelQueryEncoder
from speechbrain_textsep.inference import (
    BaseQuerySeparator,
    CLAPSepSeparator,
    QuerySeparator,
    load_separator,
)
from speechbrain_textsep.inference.allowlist import (
    ALLOWED_CALLABLES,
    ATTRIBUTE_GETTER,
    hyperparams_problems,
)
from speechbrain_textsep.inference.loading import (
    UntrustedModelError,
    UntrustedPathError,
    UntrustedWeightsError,
    build_from_folder,
)
from speechbrain_textsep.inference.model_folder import write_model_folder
from speechbrain_textsep.models.clapsep import CLAPSep
from speechbrain_textsep.models.clipsep import CLIPSep
from speechbrain_textsep.models.unet import AudioUNet
from speechbrain_textsep.templates import TEMPLATE_NAMES, template_text
from speechbrain_textsep.utils.paths import PathEscapeError

CLIPSEP_SIZE = {"levels": 3, "ngf": 4, "n_maps": 4, "query_dim": 32}
CLAPSEP_SIZE = {
    "lora_rank": 4,
    "decoder_dim": 16,
    "decoder_heads": [1, 2, 4, 8],
    "masknet_dim": 32,
    "masknet_heads": 2,
    "masknet_layers": 1,
    "masknet_ff": 64,
}
HUB_ID = "attacker/evil-model"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
RUN_SHELL = "speechbrain.utils.superpowers.run_shell"
TEXTSEP = os.path.join(os.path.dirname(sys.executable), "textsep")


# ------------------------------------------------------------ the folders
def clipsep_folder(folder):
    """A tiny CLIPSep folder whose CLIP weights are in the folder."""
    torch.manual_seed(0)
    net = CLIPSep(AudioUNet(4, 4, 3), 32, 4)
    encoder = CLIPQueryEncoder(model_cfg=TINY_CLIP_CFG, pretrained=None)
    values = {
        **CLIPSEP_SIZE,
        "clip_model_cfg": TINY_CLIP_CFG,
        "clip_pretrained": None,
        "query_encoder_in_folder": True,
    }
    weights = {"mask_net": net.state_dict(), "query_encoder": encoder.state_dict()}
    return write_model_folder(folder, "clipsep", values, weights)


def clapsep_folder(folder):
    """A tiny CLAPSep folder holding its CLAP (and tokenizer) in ``clap/``."""
    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer(f"{folder}_tokenizer", ["The sound of a dog"])
    clap = CLAPQueryEncoder(None, model_cfg=TINY_CLAP_CFG, tokenizer=tokenizer)
    model = CLAPSep(clap.audio_branch, **CLAPSEP_SIZE)
    values = {
        **CLAPSEP_SIZE,
        "clap_source": "clap",
        "clap_in_folder": True,
        "clap_model_cfg": {},
        "clap_tokenizer": None,
    }
    return write_model_folder(
        folder,
        "clapsep",
        values,
        {"clapsep": model.trainable_state_dict()},
        write_files=lambda out: clap.save_pretrained_dir(os.path.join(out, "clap")),
    )


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """The clean folders the attacks start from, loaded once (warm imports)."""
    root = tmp_path_factory.mktemp("bases")
    folders = {
        "clipsep": clipsep_folder(str(root / "clipsep")),
        "clapsep": clapsep_folder(str(root / "clapsep")),
    }
    for folder in folders.values():
        load_separator(folder)
    return folders


def clone(base, target):
    """A copy of a folder; weights are hard links (never written in place)."""

    def copy(src, dst):
        if src.endswith((".ckpt", ".pt")):
            os.link(src, dst)
        else:
            shutil.copy2(src, dst)

    shutil.copytree(base, target, copy_function=copy)
    return target


def as_hub_snapshot(folder, cache, monkeypatch):
    """The folder as the offline Hugging Face cache snapshot of HUB_ID."""
    repo = cache / ("models--" + HUB_ID.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    shutil.copytree(folder, repo / "snapshots" / COMMIT, symlinks=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return HUB_ID


# ------------------------------------------------------------ the attacks
class Payload:
    """Pickles as ``os.system("touch <marker>")``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@dataclass
class Ctx:
    folder: str
    marker: str
    outside: str


def append(ctx, text):
    with open(os.path.join(ctx.folder, "hyperparams.yaml"), "a") as f:
        f.write("\n" + text + "\n")


def replace(ctx, old, new):
    path = os.path.join(ctx.folder, "hyperparams.yaml")
    with open(path) as f:
        text = f.read()
    assert old in text, old
    with open(path, "w") as f:
        f.write(text.replace(old, new))


def write_file(path, data):
    """Writes a file anew (never through a hard link of the base)."""
    if os.path.lexists(path):
        os.unlink(path)
    with open(path, "wb") as f:
        f.write(data)


def evil_checkpoint(ctx, path):
    """A state dict with a pickled object that runs ``touch <marker>``."""
    state = {"weight": torch.zeros(1), "extra": Payload(ctx.marker)}
    if os.path.lexists(path):
        os.unlink(path)
    torch.save(state, path)


def shell_command(ctx):
    append(ctx, f"x: !apply:{RUN_SHELL} ['touch {ctx.marker}']")


def library_pickle(ctx):
    write_file(f"{ctx.folder}/evil.pkl", pickle.dumps(Payload(ctx.marker)))
    append(
        ctx, f"x: !apply:speechbrain.dataio.dataio.load_pickle [{ctx.folder}/evil.pkl]"
    )


def torch_load(ctx):
    torch.save(Payload(ctx.marker), f"{ctx.folder}/evil.pt")
    append(
        ctx,
        "x: !apply:torch.serialization.load "
        f"{{f: {ctx.folder}/evil.pt, weights_only: false}}",
    )


def foreign_class(ctx):
    code = f"import os\nos.system('touch {ctx.marker}')\nclass X:\n    pass\n"
    write_file(f"{ctx.folder}/evil.py", code.encode())
    append(
        ctx,
        "x: !apply:speechbrain.inference.interfaces.foreign_class "
        f"{{source: {ctx.folder}, pymodule_file: evil.py, classname: X}}",
    )


def torch_library(ctx):
    append(ctx, f"x: !apply:torch.ops.load_library [{ctx.folder}/evil.so]")


def python_tag(ctx):
    append(ctx, f"x: !!python/object/apply:os.system ['touch {ctx.marker}']")


def tuple_plain(ctx):
    append(ctx, f"x: (!!python/object/apply:os.system ['touch {ctx.marker}'])")


def tuple_string(ctx):
    append(ctx, f"x: \"(!!python/object/apply:os.system ['touch {ctx.marker}'])\"")


def tuple_tag(ctx):
    append(
        ctx, f"x: !tuple \"(!!python/object/apply:os.system ['touch {ctx.marker}'])\""
    )


def tag_directive(ctx):
    path = os.path.join(ctx.folder, "hyperparams.yaml")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write("%TAG !e! tag:yaml.org,2002:python/object/apply:\n---\n" + text)
    append(ctx, f"x: !e!os.system ['touch {ctx.marker}']")


def getattr_chain(ctx):
    """os.system reached through getattr, called by a Pretrainer condition."""
    append(
        ctx,
        "os_module: !apply:getattr\n"
        "  - !module:speechbrain_textsep.inference.loading\n"
        "  - os\n"
        "system: !apply:getattr [!ref <os_module>, system]\n"
        f"run: !new:torch.functools.partial [!ref <system>, 'touch {ctx.marker}']",
    )
    replace(
        ctx,
        "    query_encoder: true",
        "    query_encoder: true\n    mask_net: !ref <run>",
    )


def applyref(ctx):
    append(
        ctx,
        f"x: !applyref:{RUN_SHELL} ['touch {ctx.marker}']",
    )


def include(ctx):
    secret = os.path.join(ctx.outside, "secret.yaml")
    with open(secret, "w") as f:
        f.write(f"y: !apply:{RUN_SHELL} ['touch {ctx.marker}']\n")
    append(ctx, f"x: !include:{secret}")


def symlinked_hparams(ctx):
    outside = os.path.join(ctx.outside, "hyperparams.yaml")
    shutil.copy(os.path.join(ctx.folder, "hyperparams.yaml"), outside)
    with open(outside, "a") as f:
        f.write(f"\nx: !apply:{RUN_SHELL} ['touch {ctx.marker}']\n")
    os.unlink(os.path.join(ctx.folder, "hyperparams.yaml"))
    os.symlink(outside, os.path.join(ctx.folder, "hyperparams.yaml"))


def pickled_checkpoint(ctx):
    evil_checkpoint(ctx, os.path.join(ctx.folder, "mask_net.ckpt"))


def pickled_clip_weights(ctx):
    evil_checkpoint(ctx, os.path.join(ctx.folder, "evil_clip.pt"))
    replace(ctx, "  pretrained:\n", "  pretrained: evil_clip.pt\n")


def escaping_path(ctx):
    evil_checkpoint(ctx, os.path.join(ctx.outside, "mask_net.ckpt"))
    replace(
        ctx,
        "  conditions:",
        "  paths:\n    mask_net: ../outside/mask_net.ckpt\n  conditions:",
    )


def absolute_path(ctx):
    evil_checkpoint(ctx, os.path.join(ctx.outside, "mask_net.ckpt"))
    replace(
        ctx,
        "  conditions:",
        f"  paths:\n    mask_net: {ctx.outside}/mask_net.ckpt\n  conditions:",
    )


def symlinked_checkpoint(ctx):
    evil_checkpoint(ctx, os.path.join(ctx.outside, "mask_net.ckpt"))
    os.unlink(os.path.join(ctx.folder, "mask_net.ckpt"))
    os.symlink(
        os.path.join(ctx.outside, "mask_net.ckpt"),
        os.path.join(ctx.folder, "mask_net.ckpt"),
    )


def clip_weights_outside(ctx):
    evil_checkpoint(ctx, os.path.join(ctx.outside, "clip.pt"))
    replace(ctx, "  pretrained:\n", f"  pretrained: {ctx.outside}/clip.pt\n")


def clip_folder_outside(ctx):
    save_local_clip(TINY_CLIP_CFG, os.path.join(ctx.outside, "clip"))
    replace(ctx, "  model_name: ViT-B-32", "  model_name: local-dir:../outside/clip")


def clip_cache_outside(ctx):
    replace(ctx, "  pretrained:\n", f"  pretrained:\n  cache_dir: {ctx.outside}\n")


def file_of_current_directory(ctx):
    evil_checkpoint(ctx, os.path.join(ctx.outside, "clip.pt"))
    replace(ctx, "  pretrained:\n", "  pretrained: clip.pt\n")


def bert_outside(ctx):
    save_tiny_bert(os.path.join(ctx.outside, "bert"), ["flute"])
    append(
        ctx,
        "bert: !new:speechbrain_textsep.encoders.bert.BERTQueryEncoder\n"
        f"  source: {ctx.outside}/bert",
    )


def deferred_encoder(ctx):
    """A partial that would build the CLIP with outside weights later."""
    evil_checkpoint(ctx, os.path.join(ctx.outside, "clip.pt"))
    append(
        ctx,
        "later: !name:speechbrain_textsep.encoders.clip.CLIPQueryEncoder\n"
        f"  pretrained: {ctx.outside}/clip.pt",
    )


def pretrainer_hook(ctx):
    replace(
        ctx,
        "  conditions:",
        "  custom_hooks:\n"
        "    mask_net: !name:speechbrain_textsep.models.unet.AudioUNet\n"
        "  conditions:",
    )


def getattr_method(ctx):
    append(ctx, "split: !apply:getattr [!ref <pretrainer>, split_path]")


def getattr_dunder(ctx):
    append(ctx, "cls: !ref <spectral.__class__>")


def run_option(ctx):
    append(ctx, "jit: true\njit_module_keys: [separator]")


def alias_bomb(ctx):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    append(ctx, "\n".join(lines))


def string_bomb(ctx):
    append(ctx, 'a: "<a><a>"\nb: !ref x<a>')


def power_bomb(ctx):
    append(ctx, "a: 9\nb: !ref <a> ** <a> ** <a> ** <a>")


def format_bomb(ctx):
    append(ctx, "n: 7\nb: !ref \"'%0900000000d' % <n>\"")


def recursive_alias(ctx):
    append(ctx, "a: &loop [1, *loop]")


def clap_tokenizer_code(ctx):
    clap = os.path.join(ctx.folder, "clap")
    code = f"import os\nos.system('touch {ctx.marker}')\n"
    write_file(os.path.join(clap, "evil.py"), code.encode())
    config = '{"auto_map": {"AutoTokenizer": ["evil.EvilTokenizer", null]}}'
    write_file(os.path.join(clap, "tokenizer_config.json"), config.encode())


def clap_weights_symlink(ctx):
    evil_checkpoint(ctx, os.path.join(ctx.outside, "clap_model.pt"))
    target = os.path.join(ctx.folder, "clap", "clap_model.pt")
    os.unlink(target)
    os.symlink(os.path.join(ctx.outside, "clap_model.pt"), target)


@dataclass
class Attack:
    name: str
    build: object
    error: type
    match: str
    runs: bool = False  # creates the marker when loaded trusted
    base: str = "clipsep"
    hub: bool = True  # also tried as a hub cache snapshot
    cwd_outside: bool = False


ATTACKS = [
    Attack("shell_command", shell_command, UntrustedModelError,
           r"!apply:speechbrain\.utils\.superpowers\.run_shell \(line \d+\), which "
           r"is not on the allow-list", runs=True),
    Attack("library_pickle", library_pickle, UntrustedModelError,
           r"!apply:speechbrain\.dataio\.dataio\.load_pickle", runs=True),
    Attack("torch_load", torch_load, UntrustedModelError,
           r"!apply:torch\.serialization\.load", runs=True),
    Attack("foreign_class", foreign_class, UntrustedModelError,
           r"!apply:speechbrain\.inference\.interfaces\.foreign_class", runs=True),
    Attack("torch_library", torch_library, UntrustedModelError,
           r"!apply:torch\.ops\.load_library"),
    Attack("python_tag", python_tag, UntrustedModelError,
           r"Python tag !!python/object/apply:os\.system", runs=True),
    Attack("tuple_plain", tuple_plain, UntrustedModelError,
           r"tuple string .*!!python/object/apply:os\.system", runs=True),
    # Runs in a fresh process (the first HyperPyYAML load quotes it not).
    Attack("tuple_string", tuple_string, UntrustedModelError,
           r"tuple string .*!!python/object/apply:os\.system"),
    Attack("tuple_tag", tuple_tag, UntrustedModelError,
           r"tuple string .*!!python/object/apply:os\.system", runs=True),
    Attack("tag_directive", tag_directive, UntrustedModelError,
           r"YAML directives \(%TAG", runs=True),
    Attack("getattr_chain", getattr_chain, UntrustedModelError,
           r"module speechbrain_textsep\.inference\.loading \(!module:.*"
           r"!new:torch\.functools\.partial", runs=True),
    Attack("applyref", applyref, UntrustedModelError,
           r"calls speechbrain\.utils\.superpowers\.run_shell .*!applyref:",
           runs=True),
    Attack("include", include, UntrustedModelError,
           r"includes the file /.*/outside/secret\.yaml", runs=True),
    Attack("symlinked_hparams", symlinked_hparams, UntrustedPathError,
           r"'hyperparams\.yaml' .*outside", runs=True),
    Attack("pickled_checkpoint", pickled_checkpoint, UntrustedWeightsError,
           r"mask_net weights in .*mask_net\.ckpt.*weights_only=True"),
    Attack("pickled_clip_weights", pickled_clip_weights, ValueError,
           r"CLIP weights of .*evil_clip\.pt.*weights_only=True"),
    Attack("escaping_path", escaping_path, UntrustedPathError,
           r"'\.\./outside/mask_net\.ckpt' leaves its folder"),
    Attack("absolute_path", absolute_path, UntrustedPathError,
           r"'/.*/outside/mask_net\.ckpt' is absolute"),
    Attack("symlinked_checkpoint", symlinked_checkpoint, UntrustedPathError,
           r"'mask_net\.ckpt' .*outside/mask_net\.ckpt, outside"),
    Attack("clip_weights_outside", clip_weights_outside, UntrustedPathError,
           r"CLIPQueryEncoder\.pretrained '/.*/outside/clip\.pt' is absolute"),
    Attack("clip_folder_outside", clip_folder_outside, UntrustedPathError,
           r"CLIPQueryEncoder\.model_name '\.\./outside/clip' leaves its folder"),
    Attack("clip_cache_outside", clip_cache_outside, UntrustedPathError,
           r"CLIPQueryEncoder\.cache_dir cannot be set"),
    Attack("file_of_current_directory", file_of_current_directory,
           UntrustedPathError, r"'clip\.pt' is not in the model folder but names "
           r"/.*/outside/clip\.pt in the current directory", hub=False,
           cwd_outside=True),
    Attack("bert_outside", bert_outside, UntrustedPathError,
           r"BERTQueryEncoder\.source '/.*/outside/bert' is absolute"),
    Attack("deferred_encoder", deferred_encoder, UntrustedPathError,
           r"CLIPQueryEncoder\.pretrained '/.*/outside/clip\.pt' is absolute"),
    Attack("pretrainer_hook", pretrainer_hook, UntrustedPathError,
           r"Pretrainer\.custom_hooks cannot be set"),
    Attack("getattr_method", getattr_method, UntrustedModelError,
           r"getattr refuses Pretrainer\.split_path: it is code"),
    Attack("getattr_dunder", getattr_dunder, UntrustedModelError,
           r"!apply:getattr \(line \d+\) on '__class__'"),
    Attack("run_option", run_option, UntrustedModelError,
           r"run option 'jit'"),
    Attack("alias_bomb", alias_bomb, UntrustedModelError,
           r"more than 5000 nodes once its aliases are expanded"),
    Attack("string_bomb", string_bomb, UntrustedModelError,
           r"reference b: !ref x<a>, which builds a string of more than 100000"),
    Attack("power_bomb", power_bomb, UntrustedModelError,
           r"reference b: .*computes 9 \*\* 387420489"),
    Attack("format_bomb", format_bomb, UntrustedModelError,
           r"reference b: .*formats a string with %"),
    Attack("recursive_alias", recursive_alias, UntrustedModelError,
           r"recursive alias \(line \d+\)"),
    Attack("clap_tokenizer_code", clap_tokenizer_code, UntrustedPathError,
           r"CLAPQueryEncoder\.source 'clap' has tokenizer_config\.json \(auto_map\)",
           base="clapsep"),
    Attack("clap_weights_symlink", clap_weights_symlink, UntrustedPathError,
           r"clap/clap_model\.pt, a symlink to /.*/outside/clap_model\.pt",
           base="clapsep"),
]  # fmt: skip

BY_NAME = {attack.name: attack for attack in ATTACKS}
CASES = [
    pytest.param(attack, where, id=f"{attack.name}-{where}")
    for attack in ATTACKS
    for where in (("local", "hub") if attack.hub else ("local",))
]


def prepare(attack, bases, tmp_path):
    """The attacked folder and its context (marker, outside folder)."""
    folder = clone(bases[attack.base], str(tmp_path / "model"))
    outside = tmp_path / "outside"
    outside.mkdir()
    ctx = Ctx(folder=folder, marker=str(tmp_path / "MARKER"), outside=str(outside))
    attack.build(ctx)
    return ctx


def refused(load, error, match):
    """Runs a load that must be refused; returns (exception, seconds)."""
    start = time.perf_counter()
    with pytest.raises(error, match=match) as info:
        load()
    return info.value, time.perf_counter() - start


@pytest.mark.integration
@pytest.mark.parametrize("attack, where", CASES)
def test_attack_is_refused_fast_and_runs_nothing(
    attack, where, bases, tmp_path, monkeypatch
):
    ctx = prepare(attack, bases, tmp_path)
    source = ctx.folder
    if where == "hub":
        source = as_hub_snapshot(ctx.folder, tmp_path / "hub", monkeypatch)
    if attack.cwd_outside:
        monkeypatch.chdir(ctx.outside)
    _, seconds = refused(lambda: load_separator(source), attack.error, attack.match)
    assert not os.path.exists(ctx.marker)
    assert seconds < 1.0, f"{attack.name} took {seconds:.2f} s to refuse"


@pytest.mark.integration
@pytest.mark.parametrize(
    "attack", [a for a in ATTACKS if a.runs], ids=lambda attack: attack.name
)
def test_payloads_are_real_when_trusted(attack, bases, tmp_path, monkeypatch):
    """The same folders run their payload with trust_remote_code=True."""
    ctx = prepare(attack, bases, tmp_path)
    monkeypatch.chdir(tmp_path)
    try:
        load_separator(ctx.folder, trust_remote_code=True)
    except Exception:  # noqa: S110  (some payloads break the model afterwards)
        pass
    assert os.path.exists(ctx.marker), f"{attack.name} ran nothing when trusted"


# ------------------------------------------------------- every entry point
@pytest.mark.integration
@pytest.mark.parametrize(
    "load",
    [
        lambda source: QuerySeparator.from_hparams(source=source),
        lambda source: CLAPSepSeparator.from_hparams(source=source),
        lambda source: BaseQuerySeparator.from_hparams(source=source),
        lambda source: load_separator(source, savedir=f"{source}_savedir"),
        lambda source: build_from_folder(source),
    ],
    ids=["QuerySeparator", "CLAPSepSeparator", "BaseQuerySeparator",
         "load_separator", "build_from_folder"],
)  # fmt: skip
def test_every_interface_refuses(load, bases, tmp_path):
    for name in ("shell_command", "tuple_plain", "symlinked_checkpoint"):
        attack = BY_NAME[name]
        case = tmp_path / attack.name
        case.mkdir()
        ctx = prepare(attack, bases, case)
        _, seconds = refused(partial(load, ctx.folder), attack.error, attack.match)
        assert not os.path.exists(ctx.marker) and seconds < 1.0


def textsep(*args, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [TEXTSEP, *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd
    )
    return result.returncode, result.stderr


def fake_recipe_run(folder, bases, marker):
    """A recipe output folder whose (plain) values smuggle a tuple payload."""
    hparams = {
        "model_kind": "clipsep",
        "experiment": "evil",
        "seed": 1,
        "number_of_epochs": 1,
        "batch_size": 1,
        "train_csv": "none.csv",
        "sample_rate": 16000,
        "n_fft": 1024,
        "hop_length": 256,
        "win_length": 1024,
        "n_warped": 256,
        "pad_mode": "constant",
        "warp_grid": "exact",
        "stft_dtype": "float32",
        **CLIPSEP_SIZE,
        "clip_model": f"(!!python/object/apply:os.system ['touch {marker}'])",
        "clip_pretrained": None,
        "clip_model_cfg": TINY_CLIP_CFG,
    }
    checkpoint = folder / "save" / "CKPT+2024-01-01+00-00-00+00"
    checkpoint.mkdir(parents=True)
    (folder / "hyperparams.yaml").write_text(yaml.safe_dump(hparams))
    (checkpoint / "CKPT.yaml").write_text("sdri_plain: 1.0\nunixtime: 0\n")
    for name in ("mask_net", "query_encoder"):
        shutil.copy(os.path.join(bases["clipsep"], f"{name}.ckpt"), checkpoint)
    return folder


@pytest.mark.integration
def test_textsep_commands_refuse(bases, tmp_path):
    ctx = prepare(BY_NAME["shell_command"], bases, tmp_path)
    wav = tmp_path / "mix.wav"
    import soundfile as sf

    sf.write(str(wav), torch.zeros(1600).numpy(), 16000)
    code, stderr = textsep(
        "separate", wav, "--model", ctx.folder, "--query", "x", "--out", tmp_path / "o"
    )
    assert code == 2 and "run_shell" in stderr and "--trust-remote-code" in stderr
    (tmp_path / "mixtures.csv").write_text("a,b\n")
    code, stderr = textsep(
        "evaluate", "--model", ctx.folder, "--mixtures", tmp_path / "mixtures.csv",
        "--clips", tmp_path / "mixtures.csv", "--out", tmp_path / "eval",
    )  # fmt: skip
    assert code == 2 and "run_shell" in stderr
    run = fake_recipe_run(tmp_path / "run", bases, ctx.marker)
    code, stderr = textsep("export", run, "--out", tmp_path / "exported", cwd=tmp_path)
    assert code == 2 and "tuple string" in stderr and "os.system" in stderr
    assert not os.path.exists(ctx.marker)


@pytest.mark.unit
def test_clip_encoder_loader_keeps_to_its_folder(tmp_path):
    folder = save_local_clip(TINY_CLIP_CFG, tmp_path / "clip")
    weights = folder / "open_clip_pytorch_model.bin"
    outside = tmp_path / "elsewhere.bin"
    os.replace(weights, outside)
    os.symlink(outside, weights)
    start = time.perf_counter()
    with pytest.raises(PathEscapeError, match="open_clip_pytorch_model.bin, a symlink"):
        CLIPQueryEncoder(model_name=f"local-dir:{folder}")
    assert time.perf_counter() - start < 1.0
    marker = tmp_path / "MARKER"
    torch.save({"x": Payload(str(marker))}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match=r"evil\.pt: they are not plain tensors"):
        CLIPQueryEncoder(model_cfg=TINY_CLIP_CFG, pretrained=str(tmp_path / "evil.pt"))
    assert not marker.exists()


# ------------------------------------------- what the package writes loads
def object_names(text):
    """Names of the objects a HyperPyYAML text builds (its object tags)."""
    from ruamel.yaml.loader import SafeLoader

    root = SafeLoader(text).get_single_node()
    names, stack, seen = set(), [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for prefix in ("!new:", "!name:", "!apply:"):
            if (node.tag or "").startswith(prefix):
                names.add(node.tag[len(prefix) :])
        if isinstance(node.value, list):
            for item in node.value:
                stack.extend(item if isinstance(item, tuple) else [item])
    return names


@pytest.mark.unit
def test_allow_list_is_exactly_what_the_templates_build():
    used = set()
    for name in TEMPLATE_NAMES:
        text = template_text(name)
        assert hyperparams_problems(text) == [], name
        names = object_names(text)
        assert names <= set(ALLOWED_CALLABLES) | {ATTRIBUTE_GETTER}, name
        used |= names
    assert set(ALLOWED_CALLABLES) <= used, set(ALLOWED_CALLABLES) - used
    assert len(ALLOWED_CALLABLES) == len(set(ALLOWED_CALLABLES))


def labelsep_folder(folder):
    torch.manual_seed(0)
    net = CLIPSep(AudioUNet(4, 4, 3), 32, 4)
    labels = LabelQueryEncoder(["flute", "tuba"], 32)
    values = {**CLIPSEP_SIZE, "labels": ["flute", "tuba"]}
    weights = {"mask_net": net.state_dict(), "query_encoder": labels.state_dict()}
    return write_model_folder(folder, "labelsep", values, weights)


def bertsep_folder(folder):
    """A BERTSep folder that ships its (tiny) BERT in ``bert/``."""
    torch.manual_seed(0)
    net = CLIPSep(AudioUNet(4, 4, 3), 32, 4)
    values = {**CLIPSEP_SIZE, "bert_source": "bert"}
    return write_model_folder(
        folder,
        "bertsep",
        values,
        {"mask_net": net.state_dict()},
        write_files=lambda out: save_tiny_bert(os.path.join(out, "bert"), ["flute"]),
    )


def weaksup_folder(folder):
    """A tiny weakly-supervised separator folder holding its CLAP in ``clap/``."""
    from speechbrain_textsep.models.weaksup import WeakSupMaskNet

    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer(f"{folder}_tokenizer", ["The sound of a dog"])
    clap = CLAPQueryEncoder(None, model_cfg=TINY_CLAP_CFG, tokenizer=tokenizer)
    size = {"n_maps": 4, "ngf": 4, "levels": 3, "attn_levels": 1, "heads": 2}
    net = WeakSupMaskNet(**size, token_dim=clap.token_dim)
    stft = {"n_fft": 126, "hop_length": 32, "win_length": 126, "n_tokens": 16}
    values = {**size, **stft, "clap_source": "clap", "clap_in_folder": True}
    return write_model_folder(
        folder,
        "weaksup",
        values,
        {"mask_net": net.state_dict()},
        write_files=lambda out: clap.save_pretrained_dir(os.path.join(out, "clap")),
    )


def imported_clipsep_folder(folder):
    from test_import_clipsep import small_checkpoint

    from speechbrain_textsep.convert import import_clipsep_checkpoint

    torch.manual_seed(0)
    encoder = CLIPQueryEncoder(model_cfg=TINY_CLIP_CFG, pretrained=None)
    checkpoint, train_args = small_checkpoint(f"{folder}_authors", query_dim=32)
    return import_clipsep_checkpoint(
        checkpoint, train_args, folder, query_encoder=encoder
    )


def imported_clapsep_folder(folder):
    from pathlib import Path

    from test_import_clapsep import write_authors_checkpoint

    from speechbrain_textsep.convert import import_clapsep_checkpoint

    authors = Path(f"{folder}_authors")
    authors.mkdir()
    encoder, _, _, path = write_authors_checkpoint(authors)
    import_clapsep_checkpoint(path, folder, query_encoder=encoder)
    return folder


@pytest.mark.integration
@pytest.mark.parametrize(
    "write",
    [
        clipsep_folder,
        clapsep_folder,
        labelsep_folder,
        bertsep_folder,
        weaksup_folder,
        imported_clipsep_folder,
        imported_clapsep_folder,
    ],
    ids=lambda write: write.__name__,
)
def test_folders_the_package_writes_load_untrusted(write, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = write(str(tmp_path / "model"))
    with open(os.path.join(folder, "hyperparams.yaml")) as f:
        text = f.read()
    names = object_names(text)
    assert names <= set(ALLOWED_CALLABLES) | {ATTRIBUTE_GETTER}, names
    separator = load_separator(folder)
    assert isinstance(separator, BaseQuerySeparator)
    estimate = separator.separate_batch(torch.randn(1, 8000), "flute")
    assert estimate.shape == (1, 8000) and torch.isfinite(estimate).all()
