"""The pages' Content-Security-Policy lets a form posted to the node end at the provider's
sign-in and logout endpoints, also when the provider serves them from another host than its
issuer (read from its discovery document)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

from node.config import load_config
from node.web.pages.core import content_security_policy
from node.web.pages.provider_link import ProviderLink, staff_provider
from protocol.clock import SystemClock


def discovery_app(issuer: list[str], logout: str) -> web.Application:
    async def discovery(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": issuer[0],
                "authorization_endpoint": issuer[0] + "/auth",
                "token_endpoint": issuer[0] + "/token",
                "jwks_uri": issuer[0] + "/jwks",
                "end_session_endpoint": logout,
            }
        )

    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", discovery)
    return app


async def test_logout_on_another_host_is_allowed_once_discovery_is_read(tmp_path: Path) -> None:
    issuer: list[str] = []
    server = TestServer(discovery_app(issuer, "https://logout.idp.test/end"), host="127.0.0.1")
    await server.start_server()
    issuer.append(str(server.make_url("")).rstrip("/"))
    (tmp_path / "oidc.secret").write_text("s3cret\n", encoding="utf-8")
    (tmp_path / "barnplan.toml").write_text(
        '[node]\nid = "skola.test"\nagency_name = "Testskolan"\nagency_kind = "school"\n'
        'base_url = "http://127.0.0.1:8401"\n'
        f'[oidc]\nissuer = "{issuer[0]}"\nclient_id = "c"\nclient_secret_file = "oidc.secret"\n',
        encoding="utf-8",
    )
    config = load_config(tmp_path)
    link = ProviderLink(staff_provider(config), config, SystemClock())
    try:
        assert link.form_origins() == (issuer[0],)  # before discovery: the issuer's origin
        await link.client().provider()
        assert link.form_origins() == (issuer[0], "https://logout.idp.test")
        policy = content_security_policy(link.form_origins())
        assert f"form-action 'self' {issuer[0]} https://logout.idp.test;" in policy
    finally:
        await link.close()
        await server.close()


def test_without_a_provider_forms_post_only_to_the_node() -> None:
    assert "form-action 'self';" in content_security_policy()
