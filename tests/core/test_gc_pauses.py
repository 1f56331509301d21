"""Start-up objects leave the collector's full scans; later garbage is still freed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from app.web import serve
from core.gc_pauses import freeze_start_up_objects


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def unfrozen_after() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_what_exists_is_frozen_and_what_comes_later_is_still_collected() -> None:
    kept = [Node() for _ in range(1_000)]
    frozen = freeze_start_up_objects()
    assert frozen >= len(kept)
    assert gc.get_freeze_count() == frozen
    # A reference cycle made afterwards is garbage the collector still finds.
    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    gc.collect()
    assert gone() is None


def test_a_web_server_process_freezes_once_its_app_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(serve._FACTORY, f"{__name__}:tiny_app")
    monkeypatch.setenv("ACCESS_LOG", "off")
    assert gc.get_freeze_count() == 0
    app = serve.wsgi_app()
    assert app is tiny_wsgi
    assert gc.get_freeze_count() > 0


def tiny_wsgi(environ: object, start_response: object) -> list[bytes]:
    return [b""]


def tiny_app() -> object:
    return tiny_wsgi
