"""The browser check itself: a page with a missing image or a script error must be caught (so the report test,
which renders the real evaluation report with the same check, can fail)."""

from __future__ import annotations

import struct
import zlib

import pytest

from chromium import executable, render

pytestmark = pytest.mark.skipif(executable() is None, reason="chromium not installed (make setup installs it)")


def _png(path, w=4, h=3):
    raw = b"".join(b"\x00" + b"\x80\x20\x20" * w for _ in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))  # noqa: E731
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_good_page_renders_every_image(tmp_path):
    _png(tmp_path / "a.png")
    (tmp_path / "p.html").write_text("<html><body><h1>ok</h1><img src='a.png'></body></html>")
    r = render(tmp_path / "p.html", tmp_path / "shot.png")
    assert r.images == [{"src": "a.png", "loaded": True, "width": 4, "height": 3}]
    assert r.errors == [] and (tmp_path / "shot.png").read_bytes()[:4] == b"\x89PNG"


def test_missing_or_corrupt_image_and_script_error_are_caught(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    (tmp_path / "p.html").write_text("<html><body><img src='missing.png'><img src='bad.png'>"
                                     "<script>console.error('boom'); undefinedFunction();</script></body></html>")
    r = render(tmp_path / "p.html", tmp_path / "shot.png")
    assert r.broken_images == ["missing.png", "bad.png"]
    assert any("boom" in e for e in r.errors) and any("exception" in e for e in r.errors)
