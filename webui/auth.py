"""Who may use the page and the API, and who may change the machine.

On loopback (no --lan, --host a loopback address) everyone on this PC may do everything, with no
credentials. In LAN mode every request needs them: the page takes a user name and password (Gradio's own
login, `Access.check`), the API a Bearer key (`Access.api_dependency`). Guests (--auth, --auth-file, or a
generated password) chat; hosts (--admin) may also switch models, download and convert. Passwords and
keys are compared in constant time. A generated password or key is printed once, at start, to the console
only: it is kept nowhere else (not logged, not in the page, not in a file).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request

from models.errors import AppError

GUEST = "guest"  # the user name that goes with a generated password


class CredentialsError(AppError, ValueError):
    """A credential given on the command line or in a file cannot be used (exit code 2)."""


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 and ::1: only this PC can connect. Any other address or name is LAN mode."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


@dataclass(frozen=True)
class Access:
    lan: bool = False
    users: tuple[tuple[str, str], ...] = ()  # guests: (user name, password)
    admins: tuple[tuple[str, str], ...] = ()  # hosts: (user name, password)
    api_keys: tuple[str, ...] = ()

    def check(self, username: str, password: str) -> bool:
        """Gradio's login: every pair is compared (no early return), each field in constant time."""
        if not self.lan:
            return True
        found = False
        for name, secret in self.users + self.admins:
            found |= _same(username, name) & _same(password, secret)
        return found

    def key_ok(self, authorization: str) -> bool:
        """An `Authorization` header value: `Bearer <one of the keys>`."""
        if not self.lan:
            return True
        scheme, _, key = authorization.strip().partition(" ")
        found = False
        for known in self.api_keys:
            found |= _same(key.strip(), known)
        return found and scheme.lower() == "bearer"

    def api_dependency(self, request: Request) -> None:
        """FastAPI dependency for the API's router: 401 without a valid key (OpenAI's shape comes from the
        API's error handler: code invalid_api_key)."""
        if not self.key_ok(request.headers.get("authorization", "")):
            raise HTTPException(401, detail=REFUSED_KEY, headers={"WWW-Authenticate": "Bearer"})

    def is_admin(self, username: str | None) -> bool:
        """May change the machine (switch models, download, convert): anyone on loopback; in LAN mode a host."""
        if not self.lan:
            return True
        if username is None:
            return False
        found = False
        for name, _ in self.admins:
            found |= _same(username, name)
        return found


REFUSED_KEY = ("Incorrect or missing API key: send `Authorization: Bearer <key>` with the key printed when "
               "the app started (or given with --api-key)")


def refused_key_body() -> dict:
    return {"error": {"message": REFUSED_KEY, "type": "invalid_request_error", "param": None,
                      "code": "invalid_api_key"}}


def _pair(text: str, where: str) -> tuple[str, str]:
    """USER:PASS (the password may contain ':'). The error never repeats the text: it may hold a password."""
    user, sep, password = text.partition(":")
    if not sep:
        raise CredentialsError(f"{where}: expected USER:PASS (no ':' found)")
    if not user.strip():
        raise CredentialsError(f"{where}: expected USER:PASS (the user name is empty)")
    if not password:
        raise CredentialsError(f"{where}: expected USER:PASS (the password is empty)")
    return user.strip(), password  # Gradio's login strips the user name too


def read_auth_file(path: str) -> list[tuple[str, str]]:
    """One USER:PASS per line; blank lines and lines starting with '#' are skipped; each line is stripped."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise CredentialsError(f"--auth-file {path}: cannot be read ({getattr(err, 'strerror', None) or err})") \
            from err
    pairs = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            pairs.append(_pair(line, f"--auth-file {path}, line {number}"))
    if not pairs:
        raise CredentialsError(f"--auth-file {path}: no USER:PASS line in it")
    return pairs


def from_args(args, lan: bool) -> tuple[Access, tuple[str, ...]]:
    """The access for these flags, and the lines to print once at start (generated password and key)."""
    given = [flag for flag, value in (("--auth", args.auth), ("--auth-file", args.auth_file),
                                      ("--admin", args.admin), ("--api-key", args.api_key)) if value]
    if not lan:
        if given:
            raise CredentialsError(f"{given[0]} needs --lan (or --host with a network address): on a loopback "
                                   "address only this PC can connect, and it needs no credentials")
        return Access(), ()
    users = [_pair(a, "--auth") for a in args.auth or ()]
    if args.auth_file:
        users += read_auth_file(args.auth_file)
    admins = [_pair(a, "--admin") for a in args.admin or ()]
    keys = list(args.api_key or ())
    for key in keys:
        if not key.strip() or any(c.isspace() for c in key):
            raise CredentialsError("--api-key: the key must be non-empty and contain no spaces")
    names = [name for name, _ in users + admins]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise CredentialsError(f"the user name {twice[0]!r} is given twice (--auth, --auth-file, --admin): "
                               "each person needs one name")
    show = []
    if not users:
        if GUEST in names:
            raise CredentialsError(f"--admin {GUEST!r}: that name is kept for the generated guest password; "
                                   "choose another, or give guests --auth")
        password = secrets.token_urlsafe(16)
        users.append((GUEST, password))
        show.append(f"         guests log in as user {GUEST}, password {password} "
                    "(shown only now; give --auth or --auth-file to choose your own)")
    if not keys:
        keys.append(secrets.token_urlsafe(24))
        show.append(f"         API key (Authorization: Bearer ...): {keys[0]} (shown only now; or --api-key)")
    return Access(lan=True, users=tuple(users), admins=tuple(admins), api_keys=tuple(keys)), tuple(show)
