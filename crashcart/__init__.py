"""crashcart: a console for the worst moment of an operator's week.

Everything in this package is plain Python with no Textual import, so the headless commands
(`crashcart analyze`, `crashcart watch`) run over ssh on a rescue system.
"""

__version__ = "0.1.0"
