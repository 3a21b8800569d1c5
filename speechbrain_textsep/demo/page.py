"""The demo web page (Gradio): the fields, the outputs, the examples.

The page offers only the query kinds the loaded model takes
(``QUERY_KINDS``, ``NEGATIVE_QUERIES`` of its interface) and turns every
bad input into the interface's message on the page (:class:`gradio.Error`);
the next request is served as usual. This module imports Gradio (the
``demo`` extra) when the page is built, not when it is imported.

Authors
 * speechbrain-textsep contributors
"""

from speechbrain_textsep.demo.handler import (
    INPUT_ERRORS,
    build_query,
    describe_query_kinds,
    request_folder,
    separate_request,
    user_message,
)

__all__ = ["build_page"]

#: Elements the page's tests and styles find by id.
ELEMENT_IDS = {
    "recording": "recording",
    "text": "query",
    "negative_text": "negative",
    "images": "images",
    "audio": "audio-query",
    "button": "separate",
    "status": "status",
    "estimate": "estimate",
    "residual": "residual",
    "figure": "figure",
}


def _header(separator, name, max_seconds):
    rate = separator.hparams.sample_rate
    limit = f"up to {max_seconds:g} s, " if max_seconds else ""
    return (
        "# Separate the sound you describe\n"
        f"Model **{name}** ({type(separator).__name__}, {rate} Hz). "
        f"{describe_query_kinds(separator)}\n\n"
        f"Upload or record audio ({limit}WAV, FLAC, OGG, MP3...; any sample "
        "rate; stereo is mixed to mono), say what to separate and press "
        "**Separate**: you get the sound and the recording without it, both "
        "playable and downloadable, and their spectrograms. Long recordings "
        "are separated in windows (progress shown)."
    )


def _query_fields(separator):
    """The query fields of the kinds the model takes, by Query argument."""
    import gradio as gr

    ids = ELEMENT_IDS
    fields = {}
    if "text" in separator.QUERY_KINDS:
        fields["text"] = gr.Textbox(
            label="What to separate (text)",
            placeholder="e.g. flute",
            elem_id=ids["text"],
        )
    if separator.NEGATIVE_QUERIES:
        fields["negative_text"] = gr.Textbox(
            label="A sound to suppress (negative text, optional)",
            elem_id=ids["negative_text"],
        )
    if "image" in separator.QUERY_KINDS:
        fields["images"] = gr.File(
            label="Or images of the sound's source (averaged)",
            file_count="multiple",
            file_types=["image"],
            elem_id=ids["images"],
        )
    if "audio" in separator.QUERY_KINDS:
        fields["audio"] = gr.File(
            label="Or example recordings of the sound (averaged)",
            file_count="multiple",
            file_types=["audio"],
            elem_id=ids["audio"],
        )
    return fields


def _outputs():
    import gradio as gr

    ids = ELEMENT_IDS
    return {
        "status": gr.Markdown(elem_id=ids["status"]),
        "estimate": gr.Audio(
            label="The sound you asked for",
            type="filepath",
            interactive=False,
            buttons=["download"],
            elem_id=ids["estimate"],
        ),
        "residual": gr.Audio(
            label="Everything else: the recording without it",
            type="filepath",
            interactive=False,
            buttons=["download"],
            elem_id=ids["residual"],
        ),
        "figure": gr.Image(
            label="Spectrograms: mixture, estimate, residual",
            show_label=False,
            type="filepath",
            interactive=False,
            elem_id=ids["figure"],
        ),
    }


def _callback(separator, recording, fields, outputs, work_dir, max_seconds):
    """The function the Separate button calls: page values in, outputs out."""
    import gradio as gr

    tqdm_bars = gr.Progress(track_tqdm=True)  # the interface's progress bar

    def separate(values, progress=tqdm_bars):
        try:
            query = build_query(**{k: values[c] for k, c in fields.items()})
            result = separate_request(
                separator,
                values[recording],
                query,
                request_folder(work_dir),
                max_seconds,
            )
        except INPUT_ERRORS as e:
            message = user_message(e, values[recording])
            raise gr.Error(message, duration=20, print_exception=False) from e
        if result.silent:
            gr.Warning("The recording is silent: there is nothing to separate.")
        return {
            outputs["status"]: result.summary(),
            outputs["estimate"]: result.estimate,
            outputs["residual"]: result.residual,
            outputs["figure"]: result.figure,
        }

    return separate


def build_page(separator, name, work_dir, examples=(), max_seconds=None):
    """The demo page of a loaded model.

    Arguments
    ---------
    separator : BaseQuerySeparator
        The loaded model.
    name : str
        Its name on the page.
    work_dir : str
        Where the outputs of the requests are written (the latest ones are
        kept, see :func:`~speechbrain_textsep.demo.handler.request_folder`).
    examples : list of Example
        Bundled mixtures and their queries (text models only).
    max_seconds : float, optional
        Longest recording served.

    Returns
    -------
    gradio.Blocks
        Launch it with ``.launch()``.
    """
    import gradio as gr

    with gr.Blocks(
        title=f"textsep demo: {name}",
        analytics_enabled=False,
        delete_cache=(3600, 7200),
    ) as page:
        gr.Markdown(_header(separator, name, max_seconds))
        with gr.Row():
            with gr.Column():
                recording = gr.Audio(
                    label="Recording",
                    sources=["upload", "microphone"],
                    type="filepath",
                    elem_id=ELEMENT_IDS["recording"],
                )
                fields = _query_fields(separator)
                button = gr.Button(
                    "Separate", variant="primary", elem_id=ELEMENT_IDS["button"]
                )
            with gr.Column():
                outputs = _outputs()
        if examples and "text" in fields:
            gr.Examples(
                [[e.path, e.query] for e in examples],
                inputs=[recording, fields["text"]],
                label="Examples: SynthMUSIC mixtures of two instruments "
                "(query: the first)",
            )

        button.click(
            _callback(separator, recording, fields, outputs, work_dir, max_seconds),
            inputs={recording, *fields.values()},
            outputs=list(outputs.values()),
            concurrency_limit=1,
        )
    return page
