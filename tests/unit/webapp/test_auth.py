"""Log in/out, CSRF, rate limiting, cookie flags, security headers."""

from __future__ import annotations

import re

import pytest

from tests.unit.webapp.conftest import PASSWORD, USER_A, csrf_token, login
from webapp import accounts, create_app
from webapp.auth import safe_next
from webapp.security import csp
from webapp.settings import RateLimits, WebSettings


def test_login_redirects_by_role(client):
    assert login(client, "alice").headers["Location"] == "/me"
    client.post("/logout", data={"csrf_token": csrf_token_from_session(client)})
    assert login(client, "analyst").headers["Location"] == "/firm"


def csrf_token_from_session(client) -> str:
    import re

    page = client.get("/me").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_wrong_password_and_unknown_user_are_refused_alike(client):
    wrong = login(client, "alice", "not the password")
    unknown = login(client, "nobody", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong user name or password" in wrong.get_data(as_text=True)
    assert client.get("/api/v1/me").status_code == 401


def test_login_without_csrf_token_is_refused(client, store):
    response = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert not any(call[0] == "account" for call in store.calls)


def test_logout_needs_the_csrf_token(as_alice):
    assert as_alice.post("/logout").status_code == 400
    assert as_alice.get("/api/v1/me").status_code == 200
    response = as_alice.post("/logout", data={"csrf_token": csrf_token_from_session(as_alice)})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert as_alice.get("/api/v1/me").status_code == 401


def test_session_cookie_flags(client):
    response = login(client, "alice")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # configurable; off on plain http://127.0.0.1


def test_secure_cookie_flag_is_configurable(store):
    from webapp import create_app
    from webapp.settings import WebSettings

    app = create_app(WebSettings(secret_key="k", testing=True, live_tasks=False, secure_cookies=True),
                     store=store)
    with app.test_client() as c:
        assert "Secure" in login(c, "alice").headers["Set-Cookie"]


def test_next_parameter_only_local_paths(client):
    token = csrf_token(client)
    ok = client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token,
                                     "next": "/api/v1/me"})
    assert ok.headers["Location"] == "/api/v1/me"
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        client.post("/logout", data={"csrf_token": csrf_token_from_session(client)})
        r = client.post("/login", data={"username": "alice", "password": PASSWORD,
                                        "csrf_token": csrf_token(client), "next": evil})
        assert r.headers["Location"] == "/me", evil


def test_login_rate_limit_per_ip_and_user(client):
    statuses = [login(client, "alice", "wrong password!").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert login(client, "alice").status_code == 429  # even the right password, until the window ends
    assert login(client, "bob").status_code == 302    # another user name from the same IP is not blocked


def test_anonymous_pages_redirect_to_login_and_root_by_role(client):
    r = client.get("/me")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=")
    assert client.get("/").headers["Location"] == "/login"
    login(client, "analyst")
    assert client.get("/").headers["Location"] == "/firm"
    assert client.get("/login").headers["Location"] == "/firm"


def test_user_on_firm_page_gets_403_page(as_alice):
    r = as_alice.get("/firm")
    assert r.status_code == 403 and r.mimetype == "text/html"


def test_security_headers_on_every_kind_of_response(client):
    for path in ("/login", "/api/v1/openapi.json", "/api/v1/me", "/nope", "/healthz"):
        h = client.get(path).headers
        assert "script-src 'self'" in h["Content-Security-Policy"], path
        connect = re.search(r"connect-src ([^;]*);", h["Content-Security-Policy"]).group(1).split()
        # the page's own origin only (its WebSocket form spelled out), never any host
        assert connect == ["'self'", "ws://127.0.0.1:8000", "ws://localhost:8000"], path
        assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["X-Frame-Options"] == "DENY"
        assert h["Referrer-Policy"] == "same-origin"


def test_oversized_login_body_is_413(client):
    r = client.post("/login", data={"username": "a", "password": "x" * 100_000})
    assert r.status_code == 413


def test_api_calls_do_not_resign_the_session_cookie(as_alice):
    """The cookie is signed at login only (it expires 12 h after login): re-signing it was a
    measurable cost of every dashboard call."""
    for _ in range(3):
        response = as_alice.get("/api/v1/portfolio")
        assert response.status_code == 200
        assert "Set-Cookie" not in response.headers
    assert as_alice.get("/api/v1/me").get_json()["username"] == "alice"  # still logged in


# ---------------------------------------------------------------- redirect after login


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/x", "/\\evil.example", "/\t/evil.example", "/\t//evil.example",
    "/\n/evil.example", "/\r/evil.example", "/\rx", "/\x00x", "/\x7fx", "/\x85x", "/ /evil", "/x\\y",
    "http:/evil.example", "/\u3000/evil", "javascript:alert(1)", "", "x", "/" + "a" * 3000])
def test_safe_next_refuses_other_origins_and_every_control_character(target):
    assert safe_next(target) is None


@pytest.mark.parametrize("target", ["/", "/me", "/api/v1/portfolio/equity?day=2026-11-20", "/firm#x",
                                    "/a/b%2F%2Fevil.example", "/me?next=//evil"])
def test_safe_next_keeps_local_paths(target):
    assert safe_next(target) == target


def test_tab_in_next_does_not_redirect_to_another_host(client):
    """GET /login?next=/%09/evil.example then logging in answered `Location: //evil.example`."""
    page = client.get("/login?next=/%09/evil.example").get_data(as_text=True)
    assert "evil.example" not in page
    r = client.post("/login", data={"username": "alice", "password": PASSWORD,
                                    "csrf_token": csrf_token(client), "next": "/\t/evil.example"})
    assert r.status_code == 302 and r.headers["Location"] == "/me"


def test_carriage_return_in_next_is_no_server_error(client):
    """`next=/%0Dx` reached the form and the POST answered 500 (Werkzeug refused the header)."""
    assert client.get("/login?next=/%0Dx").status_code == 200
    r = client.post("/login", data={"username": "alice", "password": PASSWORD,
                                    "csrf_token": csrf_token(client), "next": "/\rx"})
    assert r.status_code == 302 and r.headers["Location"] == "/me"


# ---------------------------------------------------------------- sessions that end


def stolen_cookie(client) -> str:
    return client.get_cookie("stockafolio_session").value


def replay(app, cookie: str):
    other = app.test_client()
    other.set_cookie("stockafolio_session", cookie)
    return other


def test_a_cookie_replayed_after_logout_is_refused(app, as_alice):
    cookie = stolen_cookie(as_alice)
    assert replay(app, cookie).get("/api/v1/portfolio").status_code == 200
    as_alice.post("/logout", data={"csrf_token": csrf_token_from_session(as_alice)})
    thief = replay(app, cookie)
    assert thief.get("/api/v1/me").status_code == 401
    assert thief.get("/api/v1/portfolio").status_code == 401
    assert thief.get("/me").headers["Location"].startswith("/login?next=")
    assert thief.get("/socket.io/?EIO=4&transport=websocket").status_code == 401
    assert login(as_alice, "alice").status_code == 302  # the account itself can log in again


def test_logout_ends_every_session_of_the_account(app, client):
    laptop, phone = app.test_client(), app.test_client()
    for c in (laptop, phone):
        assert login(c, "alice").status_code == 302
    laptop.post("/logout", data={"csrf_token": csrf_token_from_session(laptop)})
    assert phone.get("/api/v1/me").status_code == 401


@pytest.mark.parametrize("change", ["password", "role", "delete"])
def test_a_new_password_a_new_role_or_deletion_ends_the_sessions(app, as_alice, store, change):
    if change == "delete":
        accounts.delete(store, "alice")
    else:
        role, uid = ("firm", None) if change == "role" else ("user", USER_A)
        accounts.create(store, "alice", "a brand new password", role, uid, overwrite=True,
                        method="pbkdf2:sha256:1000")
    assert as_alice.get("/api/v1/me").status_code == 401


def test_the_epoch_check_is_cached_a_second_at_most_by_the_real_store():
    from webapp.cache import Expiring

    now = [0.0]
    reads = []
    cache = Expiring(1.0, clock=lambda: now[0])
    for t in (0.0, 0.5, 0.99, 1.0, 1.5, 2.2):
        now[0] = t
        cache.get("alice", lambda t=t: reads.append(t) or t)
    assert reads == [0.0, 1.0, 2.2]


def test_cassandra_down_gives_503_to_a_logged_in_request_not_a_login_page(as_alice, store):
    store.down = True
    assert as_alice.get("/api/v1/me").status_code == 503
    assert as_alice.get("/me").status_code == 503
    assert as_alice.get("/login").status_code == 200  # the form still shows


# ---------------------------------------------------------------- one login limit for every process


def test_login_limit_holds_across_processes(settings, store):
    """Two apps, as two processes, on one store (Cassandra): failures in one count in the other."""
    first, second = (create_app(settings, store=store).test_client() for _ in range(2))
    assert [login(first, "alice", "wrong password!").status_code for _ in range(2)] == [401, 401]
    assert login(second, "alice", "wrong password!").status_code == 401
    refused = login(second, "alice", "wrong password!")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert login(first, "alice").status_code == 429
    assert login(second, "bob").status_code == 302


def test_a_refused_login_costs_no_password_check(client, store, monkeypatch):
    for _ in range(3):
        login(client, "alice", "wrong password!")
    checked = []
    monkeypatch.setattr(accounts, "check_password_hash", lambda *a: checked.append(a) or False)
    assert login(client, "alice", "wrong password!").status_code == 429
    assert checked == [] and sum(store.failures.values()) == 6  # 3 failures x 2 keys, nothing more


def test_forwarded_for_is_ignored_unless_proxies_are_trusted(store):
    def failures_from(app, forwarded: str) -> set[str]:
        with app.test_client() as c:
            c.post("/login", data={"username": "alice", "password": "wrong password!",
                                   "csrf_token": csrf_token(c)}, headers={"X-Forwarded-For": forwarded})
        return {key for key, _ in store.failures}

    limits = RateLimits(login=3, login_ip=100)
    direct = create_app(WebSettings(secret_key="k", testing=True, live_tasks=False, rate_limits=limits),
                        store=store)
    assert failures_from(direct, "203.0.113.9") == {"addr:127.0.0.1", "user:127.0.0.1|alice"}
    store.failures.clear()
    behind_nginx = create_app(WebSettings(secret_key="k", testing=True, live_tasks=False, rate_limits=limits,
                                          trusted_proxies=1), store=store)
    # nginx appends the address it saw; only the last hop is trusted, not what the client wrote first
    assert failures_from(behind_nginx, "10.9.9.9, 203.0.113.9") == {"addr:203.0.113.9",
                                                                    "user:203.0.113.9|alice"}


def test_login_limit_slides_over_two_windows():
    from webapp.login_limit import LoginLimit

    class Memory:
        def __init__(self):
            self.rows = {}

        def login_failures(self, key, window):
            return self.rows.get((key, window), 0), self.rows.get((key, window - 1), 0)

        def note_login_failure(self, key, window, ttl_s):
            self.rows[(key, window)] = self.rows.get((key, window), 0) + 1

    now = [59.0]
    limit = LoginLimit(Memory(), RateLimits(login=4, login_ip=100, window_s=60), clock=lambda: now[0])
    for _ in range(4):
        assert limit.blocked("a", "alice") is None
        limit.failed("a", "alice")
    assert limit.blocked("a", "alice") == 1
    now[0] = 75.0   # a quarter into the next window: 4 x 0.75 = 3 still count
    assert limit.blocked("a", "alice") is None
    limit.failed("a", "alice")
    assert limit.blocked("a", "alice") == 45
    now[0] = 125.0  # two windows on: everything slid out
    assert limit.blocked("a", "alice") is None


def test_csp_names_the_socket_origin_of_each_allowed_origin():
    policy = csp(("https://trade.example", "http://127.0.0.1:8000", "https://trade.example"))
    assert "connect-src 'self' wss://trade.example ws://127.0.0.1:8000;" in policy
    assert " ws: " not in policy and "wss: " not in policy
