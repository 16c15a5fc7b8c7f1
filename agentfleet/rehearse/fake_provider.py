"""A loopback stand-in for OpenAI's admin API: just the endpoints the `openai` strategy calls.

    POST   /organization/projects/{p}/service_accounts                 -> {id, api_key: {id, value}}
    POST   /organization/projects/{p}/service_accounts/{sa}/api_keys   -> {id, value}
    DELETE /organization/projects/{p}/api_keys/{key}                   -> 200, 404 if gone
    GET    /models   (Bearer <key>)                                    -> 200 while the key is active, else 401

It keeps which keys exist and are active, so the rehearsal can tell a revoked key from a live
one. Values are random per run and live only in memory.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROJECT = "proj_rehearsal"


class FakeOpenAI:
    def __init__(self) -> None:
        self.admin_key = "sk-admin-" + secrets.token_hex(16)
        self.keys: dict[str, dict[str, Any]] = {}
        """key id -> {value, service_account, project, active}"""
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def _mint(self, sa: str, project: str) -> tuple[str, str]:
        key_id, value = "key_" + secrets.token_hex(6), "sk-proj-" + secrets.token_hex(20)
        with self._lock:
            self.keys[key_id] = {"value": value, "service_account": sa, "project": project, "active": True}
        return key_id, value

    def mint_initial(self) -> dict[str, str]:
        """What an operator pastes into put-values for a key minted by hand (with its ids)."""
        sa = "svc_" + secrets.token_hex(6)
        key_id, value = self._mint(sa, PROJECT)
        return {"api_key": value, "key_id": key_id, "service_account_id": sa, "project_id": PROJECT}

    def works(self, value: str | None) -> bool:
        with self._lock:
            return any(k["value"] == value and k["active"] for k in self.keys.values())

    def _dispatch(self, method: str, path: str, bearer: str) -> tuple[int, dict[str, Any]]:
        if method == "GET" and path == "/models":
            return (200, {"data": []}) if self.works(bearer) else (401, {"error": {"code": "invalid_api_key"}})
        if bearer != self.admin_key:
            return 401, {"error": {"code": "invalid_admin_key"}}
        m = re.fullmatch(r"/organization/projects/([\w-]+)/service_accounts", path)
        if method == "POST" and m:
            sa = "svc_" + secrets.token_hex(6)
            key_id, value = self._mint(sa, m.group(1))
            return 200, {"id": sa, "api_key": {"id": key_id, "value": value}}
        m = re.fullmatch(r"/organization/projects/([\w-]+)/service_accounts/([\w-]+)/api_keys", path)
        if method == "POST" and m:
            key_id, value = self._mint(m.group(2), m.group(1))
            return 200, {"id": key_id, "value": value}
        m = re.fullmatch(r"/organization/projects/([\w-]+)/api_keys/([\w-]+)", path)
        if method == "DELETE" and m:
            with self._lock:
                key = self.keys.get(m.group(2))
                if key is None or not key["active"]:
                    return 404, {"error": {"code": "not_found"}}
                key["active"] = False
            return 200, {"deleted": True}
        return 404, {"error": {"code": "no_route"}}

    def start(self) -> "FakeOpenAI":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keys travel in headers: never log requests
                pass

            def _route(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                bearer = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                status, doc = fake._dispatch(method, self.path.removeprefix("/v1"), bearer)
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_DELETE(self) -> None:
                self._route("DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
