"""Widgets of the crashcart console: one concern per module."""
