"""The two-core helper: both results in order, a busy helper never makes a caller wait."""

from __future__ import annotations

import os
import threading

import pytest

from karung.vision import pair


def test_both_returns_both_results_in_order() -> None:
    assert pair.both(lambda: "first", lambda: 2) == ("first", 2)


def test_the_second_half_runs_on_another_thread_when_the_helper_is_free() -> None:
    caller = threading.get_ident()
    _, helper = pair.both(lambda: None, threading.get_ident)
    # the helper may not have started before the caller finished (then the caller runs it),
    # so run until the helper has been seen at least once
    seen = {helper}
    for _ in range(50):
        seen.add(pair.both(lambda: threading.Event().wait(0.001), threading.get_ident)[1])
    assert seen - {caller}


def test_a_busy_helper_hands_the_half_back_to_the_caller() -> None:
    release, started = threading.Event(), threading.Event()

    def block() -> None:
        started.set()
        release.wait(5)

    outer = threading.Thread(target=pair.both, args=(lambda: started.wait(5), block))
    outer.start()
    assert started.wait(5)
    try:  # the helper is held by the other caller: this one must not wait for it
        caller = threading.get_ident()
        assert pair.both(lambda: 1, threading.get_ident) == (1, caller)
    finally:
        release.set()
        outer.join(5)


def test_an_error_in_either_half_reaches_the_caller() -> None:
    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        pair.both(lambda: None, fail)
    with pytest.raises(ValueError, match="boom"):
        pair.both(fail, lambda: None)


def test_one_thread_when_the_environment_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KARUNG_SEARCH_THREADS", "1")
    assert not pair.available()
    monkeypatch.setenv("KARUNG_SEARCH_THREADS", "2")
    assert pair.available() == ((os.cpu_count() or 1) >= 2)
