"""Log in/out, CSRF, rate limiting, cookie flags, security headers."""

from __future__ import annotations

from tests.unit.webapp.conftest import PASSWORD, csrf_token, login


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
        assert "connect-src 'self' ws: wss:" in h["Content-Security-Policy"]
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
