import os
import stat

import pytest

from pipeline.report.pdf import BROWSER_ENV, PdfError, find_browser, print_pdf


def fake_browser(folder, body: str):
    path = folder / "fake-chromium"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_browser_from_environment_then_configuration_then_path(tmp_path, monkeypatch):
    env_browser = fake_browser(tmp_path, "exit 0")
    configured = tmp_path / "configured"
    configured.write_text("")
    assert find_browser(configured, {BROWSER_ENV: str(env_browser)}) == env_browser
    # a configured browser that is not there is not silently replaced by another one
    assert find_browser(tmp_path / "absent", {}) is None
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_browser(None, {}) is None
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ["PATH"])
    (tmp_path / "chromium").symlink_to(env_browser)
    assert find_browser(None, {}) == tmp_path / "chromium"


def test_a_browser_that_fails_is_one_sentence(tmp_path):
    browser = fake_browser(tmp_path, 'echo "GPU process isn\'t usable" >&2; exit 3')
    with pytest.raises(PdfError, match="exited with code 3 without printing the report") as err:
        print_pdf("<html></html>", browser)
    assert "GPU process" in str(err.value) and "\n" not in str(err.value)


def test_print_pdf_with_chromium(chromium):
    pdf = print_pdf("<!DOCTYPE html><html><body><h1>Hello</h1></body></html>", chromium)
    assert pdf.startswith(b"%PDF-")
