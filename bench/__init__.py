"""twistchat benchmarks: ``python -m bench NAME [--quick]`` from the repository root.

Benchmarks are programs, not tests: each prints a few human lines and then one
JSON object as its last line, comparing its figures with a baseline measured
in the same run.  Nothing here is part of the installed package.
"""
