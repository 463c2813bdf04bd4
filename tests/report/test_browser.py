"""The browser helper itself: it must see what a broken report would show."""

from browser import load_page

PIXEL = (  # a 1 x 1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5Er"
    "kJggg=="
)

BROKEN = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title></head><body>
<figure><img src="data:image/png;base64,AAAA" alt="broken"></figure>
<figure><img src="data:image/png;base64,{pixel}" alt="hidden" style="display:none"></figure>
<script>console.error("something went wrong"); undefinedFunction();</script>
</body></html>"""


def test_helper_reports_console_errors_and_images_not_displayed(chromium, tmp_path):
    page_file = tmp_path / "broken.html"
    page_file.write_text(BROKEN.format(pixel=PIXEL), encoding="utf-8")
    page = load_page(chromium, page_file.as_uri())
    assert any("something went wrong" in e for e in page.errors)
    assert any("undefinedFunction" in e for e in page.errors)
    assert page.figures == 2
    broken, hidden = page.images
    assert broken["width"] == 0  # did not decode
    assert hidden["width"] == 1 and not hidden["shown"]
