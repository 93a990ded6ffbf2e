"""A real OpenID Connect provider on loopback for sign-in tests (no test functions here).

The provider is `oidc-provider-mock` (PyPI): any client_id/client_secret is accepted, and its
authorization page asks for the user's `sub`. Streamlit's own `st.login()` talks to it through
Authlib exactly as it would to Google or Okta.

    with oidc_provider() as idp:
        secrets = write_auth_secrets(tmp_path, app_port, idp.url)
        # start: streamlit run streamlit_app.py --server.port APP_PORT ... --secrets.files SECRETS
        #   (or env STREAMLIT_SECRETS_FILES=SECRETS); see streamlit_secrets_args()
        page.goto(f"http://127.0.0.1:{app_port}")
        page.get_by_role("button", name="Sign in").click()   # the app calls st.login()
        sign_in(page, "alice", email="alice@example.com")     # provider side, back on the app
        ...
        sign_out(page)   # after the app's own sign-out button called st.logout()

Facts this relies on (Streamlit 1.67, Authlib 1.9, oidc-provider-mock 0.3.4):
- The browser must open the app on the exact origin of `redirect_uri` (127.0.0.1 here, never
  `localhost`): Streamlit drops the identity cookie on a websocket whose Origin differs.
- The provider's issuer is the host the app fetched the discovery document from, so always use
  `idp.url` (127.0.0.1) for `server_metadata_url`.
- A `sub` that was never seen gets the claims {"email": sub}; `sign_in(..., email=...)` first
  stores the claims you want with the provider's `PUT /users/<sub>`.
"""

from __future__ import annotations

import json
import secrets
import socket
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

CLIENT_ID = "chat-app-tests"
CLIENT_SECRET = "not-a-real-secret"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Provider:
    """A running loopback provider."""

    url: str  # http://127.0.0.1:PORT, also the issuer (`iss`) of its tokens

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def set_user(self, sub: str, **claims: Any) -> None:
        """Replace the claims the provider puts in `sub`'s ID token (e.g. email=..., name=...).

        Standard claims appear only for their scope; Streamlit asks for "openid email profile",
        so email, email_verified, name, preferred_username, ... all come through.
        """
        request = urllib.request.Request(
            f"{self.url}/users/{urllib.request.quote(sub, safe='')}",
            data=json.dumps(claims).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 204, response.status


@contextmanager
def oidc_provider(users: Mapping[str, Mapping[str, Any]] | None = None) -> Iterator[Provider]:
    """Run oidc-provider-mock in a background thread on a free 127.0.0.1 port; stop it on exit.

    `users` maps a `sub` to its claims, e.g. {"alice": {"email": "alice@example.com"}}; such
    users also get a one-click button on the provider's page. Any other `sub` typed there works
    too. Use it as a context manager, or wrap it in a pytest fixture:

        @pytest.fixture(scope="session")
        def idp():
            with oidc_provider() as provider:
                yield provider
    """
    from oidc_provider_mock import User, run_server_in_thread

    claims = [User(sub=sub, claims=dict(c)) for sub, c in (users or {}).items()]
    # It binds "localhost", which werkzeug resolves to IPv4 127.0.0.1; port 0 lets the OS pick.
    with run_server_in_thread(port=0, user_claims=claims) as server:
        yield Provider(url=f"http://127.0.0.1:{server.server_port}")


def auth_section(app_port: int, provider_url: str, **extra: Any) -> dict[str, Any]:
    """The `[auth]` table for an app served at http://127.0.0.1:APP_PORT (extra keys merged in)."""
    section: dict[str, Any] = {
        "redirect_uri": f"http://127.0.0.1:{app_port}/oauth2callback",
        "cookie_secret": secrets.token_hex(32),
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "server_metadata_url": f"{provider_url.rstrip('/')}/.well-known/openid-configuration",
    }
    section.update(extra)
    return section


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def write_auth_secrets(
    directory: str | Path,
    app_port: int,
    provider_url: str,
    *,
    other_sections: Mapping[str, Mapping[str, Any]] | None = None,
    **auth_extra: Any,
) -> Path:
    """Write DIRECTORY/.streamlit/secrets.toml with an `[auth]` section; return its path.

    `auth_extra` adds or overrides keys of `[auth]` (e.g. a nested `client_kwargs={...}`);
    `other_sections` adds top-level tables, e.g. {"chat": {"allowed_users": ["a@x.org"]}}.
    Point the app at the file with `streamlit_secrets_args(path)` rather than writing into the
    repository: `secrets.files` replaces Streamlit's default search list, so a developer's own
    ~/.streamlit/secrets.toml or ./.streamlit/secrets.toml is not read either.
    """
    path = Path(directory) / ".streamlit" / "secrets.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    tables = {"auth": auth_section(app_port, provider_url, **auth_extra), **(other_sections or {})}
    lines: list[str] = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    path.chmod(0o600)
    return path


def streamlit_secrets_args(secrets_path: str | Path) -> list[str]:
    """Arguments for `streamlit run streamlit_app.py ...` that read only SECRETS_PATH.

    Same effect as the environment variable STREAMLIT_SECRETS_FILES=SECRETS_PATH.
    """
    return ["--secrets.files", str(secrets_path)]


def sign_in(page, sub: str, email: str | None = None, *, claims: Mapping[str, Any] | None = None,
            timeout: float = 30_000) -> None:
    """Do the provider's side of the sign-in, after the app's sign-in button called `st.login()`.

    Waits for the provider's authorization page, sets the user's claims if `email` or `claims`
    are given (otherwise a new `sub` gets email = sub), types `sub`, authorizes, and returns once
    the browser is back on the app (its /oauth2callback has set the identity cookie and
    redirected to /) and the Streamlit page has rendered.
    """
    page.wait_for_url("**/oauth2/authorize?**", timeout=timeout)
    authorize = urlparse(page.url)
    app_origin = _origin(parse_qs(authorize.query)["redirect_uri"][0])
    if email is not None or claims:
        user_claims = dict(claims or {})
        if email is not None:
            user_claims.setdefault("email", email)
            user_claims.setdefault("email_verified", True)
        Provider(url=f"{authorize.scheme}://{authorize.netloc}").set_user(sub, **user_claims)
    page.locator('input[name="sub"]').fill(sub)
    page.get_by_role("button", name="Authorize").click()
    _back_on_app(page, app_origin, timeout)


def sign_out(page, *, timeout: float = 30_000) -> None:
    """Finish a sign-out after the app's sign-out button called `st.logout()`.

    Streamlit clears its cookies and sends the browser to the provider's end-session page
    (the mock advertises one); confirm it there and wait until the app is shown again.
    """
    page.wait_for_url("**/oauth2/end_session?**", timeout=timeout)
    app_origin = _origin(parse_qs(urlparse(page.url).query)["post_logout_redirect_uri"][0])
    page.get_by_role("button", name="End session").click()
    _back_on_app(page, app_origin, timeout)


def _origin(url: str) -> str:
    parts = urlparse(url)
    return f"{parts.scheme}://{parts.netloc}"


def _back_on_app(page, app_origin: str, timeout: float) -> None:
    page.wait_for_url(lambda url: url.startswith(app_origin) and "/oauth2callback" not in url, timeout=timeout)
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
