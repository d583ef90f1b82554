"""Fetch the lab's Google Sheet ("MEA dashboard") with gspread and a google-auth service account.

One call reads every worksheet whose title starts with ``Data_`` as the sheet's displayed text
and returns one table, the same shape as the lab's CSV export (a ``Sheet Name`` column last).

Reaching something other than Google (tests, a mirror): the service-account JSON's
``token_uri`` decides where google-auth asks for the access token, and ``api_endpoints``
replaces the Sheets and Drive base URLs. The replacement is a ``requests`` transport adapter
mounted on gspread's own authorised session, so gspread and google-auth run unchanged and make
real HTTP requests; nothing global (``gspread.urls``) is patched.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import gspread
import pandas as pd
import requests
from google.auth import exceptions as google_auth_errors
from google.oauth2.service_account import Credentials
from gspread.utils import ValueRenderOption
from requests.adapters import HTTPAdapter

from mea_pipeline.errors import InputError, PipelineError

SHEET_NAME_COLUMN = "Sheet Name"

# Read-only access is all this step needs; a leaked token then cannot edit the lab's sheet.
SCOPES = tuple(gspread.auth.READONLY_SCOPES)

# The Google base URLs gspread calls for this flow, by the names ``api_endpoints`` accepts.
GOOGLE_API_BASES = {
    "sheets": gspread.urls.SPREADSHEETS_API_V4_BASE_URL,
    "drive": gspread.urls.DRIVE_FILES_API_V3_URL,
}

_MESSAGE_LIMIT = 300
_PEM_BLOCK = re.compile(r"-----BEGIN[^-]*-----.*?-----END[^-]*-----", re.DOTALL)
_BEARER = re.compile(r"Bearer\s+\S+", re.IGNORECASE)


class SheetUnavailable(PipelineError):
    """The Google Sheet could not be read (credentials, network, API, missing spreadsheet).

    The message is one line and never contains key material or tokens; callers fall back to a
    local CSV export.
    """


class _RebaseAdapter(HTTPAdapter):
    """Send requests for one Google base URL to another base URL instead."""

    def __init__(self, google_base: str, target_base: str):
        super().__init__()
        self._google_base = google_base
        self._target_base = target_base.rstrip("/")

    def send(self, request, **kwargs):
        request.url = self._target_base + request.url[len(self._google_base):]
        # requests chose proxies for the Google host; choose them again for the real target.
        kwargs["proxies"] = requests.utils.get_environ_proxies(request.url)
        return super().send(request, **kwargs)


def fetch_sheet_table(
    credentials_path: str | Path,
    title: str = "MEA dashboard",
    worksheet_prefix: str = "Data_",
    *,
    api_endpoints: dict[str, str] | None = None,
    timeout_s: float = 30,
) -> pd.DataFrame:
    """Read every ``worksheet_prefix*`` worksheet of the spreadsheet ``title`` as text.

    Parameters
    ----------
    credentials_path
        Service-account JSON key file; the spreadsheet must be shared with its ``client_email``.
    title
        Spreadsheet title, opened through Drive by name (the first spreadsheet of that name).
    worksheet_prefix
        Only worksheets whose title starts with this are read, in the spreadsheet's tab order.
    api_endpoints
        ``{"sheets": base, "drive": base}`` replacing :data:`GOOGLE_API_BASES` (either key may
        be left out); None talks to Google.
    timeout_s
        Per-request timeout in seconds (token request included).

    Returns
    -------
    pandas.DataFrame
        The worksheets' rows concatenated in tab order (first row of each worksheet = header),
        columns in first-seen order plus ``Sheet Name`` last; every cell a ``str`` as the sheet
        displays it, ``''`` for empty cells and for columns a worksheet lacks.

    Raises
    ------
    SheetUnavailable
        Credentials unreadable or rejected, network or API error, no such spreadsheet, no
        matching worksheet, or a worksheet with a repeated column name.
    InputError
        ``api_endpoints`` names an unknown API.
    """
    credentials_path = Path(credentials_path)
    info = _read_service_account(credentials_path, title)
    secrets = [info.get("private_key", ""), info.get("private_key_id", "")]
    try:
        credentials = Credentials.from_service_account_info(info, scopes=SCOPES)
        client = gspread.Client(auth=credentials)
    except (ValueError, google_auth_errors.GoogleAuthError) as exc:
        raise SheetUnavailable(_failure(title, credentials_path, exc, secrets)) from None
    session = client.http_client.session
    _route(session, api_endpoints or {})
    client.set_timeout(timeout_s)
    try:
        tabs = _read_tabs(client, title, worksheet_prefix, info.get("client_email", "?"))
    except (gspread.exceptions.GSpreadException, google_auth_errors.GoogleAuthError,
            requests.exceptions.RequestException, ValueError, KeyError) as exc:
        # ValueError/KeyError: a reply that is not the JSON the API documents.
        raise SheetUnavailable(_failure(title, credentials_path, exc, secrets + [credentials.token or ""])) from None
    finally:
        session.close()
    return _assemble(tabs, title)


def _read_service_account(path: Path, title: str) -> dict:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SheetUnavailable(f"Google Sheet {title!r} not read: credentials file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        # The decoder's message can quote the file's text, i.e. the key: report only its kind.
        raise SheetUnavailable(
            f"Google Sheet {title!r} not read: credentials file {path} is not a readable service-account "
            f"JSON ({type(exc).__name__})") from None
    if not isinstance(info, dict):
        raise SheetUnavailable(f"Google Sheet {title!r} not read: credentials file {path} is not a JSON object")
    return info


def _route(session: requests.Session, api_endpoints: dict[str, str]) -> None:
    unknown = sorted(set(api_endpoints) - set(GOOGLE_API_BASES))
    if unknown:
        raise InputError(f"api_endpoints: unknown API {unknown}; known: {sorted(GOOGLE_API_BASES)}")
    for name, target in api_endpoints.items():
        session.mount(GOOGLE_API_BASES[name], _RebaseAdapter(GOOGLE_API_BASES[name], target))


def _read_tabs(client: gspread.Client, title: str, prefix: str, client_email: str) -> list[tuple[str, list[list[str]]]]:
    try:
        spreadsheet = client.open(title)
    except gspread.exceptions.SpreadsheetNotFound:
        raise SheetUnavailable(
            f"Google Sheet {title!r} not found: no spreadsheet of that title is shared with {client_email}") from None
    tabs = [(worksheet.title, worksheet.get_all_values(value_render_option=ValueRenderOption.formatted))
            for worksheet in spreadsheet.worksheets() if worksheet.title.startswith(prefix)]
    if not tabs:
        raise SheetUnavailable(f"Google Sheet {title!r} has no worksheet whose title starts with {prefix!r}")
    return tabs


def _assemble(tabs: list[tuple[str, list[list[str]]]], title: str) -> pd.DataFrame:
    frames = []
    for tab_title, values in tabs:
        header = values[0] if values else []
        named = [(i, name) for i, name in enumerate(header) if name != ""]
        if not named:
            continue  # an empty worksheet has no header and no rows
        names = [name for _, name in named]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise SheetUnavailable(
                f"Google Sheet {title!r}, worksheet {tab_title!r}: column(s) {repeated} appear more than once; "
                "rename them in the sheet")
        # The API trims empty trailing cells; a cell under an empty header cell has no column name.
        rows = [[row[i] if i < len(row) else "" for i, _ in named] for row in values[1:]]
        frame = pd.DataFrame(rows, columns=names, dtype=object)
        frame[SHEET_NAME_COLUMN] = tab_title
        frames.append(frame)
    if not frames:
        raise SheetUnavailable(f"Google Sheet {title!r}: every selected worksheet is empty")
    table = pd.concat(frames, ignore_index=True, sort=False).fillna("")
    columns = [c for c in table.columns if c != SHEET_NAME_COLUMN] + [SHEET_NAME_COLUMN]
    # astype(str): the same column dtype as a CSV read with dtype=str (object or pandas' string dtype).
    return table[columns].astype(str)


def _failure(title: str, credentials_path: Path, exc: BaseException, secrets: list[str]) -> str:
    detail = str(exc)
    for secret in secrets:
        if len(secret) >= 8:
            detail = detail.replace(secret, "[redacted]")
    detail = _BEARER.sub("Bearer [redacted]", _PEM_BLOCK.sub("[redacted]", detail))
    detail = " ".join(detail.split())[:_MESSAGE_LIMIT]
    return f"Google Sheet {title!r} unavailable (credentials {credentials_path}): {type(exc).__name__}: {detail}"
