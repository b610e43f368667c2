"""hubmem.acyclic: the cyclic collector paused around large acyclic trees, and switched back on only by
the use that switched it off."""

from __future__ import annotations

import gc

from hubmem.acyclic import collector_paused


def test_nested_pauses_switch_the_collector_back_on_only_at_the_outermost():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner use found it off and left it off
    assert gc.isenabled()


def test_a_collector_the_caller_switched_off_stays_off():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_collector_comes_back_after_an_exception():
    try:
        with collector_paused():
            raise ValueError("a malformed header")
    except ValueError:
        pass
    assert gc.isenabled()
