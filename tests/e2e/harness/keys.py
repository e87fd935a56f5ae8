"""The API key format as tests need it (docs/api-keys.md):
lmk_<12-character id>_<43-character secret><6-character checksum>, the
checksum being the CRC-32 of everything before it in 6 base62 digits."""

import re
import zlib

KEY_RE = re.compile(r"lmk_[0-9A-Za-z]{12}_[0-9A-Za-z]{49}")
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def checksum(body):
    """The 6 base62 digits of the CRC-32 of `body` (lmk_<id>_<secret>)."""
    n = zlib.crc32(body.encode())
    digits = ""
    for _ in range(6):
        n, r = divmod(n, 62)
        digits = BASE62[r] + digits
    return digits


def forge(key_id, secret="A" * 43):
    """A well-formed key (right checksum) for `key_id` with the given
    (wrong) secret: what a guesser sends."""
    body = "lmk_%s_%s" % (key_id, secret)
    return body + checksum(body)


def key_id(key):
    """The public id of a key."""
    return key.split("_")[1]
