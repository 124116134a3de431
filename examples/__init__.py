"""Runnable examples: the text services, their definitions and a one-command demo."""
