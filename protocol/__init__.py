"""barnplan wire protocol: canonical JSON, keys, signed envelopes, fragments and message models.

Pure by design: no network, no files except explicit key load/save helpers, no imports from
``node``. A third party can re-implement everything here from ``protocol/SPEC.md``.
"""

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
