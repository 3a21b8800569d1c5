"""Tiny random model folders for interface tests (test helpers)."""

import torch

from speechbrain_textsep.encoders.clip import TINY_CLIP_CFG, CLIPQueryEncoder
from speechbrain_textsep.inference.model_folder import write_model_folder
from speechbrain_textsep.models.clipsep import CLIPSep
from speechbrain_textsep.models.unet import AudioUNet


def write_tiny_clipsep(folder, **values):
    """Writes a tiny random CLIPSep folder whose masks depend on the input.

    ``values`` (e.g. ``window_seconds``) are added to the folder's
    hyperparameters. Returns ``folder``.
    """
    torch.manual_seed(0)
    net = CLIPSep(AudioUNet(4, 4, 3), 32, 4)
    for module in net.modules():  # masks that depend on the input
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight)
    values = {
        "levels": 3,
        "ngf": 4,
        "n_maps": 4,
        "query_dim": 32,
        "clip_model_cfg": TINY_CLIP_CFG,
        "clip_pretrained": None,
        "query_encoder_in_folder": True,
        **values,
    }
    encoder = CLIPQueryEncoder(model_cfg=TINY_CLIP_CFG, pretrained=None)
    weights = {"mask_net": net.state_dict(), "query_encoder": encoder.state_dict()}
    write_model_folder(folder, "clipsep", values, weights)
    return folder
