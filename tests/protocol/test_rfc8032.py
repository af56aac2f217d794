"""RFC 8032 §7.1 Ed25519 test vectors through our key classes (``SigningKey``, ``PublicKey``).

The protocol's signatures are plain Ed25519 (no context, no prehash), so these vectors pin the
primitive a third-party implementation must match.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.keys import PublicKey, SigningKey, make_key_id

VALID_FROM = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Vector:
    name: str
    secret: str
    public: str
    message: str
    signature: str


TEST_1024_MESSAGE = (
    "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1"
    "e355f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d"
    "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a"
    "7363c344fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e"
    "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc10"
    "3b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1"
    "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17ba70eb6248e594e1a2297acbbb39d"
    "502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270"
    "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089b"
    "eccf80cfe2df16a2cf65bd92dd597b0707e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
    "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51addd3b75a2b1ae0784504df543af8969b"
    "e3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7"
    "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb038dda0847dd988d"
    "cda6f3bfd15c4b4c4525004aa06eeff8ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
    "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7"
    "984a74d37145986780fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4"
    "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac09"
    "43bf6686b64b2579376504ccc493d97e6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f"
    "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f161"
    "0e4eafe595f6d9d90d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
    "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8ca"
    "c60c905c15fc910840b94c00a0b9d0"
)

VECTORS = [
    Vector(
        "TEST 1",
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    Vector(
        "TEST 2",
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    Vector(
        "TEST 3",
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    Vector(
        "TEST 1024",
        "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
        "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
        TEST_1024_MESSAGE,
        "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350"
        "aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03",
    ),
    Vector(
        "TEST SHA(abc)",
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        # the message is SHA-512("abc")
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
        "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
]

IDS = [v.name for v in VECTORS]


def signing_key(vector: Vector) -> SigningKey:
    return SigningKey.from_seed("rfc8032.test", bytes.fromhex(vector.secret), VALID_FROM)


def public_key(vector: Vector) -> PublicKey:
    raw = bytes.fromhex(vector.public)
    return PublicKey(make_key_id("rfc8032.test", raw), raw, VALID_FROM)


def test_test_1024_message_is_1023_bytes_and_sha_abc_is_sha512_of_abc() -> None:
    assert len(bytes.fromhex(TEST_1024_MESSAGE)) == 1023
    assert VECTORS[-1].message == hashlib.sha512(b"abc").hexdigest()


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_seed_gives_the_public_key_and_key_id(vector: Vector) -> None:
    key = signing_key(vector)
    assert key.public_raw.hex() == vector.public
    digest = hashlib.sha256(bytes.fromhex(vector.public)).hexdigest()
    assert key.key_id == f"rfc8032.test#{digest[:16]}"
    assert key.public() == public_key(vector)


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_sign_gives_the_expected_signature(vector: Vector) -> None:
    assert signing_key(vector).sign(bytes.fromhex(vector.message)).hex() == vector.signature


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_public_key_verifies_the_signature_and_rejects_tampering(vector: Vector) -> None:
    key = public_key(vector)
    message = bytes.fromhex(vector.message)
    signature = bytes.fromhex(vector.signature)
    assert key.verify(signature, message)
    flipped = bytearray(signature)
    flipped[0] ^= 0x01
    assert not key.verify(bytes(flipped), message)
    assert not key.verify(signature, message + b"\x00")
    other = public_key(VECTORS[(VECTORS.index(vector) + 1) % len(VECTORS)])
    assert not other.verify(signature, message)


# The node signs and verifies with libsodium (PyNaCl) and keeps its key files with
# cryptography (OpenSSL). Both are RFC 8032 Ed25519, and a third party may use either: they must
# agree, signature for signature, on keys made from any seed.


@settings(max_examples=200, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=2048))
def test_libsodium_and_openssl_agree_on_every_signature(seed: bytes, message: bytes) -> None:
    ours = SigningKey.from_seed("agree.test", seed, VALID_FROM)
    openssl = Ed25519PrivateKey.from_private_bytes(seed)
    signature = ours.sign(message)
    assert signature == openssl.sign(message)  # Ed25519 signing is deterministic
    openssl.public_key().verify(signature, message)  # raises if OpenSSL disagrees
    assert ours.public().verify(openssl.sign(message), message)


def test_a_key_loaded_from_pem_signs_like_the_key_it_was_saved_from() -> None:
    key = signing_key(VECTORS[1])
    again = SigningKey.from_pem(
        key.to_pem(b"pass phrase"), "rfc8032.test", VALID_FROM, b"pass phrase"
    )
    message = bytes.fromhex(VECTORS[1].message)
    assert again.sign(message).hex() == VECTORS[1].signature


@pytest.mark.parametrize(
    ("public", "signature"),
    [
        (bytes(31), bytes(64)),  # a key of the wrong length
        (bytes.fromhex(VECTORS[0].public), bytes(63)),  # a signature of the wrong length
        (bytes.fromhex(VECTORS[0].public), b""),
    ],
    ids=["short-key", "short-signature", "empty-signature"],
)
def test_malformed_keys_and_signatures_are_invalid_not_errors(
    public: bytes, signature: bytes
) -> None:
    key = PublicKey("rfc8032.test#0000000000000000", public, VALID_FROM)
    assert key.verify(signature, b"message") is False


# What libsodium refuses beyond RFC 8032's letter (SPEC §3.1). With a public key of small order
# (here the identity point), the signature R = identity, S = 0 satisfies the plain verification
# equation for every message; OpenSSL accepts it, libsodium does not.
IDENTITY = bytes([1]) + bytes(31)
ORDER = 2**252 + 27742317777372353535851937790883648493  # ℓ, the group order


def test_a_small_order_key_verifies_nothing_not_everything() -> None:
    everything = IDENTITY + bytes(32)
    key = PublicKey(make_key_id("small.test", IDENTITY), IDENTITY, VALID_FROM)
    for message in (b"", b"any message", b'{"v":1}'):
        assert not key.verify(everything, message)


def test_a_non_canonical_s_is_refused() -> None:
    vector = VECTORS[1]
    signature = bytes.fromhex(vector.signature)
    s = int.from_bytes(signature[32:], "little") + ORDER  # the same point equation, S ≥ ℓ
    malleated = signature[:32] + s.to_bytes(32, "little")
    assert not public_key(vector).verify(malleated, bytes.fromhex(vector.message))
