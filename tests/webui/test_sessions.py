"""webui/sessions.py: a Gradio session id is bound to the browser (and login) that first used it.

A small Starlette app stands in for Gradio here (the live app is tested in test_lan.py and test_hostile.py): what
matters is what the middleware lets through, what it refuses, and that the body reaches the app unchanged. Like
Gradio, the stand-in answers a queue join with a new event id.
"""

from __future__ import annotations

import json
import secrets

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from webui.sessions import COOKIE, SessionBinding, SessionOwners


async def echo(request: Request):
    body = await request.body()
    return JSONResponse({"path": request.url.path, "body": body.decode(), "cookie": request.cookies.get(COOKIE),
                         "event_id": secrets.token_hex(8)})


def client(owners: SessionOwners, handlers=None) -> TestClient:
    app = Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST"])])
    app.add_middleware(SessionBinding, owners=owners, handlers=handlers)
    return TestClient(app)


def join(c: TestClient, session: str, text: str = "hello"):
    return c.post("/gradio_api/queue/join", json={"data": [text], "fn_index": 0, "session_hash": session})


def test_every_browser_gets_its_own_cookie_and_keeps_it():
    c = client(SessionOwners())
    first = c.get("/")
    cookie = first.cookies.get(COOKIE)
    assert cookie and len(cookie) >= 30
    header = first.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=strict" in header
    again = c.get("/config")
    assert "set-cookie" not in again.headers and again.json()["cookie"] == cookie  # the app sees the same one
    assert client(SessionOwners()).get("/").cookies.get(COOKIE) != cookie


def test_a_session_id_used_by_one_browser_is_refused_to_every_other():
    owners = SessionOwners()
    mine, other, bare = client(owners), client(owners), client(owners)
    mine.get("/"), other.get("/")
    answer = join(mine, "abc123", "a question")
    assert answer.status_code == 200 and json.loads(answer.json()["body"])["data"] == ["a question"]  # body intact
    assert mine.get("/gradio_api/queue/data", params={"session_hash": "abc123"}).status_code == 200
    assert mine.get("/gradio_api/heartbeat/abc123").status_code == 200
    for refused in (join(other, "abc123"),
                    other.get("/gradio_api/queue/data", params={"session_hash": "abc123"}),
                    other.get("/gradio_api/heartbeat/abc123"),
                    other.post("/gradio_api/cancel", json={"session_hash": "abc123", "fn_index": 0,
                                                           "event_id": answer.json()["event_id"]}),
                    bare.get("/gradio_api/queue/data", params={"session_hash": "abc123"})):  # no cookie yet
        assert refused.status_code == 403 and "another browser tab" in refused.text
    assert join(other, "def456").status_code == 200  # its own session works
    assert join(mine, "abc123").status_code == 200  # and the owner is not locked out by the attempts


def test_the_same_browser_logged_in_twice_is_two_callers():
    """In LAN mode everyone may share one generated password: the login token, not the user name, tells them apart."""
    owners = SessionOwners()
    c = client(owners)
    c.get("/")
    c.cookies.set("access-token-abc", "token-of-alice-1")
    assert join(c, "s1").status_code == 200
    c.cookies.set("access-token-abc", "token-of-alice-2")  # the same browser cookie, another login
    assert join(c, "s1").status_code == 403


def test_an_answer_can_be_cancelled_only_by_the_tab_that_started_it():
    owners = SessionOwners()
    mine, other = client(owners), client(owners)
    event = join(mine, "s-mine").json()["event_id"]
    assert join(other, "s-other").status_code == 200
    cancel = {"fn_index": 0, "event_id": event}
    refused = other.post("/gradio_api/cancel", json={**cancel, "session_hash": "s-other"})  # its own session
    assert refused.status_code == 403 and "not started by this browser tab" in refused.text
    unknown = mine.post("/gradio_api/cancel", json={**cancel, "session_hash": "s-mine", "event_id": "made-up"})
    assert unknown.status_code == 403
    assert mine.post("/gradio_api/cancel", json={**cancel, "session_hash": "s-mine"}).status_code == 200


def test_the_event_stream_of_a_session_that_never_joined_is_not_found():
    c = client(SessionOwners())
    missing = c.get("/gradio_api/queue/data", params={"session_hash": "never-joined"})
    assert missing.status_code == 404 and missing.text.count("\n") == 1  # one line, no traceback from Gradio
    assert c.get("/gradio_api/queue/data").status_code == 404
    join(c, "never-joined")
    assert c.get("/gradio_api/queue/data", params={"session_hash": "never-joined"}).status_code == 200


def test_a_join_must_name_one_of_the_pages_handlers():
    c = client(SessionOwners(), handlers=lambda: {0, 3})
    for index in (7, -1, "0", None, True, 1e3):
        answer = c.post("/gradio_api/queue/join", json={"data": [], "fn_index": index, "session_hash": "s"})
        assert answer.status_code == 400 and "fn_index" in answer.text, index
    assert c.post("/gradio_api/queue/join", json={"data": [], "fn_index": 3, "session_hash": "s"}).status_code == 200


def test_malformed_bodies_are_refused_and_forged_cookies_get_a_new_cookie():
    c = client(SessionOwners())
    deep = b"[" * 100_000 + b"]" * 100_000  # deeper than the JSON parser goes: RecursionError, not ValueError
    for body in (b"{not json", b"[1, 2]", b'"text"', deep):
        for path in ("/gradio_api/queue/join", "/gradio_api/cancel"):
            bad = c.post(path, content=body, headers={"content-type": "application/json"})
            assert bad.status_code == 400 and "JSON object" in bad.text, (path, body[:20])
    fresh = client(SessionOwners())
    fresh.cookies.set(COOKIE, "x")  # too short to be one we made
    assert fresh.get("/").cookies.get(COOKIE) not in (None, "x")


def test_the_oldest_sessions_are_forgotten_first_and_only_past_the_limit():
    owners = SessionOwners(limit=2)
    assert owners.claim("a", "alice") and owners.claim("b", "bob") and owners.claim("a", "alice")  # "b" is oldest
    assert owners.claim("c", "carol")  # past the limit: "b" is forgotten
    assert not owners.claim("a", "mallory") and not owners.claim("c", "mallory")
    assert owners.claim("b", "mallory")
