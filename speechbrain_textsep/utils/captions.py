"""The package's one caption builder: a class label turned into a text query.

Every place where a class label becomes a caption or a text prompt (the
CLAP query encoder's default template, CLAP and CLAPSep training, the CLAPSep
evaluation lists) uses :func:`label_caption` and :data:`CAPTION_TEMPLATE`.

It lives in ``utils``, the lowest layer, because the query encoders
(``encoders``, below ``data``) need the template too: every layer can import
it.

Authors
 * speechbrain-textsep contributors
"""

__all__ = ["CAPTION_TEMPLATE", "label_caption"]

#: Caption of a class label in CLAPSep (the paper's "The sound of {label}").
CAPTION_TEMPLATE = "The sound of {}"


def label_caption(label, template=CAPTION_TEMPLATE):
    """The caption of a class label: ``template`` filled with the label.

    Underscores become spaces and surrounding spaces are dropped
    (``acoustic_guitar`` -> ``acoustic guitar``); the case is kept (the
    CLAPSep lists write FSDKaggle2018 labels with a capital, ESC-50 and
    MUSIC21 ones in lower case: give the label as wanted).

    Arguments
    ---------
    label : str
        Class label.
    template : str
        Template with one ``{}`` (``"The sound of {}"``).

    Returns
    -------
    str

    Raises
    ------
    ValueError
        An empty label, or a template without one ``{}`` field.

    Example
    -------
    >>> label_caption("acoustic_guitar")
    'The sound of acoustic guitar'
    >>> label_caption("Acoustic_guitar", template="a {} playing")
    'a Acoustic guitar playing'
    """
    text = str(label).replace("_", " ").strip()
    if not text:
        raise ValueError(f"empty class label: {label!r}")
    if not isinstance(template, str) or template.count("{}") != 1:
        raise ValueError(f"a caption template needs one '{{}}', got {template!r}")
    return template.format(text)
