#!/usr/bin/env python3
"""Regenerates vectors/crypto/ecdh-nist.json with pyca/cryptography (OpenSSL).

Random scalars each run: the committed file is one draw; a fresh draw is just as valid.
Usage: python3 vectors/tools/crypto_vectors.py
"""
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

OUT = Path(__file__).resolve().parent.parent / "crypto" / "ecdh-nist.json"
CURVES = [("P256", ec.SECP256R1()), ("P384", ec.SECP384R1()), ("P521", ec.SECP521R1())]


def scalar_hex(key, curve):
    size = (curve.key_size + 7) // 8
    return key.private_numbers().private_value.to_bytes(size, "big").hex()


def main():
    vectors = []
    for name, curve in CURVES:
        ours = ec.generate_private_key(curve)
        peer = ec.generate_private_key(curve).public_key()
        point = peer.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        shared = ours.exchange(ec.ECDH(), peer)
        vectors.append(
            {
                "curve": name,
                "scalar": scalar_hex(ours, curve),
                "peer_point": point.hex(),
                "shared_x": shared.hex(),
            }
        )
    doc = {
        "source": "generated with pyca/cryptography (OpenSSL) ECDH: random scalar, random peer, "
        "their x-coordinate (RFC 5656 \u00a74's K before mpint encoding)",
        "format": "ECDH(scalar, peer_point).x = shared_x",
        "vectors": vectors,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
