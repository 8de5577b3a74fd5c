"""`pinsched.media.upload_secrets`: the upload parameters sealed with the token cipher, read back
with it (or a list that still holds its key), unreadable (None) without it."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.fernet import Fernet

from pinsched.core.video import STAGING, MediaStage
from pinsched.media.upload_secrets import seal, unseal
from pinsched.ops.crypto import FernetCipher

PARAMS = {"key": "uploads/1", "policy": "cG9saWN5", "x-amz-signature": "abc"}
STAGE = MediaStage(state=STAGING, source="url:http://x/v.mp4", started_at=datetime.now(UTC))


def test_sealed_parameters_round_trip_and_survive_the_dict_form() -> None:
    """Sealed, the stage keeps no parameter in clear, and its stored form reads back whole."""
    cipher = FernetCipher([Fernet.generate_key()])
    sealed = seal(STAGE, PARAMS, cipher)
    assert sealed.upload_parameters is None
    assert "cG9saWN5" not in str(sealed.to_dict())
    assert unseal(MediaStage.from_dict(sealed.to_dict()), cipher) == PARAMS


def test_without_a_cipher_they_are_kept_in_clear() -> None:
    """No cipher (token encryption off): the parameters are kept as given."""
    kept = seal(STAGE, PARAMS, None)
    assert (kept.upload_parameters, kept.sealed_parameters) == (PARAMS, "")
    assert unseal(kept, None) == PARAMS


def test_a_rotated_key_list_still_opens_them_and_a_lost_key_does_not() -> None:
    """Sealed under an old key, they open while that key is still listed; without it (or
    without any cipher) they are unreadable: None, never the ciphertext."""
    old, new = Fernet.generate_key(), Fernet.generate_key()
    sealed = seal(STAGE, PARAMS, FernetCipher([old]))
    assert unseal(sealed, FernetCipher([new, old])) == PARAMS
    assert unseal(sealed, FernetCipher([new])) is None
    assert unseal(sealed, None) is None
