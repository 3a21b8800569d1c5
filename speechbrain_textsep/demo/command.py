"""``textsep demo``: serve the demo page of a model folder.

``textsep demo --model MODEL [--host 127.0.0.1] [--port 7860] [--share]
[--max-seconds 600] [--examples-dir DIR] [--examples 6]`` loads the model
(safely: allow-listed classes only), renders the bundled examples if they
are absent, and serves the page until interrupted (Ctrl+C).

Authors
 * speechbrain-textsep contributors
"""

import importlib.util
import os
import tempfile

__all__ = ["DEMO_EXTRA_MISSING", "add_demo_command", "run_demo"]

#: What ``textsep demo`` says when Gradio is not installed.
DEMO_EXTRA_MISSING = (
    "textsep demo needs Gradio, which the 'demo' extra installs: "
    "pip install 'speechbrain-textsep[demo]'"
)


def add_demo_command(commands, error_type=RuntimeError):
    """Adds ``demo`` to the sub-commands of ``textsep``.

    Arguments
    ---------
    commands : argparse._SubParsersAction
        The sub-command parsers of ``textsep``.
    error_type : type
        The exception the command raises for a problem with the user's
        input (``textsep`` prints its message and exits with status 2).

    Example
    -------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_demo_command(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["demo", "--model", "m", "--port", "8000"])
    >>> args.model, args.host, args.port, args.share, args.max_seconds
    ('m', '127.0.0.1', 8000, False, 600.0)
    """
    demo = commands.add_parser(
        "demo", help="a web page to separate (and remove) the sound you describe"
    )
    demo.add_argument("--model", required=True, help="model folder or hub id")
    demo.add_argument("--savedir", help="where fetched model files are collected")
    demo.add_argument("--device", help="e.g. cpu, cuda:0 (default: cpu)")
    demo.add_argument("--host", default="127.0.0.1", help="address to serve on")
    demo.add_argument("--port", type=int, default=7860, help="port to serve on")
    demo.add_argument(
        "--share", action="store_true", help="also a public gradio.live link"
    )
    demo.add_argument(
        "--max-seconds",
        type=float,
        default=600.0,
        help="longest recording served (seconds)",
    )
    demo.add_argument(
        "--max-upload-mb", type=float, default=200.0, help="largest upload (MB)"
    )
    demo.add_argument(
        "--examples-dir",
        help="where the bundled example mixtures are rendered (default: "
        "$XDG_CACHE_HOME/speechbrain-textsep/demo-examples)",
    )
    demo.add_argument(
        "--examples", type=int, default=6, help="number of bundled examples (0: none)"
    )

    def run(args):
        run_demo(args, error_type)

    demo.set_defaults(run=run)


def _check_options(args, error_type):
    if not 0 < args.max_seconds:
        raise error_type(f"--max-seconds must be > 0, got {args.max_seconds}")
    if not 0 < args.max_upload_mb:
        raise error_type(f"--max-upload-mb must be > 0, got {args.max_upload_mb}")
    if args.examples < 0:
        raise error_type(f"--examples must be >= 0, got {args.examples}")
    if not 0 < args.port < 65536:
        raise error_type(f"--port must be in 1-65535, got {args.port}")


def _load(args, error_type):
    from speechbrain_textsep.inference import load_separator
    from speechbrain_textsep.inference.loading import (
        ModelNotAvailableError,
        UntrustedModelError,
    )

    run_opts = {"device": args.device} if args.device else None
    try:
        return load_separator(args.model, savedir=args.savedir, run_opts=run_opts)
    except (ModelNotAvailableError, UntrustedModelError, OSError, ValueError) as e:
        raise error_type(f"cannot load the model {args.model}: {e}") from e


def run_demo(args, error_type=RuntimeError):
    """Loads the model, renders the examples and serves the page.

    Arguments
    ---------
    args : argparse.Namespace
        The options of ``textsep demo``.
    error_type : type
        Raised (with a message) for a bad option, a model that does not
        load, a missing ``demo`` extra or a port in use.
    """
    _check_options(args, error_type)
    if importlib.util.find_spec("gradio") is None:
        raise error_type(DEMO_EXTRA_MISSING)
    from speechbrain_textsep.demo.examples import default_examples_dir, prepare_examples
    from speechbrain_textsep.demo.page import build_page

    separator = _load(args, error_type)
    examples_dir = os.path.abspath(args.examples_dir or default_examples_dir())
    examples = prepare_examples(examples_dir, args.examples)
    work_dir = tempfile.mkdtemp(prefix="textsep-demo-")
    page = build_page(separator, args.model, work_dir, examples, args.max_seconds)
    try:
        page.queue().launch(
            server_name=args.host,
            server_port=args.port,
            share=args.share,
            allowed_paths=[examples_dir],
            max_file_size=int(args.max_upload_mb * 1024 * 1024),
            ssr_mode=False,
            footer_links=[],
        )
    except OSError as e:
        raise error_type(f"cannot serve on {args.host}:{args.port}: {e}") from e
