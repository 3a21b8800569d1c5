"""speechbrain-textsep: separate the sound you describe, as a SpeechBrain plugin.

CLIPSep and CLIPSep-NIT (text/image-queried mask U-Nets), with training
recipes, metrics and pretrained interfaces.
"""

__version__ = "0.1.0"
