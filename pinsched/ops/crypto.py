"""Encryption at rest of the accounts' OAuth tokens (`PINSCHED_SECRET_KEY`).

`FernetCipher` implements `store.TokenCipher` with `cryptography`'s Fernet (AES-128-CBC +
HMAC-SHA256, authenticated). A stored value reads `enc:v1:<fernet token>`; a value without the
prefix is clear text written before encryption was turned on, and is still read.

The key setting is one key or a comma-separated list (rotation): the **first** encrypts, every key
decrypts. Each entry is either a Fernet key (44 characters of URL-safe base64, from
`Fernet.generate_key()`) or any other passphrase of at least 16 characters, turned into a Fernet
key with HKDF-SHA256 (fixed salt and info, so the same passphrase always gives the same key).
HKDF adds no work factor: a passphrase must be as unguessable as a key (long and random).
Commas separate keys, so a passphrase cannot contain one.

Start-up is two steps around `Store.open`: `cipher_of` turns the setting into the cipher the store
is opened with (`Store.open(cipher=…)`), then `install` checks the opened store against it and
re-encrypts under the first key every account whose tokens were read in clear text or under an
older key, so rotating is "put the new key first, restart, then drop the old key". Without a key
it refuses a database that holds encrypted tokens (it would otherwise send ciphertext to
Pinterest as a token).

Does not log anything (it registers each key with `logs` so that none can be logged), and never
puts a key or a token in an exception message.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Final

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pinsched.config import ConfigError
from pinsched.ops import logs
from pinsched.store import Store

__all__ = [
    "PREFIX",
    "FernetCipher",
    "SecretKeyError",
    "cipher_of",
    "derive_key",
    "install",
    "is_sealed",
    "parse_keys",
]

PREFIX: Final = "enc:v1:"
MIN_PASSPHRASE: Final = 16
_SALT: Final = b"pinsched/secret-key/v1"
_INFO: Final = b"pinsched account token cipher"


class SecretKeyError(ConfigError):
    """The secret key setting is unusable, or does not open what the database holds (a
    configuration error: the command line reports it like one, exit code 2)."""


def derive_key(passphrase: str) -> bytes:
    """A Fernet key (URL-safe base64 of 32 bytes) derived from *passphrase* with HKDF-SHA256."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(
        passphrase.encode()
    )
    return base64.urlsafe_b64encode(raw)


def _as_fernet_key(entry: str) -> bytes | None:
    if len(entry) != 44:
        return None
    try:
        raw = base64.urlsafe_b64decode(entry.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    return entry.encode("ascii") if len(raw) == 32 else None


def parse_keys(setting: str) -> list[bytes]:
    """The Fernet keys of a `PINSCHED_SECRET_KEY` value, the encrypting key first."""
    keys: list[bytes] = []
    for n, part in enumerate(setting.split(","), start=1):
        entry = part.strip()
        if not entry:
            continue
        key = _as_fernet_key(entry)
        if key is None:
            if len(entry) < MIN_PASSPHRASE:
                raise SecretKeyError(
                    f"PINSCHED_SECRET_KEY: key #{n} is neither a Fernet key nor a passphrase of "
                    f"at least {MIN_PASSPHRASE} characters"
                )
            key = derive_key(entry)
        keys.append(key)
    if not keys:
        raise SecretKeyError("PINSCHED_SECRET_KEY: no key given")
    return keys


class FernetCipher:
    """Fernet encryption of token strings with key rotation (first key encrypts, all decrypt)."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise SecretKeyError("at least one key is needed")
        self._fernets = [Fernet(k) for k in keys]
        #: Values read in clear text or under a key other than the first (re-encrypt them).
        self.stale_reads = 0

    @classmethod
    def from_setting(cls, setting: str) -> FernetCipher:
        """The cipher of a `PINSCHED_SECRET_KEY` value (one key or a comma-separated list)."""
        return cls(parse_keys(setting))

    def encrypt(self, plaintext: str) -> str:
        """`enc:v1:` + a Fernet token of *plaintext* under the first key."""
        return PREFIX + self._fernets[0].encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, stored: str) -> str:
        """The clear text of a stored value (clear-text values pass through unchanged)."""
        if not stored.startswith(PREFIX):
            self.stale_reads += 1
            return stored
        token = stored[len(PREFIX) :].encode("ascii")
        for index, fernet in enumerate(self._fernets):
            try:
                value = fernet.decrypt(token)
            except InvalidToken:
                continue
            if index:
                self.stale_reads += 1
            return value.decode()
        raise SecretKeyError(
            "a stored account token cannot be decrypted with any key of PINSCHED_SECRET_KEY: "
            "add the key it was encrypted with (comma-separated, after the new one)"
        )


def is_sealed(value: str) -> bool:
    """Whether a stored value is encrypted (as opposed to clear text)."""
    return value.startswith(PREFIX)


def cipher_of(setting: str | None) -> FernetCipher | None:
    """The cipher to open the store with for a `PINSCHED_SECRET_KEY` value (None: no key, tokens
    are stored in clear text). Raises `SecretKeyError` for an unusable setting."""
    if not setting:
        return None
    logs.register_secrets(part.strip() for part in setting.split(","))  # each key of a list
    return FernetCipher.from_setting(setting)


async def install(store: Store, *, now: Callable[[], datetime]) -> int:
    """Check *store* against the cipher it was opened with (`Store.open(cipher=cipher_of(…))`)
    and re-encrypt its account tokens under the first key; returns how many accounts were
    re-encrypted (clear text or an older key → the first key).

    Opened without a cipher, raises `SecretKeyError` if the database holds encrypted tokens.
    Call before anything else reads accounts.
    """
    cipher = store.cipher
    if cipher is None:
        async for account_id, tokens in _accounts(store):
            if any(is_sealed(t) for t in tokens):
                raise SecretKeyError(
                    f"account {account_id!r} has encrypted tokens but PINSCHED_SECRET_KEY is not "
                    "set: start pinsched with the key the database was written with"
                )
        return 0
    if not isinstance(cipher, FernetCipher):
        raise TypeError("install re-encrypts under a FernetCipher (from cipher_of)")
    resealed = 0
    ids = [account_id async for account_id, _ in _accounts(store)]
    for account_id in ids:
        before = cipher.stale_reads
        account = await store.get_account(account_id)
        if cipher.stale_reads == before:
            continue
        await store.update_account(
            account, account.replace(version=account.version + 1, updated_at=now())
        )
        resealed += 1
    return resealed


async def _accounts(store: Store) -> AsyncIterator[tuple[str, tuple[str, str]]]:
    after = ""
    while batch := await store.list_accounts(after_id=after, limit=500):
        for account in batch:
            yield account.id, (account.access_token, account.refresh_token)
        after = batch[-1].id
