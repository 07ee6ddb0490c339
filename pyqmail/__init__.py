"""pyqmail's shared library: formats and system helpers used by every program.

The modules here never import a program module; programs import them.
"""
