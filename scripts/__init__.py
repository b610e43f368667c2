"""Developer tools, not tests: run each from the repository root as ``python -m scripts.NAME``
(the Makefile's demo, bench, docs and compare targets). They import the fake Hub as ``tests.fakehub``;
the tests import ``scripts.docs`` and ``scripts.compare_measured``."""
