from tests.conftest import basic, body, form_post


def test_client_credentials_issues_token(app_client, make_client):
    c = make_client()
    r = form_post(
        app_client,
        "/oauth2/token",
        {"grant_type": "client_credentials"},
        {"Authorization": basic(c["client_id"], c["client_secret"])},
    )
    assert r.status_code == 200, r.body
    b = body(r)
    assert b["token_type"] == "Bearer"
    assert r.headers["Cache-Control"] == "no-store"


def test_password_grant(app_client, make_client, make_user):
    c = make_client(grant_types=["password"])
    make_user("Alice", "correct horse battery")
    r = form_post(
        app_client,
        "/oauth2/token",
        {
            "grant_type": "password",
            "username": "alice",
            "password": "correct horse battery",
            "client_id": c["client_id"],
            "client_secret": c["client_secret"],
        },
    )
    assert r.status_code == 200, r.body
    r = app_client.http.get("/.well-known/jwks.json")
    assert r.status_code == 200
    r = app_client.http.get("/.well-known/oauth-authorization-server")
    assert "password" in body(r)["grant_types_supported"]
