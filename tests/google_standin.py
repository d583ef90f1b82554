"""A local HTTP stand-in for the Google endpoints gspread + google-auth call to read a spreadsheet.

Implements exactly what ``fetch_sheet_table`` uses, on 127.0.0.1 at a free port:

* ``POST /token``: OAuth2 JWT-bearer grant (google-auth's service-account flow); the JWT's RS256
  signature (against the test's public key) and audience are checked; answers an access token;
* ``GET /drive/v3/files``: Drive file list filtered by ``name = "<title>"`` in ``q`` (``Client.open``);
* ``GET /v4/spreadsheets/<id>``: spreadsheet metadata with the worksheet list;
* ``GET /v4/spreadsheets/<id>/values/<range>``: a worksheet's values, with Google's trimming of
  empty trailing cells and rows.

API calls must carry ``Authorization: Bearer <the issued token>``. Requests are counted per
endpoint (``counts``); ``reject_token_requests`` and ``values_error`` simulate failures;
``stop()`` closes the port so clients get "connection refused".
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SPREADSHEET_MIME = "application/vnd.google-apps.spreadsheet"
# google-auth always signs its grant for Google's token endpoint, wherever token_uri points.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


def make_private_key_pem(key_size: int = 2048) -> tuple[str, object]:
    """A fresh RSA key: (PKCS#8 PEM text for the credentials JSON, public key for the stand-in)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return pem, key.public_key()


def service_account_info(private_key_pem: str, token_uri: str) -> dict:
    """A service-account JSON (the fields google-auth reads) pointing its token requests at ``token_uri``."""
    return {
        "type": "service_account",
        "project_id": "standin-project",
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": private_key_pem,
        "client_email": "pipeline@standin-project.iam.gserviceaccount.com",
        "client_id": "100000000000000000000",
        "token_uri": token_uri,
    }


def tabs_of(table) -> dict[str, list[list[str]]]:
    """Split a sheet table (as exported, with a ``Sheet Name`` column) back into worksheets, in tab order."""
    columns = [c for c in table.columns if c != "Sheet Name"]
    return {name: [columns] + part[columns].values.tolist()
            for name, part in table.groupby("Sheet Name", sort=False)}


def write_credentials(folder, pem: str, standin: "GoogleStandin"):
    """A service-account JSON file in ``folder`` whose token requests go to ``standin``."""
    path = Path(folder) / "service_account.json"
    path.write_text(json.dumps(service_account_info(pem, standin.token_uri)))
    return path


def _trimmed(values: list[list[str]]) -> list[list[str]]:
    """Google's values reply omits empty trailing cells of each row and empty trailing rows."""
    rows = []
    for row in values:
        row = list(row)
        while row and row[-1] == "":
            row.pop()
        rows.append(row)
    while rows and not rows[-1]:
        rows.pop()
    return rows


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class GoogleStandin:
    """Serve one spreadsheet ``title`` with worksheets ``tabs`` (title -> rows incl. header row).

    Use as a context manager or call :meth:`start` / :meth:`stop`. ``public_key`` (from
    :func:`make_private_key_pem`) turns on JWT signature checking.
    """

    def __init__(self, tabs: dict[str, list[list[str]]], title: str = "MEA dashboard", public_key=None,
                 spreadsheet_id: str = "standin-sheet-1"):
        self.tabs = tabs
        self.title = title
        self.public_key = public_key
        self.spreadsheet_id = spreadsheet_id
        self.access_token = "ya29.standin-" + base64.urlsafe_b64encode(b"not-a-real-token-0123").decode()
        self.counts: Counter = Counter()
        self.reject_token_requests = False
        # When set, the values endpoint fails with HTTP 500 and this message, "{authorization}"
        # replaced by the request's Authorization header (a server echoing secrets back).
        self.values_error: str | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._address: tuple[str, int] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "GoogleStandin":
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                standin._dispatch(self, "GET")

            def do_POST(self):
                standin._dispatch(self, "POST")

            def log_message(self, *args):  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._address = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> "GoogleStandin":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The server's address; after :meth:`stop` the same (now closed) address."""
        host, port = self._address
        return f"http://{host}:{port}"

    @property
    def token_uri(self) -> str:
        return self.base_url + "/token"

    @property
    def api_endpoints(self) -> dict[str, str]:
        return {"sheets": self.base_url + "/v4/spreadsheets", "drive": self.base_url + "/drive/v3/files"}

    # -- request handling ------------------------------------------------------------------
    def _dispatch(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(handler.path)
        query = parse_qs(url.query)
        sheet_prefix = f"/v4/spreadsheets/{self.spreadsheet_id}"
        if method == "POST" and url.path == "/token":
            self.counts["token"] += 1
            length = int(handler.headers.get("Content-Length", 0))
            return self._token(handler, parse_qs(handler.rfile.read(length).decode()))
        if method != "GET":
            return self._reply(handler, 405, {"error": {"code": 405, "message": "method not allowed"}})
        if not self._authorised(handler):
            self.counts["unauthorised"] += 1
            return self._reply(handler, 401, {"error": {"code": 401, "message": "Request had invalid credentials.",
                                                        "status": "UNAUTHENTICATED"}})
        if url.path == "/drive/v3/files":
            self.counts["drive_files"] += 1
            return self._drive_files(handler, query)
        if url.path == sheet_prefix:
            self.counts["spreadsheet"] += 1
            return self._metadata(handler)
        if url.path.startswith(sheet_prefix + "/values/"):
            self.counts["values"] += 1
            if self.values_error is not None:
                message = self.values_error.replace("{authorization}", handler.headers.get("Authorization", ""))
                return self._reply(handler, 500, {"error": {"code": 500, "message": message, "status": "INTERNAL"}})
            return self._values(handler, unquote(url.path[len(sheet_prefix + "/values/"):]))
        self.counts["not_found"] += 1
        return self._reply(handler, 404, {"error": {"code": 404, "message": f"no such path {url.path}",
                                                    "status": "NOT_FOUND"}})

    def _authorised(self, handler) -> bool:
        return handler.headers.get("Authorization") == f"Bearer {self.access_token}"

    def _token(self, handler, form: dict) -> None:
        grant = form.get("grant_type", [""])[0]
        assertion = form.get("assertion", [""])[0]
        if (self.reject_token_requests or grant != "urn:ietf:params:oauth:grant-type:jwt-bearer"
                or not self._valid_jwt(assertion)):
            return self._reply(handler, 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        self._reply(handler, 200, {"access_token": self.access_token, "expires_in": 3599, "token_type": "Bearer"})

    def _valid_jwt(self, assertion: str) -> bool:
        parts = assertion.split(".")
        if len(parts) != 3:
            return False
        if self.public_key is None:
            return True
        try:
            self.public_key.verify(_b64url_decode(parts[2]), f"{parts[0]}.{parts[1]}".encode(),
                                   padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        claims = json.loads(_b64url_decode(parts[1]))
        return claims.get("aud") == GOOGLE_TOKEN_AUDIENCE

    def _drive_files(self, handler, query: dict) -> None:
        q = query.get("q", [""])[0]
        wanted = re.search(r'name = "([^"]*)"', q)
        is_sheet = f'mimeType="{SPREADSHEET_MIME}"' in q
        files = []
        if is_sheet and (wanted is None or wanted.group(1) == self.title):
            files.append({"id": self.spreadsheet_id, "name": self.title, "createdTime": "2021-01-04T10:00:00.000Z",
                          "modifiedTime": "2026-01-05T09:30:00.000Z"})
        self._reply(handler, 200, {"kind": "drive#fileList", "files": files})

    def _metadata(self, handler) -> None:
        sheets = [{"properties": {"sheetId": 1000 + index, "title": tab_title, "index": index, "sheetType": "GRID",
                                  "gridProperties": {"rowCount": max(len(rows), 1),
                                                     "columnCount": max((len(r) for r in rows), default=1)}}}
                  for index, (tab_title, rows) in enumerate(self.tabs.items())]
        self._reply(handler, 200, {"spreadsheetId": self.spreadsheet_id,
                                   "properties": {"title": self.title, "locale": "en_US",
                                                  "timeZone": "America/Chicago"},
                                   "sheets": sheets,
                                   "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{self.spreadsheet_id}"})

    def _values(self, handler, range_name: str) -> None:
        title = range_name
        if title.startswith("'") and title.endswith("'"):
            title = title[1:-1].replace("''", "'")
        if title not in self.tabs:
            return self._reply(handler, 400, {"error": {"code": 400, "message": f"Unable to parse range: {range_name}",
                                                        "status": "INVALID_ARGUMENT"}})
        body = {"range": range_name, "majorDimension": "ROWS"}
        rows = _trimmed(self.tabs[title])
        if rows:
            body["values"] = rows
        self._reply(handler, 200, body)

    @staticmethod
    def _reply(handler, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=UTF-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
