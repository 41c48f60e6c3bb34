"""The Textual TUI (attach, replay, demo screens).

Nothing is implemented here yet; this file only marks the package. It is the only place that may
import Textual: everything under `crashcart/` must keep working over ssh without it.
"""
