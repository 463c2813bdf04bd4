"""The PDF is printed with no network at all, and Chromium tries none (#13.9).

Chromium runs inside a network namespace without interfaces (``unshare -n``, root), under
``strace`` recording every Internet socket it opens, connects and sends on: the PDF must come
out, no TCP connection may be tried and no datagram (a DNS query) sent. With the flags of
before, Chromium sent DNS queries printing this page; one UDP ``connect()`` without a datagram
remains, Chromium's local IPv6-reachability check (the kernel only picks a route).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.report.pdf import FLAGS, NO_NETWORK_FLAGS, print_pdf

# a self-contained page, as the report is: an embedded image, no URL to fetch
PIXEL = base64.b64encode(
    bytes.fromhex(
        "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
    )
).decode()
PAGE = (
    "<!DOCTYPE html><html><head><title>offline</title></head><body><h1>Outcomes</h1>"
    f'<img alt="dot" src="data:image/gif;base64,{PIXEL}"></body></html>'
)


def offline_problem() -> str | None:
    if os.geteuid() != 0:
        return "unshare -n needs root here"
    for tool in ("unshare", "strace"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        return f"unshare -n does not work here ({probe.stderr.decode().strip()})"
    return None


_INTERNET = re.compile(r"^\d+\s+(connect|sendto|sendmsg|sendmmsg)\(\d+<(TCP|UDP)")


def internet_traffic(trace: str) -> list[str]:
    """The calls of an ``strace -yy`` log that try the Internet.

    A TCP connection, any datagram sent, and any DNS query (a connect to port 53). A UDP
    ``connect()`` that is never followed by a send only asks the kernel for a route.
    """
    found = []
    for line in trace.splitlines():
        match = _INTERNET.match(line)
        if match is None:
            continue
        call, protocol = match.groups()
        if call != "connect" or protocol == "TCP" or "htons(53)" in line:
            found.append(line)
    return found


def test_the_flags_turn_off_every_background_service_and_all_name_resolution():
    for flag in (
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-pings",
        "--disable-domain-reliability",
        "--metrics-recording-only",
        "--host-resolver-rules=MAP * ~NOTFOUND",
    ):
        assert flag in NO_NETWORK_FLAGS and flag in FLAGS, flag


def test_the_pdf_prints_in_a_namespace_without_network_and_opens_no_internet_socket(
    chromium, tmp_path
):
    problem = offline_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the offline PDF test must run: {problem}")
        pytest.skip(problem)
    trace = tmp_path / "connect.log"
    wrapper = tmp_path / "offline-chromium"
    wrapper.write_text(
        "#!/bin/sh\n"
        "exec unshare -n -- strace -f -qq -yy -e trace=socket,connect,sendto,sendmsg,sendmmsg "
        f'-o "{trace}" "{chromium}" "$@"\n'
    )
    wrapper.chmod(0o755)
    document = print_pdf(PAGE, wrapper)
    assert document.startswith(b"%PDF-")
    text = trace.read_text()
    assert "socket(AF_UNIX" in text, "strace recorded no socket at all: the trace did not work"
    traffic = internet_traffic(text)
    assert traffic == [], traffic[:3]


def test_the_report_template_fetches_nothing(tmp_path):
    template = Path(__file__).resolve().parents[2] / "pipeline/report/templates/outcomes.html.j2"
    text = template.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text and "//fonts." not in text
