"""The pages blueprint without services: who may see which dashboard, the vendor files (allowlist
only), and templates that the 'self'-only CSP can run (no inline script or style anywhere)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stack import tools
from tests.unit.webapp.conftest import FakeStore
from webapp import create_app, pages
from webapp.settings import WebSettings

TEMPLATES = Path(pages.__file__).parent / "templates"
REPO = Path(pages.__file__).resolve().parents[1]
# python-socketio imports kafka-python, whose schema loader uses a deprecated importlib API
pytestmark = pytest.mark.filterwarnings("ignore:(read|open)_text is deprecated:DeprecationWarning")


@pytest.fixture()
def vendor(tmp_path: Path) -> Path:
    for relative in pages.VENDOR_FILES.values():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(f"/* {relative} */")
    (tmp_path / "secret.txt").write_text("not for the browser")
    return tmp_path


@pytest.fixture()
def pages_client(vendor: Path):
    store = FakeStore()
    for role in ("user", "firm"):
        store.accounts[f"a{role}"] = {"username": f"a{role}", "role": role, "session_epoch": 3,
                                      "user_id": 7 if role == "user" else None}
    app = create_app(WebSettings(testing=True, live_tasks=False, vendor_dir=vendor), store=store)
    return app.test_client()


def log_in(client, role: str) -> None:
    with client.session_transaction() as session:
        session["account"] = {"username": f"a{role}", "role": role, "user_id": 7 if role == "user" else None,
                              "epoch": 3}


def test_dashboards_need_a_login(pages_client) -> None:
    for path in ("/me", "/firm"):
        r = pages_client.get(path)
        assert r.status_code == 302
        assert r.headers["Location"].startswith("/login?next=")


def test_user_sees_own_dashboard_but_not_the_firms(pages_client) -> None:
    log_in(pages_client, "user")
    me = pages_client.get("/me")
    assert me.status_code == 200
    html = me.get_data(as_text=True)
    assert 'id="holdings"' in html and 'id="live-badge"' in html and "auser" in html
    refused = pages_client.get("/firm")
    assert refused.status_code == 403
    assert 'id="error-status">403<' in refused.get_data(as_text=True)


def test_firm_analyst_sees_the_firm_dashboard(pages_client) -> None:
    log_in(pages_client, "firm")
    r = pages_client.get("/firm")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'id="activity-chart"' in html and 'id="nightly-views"' in html
    assert 'href="/firm"' in html and 'href="/me"' not in html


def test_every_page_checks_the_role(pages_client) -> None:
    """The analyst has no portfolio: /me sends it to the firm dashboard instead of a page whose data
    calls all answer 403 (and a user gets a 403 page on /firm, above)."""
    log_in(pages_client, "firm")
    r = pages_client.get("/me")
    assert r.status_code == 302 and r.headers["Location"] == "/firm"


def test_a_session_without_an_epoch_or_with_an_old_one_is_no_login(pages_client) -> None:
    with pages_client.session_transaction() as session:
        session["account"] = {"username": "auser", "role": "user", "user_id": 7}  # issued before epochs
    assert pages_client.get("/me").headers["Location"].startswith("/login?next=")
    with pages_client.session_transaction() as session:
        session["account"] = {"username": "auser", "role": "user", "user_id": 7, "epoch": 2}
    assert pages_client.get("/me").headers["Location"].startswith("/login?next=")


def test_pages_load_only_local_scripts_and_carry_a_csrf_logout(pages_client) -> None:
    log_in(pages_client, "user")
    html = pages_client.get("/me").get_data(as_text=True)
    scripts = re.findall(r"<script([^>]*)>", html)
    assert scripts and all('src="/' in attrs for attrs in scripts)
    assert re.search(r'<form method="post" action="/logout"[^>]*>\s*<input type="hidden" name="csrf_token" '
                     r'value="[^"]+"', html)


def test_vendor_serves_the_allowlist_only(pages_client, vendor: Path) -> None:
    r = pages_client.get("/vendor/chart.umd.min.js")
    assert r.status_code == 200
    assert r.get_data(as_text=True) == "/* chart.js/dist/chart.umd.min.js */"
    assert "javascript" in r.headers["Content-Type"]
    r.close()  # a file response holds the file open until closed
    for name in ("secret.txt", "..%2Fsecret.txt", "chart.js", "socket.io.js"):
        assert pages_client.get(f"/vendor/{name}").status_code == 404, name


def test_vendor_without_installed_libraries_is_404(vendor: Path) -> None:
    app = create_app(WebSettings(testing=True, live_tasks=False, vendor_dir=None, keyspace="unused"))
    assert app.test_client().get("/vendor/socket.io.min.js").status_code == 404
    (vendor / pages.VENDOR_FILES["socket.io.min.js"]).unlink()
    app = create_app(WebSettings(testing=True, live_tasks=False, vendor_dir=vendor, keyspace="unused"))
    assert app.test_client().get("/vendor/socket.io.min.js").status_code == 404


def test_login_page_has_the_form_and_shows_the_error(pages_client) -> None:
    html = pages_client.get("/login?next=/me").get_data(as_text=True)
    assert re.search(r'name="csrf_token" value="[^"]+"', html)
    assert 'name="next" value="/me"' in html
    assert 'id="login-error"' not in html


def test_no_inline_script_or_style_in_any_template() -> None:
    for path in TEMPLATES.glob("*.html"):
        text = path.read_text()
        assert "<style" not in text and " style=" not in text, path.name
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), path.name
        assert not re.search(r"\son[a-z]+=", text), f"inline event handler in {path.name}"


def test_vendor_dir_formula_matches_the_installer(tmp_path: Path) -> None:
    assert pages.default_vendor_dir(tmp_path) == tools.npm_assets_dir(tmp_path, REPO)


def test_every_vendor_file_is_in_the_locked_packages() -> None:
    lock = (REPO / "webapp" / "assets" / "package-lock.json").read_text()
    for relative in pages.VENDOR_FILES.values():
        package = relative.split("/dist/")[0]
        assert f'"node_modules/{package}"' in lock
