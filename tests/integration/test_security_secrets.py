"""Encryption at rest: account tokens never reach the SQLite file in clear text when
`secret_key` is set; clear-text rows from before are still read and re-encrypted; key rotation."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from cryptography.fernet import Fernet

from pinsched.app import Daemon
from pinsched.core.accounts import Account
from pinsched.ops import crypto
from pinsched.sandbox import Sandbox
from pinsched.store import Store
from pinsched.v1 import job_pb2
from tests.conftest import ACCESS, REFRESH, Api, soon
from tests.integration.test_daemon import wait_states

DELIVERED = job_pb2.Job.STATE_DELIVERED
KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def stored_tokens(db: Path) -> list[tuple[str, str]]:
    """The (access_token, refresh_token) columns as they are in the file."""
    with sqlite3.connect(db) as conn:
        return [
            (str(a), str(r))
            for a, r in conn.execute("SELECT access_token, refresh_token FROM accounts")
        ]


def file_bytes(db: Path) -> bytes:
    """The database file and its WAL, as raw bytes."""
    wal = db.with_name(db.name + "-wal")
    return db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


async def connected(daemon: Daemon) -> Api:
    """An `Api` on a new channel to a started *daemon*."""
    return Api(grpc.aio.insecure_channel(f"127.0.0.1:{daemon.port}"), daemon)


async def publish_one(api: Api, title: str) -> str:
    """Schedule a pin due now and wait until it is DELIVERED; its job id."""
    job = await api.jobs.SchedulePin(api.pin_request(at=soon(), title=title))
    await wait_states(api, [job.id], {DELIVERED})
    return job.id


@pytest.mark.sqlite_only  # reads the SQLite file itself
async def test_tokens_never_reach_the_database_file(
    make_daemon: Callable[..., Daemon], sandbox: Sandbox, tmp_path: Path
) -> None:
    """With a secret key the original and the refreshed (rotated) tokens are only stored
    encrypted, in the database and in its WAL, and the daemon still publishes with them."""
    daemon = make_daemon(secret_key=KEY_A)
    await daemon.start()
    api = await connected(daemon)
    db = Path(daemon.config.db_path)
    try:
        await api.create_account()
        await publish_one(api, "first")
        sandbox.expire_access_token(ACCESS)  # the next publish gets a 401 and refreshes
        await publish_one(api, "after refresh")
        assert daemon.accounts.refreshes == 1
        raw = file_bytes(db)
        for token in (ACCESS, REFRESH, "pina_", "pinr_"):
            assert token.encode() not in raw
        for access, refresh in stored_tokens(db):
            assert access.startswith(crypto.PREFIX)
            assert refresh.startswith(crypto.PREFIX)
    finally:
        await api.channel.close(None)
        await daemon.stop(grace_s=1.0)
    assert len(sandbox.pins()) == 2
    assert b"pina_" not in file_bytes(db)
    assert b"pinr_" not in file_bytes(db)


@pytest.mark.sqlite_only  # reads the SQLite file itself
async def test_clear_text_rows_are_encrypted_at_start(
    make_daemon: Callable[..., Daemon], sandbox: Sandbox
) -> None:
    """Tokens stored before encryption was turned on are read, then re-encrypted at start."""
    plain = make_daemon(token_keeper=False)  # the stored tokens stay the seeded ones
    await plain.start()
    api = await connected(plain)
    await api.create_account()
    await api.channel.close(None)
    await plain.stop(grace_s=1.0)
    db = Path(plain.config.db_path)
    assert stored_tokens(db) == [(ACCESS, REFRESH)]

    daemon = make_daemon(secret_key=KEY_A, token_keeper=False)
    await daemon.start()
    api = await connected(daemon)
    try:
        assert all(
            a.startswith(crypto.PREFIX) and r.startswith(crypto.PREFIX)
            for a, r in stored_tokens(db)
        )
        await publish_one(api, "with re-encrypted tokens")
    finally:
        await api.channel.close(None)
        await daemon.stop(grace_s=1.0)


async def test_daemon_refuses_encrypted_tokens_without_the_key(
    make_daemon: Callable[..., Daemon],
) -> None:
    """A database holding encrypted tokens does not start without a key, nor with a wrong one,
    and the error names the setting; with the right key it starts again."""
    first = make_daemon(secret_key=KEY_A)
    await first.start()
    api = await connected(first)
    await api.create_account()
    await api.channel.close(None)
    await first.stop(grace_s=1.0)
    for wrong in (None, KEY_B):
        with pytest.raises(crypto.SecretKeyError, match="PINSCHED_SECRET_KEY") as info:
            await make_daemon(secret_key=wrong).start()
        assert KEY_A not in str(info.value)
        assert KEY_B not in str(info.value)
    again = make_daemon(secret_key=KEY_A)
    await again.start()
    await again.stop(grace_s=1.0)


async def test_key_rotation(tmp_path: Path) -> None:
    """New key first, old key after it: rows are re-encrypted under the new key at start, after
    which the old key can be dropped."""
    db = tmp_path / "rotate.db"
    now = datetime.now(UTC)

    async def opened(setting: str | None) -> tuple[Store, int]:
        store = await Store.open(db, cipher=crypto.cipher_of(setting))
        try:
            return store, await crypto.install(store, now=lambda: now)
        except BaseException:
            await store.close()
            raise

    store, _ = await opened(KEY_A)
    await store.create_account(
        Account(
            id="acme", access_token=ACCESS, refresh_token=REFRESH, created_at=now, updated_at=now
        )
    )
    await store.close()
    before = stored_tokens(db)

    store, resealed = await opened(f"{KEY_B}, {KEY_A}")
    assert resealed == 1
    assert (await store.get_account("acme")).access_token == ACCESS
    await store.close()
    assert stored_tokens(db) != before

    store, resealed = await opened(KEY_B)  # the old key is no longer needed
    assert resealed == 0
    account = await store.get_account("acme")
    assert (account.access_token, account.refresh_token) == (ACCESS, REFRESH)
    assert account.version == 2  # the re-encryption was an ordinary compare-and-set update
    await store.close()

    with pytest.raises(crypto.SecretKeyError):
        await opened(KEY_A)


def test_key_setting_forms() -> None:
    """A Fernet key is used as given; a long passphrase is derived with HKDF (deterministic);
    a short one is refused without echoing it; values carry the `enc:v1:` prefix."""
    assert crypto.parse_keys(KEY_A) == [KEY_A.encode()]
    phrase = "correct horse battery staple, purple"  # the comma splits: two passphrases
    with pytest.raises(crypto.SecretKeyError) as info:
        crypto.parse_keys(phrase)
    assert "purple" not in str(info.value)
    long_phrase = "correct horse battery staple"
    assert crypto.parse_keys(long_phrase) == [crypto.derive_key(long_phrase)]
    assert crypto.derive_key(long_phrase) != crypto.derive_key(long_phrase + "!")
    cipher = crypto.FernetCipher.from_setting(long_phrase)
    sealed = cipher.encrypt(ACCESS)
    assert sealed.startswith("enc:v1:")
    assert ACCESS not in sealed
    assert crypto.FernetCipher.from_setting(long_phrase).decrypt(sealed) == ACCESS
    assert cipher.decrypt("pina_legacy_clear_text") == "pina_legacy_clear_text"
    assert cipher.stale_reads == 1
