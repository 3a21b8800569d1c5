"""``textsep demo``: a web page to separate (and remove) the sound you describe.

:mod:`~speechbrain_textsep.demo.command` (the command line),
:mod:`~speechbrain_textsep.demo.page` (the Gradio page),
:mod:`~speechbrain_textsep.demo.handler` (one request, without the page) and
:mod:`~speechbrain_textsep.demo.examples` (the bundled example mixtures).
Gradio (the ``demo`` extra) is imported only when the page is built.
"""

from speechbrain_textsep.demo.command import add_demo_command, run_demo

__all__ = ["add_demo_command", "run_demo"]
