"""Pieces of the model report (`dspl report`): HTML building blocks and training curves from the logs.

The workflow that assembles the page is ``dspl.workflows.report``.
"""
