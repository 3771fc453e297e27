"""Uniform errors: JSON `{"error": {"status", "message"}}` under /api, the `error.html` page elsewhere.
Nothing ever answers with a traceback; the catch-all logs and answers a clean 500."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from jinja2 import TemplateNotFound
from markupsafe import escape
from werkzeug.exceptions import HTTPException

from webapp.store import DataUnavailable

LOG = logging.getLogger(__name__)


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/api"


def error_response(status: int, message: str) -> tuple[Response | str, int]:
    if wants_json():
        return jsonify(error={"status": status, "message": message}), status
    try:
        return render_template("error.html", status=status, message=message), status
    except TemplateNotFound:  # the pages blueprint and its templates are not installed
        return f"<!doctype html><title>{status}</title><h1>{status}</h1><p>{escape(message)}</p>", status


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError,
                               lambda e: error_response(400, f"CSRF check failed: {e.description}"))
    app.register_error_handler(HTTPException, _http)
    app.register_error_handler(DataUnavailable, _unavailable)
    app.register_error_handler(Exception, _unexpected)


def _http(exc: HTTPException):
    status = exc.code or 500
    message = {404: "not found", 405: f"method {request.method} not allowed here",
               413: "request body too large", 429: f"too many requests: {exc.description}"}.get(
        status, exc.description or exc.name)
    response = error_response(status, message)
    if status == 405 and getattr(exc, "valid_methods", None):
        resp, code = response
        if isinstance(resp, Response):
            resp.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _unavailable(exc: DataUnavailable):
    LOG.warning("503 on %s: %s", request.path, exc)
    resp, status = error_response(503, f"data temporarily unavailable: {exc}")
    if isinstance(resp, Response):
        resp.headers["Retry-After"] = "5"
    return resp, status


def _unexpected(exc: Exception):
    LOG.exception("unexpected error on %s %s", request.method, request.path)
    return error_response(500, "internal error; it has been logged")
