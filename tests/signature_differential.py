#!/usr/bin/env python3
"""Signs random webhook messages with the official Python libraries, for
tests/signature_differential.rs, which checks that hookline's verifier accepts each one and
refuses it with any byte of its id, timestamp, signature or body flipped.

    signature_differential.py COUNT SEED

Prints one JSON object per line, COUNT in all, alternating between the two libraries:
`library` (`svix`, sent with `svix-*` headers; `standardwebhooks`, with `webhook-*`), `secret`
(as configured), `id`, `timestamp` (unix seconds), `body` (text; sent as its UTF-8 bytes) and
`signature` (the header value the library produced). The same SEED gives the same messages.

The libraries come from PyPI at the versions .ci/install-deps pins, installed into its private
tools directory (on PYTHONPATH when the test runs this).
"""
import base64
import json
import random
import string
import sys
from datetime import datetime, timezone

try:
    import standardwebhooks
    import svix.webhooks
except ImportError as error:
    sys.exit(
        f"cannot import the signing libraries ({error}): run .ci/install-deps, which installs "
        "svix and standardwebhooks from PyPI into its tools directory"
    )

# Text a body may be made of: ASCII, JSON punctuation, whitespace, and a few characters that
# take two, three and four bytes in UTF-8.
BODY_CHARS = string.printable + '{}[]":,' * 4 + "é中文🙂\u2028\u00a0"
# Characters an id may contain inside it (a header value: visible ASCII, spaces and non-ASCII).
ID_CHARS = string.ascii_letters + string.digits + "_-.:~!$&'()*+,;=@/ " + "é中"


def secret(rng: random.Random) -> str:
    """A key of 1 to 64 random bytes, written the three ways a secret may be configured."""
    encoded = base64.b64encode(rng.randbytes(rng.randint(1, 64))).decode()
    form = rng.randrange(3)
    if form == 0:
        return "whsec_" + encoded
    if form == 1:
        return "whsec_" + encoded.rstrip("=")
    return encoded


def message_id(rng: random.Random) -> str:
    """Svix's `msg_` + 27 characters, or any header-safe text without spaces at its ends."""
    if rng.random() < 0.5:
        return "msg_" + "".join(rng.choices(string.ascii_letters + string.digits, k=27))
    inner = "".join(rng.choices(ID_CHARS, k=rng.randint(0, 40)))
    ends = string.ascii_letters + string.digits
    return rng.choice(ends) + inner + rng.choice(ends)


def body(rng: random.Random) -> str:
    """A JSON event like the providers', or arbitrary text (empty included)."""
    if rng.random() < 0.5:
        event = {
            "type": rng.choice(["store.created", "contact.connection.connected", "x.y"]),
            "data": {"id": rng.randrange(10**18), "name": "".join(rng.choices(BODY_CHARS, k=12))},
        }
        return json.dumps(event, ensure_ascii=rng.random() < 0.5)
    return "".join(rng.choices(BODY_CHARS, k=rng.randint(0, 300)))


def main() -> None:
    count, seed = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    libraries = [("svix", svix.webhooks.Webhook), ("standardwebhooks", standardwebhooks.Webhook)]
    out = []
    for n in range(count):
        library, webhook = libraries[n % 2]
        case = {
            "library": library,
            "secret": secret(rng),
            "id": message_id(rng),
            "timestamp": rng.randint(1, 4_102_444_800),
            "body": body(rng),
        }
        when = datetime.fromtimestamp(case["timestamp"], tz=timezone.utc)
        case["signature"] = webhook(case["secret"]).sign(case["id"], when, case["body"])
        out.append(json.dumps(case))
    print("\n".join(out))


if __name__ == "__main__":
    main()
