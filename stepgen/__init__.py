"""stepgen: watch a language model write one token at a time, and take the wheel.

The package owns models and decoding; it knows nothing about any user interface
(nothing here imports gradio). Every module states what it does and what it
deliberately leaves to others.
"""

__version__ = "0.1.0"
