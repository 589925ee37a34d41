"""LAN demo links only invited people can open: the real app, over real HTTP on loopback.

`--lan` binds 0.0.0.0, which includes loopback: the tests connect to 127.0.0.1 only, so no traffic leaves
this machine. Each fixture is one real `launch.py` process; the LAN one downloads from a local hub, so the
hub's log shows whether a guest's switch fetched anything.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from tests.conftest import ROOT, RUN_DIR, app_env
from tests.support.local_hub import LocalHub
from tools.live_app import start_app
from webui.server import lan_addresses

HOST_PW = "host-pw-7b1c2d"  # the host's own (given) password
FILE_PW = "alice-pw-94e0"
GIVEN_KEY = "given-key-3f9a"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FRANCE = ("What is the capital of France?", 48, 0.0, "You are a helpful assistant.")


def _settled(app):
    """start_app returns at the "ready" line; what is printed after it (addresses, QR, secrets) follows."""
    deadline = time.monotonic() + 30
    while not any("Press Ctrl-C to stop." in line for line in app.lines):
        assert time.monotonic() < deadline and app.proc.poll() is None, _console(app)
        time.sleep(0.05)
    return app


def _port(app) -> int:
    return int(app.url.rsplit(":", 1)[1])


def _console(app) -> str:
    return "".join(app.lines)


def _generated(app) -> tuple[str, str]:
    text = _console(app)
    password = re.search(r"guests log in as user guest, password (\S+)", text).group(1)
    key = re.search(r"API key \(Authorization: Bearer \.\.\.\): (\S+)", text).group(1)
    return password, key


def _login(url: str, user: str, password: str) -> httpx.Client:
    session = httpx.Client(base_url=url, timeout=30)
    answer = session.post("/login", data={"username": user, "password": password})
    assert answer.status_code == 200, answer.text
    return session


def _text(chatbot) -> str:
    return str(chatbot[-1]["content"])


@pytest.fixture(scope="module")
def hub():
    with LocalHub({}) as running:  # a reachable hub with nothing on it: any fetch shows in its log
        yield running


@pytest.fixture(scope="module")
def lan(embedded_gguf, app_home, hub):
    started = time.time()
    app = start_app("--lan", "--admin", f"host:{HOST_PW}", "--model", "smollm2-135m-embedded", home=app_home,
                    env={"HF_ENDPOINT": hub.url})
    _settled(app)
    app.started = started
    yield app
    assert app.stop() == 0
    assert "Traceback" not in _console(app)


WEBUI_ORIGIN = "http://localhost:3000"  # a web client on another port of this PC, allowed by name


@pytest.fixture(scope="module")
def by_host_flag(embedded_gguf, app_home, tmp_path_factory):
    """LAN mode from --host with a non-loopback address (0.0.0.0), logins from a file, a given API key."""
    logins = tmp_path_factory.mktemp("auth") / "logins.txt"
    logins.write_text(f"# who may chat\nalice:{FILE_PW}\n\nbob:pw:with:colons\n")
    app = start_app("--offline", "--host", "0.0.0.0", "--auth-file", str(logins), "--api-key", GIVEN_KEY,
                    "--allow-host", "host.docker.internal", "--allow-origin", WEBUI_ORIGIN, home=app_home)
    yield _settled(app)
    assert app.stop() == 0


@pytest.fixture(scope="module")
def local(embedded_gguf, app_home, tmp_path_factory):
    """The default: loopback, no credentials, with an inherited environment that would widen exposure."""
    shared = tmp_path_factory.mktemp("allowed")
    (shared / "secret.txt").write_text("secret-contents-51d0")
    app = start_app("--offline", "--max-queue", "0", "--parallel", "1", home=app_home,
                    env={"GRADIO_ALLOWED_PATHS": str(shared), "GRADIO_VIBE_MODE": "1"})
    app.secret = shared / "secret.txt"
    yield _settled(app)
    assert app.stop() == 0
    assert "Traceback" not in _console(app)


# -- LAN mode: addresses, credentials ----------------------------------------------------------------------
def test_lan_prints_every_network_address_with_a_qr_code_for_the_console_and_the_page(lan):
    console = _console(lan)
    urls = [f"http://{a}:{_port(lan)}" for a in lan_addresses()]
    for url in urls:
        assert f"on the network: {url}" in console
    if urls:  # a machine with no network interface has nothing to show
        assert f"scan to open {urls[0]} on a phone" in console and "▀▀▀▀▀▀▀▀▀▀" in console
        password, _ = _generated(lan)
        config = _login(lan.url, "guest", password).get("/config").text
        assert "class=\\\"segno\\\"" in config or 'class="segno"' in config
        assert urls[0] in config


def test_without_credentials_the_page_and_the_api_refuse(lan):
    page = httpx.get(lan.url, timeout=10)
    assert page.status_code == 200 and '"auth_required":true' in page.text.replace(" ", "")  # the login form
    assert "SmolLM2" not in page.text
    for path in ("/config", "/gradio_api/info", "/gradio_api/startup-events", "/gradio_api/app_id"):
        assert httpx.get(lan.url + path, timeout=10).status_code == 401, path
    assert httpx.post(lan.url + "/gradio_api/queue/join", json={}, timeout=10).status_code == 401
    for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": f"Basic {_generated(lan)[1]}"}):
        api = httpx.get(lan.url + "/v1/models", headers=headers, timeout=10)
        assert api.status_code == 401 and api.headers["www-authenticate"] == "Bearer"
        error = api.json()["error"]
        assert error["type"] == "invalid_request_error" and error["code"] == "invalid_api_key"
        assert error["param"] is None and "Bearer" in error["message"]
    assert httpx.get(lan.url + "/v1/openapi.json", timeout=10).status_code == 401
    assert httpx.post(lan.url + "/login", data={"username": "guest", "password": "wrong"}, timeout=10).status_code \
        == 400


def test_with_credentials_the_page_and_the_api_work(lan):
    password, key = _generated(lan)
    session = _login(lan.url, "guest", password)
    assert session.get("/config").status_code == 200
    assert session.get("/gradio_api/info").status_code == 200
    models = httpx.get(lan.url + "/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert models.status_code == 200 and models.json()["data"][0]["id"] == "smollm2-135m-embedded"
    answer = httpx.post(lan.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, timeout=120,
                        json={"messages": [{"role": "user", "content": FRANCE[0]}], "temperature": 0})
    assert answer.status_code == 200 and "Paris" in answer.json()["choices"][0]["message"]["content"]
    for path, body in (("/v1/completions", {"prompt": "Hi", "max_tokens": 2}),
                       ("/v1/responses", {"input": "Hi", "max_output_tokens": 2})):  # the same key, every route
        assert httpx.post(lan.url + path, headers={"Authorization": f"Bearer {key}"}, json=body,
                          timeout=60).status_code == 200, path
    assert session.get("/v1/models").status_code == 401  # a page login is not an API key


def test_the_generated_password_is_printed_once_and_is_nowhere_in_the_page_or_a_file(lan):
    password, key = _generated(lan)
    assert len(password) >= 20 and len(key) >= 30
    console = _console(lan)
    assert console.count(password) == 1 and console.count(key) == 1
    for user, pw in (("guest", password), ("host", HOST_PW)):
        session = _login(lan.url, user, pw)
        for path in ("/", "/config", "/gradio_api/info"):
            body = session.get(path).text
            assert password not in body and key not in body and HOST_PW not in body, (user, path)
    assert password not in httpx.get(lan.url, timeout=10).text
    written = [p for root in (RUN_DIR, Path.home() / ".cache") for p in root.rglob("*")
               if p.is_file() and p.stat().st_mtime >= lan.started and p.stat().st_size < 50_000_000]
    for path in written:
        data = path.read_bytes()
        assert password.encode() not in data and key.encode() not in data, path


def test_a_guest_chats_but_cannot_switch_models_and_nothing_is_downloaded(lan, hub):
    password, _ = _generated(lan)
    guest = Client(lan.url, auth=("guest", password), verbose=False)
    assert "Paris" in _text(guest.predict(*FRANCE, api_name="/chat")[0])
    before = len(hub.log)
    with pytest.raises(Exception, match="Only the host can switch models"):
        guest.predict("auto", "cpu", "phi3-mini-4k-ov-int4", api_name="/switch")
    assert len(hub.log) == before, "a guest's switch reached the hub"
    config = _login(lan.url, "guest", password).get("/config").text
    assert "Probe took" not in config and "CPU features" not in config  # the machine description is host-only
    # The host may: the same request goes on to the hub (which has nothing: the app says so and keeps running).
    host = Client(lan.url, auth=("host", HOST_PW), verbose=False)
    with pytest.raises(Exception) as refused:
        host.predict("auto", "cpu", "phi3-mini-4k-ov-int4", api_name="/switch")
    assert "Only the host" not in str(refused.value) and "Still running" in str(refused.value)
    assert len(hub.log) > before, "the host's switch should have asked the hub"
    assert "Paris" in _text(guest.predict(*FRANCE, api_name="/chat")[0])


@pytest.mark.skipif(CHROMIUM is None and os.environ.get("CI") != "true",
                    reason="needs a Chromium (Debian: apt-get install chromium); CI installs it")
def test_in_a_browser_a_guest_sees_the_chat_only_and_the_host_the_machine_and_the_switch(lan):
    from playwright.sync_api import sync_playwright

    password, _ = _generated(lan)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            seen = {}
            for user, secret in (("guest", password), ("host", HOST_PW)):
                ctx = browser.new_context()
                pg = ctx.new_page()
                failed = []
                pg.on("response", lambda r, failed=failed: r.status >= 400 and failed.append((r.status, r.url)))
                pg.goto(lan.url)
                pg.fill("input[type=password]", secret)
                pg.fill("input[type=text]", user)
                pg.click("button:has-text('Login')")
                pg.wait_for_selector("#prompt textarea", timeout=60_000)
                pg.wait_for_function("() => document.querySelectorAll('button[role=tab]').length >= 1")
                time.sleep(2)  # the load event shows the host's tabs
                seen[user] = pg.locator("button[role=tab]").all_inner_texts()
                if user == "host":
                    pg.click("button[role=tab]:has-text('Why this model')")
                    pg.wait_for_selector("#switch", state="visible", timeout=10_000)
                    pg.click("button[role=tab]:has-text('This PC')")
                    pg.wait_for_selector("#machine :text('Probe took')", timeout=10_000)
                    pg.click("button[role=tab]:has-text('Chat')")
                pg.fill("#prompt textarea", FRANCE[0])
                pg.click("#send")
                pg.wait_for_function("() => [...document.querySelectorAll('#chatbot [data-testid=\"bot\"]')]"
                                     ".some(e => e.innerText.includes('tokens/s'))", timeout=60_000)
                assert not failed, failed
                if user == "guest":  # Log out (a POST from the page) brings back the login form
                    pg.click("#logout")
                    pg.wait_for_selector("input[type=password]", timeout=20_000)
                ctx.close()
        finally:
            browser.close()
    assert seen["guest"] == ["Chat"]
    assert seen["host"] == ["Chat", "This PC", "Why this model", "Benchmark"]


def test_a_non_loopback_host_is_lan_mode_with_logins_from_the_file_and_the_given_key(by_host_flag, local):
    for path in ("/config", "/v1/models"):  # the default, loopback, needs no credentials
        assert httpx.get(local.url + path, timeout=10).status_code == 200
    app = by_host_flag
    console = _console(app)
    assert "guests log in as user guest" not in console and "API key (" not in console  # nothing generated
    assert httpx.get(app.url + "/config", timeout=10).status_code == 401
    for user, pw in (("alice", FILE_PW), ("bob", "pw:with:colons")):
        assert _login(app.url, user, pw).get("/config").status_code == 200
    assert httpx.post(app.url + "/login", data={"username": "alice", "password": FILE_PW + "x"},
                      timeout=10).status_code == 400
    assert httpx.get(app.url + "/v1/models", timeout=10).status_code == 401
    assert httpx.get(app.url + "/v1/models", headers={"Authorization": f"Bearer {GIVEN_KEY}"},
                     timeout=10).status_code == 200
    with pytest.raises(Exception, match="Only the host can switch models"):  # no --admin: nobody is the host
        Client(app.url, auth=("alice", FILE_PW), verbose=False).predict("auto", "cpu", "auto", api_name="/switch")


def test_a_named_host_and_a_named_origin_reach_the_api_and_nothing_else_does(by_host_flag, local):
    """Open WebUI in Docker sends Host: host.docker.internal; a web client on another port sends its Origin. Each is
    let in by name (--allow-host, --allow-origin; CORS for that origin only, never '*'), still with the key."""
    key = {"Authorization": f"Bearer {GIVEN_KEY}"}
    docker = {"Host": f"host.docker.internal:{_port(by_host_flag)}"}
    assert httpx.get(by_host_flag.url + "/v1/models", headers={**docker, **key}, timeout=10).status_code == 200
    assert httpx.post(by_host_flag.url + "/v1/responses", headers=docker, json={"input": "Hi"},
                      timeout=10).status_code == 401  # still a key, on every route of the API
    assert httpx.get(local.url + "/v1/models", headers={"Host": f"host.docker.internal:{_port(local)}"},
                     timeout=10).status_code == 403  # not named there
    url = by_host_flag.url + "/v1/chat/completions"
    preflight = httpx.options(url, headers={"Origin": WEBUI_ORIGIN, "Access-Control-Request-Method": "POST",
                                            "Access-Control-Request-Headers": "authorization,content-type"},
                              timeout=10)
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == WEBUI_ORIGIN
    asked = httpx.post(url, headers={"Origin": WEBUI_ORIGIN, **key}, timeout=60, json={
        "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})
    assert asked.status_code == 200 and asked.headers["access-control-allow-origin"] == WEBUI_ORIGIN
    assert httpx.post(by_host_flag.url + "/v1/completions", headers={"Origin": WEBUI_ORIGIN}, json={"prompt": "Hi"},
                      timeout=10).status_code == 401
    assert httpx.get(by_host_flag.url + "/config", headers={"Origin": WEBUI_ORIGIN},
                     timeout=10).status_code == 403  # the page is not the API: no other site's scripts
    other = httpx.options(url, headers={"Origin": "http://localhost:3001", "Access-Control-Request-Method": "POST"},
                          timeout=10)
    assert other.status_code == 403 and "access-control-allow-origin" not in other.headers


def test_an_origin_or_host_flag_that_could_mean_any_site_exits_2():
    for args, says in ((("--allow-origin", "*"), "no '*'"), (("--allow-origin", "localhost:3000"), "one origin"),
                       (("--allow-host", "evil.example/x"), "host name")):
        done = _launch(*args)
        assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr, done.stderr


def _launch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "launch.py"), "--no-browser", *args], capture_output=True,
                          text=True, env=app_env(), timeout=120, cwd=ROOT)


def test_a_malformed_auth_file_line_exits_2_with_one_line_naming_it(tmp_path):
    logins = tmp_path / "logins.txt"
    logins.write_text("alice:fine-pw\n# a comment\nbob-with-no-colon-secret\n")
    done = _launch("--lan", "--auth-file", str(logins))
    assert done.returncode == 2
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert lines == [f"error: --auth-file {logins}, line 3: expected USER:PASS (no ':' found)"]
    assert "bob-with-no-colon-secret" not in done.stdout + done.stderr  # the line may hold a password
    empty_password = _launch("--lan", "--auth", "carol:")
    assert empty_password.returncode == 2 and "--auth: expected USER:PASS (the password is empty)" in \
        empty_password.stderr
    twice = _launch("--lan", "--auth", "dan:a", "--admin", "dan:b")
    assert twice.returncode == 2 and "'dan' is given twice" in twice.stderr


def test_credentials_on_loopback_are_refused_rather_than_silently_unused():
    done = _launch("--auth", "alice:pw")
    assert done.returncode == 2 and "--auth needs --lan" in done.stderr and "Traceback" not in done.stderr


# -- every mode: only this machine's names, no foreign sites, no routes a chat does not need -----------------
@pytest.mark.parametrize("which", ["local", "lan"])
def test_a_forged_host_header_is_refused(which, request):
    app = request.getfixturevalue(which)
    port = _port(app)
    for forged in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}", f"localhost:{port + 1}"):
        answer = httpx.get(app.url + "/", headers={"Host": forged}, timeout=10)
        assert answer.status_code == 403, forged
        assert "Host" in answer.text and answer.text.count("\n") == 1
        api = httpx.get(app.url + "/v1/models", headers={"Host": forged}, timeout=10)  # OpenAI's shape: SDKs show it
        assert api.status_code == 403 and api.json()["error"]["code"] == "host_not_allowed"
        assert "--allow-host" in api.json()["error"]["message"]
    for own in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert httpx.get(app.url + "/", headers={"Host": own}, timeout=10).status_code == 200, own


@pytest.mark.parametrize("which", ["local", "lan"])
def test_a_foreign_origin_is_refused(which, request):
    app = request.getfixturevalue(which)
    port = _port(app)
    for foreign in ("http://evil.example", f"http://evil.example:{port}", "null", f"http://localhost:{port + 1}"):
        for method, path in (("GET", "/"), ("POST", "/gradio_api/queue/join"), ("POST", "/v1/chat/completions")):
            answer = httpx.request(method, app.url + path, headers={"Origin": foreign}, json={}, timeout=10)
            assert answer.status_code == 403, (foreign, path)
            if path.startswith("/v1"):
                assert answer.json()["error"]["code"] == "origin_not_allowed"
                assert "another site" in answer.json()["error"]["message"]
            else:
                assert "another site" in answer.text and answer.text.count("\n") == 1
    assert httpx.get(app.url + "/", headers={"Origin": f"http://127.0.0.1:{port}"}, timeout=10).status_code == 200


def test_uploads_run_routes_files_by_path_and_monitoring_are_closed(local, lan):
    password, _ = _generated(lan)
    guest = _login(lan.url, "guest", password)
    for client in (httpx.Client(base_url=local.url, timeout=10), guest):
        upload = client.post("/gradio_api/upload", files={"files": ("a.txt", b"hello")})
        assert upload.status_code == 404 and "does not serve" in upload.text
        for path in ("/gradio_api/run/stop", "/gradio_api/api/stop", "/gradio_api/run/chat"):
            assert client.post(path, json={"data": [None]}).status_code == 404, path
        assert client.get("/monitoring").status_code == 404
        assert client.get("/monitoring/summary").status_code == 404
        assert client.get("/gradio_api/file=https://evil.example/").status_code == 404  # the open redirect
        assert client.get("/gradio_api/upload_progress").status_code == 404
        assert client.get(f"/gradio_api/file={local.secret}").status_code == 404


def test_widening_gradio_variables_in_the_environment_are_ignored(local):
    assert "note: ignoring GRADIO_ALLOWED_PATHS, GRADIO_VIBE_MODE from the environment" in _console(local)
    for path in (f"/gradio_api/file={local.secret}", f"/file={local.secret}"):
        answer = httpx.get(local.url + path, timeout=10)
        assert answer.status_code != 200 and "secret-contents" not in answer.text, path
    assert '"vibe_mode":false' in httpx.get(local.url + "/config", timeout=10).text.replace(" ", "")


def test_max_queue_bounds_the_wait_queue(local):
    """--parallel 1 --max-queue 0: while one answer runs, nobody may wait; the next question is refused (429)."""
    body = {"messages": [{"role": "user", "content": "Write a very long story about a dragon."}],
            "max_tokens": 1500, "stream": True}
    first_chunk = threading.Event()

    def long_answer():
        with httpx.stream("POST", local.url + "/v1/chat/completions", json=body, timeout=120) as r:
            for _ in r.iter_lines():
                first_chunk.set()

    runner = threading.Thread(target=long_answer, daemon=True)
    runner.start()
    assert first_chunk.wait(60)
    refused = httpx.post(local.url + "/v1/chat/completions", timeout=30,
                         json={"messages": [{"role": "user", "content": FRANCE[0]}]})
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "queue_full"
    runner.join(120)


def _fn_index(config: dict, api_name: str) -> int:
    return next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name)


@pytest.mark.parametrize("which", ["local", "lan"])
def test_another_clients_session_id_neither_stops_nor_reads_nor_ends_its_chat(which, request):
    """The owner's answer runs on while an intruder (another browser, in LAN mode another login with the same
    password) sends Stop, reads the event stream, cancels and ends the heartbeat with the owner's session id."""
    app = request.getfixturevalue(which)
    if which == "lan":
        password, _ = _generated(app)
        owner = Client(app.url, auth=("guest", password), verbose=False)
        intruder = _login(app.url, "guest", password)
    else:
        owner = Client(app.url, verbose=False)
        intruder = httpx.Client(base_url=app.url, timeout=30)
    config = intruder.get("/config").json()
    job = owner.submit("Write a long story about a dragon who learns to read.", 160, 0.0,
                       "You are a helpful assistant.", api_name="/chat")
    deadline = time.monotonic() + 60
    while not job.outputs() or "tokens/s" in _text(job.outputs()[-1][0]) or not _text(job.outputs()[-1][0]):
        assert time.monotonic() < deadline and not job.done(), "the owner's answer never started"
        time.sleep(0.05)
    sid = owner.session_hash
    stop, chat = _fn_index(config, "stop"), _fn_index(config, "chat")
    forged = [
        intruder.post("/gradio_api/queue/join", json={"data": [], "event_data": None, "fn_index": stop,
                                                      "trigger_id": None, "session_hash": sid}),
        intruder.post("/gradio_api/cancel", json={"session_hash": sid, "fn_index": chat, "event_id": "any"}),
    ]
    for path in ("/gradio_api/heartbeat/" + sid, f"/gradio_api/queue/data?session_hash={sid}"):  # event streams
        with intruder.stream("GET", path) as stream:
            forged.append(stream)
    for answer in forged:
        assert answer.status_code == 403, (answer.request.url, answer.status_code)
    final = _text(job.result(timeout=120)[0])
    assert "stopped" not in final and "tokens/s" in final and len(final) > 200, final
    # Its own Stop still works, and its chat goes on.
    job = owner.submit("Write a long story about a cat.", 400, 0.0, "You are a helpful assistant.", api_name="/chat")
    while not job.outputs() or not _text(job.outputs()[-1][0]) or "tokens/s" in _text(job.outputs()[-1][0]):
        time.sleep(0.05)
    owner.predict(api_name="/stop")
    assert "stopped" in _text(job.result(timeout=120)[0])


def test_a_client_that_disconnects_frees_its_slot_for_the_next_one(local):
    """--parallel 1 --max-queue 0: one slot, no waiting. A client gone mid-answer must give the slot back at once,
    or the next question would be refused (429) until the long answer ran out."""
    body = {"messages": [{"role": "user", "content": "Write a very long story about a dragon."}],
            "max_tokens": 1500, "stream": True}
    for _ in range(3):
        with httpx.stream("POST", local.url + "/v1/chat/completions", json=body, timeout=60) as r:
            for i, _line in enumerate(r.iter_lines()):
                if i > 4:
                    break  # gone, mid-answer
        deadline = time.monotonic() + 10  # the server notices the closed connection within moments
        while True:
            answer = httpx.post(local.url + "/v1/chat/completions", timeout=60, json={
                "messages": [{"role": "user", "content": FRANCE[0]}], "max_tokens": 32, "temperature": 0})
            if answer.status_code != 429 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert answer.status_code == 200 and "Paris" in answer.json()["choices"][0]["message"]["content"]
