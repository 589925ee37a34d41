"""Starting the web server: a free port near the one asked for, and the browser when there is a screen."""

from __future__ import annotations

import os
import socket
import sys
import webbrowser


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str, wanted: int, tries: int = 50) -> int:
    for port in range(wanted, wanted + tries):
        if port_is_free(host, port):
            return port
    raise OSError(f"ports {wanted}-{wanted + tries - 1} are all taken on {host}; pass --port")


def has_display() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def open_browser(url: str) -> bool:
    try:
        return webbrowser.open(url, new=2)
    except webbrowser.Error:
        return False


def lan_addresses() -> list[str]:
    """Addresses other machines on the network can use (read from this host, no traffic sent)."""
    import psutil

    found = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                found.append(a.address)
    return found
