"""``barnplan federation``: the federation key, signed member lists, and applying one to a node."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.clock import SystemClock
from protocol.encoding import b64url_decode
from protocol.errors import ProtocolError
from protocol.federation import (
    FederationMembers,
    member_fingerprints,
    parse_public_key,
    public_key_pem,
    public_key_text,
    sign_members,
    verify_members,
)
from protocol.jsontext import parse_json_object
from protocol.keys import SigningKey, fingerprint

from ..config import load_config
from ..services.federation import (
    check_members,
    check_version,
    own_entry_problem,
    record_version,
    stale_peers,
    trust_matching,
)
from ..store import peers as peer_store
from ..store.engine import create_engine
from ..tls import client_ssl
from .keys import user_errors
from .main import answered, echo_json, fail, node_dir_option, run_async

PASSPHRASE_HELP = "Environment variable holding the federation key's passphrase."


def _read_json(path: Path) -> dict[str, Any]:
    """A member list (signed, or a draft to sign) read with the protocol's one strict parser:
    a duplicated member or ``1.0`` for an integer is refused here as on the wire."""
    try:
        return parse_json_object(path.read_bytes())
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from None
    except ProtocolError as exc:
        raise click.ClickException(f"{path}: {exc}") from None


def _passphrase(env: str | None) -> bytes | None:
    if not env:
        return None
    value = os.environ.get(env)
    if value is None:
        raise click.ClickException(f"--passphrase-env names {env}, which is not set")
    return value.encode()


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)


def _federation_key(value: str) -> bytes:
    """``--federation-key``: a PEM public key file, or the key as 43 base64url characters."""
    path = Path(value)
    try:
        text = path.read_bytes() if path.is_file() else value.encode()
        return parse_public_key(text)
    except ProtocolError as exc:
        raise click.BadParameter(exc.detail, param_hint="--federation-key") from None


def _load_verified(signed: Path, federation_key: str) -> FederationMembers:
    raw = _federation_key(federation_key)
    try:
        return verify_members(_read_json(signed), raw)
    except ProtocolError as exc:
        fail(f"{signed}: {exc}")
        raise AssertionError("unreachable") from exc


def _print_members(members: FederationMembers) -> None:
    click.echo(
        f"federation {members.federation}, version {members.version}, "
        f"issued {members.issued_at}, {len(members.members)} members"
    )
    for m in members.members:
        fps = ", ".join(fp[:16] for fp in sorted(member_fingerprints(m)))
        click.echo(f"  {m.id:40} {m.agency_kind.value:18} {m.base_url}  keys {fps}")


@click.group()
def federation() -> None:
    """The federation key, signed member lists, and trusting the members they name."""


@federation.command("create-key")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--passphrase-env", default=None, help=PASSPHRASE_HELP)
@user_errors(OSError)  # a missing or unwritable directory: the message names the path
def create_key(out: Path, passphrase_env: str | None) -> None:
    """Create the federation's Ed25519 key: OUT (PEM, mode 0600) and OUT.pub (public PEM).

    The private key stays with the participating authorities; members get the public key (the
    .pub file or the base64url line printed here) to pass as --federation-key."""
    if not out.name:
        fail("--out must name the key file to write, e.g. --out federation.key")
    pub = out.with_name(out.name + ".pub")
    for path in (out, pub):
        if path.exists():
            fail(f"{path} already exists; not overwriting a key")
    # the key id names the federation only when a list is signed (sign-members binds it)
    key = SigningKey("federation.invalid", Ed25519PrivateKey.generate(), datetime.now(UTC))
    _write_new(out, key.to_pem(_passphrase(passphrase_env)), 0o600)
    _write_new(pub, public_key_pem(key.public_raw), 0o644)
    click.echo(f"wrote {out} (private, 0600) and {pub} (public)")
    click.echo(f"public key:  {public_key_text(key.public_raw)}")
    click.echo(f"fingerprint: SHA-256 {fingerprint(key.public_raw)}")


@federation.command("sign-members")
@click.argument("members", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--passphrase-env", default=None, help=PASSPHRASE_HELP)
@user_errors(OSError)
def sign_members_cmd(members: Path, key_file: Path, out: Path, passphrase_env: str | None) -> None:
    """Sign a member list MEMBERS.json with the federation key and write SIGNED.json.

    MEMBERS.json: {"federation": NAME, "version": N, "members": [{"id", "base_url",
    "agency_kind", "keys": [SHA-256 fingerprints or key entries]}]}; "issued_at" is set to now
    unless given."""
    draft = _read_json(members)
    federation_name = draft.get("federation")
    if not isinstance(federation_name, str):
        fail(f"{members}: 'federation' must name the federation")
        return
    now = datetime.now(UTC)
    try:
        key = SigningKey.from_pem(
            key_file.read_bytes(), federation_name, now, _passphrase(passphrase_env)
        )
        signed = sign_members(draft, key, now)
    except ProtocolError as exc:
        fail(f"{members}: {exc}")
        return
    text = json.dumps(signed, ensure_ascii=False, indent=2) + "\n"
    out.write_text(text, encoding="utf-8")
    click.echo(
        f"signed {len(signed['members'])} members of {federation_name} "
        f"version {signed['version']} as {key.key_id} -> {out}"
    )


@federation.command("verify")
@click.argument("signed", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--federation-key", required=True, help="Public key: .pub file or base64url.")
@click.option("--json", "as_json", is_flag=True, help="Print the verified list as JSON.")
def verify(signed: Path, federation_key: str, as_json: bool) -> None:
    """Check a signed member list's signature and print its members; exit 1 if it fails."""
    members = _load_verified(signed, federation_key)
    if as_json:
        echo_json(members.model_dump(mode="json", exclude_none=True))
        return
    _print_members(members)
    click.echo(f"signature OK ({members.sig.key})")


@federation.command("apply")
@click.argument("signed", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--federation-key", required=True, help="Public key: .pub file or base64url.")
@node_dir_option
@click.option("--yes", "-y", is_flag=True, help="Trust matching members without asking.")
@run_async
async def apply(signed: Path, federation_key: str, directory: Path, yes: bool) -> None:
    """Trust every member of a verified list whose node document matches it.

    For each member other than this node: fetch its node document from the listed base URL,
    check id, base URL, agency kind and that every key of the document is listed, then trust it
    (as 'peers add' does). A member that does not match is reported and not trusted; the exit
    status is 1 if any member failed."""
    config = load_config(directory)
    members = _load_verified(signed, federation_key)
    previous = check_version(config.directory, members)
    _print_members(members)
    if previous is not None:
        click.echo(f"(version {previous} applied before)")
    now = SystemClock().now()
    engine = create_engine(config.database_url, config.store.schema_name)
    try:
        own = [b64url_decode(k.public) for k in await peer_store.own_keys(engine)]
        problem = own_entry_problem(members, config.node.id, own)
        if problem:
            click.echo(f"warning: {problem}", err=True)
        checks = await check_members(members.members, config.node.id, ssl=client_ssl(config))
        failed = [c for c in checks if not c.ok]
        matching = [c for c in checks if c.ok]
        for c in matching:
            click.echo(f"ok      {c.member.id}: document matches the member list")
        for c in failed:
            click.echo(f"error: {c.member.id}: not trusted: {c.problem}", err=True)
        if matching and not yes:
            names = ", ".join(c.member.id for c in matching[:5])
            more = f" and {len(matching) - 5} more" if len(matching) > 5 else ""
            question = f"Trust {len(matching)} members ({names}{more})?"
            if not answered(lambda: click.confirm(question), "check the list, then use --yes"):
                fail("nothing trusted; nothing recorded")
        trusted = await trust_matching(engine, matching, config.node.id, now)
        for node_id in trusted:
            click.echo(f"trusted {node_id}")
        for node_id in await stale_peers(engine, members):
            click.echo(
                f"note: peer {node_id} is not in the member list "
                f"(remove it with: barnplan peers remove {node_id})"
            )
    finally:
        await engine.dispose()
    record_version(config.directory, members, now)
    click.echo(
        f"applied {members.federation} version {members.version}: "
        f"{len(trusted)} trusted, {len(failed)} failed"
    )
    if failed:
        fail(f"{len(failed)} members were not trusted (see above)")
