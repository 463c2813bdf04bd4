"""Print the HTML report to PDF with headless Chromium: the same content, on A4 pages.

The browser is ``$NEEDLING_BROWSER`` when set, else ``[report] browser`` of the configuration,
else the first of :data:`BROWSER_NAMES` on ``PATH``. It runs headless with a fresh profile in a
temporary folder, without first-run dialogs or extensions, and prints with the page size and
margins of the report's print CSS and no header or footer. It needs no network and is kept off
it (:data:`NO_NETWORK_FLAGS`): background networking, component and Safe Browsing updates,
metrics, crash reports, sync, pings, domain reliability and translation are off, and every host
name resolves to nothing, so not even a DNS query leaves the machine (the report is one
self-contained file). Chromium writes the
creation date into the PDF, so two PDFs of the same report differ in a few bytes; the HTML and
the tables are the reproducible outputs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

BROWSER_ENV = "NEEDLING_BROWSER"
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_SECONDS = 180
INSTALL_HINT = (
    "install Chromium (Debian/Ubuntu: apt-get install chromium) or point [report] browser "
    f"or the environment variable {BROWSER_ENV} at a Chromium or Chrome executable"
)
NO_NETWORK_FLAGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--safebrowsing-disable-auto-update",
    "--metrics-recording-only",
    "--no-pings",
    "--no-service-autorun",
    "--dns-prefetch-disable",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,"
    "CertificateTransparencyComponentUpdater,AutofillServerCommunication,NetworkTimeServiceQuerying",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
"""Flags that keep Chromium off the network: no background service, and no host resolves."""
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    *NO_NETWORK_FLAGS,
    "--mute-audio",
    "--hide-scrollbars",
    "--no-pdf-header-footer",
)


class PdfError(Exception):
    """The PDF could not be printed; the message is one sentence for the user."""


def find_browser(
    configured: Path | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """Locate a Chromium-family browser.

    Parameters
    ----------
    configured : Path, optional
        ``[report] browser`` of the configuration.
    environ : mapping, optional
        Environment (default :data:`os.environ`).

    Returns
    -------
    Path or None
        The executable, or None when none is found.
    """
    environ = os.environ if environ is None else environ
    for candidate in (environ.get(BROWSER_ENV), configured):
        if candidate:
            found = shutil.which(str(candidate))
            return Path(found) if found else None
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def print_pdf(html: str, browser: Path, timeout: float = TIMEOUT_SECONDS) -> bytes:
    """Print an HTML document to PDF with headless Chromium.

    Parameters
    ----------
    html : str
        A self-contained HTML document.
    browser : Path
        Chromium or Chrome executable.
    timeout : float
        Seconds before the browser is stopped.

    Returns
    -------
    bytes
        The PDF.

    Raises
    ------
    PdfError
        When the browser fails, times out or writes no PDF.
    """
    with tempfile.TemporaryDirectory(prefix="needling-pdf-") as folder:
        page = Path(folder) / "report.html"
        page.write_text(html, encoding="utf-8")
        target = Path(folder) / "report.pdf"
        command = [
            str(browser),
            *FLAGS,
            f"--user-data-dir={Path(folder) / 'profile'}",
            f"--print-to-pdf={target}",
            page.as_uri(),
        ]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise PdfError(f"{browser} did not print the report within {timeout:g} s") from None
        except OSError as exc:
            raise PdfError(f"{browser} could not be started ({exc.strerror})") from None
        if done.returncode != 0 or not target.is_file() or target.stat().st_size == 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise PdfError(
                f"{browser} exited with code {done.returncode} without printing the report ({last})"
            )
        return target.read_bytes()
