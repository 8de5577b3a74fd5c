"""The upload parameters of a registered video (the presigned form fields `POST /v5/media`
answers) at rest: sealed with the store's token cipher (`pinsched.secrets`,
`PINSCHED_SECRET_KEY`) exactly when the account tokens are, so that a copy of the database does
not hand out a signed upload; in clear text only when token encryption is off.

A stage keeps either `upload_parameters` (clear) or `sealed_parameters` (`enc:v1:` + the JSON
object, encrypted). `unseal` reads both; a sealed value no key opens any more (the key was
removed, or encryption turned off) is None: the caller registers the video again.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from pinsched.core.video import MediaStage
from pinsched.ops.crypto import PREFIX, SecretKeyError
from pinsched.store import TokenCipher


def sealed(parameters: Mapping[str, str], cipher: TokenCipher | None) -> dict[str, Any]:
    """The `MediaStage` fields holding *parameters*, encrypted with *cipher* when there is
    one."""
    if cipher is None:
        return {"upload_parameters": dict(parameters), "sealed_parameters": ""}
    text = json.dumps(dict(parameters), sort_keys=True)
    return {"upload_parameters": None, "sealed_parameters": cipher.encrypt(text)}


def seal(
    stage: MediaStage, parameters: Mapping[str, str], cipher: TokenCipher | None
) -> MediaStage:
    """*stage* holding *parameters* (see `sealed`)."""
    return dataclasses.replace(stage, **sealed(parameters, cipher))


def forget(stage: MediaStage) -> MediaStage:
    """*stage* back before its registration, for parameters no key opens any more (the media
    registered then is never used)."""
    return dataclasses.replace(
        stage,
        step="",
        pinterest_media_id="",
        upload_url="",
        upload_parameters=None,
        sealed_parameters="",
        detail="the stored upload parameters cannot be decrypted; registering again",
    )


def unseal(stage: MediaStage, cipher: TokenCipher | None) -> Mapping[str, str] | None:
    """The clear upload parameters of *stage*, or None when they cannot be read."""
    if not stage.sealed_parameters:
        return dict(stage.upload_parameters or {})
    if cipher is None:
        return None
    try:
        text = cipher.decrypt(stage.sealed_parameters)
    except SecretKeyError:
        return None
    if text.startswith(PREFIX):
        return None
    data = json.loads(text)
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None
