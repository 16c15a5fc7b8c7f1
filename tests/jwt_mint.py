"""RS256 JWTs signed with a locally generated key (the `cryptography` package; no JWT library)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Signer:
    key: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def new(cls, kid: str) -> "Signer":
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048), kid)

    def public_pem(self) -> str:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def mint(self, claims: dict[str, Any]) -> str:
        head = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": self.kid}).encode())
        body = b64(json.dumps(claims).encode())
        sig = self.key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{head}.{body}.{b64(sig)}"

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims if this key signed the token (RS256 with our kid), else None."""
        try:
            head, body, sig = token.split(".")
            header = json.loads(unb64(head))
            if header.get("alg") != "RS256" or header.get("kid") != self.kid:
                return None
            self.key.public_key().verify(unb64(sig), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
            claims: dict[str, Any] = json.loads(unb64(body))
            return claims
        except (ValueError, InvalidSignature):
            return None
