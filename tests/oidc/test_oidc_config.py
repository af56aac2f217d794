"""``[oidc]`` and ``[auth]`` in barnplan.toml: incomplete or wrong settings are refused naming
the setting to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import ConfigError, load_config

BASE = """
[node]
id = "skola.test"
agency_name = "Testskolan"
agency_kind = "school"
base_url = "http://127.0.0.1:8401"
"""


def config_with(tmp_path: Path, extra: str) -> Path:
    (tmp_path / "barnplan.toml").write_text(BASE + extra, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        ('[oidc]\nissuer = "https://idp.test"\n', "oidc.client_id and oidc.client_secret_file"),
        ('[oidc]\nroles = { lead = "x" }\n', "oidc.role_claim"),
        ('[oidc]\nrole_claim = "groups"\nroles = { boss = "x" }\n', "'boss' is not a role"),
        ('[oidc]\nissuer = "idp.test"\n', "oidc.issuer"),
        (
            '[oidc]\nissuer = "https://idp.test"\nclient_id = "c"\nclient_secret_file = "s"\n'
            'scopes = ["profile"]\n',
            "oidc.scopes must include openid",
        ),
        ("[auth]\nidle_timeout_s = 5\n", "auth.idle_timeout_s"),
        ("[auth]\npasswords = 2\n", "auth.passwords"),
    ],
)
def test_wrong_settings_are_named(tmp_path: Path, extra: str, names: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(config_with(tmp_path, extra))
    assert names in str(refused.value)


def test_client_secret_comes_from_its_file(tmp_path: Path) -> None:
    extra = (
        '[oidc]\nissuer = "https://idp.test"\nclient_id = "c"\nclient_secret_file = "oidc.secret"\n'
        'role_claim = "groups"\nroles = { lead = "barnplan-lead", professional = "staff" }\n'
    )
    config = load_config(config_with(tmp_path, extra))
    with pytest.raises(ConfigError) as missing:
        config.oidc_client_secret()
    assert "oidc.client_secret_file: cannot read" in str(missing.value)
    (tmp_path / "oidc.secret").write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError) as empty:
        config.oidc_client_secret()
    assert "is empty" in str(empty.value)
    (tmp_path / "oidc.secret").write_text("s3cret\n", encoding="utf-8")
    assert config.oidc_client_secret() == "s3cret"
    assert list(config.oidc.roles) == ["lead", "professional"]  # the order roles are tried
