"""Node configuration: one TOML file in the node directory, every setting with a default.

``deploy/CONFIG.md`` lists every setting; ``tests/deploy/test_config_reference.py`` checks that
list against ``NodeConfig`` so the reference cannot drift from the code.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from protocol.codes import AgencyKind
from protocol.models import BASE_URL_PATTERN, NODE_ID_PATTERN

from .errors import InvalidInput

CONFIG_NAME = "barnplan.toml"


class ConfigError(InvalidInput):
    """The config file is missing or wrong; the message says which setting to fix."""

    code = "config_invalid"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NodeSection(Section):
    id: Annotated[str, Field(pattern=NODE_ID_PATTERN)]
    # the node document's own limits (protocol.models.NodeDocument): a value it refuses would
    # make the node serve no document, so no peer could ever add it
    agency_name: Annotated[str, Field(min_length=1, max_length=200)]
    agency_kind: AgencyKind
    base_url: Annotated[str, Field(pattern=BASE_URL_PATTERN)]


def luhn_ok(digits: str) -> bool:
    """The Luhn check digit Swedish organisation numbers (and personnummer) end with."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


class AgencySection(Section):
    """The agency's official identifiers, written where a receiving record system needs them
    (the agency's Organization in the FHIR export). Optional: empty means not stated."""

    org_number: Annotated[str, Field(pattern=r"^([0-9]{6}-?[0-9]{4})?$")] = ""
    hsa_id: Annotated[str, Field(pattern=r"^(SE[0-9]{10}-[A-Za-z0-9]+)?$", max_length=31)] = ""
    # the agency's policy: whether its access report (SPEC.md §7.12) names the acting
    # professional's reference beside the role; off by default (role only)
    access_report_names_staff: bool = False

    @field_validator("org_number")
    @classmethod
    def _organisationsnummer(cls, value: str) -> str:
        """Stored as the ten digits alone (the form record systems match on). The third digit
        is at least 2 for every legal person, which also keeps a personnummer out of here."""
        digits = value.replace("-", "")
        if digits and (int(digits[2]) < 2 or not luhn_ok(digits)):
            raise ValueError("not a Swedish organisation number (check digit or group)")
        return digits


class ServerSection(Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8400
    max_body_bytes: Annotated[int, Field(ge=1024)] = 262_144
    max_json_depth: Annotated[int, Field(ge=4, le=256)] = 32


class StoreSection(Section):
    url: str = ""
    schema_name: str = ""
    password_file: str = ""


class KeysSection(Section):
    file: str = "node.key"
    passphrase_env: str = ""
    passphrase_file: str = ""


class ProtocolSection(Section):
    clock_skew_s: Annotated[int, Field(ge=0, le=600)] = 30
    message_ttl_s: Annotated[int, Field(ge=5, le=300)] = 60
    request_timeout_s: Annotated[float, Field(gt=0, le=120)] = 5.0


class AssemblySection(Section):
    deadline_s: Annotated[float, Field(gt=0, le=60)] = 3.0


class LogSection(Section):
    checkpoint_interval_s: Annotated[float, Field(ge=10)] = 600.0


class TlsSection(Section):
    """Client TLS for requests to peers (mutual TLS between nodes behind the proxies)."""

    client_cert_file: str = ""
    client_key_file: str = ""
    ca_file: str = ""


class AuthSection(Section):
    """How people sign in to the pages, and how long a web session lasts."""

    passwords: bool = True
    session_lifetime_s: Annotated[int, Field(ge=300, le=7 * 24 * 3600)] = 8 * 3600
    idle_timeout_s: Annotated[int, Field(ge=60, le=24 * 3600)] = 3600


class OidcSection(Section):
    """Sign-in through the agency's OpenID provider (deploy/OPERATIONS.md, 'Signing in through
    the agency's identity provider'). Empty ``issuer``: no provider, passwords only."""

    issuer: Annotated[str, Field(pattern=r"^(https?://\S+)?$")] = ""
    client_id: str = ""
    client_secret_file: str = ""
    scopes: list[str] = ["openid", "profile"]
    subject_claim: Annotated[str, Field(min_length=1)] = "sub"
    name_claim: Annotated[str, Field(min_length=1)] = "name"
    role_claim: str = ""
    roles: dict[str, str] = {}
    hash_subjects: bool = False
    display_name: Annotated[str, Field(max_length=80)] = ""

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, value: dict[str, str]) -> dict[str, str]:
        for role, granted_by in value.items():
            if role not in ("professional", "lead", "operator"):
                raise ValueError(f"{role!r} is not a role: use professional, lead or operator")
            if not granted_by:
                raise ValueError(f"the value that grants {role} must not be empty")
        return value

    @model_validator(mode="after")
    def _complete(self) -> OidcSection:
        """A provider needs a client registration; roles from claims need the claim."""
        if self.issuer and not (self.client_id and self.client_secret_file):
            raise ValueError(
                "oidc.issuer is set: set oidc.client_id and oidc.client_secret_file too"
            )
        if self.roles and not self.role_claim:
            raise ValueError("oidc.roles is set: set oidc.role_claim, the claim that carries them")
        if self.issuer and "openid" not in self.scopes:
            raise ValueError("oidc.scopes must include openid")
        return self


class ResidentsSection(Section):
    """Sign-in for the child and family at the lead node, through an OpenID provider for
    residents (e-identification: BankID or Freja eID through the municipality's e-service
    broker), separate from the staff's ``[oidc]`` (deploy/OPERATIONS.md, 'The family signs
    in'). Empty ``issuer``: no family sign-in."""

    issuer: Annotated[str, Field(pattern=r"^(https?://\S+)?$")] = ""
    client_id: str = ""
    client_secret_file: str = ""
    # the Swedish OIDC profile's scope and claim for a personal identity number (oidc.se)
    scopes: list[str] = ["openid", "https://id.oidc.se/scope/naturalPersonNumber"]
    identity_claim: Annotated[str, Field(min_length=1)] = (
        "https://id.oidc.se/claim/personalIdentityNumber"
    )
    # from this age a child signs in to their own plan (the agency decides; GIRFEC and the
    # SIP guidance leave it to the child's maturity, which the lead records)
    child_min_age: Annotated[int, Field(ge=0, le=18)] = 13
    # whom a resident who finds no plan should contact: a name and a phone number or address
    contact: Annotated[str, Field(max_length=300)] = ""
    display_name: Annotated[str, Field(max_length=80)] = ""

    @model_validator(mode="after")
    def _complete(self) -> ResidentsSection:
        if self.issuer and not (self.client_id and self.client_secret_file):
            raise ValueError(
                "residents.issuer is set: set residents.client_id and "
                "residents.client_secret_file too"
            )
        if self.issuer and "openid" not in self.scopes:
            raise ValueError("residents.scopes must include openid")
        if self.issuer and not self.contact.strip():
            raise ValueError(
                "residents.issuer is set: set residents.contact, whom a resident who finds no "
                "plan should contact"
            )
        return self


class FaultsSection(Section):
    """Fault injection for tests; every switch is off by default and must stay off in production."""

    crash_after_revoke_commit: bool = False
    crash_after_close_commit: bool = False


class NodeConfig(Section):
    """The whole configuration, plus the directory it was loaded from (not in the file)."""

    node: NodeSection
    agency: AgencySection = AgencySection()
    server: ServerSection = ServerSection()
    store: StoreSection = StoreSection()
    keys: KeysSection = KeysSection()
    protocol: ProtocolSection = ProtocolSection()
    assembly: AssemblySection = AssemblySection()
    log: LogSection = LogSection()
    tls: TlsSection = TlsSection()
    auth: AuthSection = AuthSection()
    oidc: OidcSection = OidcSection()
    residents: ResidentsSection = ResidentsSection()
    faults: FaultsSection = FaultsSection()
    directory: Path = Path(".")

    @property
    def database_url(self) -> str:
        """The store URL, with the password from ``store.password_file`` when one is set.

        Why a file named in this config rather than ``PGPASSWORD``: every way a command runs
        (systemd, ``sudo -u barnplan``, cron) reads ``barnplan.toml``, but each has its own
        environment, so a password set in one was missing in the others."""
        if not self.store.url:
            return f"sqlite:///{(self.directory / 'node.db').resolve()}"
        if not self.store.password_file:
            return self.store.url
        password = self.secret_file("store.password_file", self.store.password_file).strip()
        try:
            parsed = make_url(self.store.url)
        except ArgumentError:
            return self.store.url  # the store says it is not a URL, naming store.url
        return parsed.set(password=password).render_as_string(hide_password=False)

    def oidc_client_secret(self) -> str:
        """The client secret from ``oidc.client_secret_file``: a ``ConfigError`` naming the
        setting if it cannot be read or is empty."""
        secret = self.secret_file("oidc.client_secret_file", self.oidc.client_secret_file).strip()
        if not secret:
            raise ConfigError(f"oidc.client_secret_file: {self.oidc.client_secret_file} is empty")
        return secret

    def residents_client_secret(self) -> str:
        """The family sign-in's client secret from ``residents.client_secret_file``."""
        secret = self.secret_file(
            "residents.client_secret_file", self.residents.client_secret_file
        ).strip()
        if not secret:
            raise ConfigError(
                f"residents.client_secret_file: {self.residents.client_secret_file} is empty"
            )
        return secret

    def secret_file(self, setting: str, value: str) -> str:
        """The text of the file a ``*_file`` setting names (relative to the node directory);
        a ``ConfigError`` naming the setting if it cannot be read."""
        path = Path(value)
        path = path if path.is_absolute() else self.directory / path
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(f"{setting}: cannot read {path}: {why}") from None

    @property
    def key_path(self) -> Path:
        path = Path(self.keys.file)
        return path if path.is_absolute() else self.directory / path

    def key_passphrase(self) -> bytes | None:
        """The key file's passphrase from ``keys.passphrase_file`` (read by every command,
        whoever runs it) or ``keys.passphrase_env``; None for an unencrypted key."""
        if self.keys.passphrase_file and self.keys.passphrase_env:
            raise ConfigError("keys.passphrase_file and keys.passphrase_env are both set: keep one")
        if self.keys.passphrase_file:
            return self._passphrase_from_file()
        if not self.keys.passphrase_env:
            return None
        value = os.environ.get(self.keys.passphrase_env)
        if value is None:
            raise ConfigError(
                f"keys.passphrase_env names {self.keys.passphrase_env}, which is not set"
            )
        if not value:
            raise ConfigError(f"keys.passphrase_env: {self.keys.passphrase_env} is empty")
        return value.encode()

    def _passphrase_from_file(self) -> bytes:
        value = self.secret_file("keys.passphrase_file", self.keys.passphrase_file)
        value = value.rstrip("\r\n")
        if not value:
            raise ConfigError(f"keys.passphrase_file: {self.keys.passphrase_file} is empty")
        return value.encode()


def load_config(directory: Path) -> NodeConfig:
    """Read ``barnplan.toml`` from a node directory; raise ``ConfigError`` saying what is wrong."""
    path = directory / CONFIG_NAME
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"no {CONFIG_NAME} in {directory}: run 'barnplan init {directory}' first"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}): save it as UTF-8, as TOML requires"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, not the node's configuration file") from None
    try:
        return NodeConfig.model_validate({**data, "directory": directory.resolve()})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: setting {where}: {first['msg']}") from None


CONFIG_TEMPLATE = """\
# barnplan node configuration. Every setting is listed with its default; see deploy/CONFIG.md.

[node]
# This node's id: a DNS-style name peers know it by.
id = "{node_id}"
# The agency's name as shown to peers and on pages.
agency_name = "{agency_name}"
# One of: {kinds}
agency_kind = "{agency_kind}"
# The URL peers reach this node at (behind the TLS proxy in production).
base_url = "{base_url}"

[agency]
# The agency's organisationsnummer (10 digits, NNNNNN-NNNN accepted; empty: not stated).
org_number = ""
# The agency's HSA-id, e.g. SE2321000131-E000000000001 (empty: not stated).
hsa_id = ""
# Name the acting professional (their reference) in the access report this node gives the
# plan's lead, not only their role (false: role only; set it only if the agency's policy says so).
access_report_names_staff = false

[server]
host = "{host}"
port = {port}
# Largest accepted request body in bytes; larger requests are refused with 413.
max_body_bytes = 262144
# Deepest accepted JSON nesting; deeper bodies are refused with 400 (too_deep).
max_json_depth = 32

[store]
# Empty: an SQLite file node.db in this directory. Otherwise a PostgreSQL URL,
# e.g. "postgresql://barnplan@db.example/barnplan".
url = "{store_url}"
# PostgreSQL schema to use (empty: the server's default search_path).
schema_name = "{store_schema}"
# File holding the PostgreSQL password (mode 0600, relative to this directory; empty: none,
# or PGPASSWORD / ~/.pgpass). Read by every command, whoever runs it.
password_file = ""

[keys]
# The node's Ed25519 private key (PEM, mode 0600), relative to this directory.
file = "node.key"
# Name of an environment variable holding the key's passphrase (empty: unencrypted key).
passphrase_env = ""
# File holding the key's passphrase (mode 0600, relative to this directory; empty: none).
# Read by every command, whoever runs it; 'barnplan keys encrypt' encrypts the key with it.
passphrase_file = "{key_passphrase_file}"

[protocol]
# Allowed difference between peers' clocks, in seconds.
clock_skew_s = 30
# Lifetime of messages this node signs, in seconds (at most 300).
message_ttl_s = 60
# Timeout for one request to a peer, in seconds.
request_timeout_s = 5.0

[assembly]
# One deadline for all peers when the lead assembles a plan, in seconds.
deadline_s = 3.0

[log]
# How often the exchange-log head is signed and sent to peers to witness, in seconds.
checkpoint_interval_s = 600.0

[tls]
# Client certificate (PEM) this node presents to peers' proxies for mutual TLS (empty: none).
client_cert_file = ""
# Private key (PEM) of that client certificate.
client_key_file = ""
# CA bundle (PEM) to verify peers' server certificates (empty: the system's CAs).
ca_file = ""

[auth]
# Sign in with a user id and password on the node's own form (false: only through [oidc];
# the password form is gone and the password API refuses).
passwords = true
# A web session ends this long after sign-in, in seconds ...
session_lifetime_s = 28800
# ... or after this long without a request, in seconds.
idle_timeout_s = 3600

[oidc]
# The agency's OpenID provider (its issuer URL; empty: no provider). See deploy/OPERATIONS.md.
issuer = ""
# This node's client id at the provider.
client_id = ""
# File holding the client secret (mode 0600, relative to this directory).
client_secret_file = ""
# Scopes asked for; openid is required.
scopes = ["openid", "profile"]
# The claim that names a person for good (e.g. an HSA-id claim); identity numbers are kept
# only as a keyed hash.
subject_claim = "sub"
# The claim with the person's name as shown on pages.
name_claim = "name"
# The claim carrying roles or groups (empty: only users added with 'barnplan users add
# --subject' may sign in).
role_claim = ""
# The role_claim value that grants each role: lead = "barnplan-lead", professional = ...
roles = {{}}
# Keep only a keyed hash of every subject, not only of identity numbers.
hash_subjects = false
# The name on the sign-in button, e.g. "Kommunens inloggning" (empty: the issuer's host).
display_name = ""

[residents]
# The OpenID provider the child and family sign in with (e-identification, e.g. BankID or
# Freja eID through the municipality's e-service broker; empty: no family sign-in).
issuer = ""
# This node's client id at that provider.
client_id = ""
# File holding the client secret (mode 0600, relative to this directory).
client_secret_file = ""
# Scopes asked for; openid is required (the default also asks for the identity number).
scopes = ["openid", "https://id.oidc.se/scope/naturalPersonNumber"]
# The claim with the resident's personal identity number (kept only as a keyed hash).
identity_claim = "https://id.oidc.se/claim/personalIdentityNumber"
# From this age a child signs in to their own plan.
child_min_age = 13
# Whom a resident who finds no plan should contact (shown on that page; required with issuer).
contact = ""
# The name on the sign-in button, e.g. "E-legitimation" (empty: the issuer's host).
display_name = ""

[faults]
# Test-only fault injection. Never enable in production.
# Kill the process (SIGKILL) right after a revocation commits, before any notice is sent.
crash_after_revoke_commit = false
# Kill the process (SIGKILL) right after closing a plan commits, before any notice is sent.
crash_after_close_commit = false
"""


def render_config(
    *,
    node_id: str,
    agency_name: str,
    agency_kind: str,
    base_url: str,
    host: str,
    port: int,
    store_url: str = "",
    store_schema: str = "",
    key_passphrase_file: str = "",
) -> str:
    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', '\\"')

    return CONFIG_TEMPLATE.format(
        node_id=esc(node_id),
        agency_name=esc(agency_name),
        agency_kind=esc(agency_kind),
        kinds=", ".join(k.value for k in AgencyKind),
        base_url=esc(base_url),
        host=esc(host),
        port=port,
        store_url=esc(store_url),
        store_schema=esc(store_schema),
        key_passphrase_file=esc(key_passphrase_file),
    )
