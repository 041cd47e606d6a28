"""The Gradio user interface of stepgen: the only code that imports gradio.

``app.py`` assembles the Blocks app from the pieces here: the header with the
model picker (:mod:`ui.header`) and one module per tab. Each tab module turns
stepgen's plain data into components and back, and owns no model logic.
Deleting this folder and ``app.py`` needs no change anywhere in ``stepgen/``.
"""
