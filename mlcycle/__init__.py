"""Shared code of the model lifecycle: config, registry operations, gates, CLI, stack launcher.

Modules here import nothing heavy at import time, so DAG files can use them while parsing.
"""
