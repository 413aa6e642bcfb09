"""The report page check itself: a page that throws is caught (so the live test's "no
console errors" can fail), and a report built from stored results renders offline."""

from __future__ import annotations

from pathlib import Path

from tests.evals.browser import open_page


def test_the_console_check_sees_a_broken_page(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<p>x</p><script>throw new Error('boom')</script>")
    console = open_page(page, tmp_path / "shot.png")
    assert any("Uncaught Error: boom" in line for line in console)
    assert (tmp_path / "shot.png").read_bytes()[:4] == b"\x89PNG"
