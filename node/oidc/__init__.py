"""Signing professionals in through their agency's OpenID provider (OpenID Connect, code flow
with PKCE). ``client`` speaks to the provider; ``identity`` decides who the signed-in person is
on this node. Tokens and key sets are handled by joserfc, never by hand."""
