"""Thin command-line layer: each command parses flags and calls a library function."""
