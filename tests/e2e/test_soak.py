"""The soak's short form (tools/soak.py): 4 API clients for 20 s against the real app, each with its own growing
chat, streaming and not, with client-side cancellations; no error but 429 queue_full, every reply complete, and
the server's RSS after warm-up against the end."""

from __future__ import annotations

import pytest

from tools.live_app import start_app
from tools.soak import soak
from tools.soak_report import MAX_RSS_GROWTH_PCT

CLIENTS, SECONDS = 4, 20


@pytest.fixture(scope="module")
def report(embedded_gguf, app_home):
    app = start_app("--offline", home=app_home)
    try:
        result = soak(app.url, CLIENTS, SECONDS, pid=app.proc.pid)
    finally:
        code = app.stop()
    print(result.text())
    assert code == 0 and "Traceback" not in "".join(app.lines), "".join(app.lines[-40:])
    return result


def test_every_client_gets_complete_answers_and_only_a_full_queue_refuses(report):
    assert report.errors == [], report.text()
    assert report.incomplete == [], report.text()
    assert report.complete >= 2 * CLIENTS and report.streamed and report.complete > report.streamed, report.text()
    assert report.cancelled >= 1, report.text()
    assert report.ttft_p95 is not None and report.total_p95 is not None
    assert report.wall_s < SECONDS + 30, report.text()  # it stops by itself


def test_the_servers_rss_grows_by_no_more_than_the_kv_pool_it_reserved(report, embedded_gguf):
    """Beyond the batching engine's KV-cache pool, RSS stays within 5 % of its figure after warm-up.

    The pool (SchedulerConfig.cache_size: window x slots, whole GB) is reserved at load and becomes resident as
    never-used blocks are handed out (prefix caching reuses old blocks only once the fresh ones are gone): about
    80,000 tokens, minutes of traffic, longer than this short form. The full soak shows it levelling off
    (`tools/soak.py --fill-kv`: +1.7 % over 8 clients x 2 min once the pool is resident)."""
    from models.engines.kv_cache import cache_gb, kv_bytes_per_token

    assert report.rss_warm and report.rss_end, report.text()
    per_token = kv_bytes_per_token(embedded_gguf.parent / "openvino_model.xml", 2)  # the IR the app wrote
    pool = cache_gb(8192, 4, per_token) * 2**30  # the embedded model's window, the default 4 slots
    beyond = report.rss_end - report.rss_warm - pool
    assert beyond < report.rss_warm * MAX_RSS_GROWTH_PCT / 100, report.text()
