"""The TLS a node uses for every request it makes to a peer, in one place.

Peers sit behind proxies that may require our client certificate (mutual TLS) and may present a
certificate from an agency's own CA (``[tls]`` in node.toml, docs/CONFIG.md). The node's own
client session, ``barnplan peers add`` and ``barnplan federation apply`` all fetch from peers, so
they all build their TLS from here; otherwise the commands an operator runs first would fail
against exactly the peers the running node can reach.
"""

from __future__ import annotations

import ssl

from .config import ConfigError, NodeConfig


def client_ssl(config: NodeConfig) -> ssl.SSLContext | bool:
    """Our client certificate for the peers' mTLS proxies and the configured CA bundle;
    ``True`` (default verification against the system's CAs) when nothing is configured.
    Relative paths are taken from the node directory."""
    tls = config.tls
    if not (tls.client_cert_file or tls.ca_file):
        return True
    directory = config.directory

    def path(name: str) -> str:
        return str(name if name.startswith("/") else directory / name)

    try:
        context = ssl.create_default_context(cafile=path(tls.ca_file) if tls.ca_file else None)
    except (OSError, ssl.SSLError) as exc:  # SSLError: a file that is not PEM certificates
        raise ConfigError(f"[tls] ca_file: cannot use {path(tls.ca_file)}: {_why(exc)}") from None
    if tls.client_cert_file:
        try:
            context.load_cert_chain(
                path(tls.client_cert_file),
                path(tls.client_key_file) if tls.client_key_file else None,
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                "[tls] client_cert_file / client_key_file: cannot use "
                f"{path(tls.client_cert_file)}: {_why(exc)}"
            ) from None
    return context


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc) or exc.__class__.__name__
