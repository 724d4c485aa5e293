"""Server-rendered HTML for the hosted pages: sign-in, consent, errors, connected apps.

No JavaScript and no external assets (a CDN would be a privacy leak and is unreachable offline).
Every value is HTML-escaped here; callers pass plain text. Pages are sent with a strict
Content-Security-Policy and ``X-Frame-Options: DENY`` (clickjacking on a login page).

``form-action`` is ``'self'`` plus, on the sign-in and consent pages of an authorization request,
the one place their form's answer redirects to: the redirect URI's origin, or its scheme for a
native app's private-use scheme (RFC 8252 §7.1). Browsers apply ``form-action`` to the redirects
after a form is sent, so without it the app would never get its code; with it, no other target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape
from urllib.parse import urlsplit

_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action {}; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": _CSP.format("'self'"),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
}
# CSP's grammar (CSP3 §2.3.1): a scheme (RFC 3986 §3.1) and a host of letters, digits, '-', '.'.
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_HOST = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*")


def redirect_source(uri: str) -> str | None:
    """The CSP source expression that lets a form's redirect reach ``uri``: ``scheme://host:port``
    for http(s), ``scheme:`` for a private-use scheme and for hosts CSP cannot name (an IPv6
    literal such as a ``[::1]`` loopback)."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not _SCHEME.fullmatch(scheme):
        return None
    if scheme not in ("http", "https"):
        return scheme + ":"
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if host is None or not _HOST.fullmatch(host):
        return scheme + ":"
    return f"{scheme}://{host}" + (f":{port}" if port is not None else "")


def security_headers(redirects_to: str | None = None) -> dict[str, str]:
    """The page headers; ``redirects_to`` is where the page's form may end up (a redirect URI)."""
    headers = dict(SECURITY_HEADERS)
    source = redirect_source(redirects_to) if redirects_to else None
    if source is not None:
        headers["Content-Security-Policy"] = _CSP.format("'self' " + source)
    return headers


# Plain words for the scopes we know; unknown scopes are shown by name.
SCOPE_WORDS = {
    "openid": "Know who you are",
    "profile": "See your name and username",
    "email": "See your email address",
    "people:read": "See the people directory",
    "articles:read": "Read articles",
    "articles:write": "Write and publish articles",
}

_CSS = """
:root{--fg:#1d2330;--muted:#5b6478;--bg:#f4f6fa;--card:#fff;--accent:#2452c7;--danger:#b3261e;
--border:#d8dde8;color-scheme:light}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg);min-height:100vh}
.shell{margin:0 auto;max-width:30rem;padding:0 1rem 3rem}
.shell.wide{max-width:54rem}
header{padding:1.5rem .25rem 1rem;font-weight:700;font-size:1.1rem;letter-spacing:.02em}
a{color:var(--accent)}
a:focus-visible{outline:3px solid #9db5f5;outline-offset:2px}
.card{background:var(--card);border:1px solid var(--border);border-radius:12px;padding:1.75rem;
box-shadow:0 1px 2px rgba(0,0,0,.04)}
h1{font-size:1.4rem;margin:0 0 .75rem}
p{margin:.5rem 0}
.muted{color:var(--muted);font-size:.95rem}
label{display:block;font-weight:600;margin:1rem 0 .35rem}
input[type=text],input[type=password]{width:100%;padding:.65rem .75rem;font:inherit;
border:1px solid var(--border);border-radius:8px}
input:focus-visible,button:focus-visible{outline:3px solid #9db5f5;outline-offset:1px}
button{font:inherit;font-weight:600;padding:.65rem 1.1rem;border-radius:8px;
border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer}
button.secondary{background:#fff;color:var(--accent)}
button.danger{background:#fff;color:var(--danger);border-color:var(--danger)}
.actions{display:flex;gap:.75rem;margin-top:1.5rem;flex-wrap:wrap}
.error{background:#fdecea;color:var(--danger);border-radius:8px;padding:.6rem .8rem;margin:.5rem 0}
.notice{background:#e7f4ea;color:#1e6b34;border-radius:8px;padding:.6rem .8rem;margin:.75rem 0}
ul.scopes{padding-left:1.2rem}
table{width:100%;border-collapse:collapse;margin-top:1rem}
th,td{text-align:left;padding:.6rem .4rem;border-bottom:1px solid var(--border);vertical-align:top}
th{font-size:.85rem;color:var(--muted);font-weight:600}
td.when{white-space:nowrap;color:var(--muted);font-size:.95rem}
td.act{text-align:right}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}
@media (max-width:640px){table,thead,tbody,tr,th,td{display:block}thead{display:none}
tr{border-bottom:1px solid var(--border);padding:.75rem 0}td{border:0;padding:.15rem 0}
td.act{text-align:left;padding-top:.5rem}
td[data-label]::before{content:attr(data-label) ": ";font-weight:600}}
"""


@dataclass
class Outcome:
    """What the HTTP layer should send: a page or a redirect, plus cookies to set."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    cookies: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Page:
    html: str
    status: int = 200
    redirects_to: str | None = None  # where the page's form may redirect (its CSP allows it)

    def outcome(self) -> Outcome:
        return Outcome(self.status, security_headers(self.redirects_to), self.html)


def _layout(title: str, body: str, brand: str, wide: bool = False) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)} · {escape(brand)}</title><style>{_CSS}</style></head>"
        f'<body><div class="shell{" wide" if wide else ""}"><header>{escape(brand)}</header>'
        f'<main><div class="card">{body}</div></main></div>'
        "</body></html>"
    )


def _hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'


def login(
    *,
    brand: str,
    client_name: str,
    action: str,
    request_blob: str,
    csrf: str,
    redirects_to: str,
    error: str = "",
    username: str = "",
) -> Page:
    """Sign-in inside an authorization request (the request travels in a signed field); its
    answer may redirect to the app (``redirects_to``) when the app needs no consent."""
    subtitle = f'<p class="muted">to continue to <strong>{escape(client_name)}</strong></p>'
    fields = _hidden("request", request_blob) + _hidden("step", "login")
    page = _sign_in(brand, subtitle, action, fields, csrf, error, username)
    return Page(page.html, page.status, redirects_to)


def account_login(
    *, brand: str, action: str, csrf: str, error: str = "", username: str = ""
) -> Page:
    """Sign-in for the account pages (connected apps)."""
    subtitle = '<p class="muted">to manage the applications connected to your account</p>'
    return _sign_in(brand, subtitle, action, "", csrf, error, username)


def _sign_in(
    brand: str, subtitle: str, action: str, fields: str, csrf: str, error: str, username: str
) -> Page:
    """The sign-in form. After a failure the username is kept and the password field focused;
    the error is announced (``role="alert"``) and tied to the fields (``aria-describedby``)."""
    err = f'<p class="error" id="signin-error" role="alert">{escape(error)}</p>' if error else ""
    described = ' aria-describedby="signin-error" aria-invalid="true"' if error else ""
    focus_user, focus_password = ("", " autofocus") if username else (" autofocus", "")
    body = (
        f"<h1>Sign in</h1>{subtitle}{err}"
        f'<form method="post" action="{escape(action)}">'
        + fields
        + _hidden("csrf", csrf)
        + '<label for="username">Username</label>'
        f'<input id="username" name="username" type="text" autocomplete="username" '
        f'autocapitalize="none" spellcheck="false" value="{escape(username)}" '
        f"required{focus_user}{described}>"
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" '
        f'autocomplete="current-password" required{focus_password}{described}>'
        '<div class="actions"><button type="submit">Sign in</button></div></form>'
    )
    return Page(_layout("Sign in", body, brand), 401 if error else 200)


def consent(
    *,
    brand: str,
    client_name: str,
    username: str,
    scopes: list[str],
    action: str,
    request_blob: str,
    csrf: str,
    redirects_to: str,
) -> Page:
    """Allow or deny; either answer redirects to the app (``redirects_to``)."""
    known = list(SCOPE_WORDS)  # who you are first, then what the app may do
    ordered = sorted(scopes, key=lambda s: (known.index(s) if s in known else len(known), s))
    items = "".join(f"<li>{escape(SCOPE_WORDS.get(s, s))}</li>" for s in ordered) or (
        "<li>Know who you are</li>"
    )
    body = (
        f"<h1>Allow {escape(client_name)}?</h1>"
        f'<p class="muted">Signed in as <strong>{escape(username)}</strong>. '
        f"{escape(client_name)} asks to:</p>"
        f'<ul class="scopes">{items}</ul>'
        f'<form method="post" action="{escape(action)}">'
        + _hidden("request", request_blob)
        + _hidden("csrf", csrf)
        + _hidden("step", "consent")
        + '<div class="actions"><button type="submit" name="decision" value="allow">Allow</button>'
        '<button class="secondary" type="submit" name="decision" value="deny">Deny</button></div>'
        "</form>"
        # A new tab: following the link must not lose this consent step.
        '<p class="muted">You can withdraw access at any time under <a href="/account/apps" '
        'target="_blank" rel="noopener noreferrer">Connected apps</a>.</p>'
    )
    return Page(_layout("Allow access", body, brand), redirects_to=redirects_to)


def error(
    *, brand: str, title: str, message: str, status: int = 400, link: tuple[str, str] | None = None
) -> Page:
    """A page with a message; ``link`` is an optional (same-site path, text) way onwards."""
    body = f"<h1>{escape(title)}</h1><p>{escape(message)}</p>"
    if link is not None:
        body += f'<p><a href="{escape(link[0])}">{escape(link[1])}</a></p>'
    return Page(_layout(title, body, brand), status)


def logout_confirm(
    *, brand: str, action: str, fields: dict[str, str], csrf: str, redirects_to: str | None
) -> Page:
    """RP-initiated logout when the request alone cannot show it is the user's wish: one button;
    its answer may redirect to the app's registered post-logout address (``redirects_to``)."""
    hidden = "".join(_hidden(name, value) for name, value in fields.items())
    body = (
        "<h1>Sign out?</h1>"
        '<p class="muted">An application asked to end your session here.</p>'
        f'<form method="post" action="{escape(action)}">'
        + hidden
        + _hidden("csrf", csrf)
        + _hidden("step", "confirm")
        + '<div class="actions"><button type="submit">Sign out</button></div></form>'
        '<p class="muted">If you did not ask to sign out, close this page.</p>'
    )
    return Page(_layout("Sign out", body, brand), redirects_to=redirects_to)


@dataclass(frozen=True, slots=True)
class AppRow:
    family_id: str
    client_name: str
    scopes: list[str]
    first_used: str
    last_used: str


def connected_apps(
    *, brand: str, username: str, rows: list[AppRow], csrf: str, notice: str = ""
) -> Page:
    note = f'<p class="notice" role="status">{escape(notice)}</p>' if notice else ""
    if rows:
        trs = "".join(
            "<tr>"
            f"<td><strong>{escape(r.client_name)}</strong></td>"
            '<td data-label="Access">'
            f"{escape(', '.join(SCOPE_WORDS.get(s, s) for s in r.scopes) or '—')}</td>"
            f'<td class="when" data-label="First used">{escape(r.first_used)}</td>'
            f'<td class="when" data-label="Last used">{escape(r.last_used)}</td>'
            '<td class="act"><form method="post" action="/account/apps/revoke">'
            + _hidden("csrf", csrf)
            + _hidden("grant", r.family_id)
            + f'<button class="danger" type="submit" aria-label="Revoke access for '
            f'{escape(r.client_name)}">Revoke</button></form></td></tr>'
            for r in rows
        )
        table_html = (
            "<table><thead><tr><th>Application</th><th>Access</th><th>First used</th>"
            '<th>Last used</th><th><span class="sr-only">Revoke</span></th></tr></thead>'
            f"<tbody>{trs}</tbody></table>"
        )
    else:
        table_html = "<p>No application has access to your account.</p>"
    body = (
        "<h1>Connected apps</h1>"
        f'<p class="muted">Signed in as <strong>{escape(username)}</strong>. These applications '
        "can act on your behalf until you revoke them.</p>"
        f"{note}{table_html}"
        '<form method="post" action="/account/logout">'
        + _hidden("csrf", csrf)
        + '<div class="actions"><button class="secondary" type="submit">Sign out</button></div>'
        "</form>"
    )
    return Page(_layout("Connected apps", body, brand, wide=True))
