"""The one caption builder, the same object everywhere a label becomes a caption."""

import pytest

from speechbrain_textsep.utils.captions import CAPTION_TEMPLATE, label_caption

pytestmark = pytest.mark.unit


def test_label_caption_rules():
    assert CAPTION_TEMPLATE == "The sound of {}"
    assert label_caption("acoustic_guitar") == "The sound of acoustic guitar"
    assert label_caption("Acoustic_guitar") == "The sound of Acoustic guitar"
    assert label_caption(" dog ") == "The sound of dog"
    assert label_caption("violin", "{}") == "violin"
    assert label_caption("church_bells", "a {} ringing") == "a church bells ringing"


@pytest.mark.parametrize("label", ["", "  ", "_", "__"])
def test_empty_labels_are_errors(label):
    with pytest.raises(ValueError, match="empty class label"):
        label_caption(label)


@pytest.mark.parametrize("template", ["no field", "{} and {}", None])
def test_templates_need_one_field(template):
    with pytest.raises(ValueError, match="one '{}'"):
        label_caption("dog", template)


def test_one_builder_and_one_template_package_wide():
    from speechbrain_textsep.encoders import clap_config

    assert clap_config.TEXT_TEMPLATE is CAPTION_TEMPLATE
