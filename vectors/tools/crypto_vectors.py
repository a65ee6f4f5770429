#!/usr/bin/env python3
"""Regenerates vectors/crypto/{ecdh-nist,mlkem768x25519}.json with pyca/cryptography (OpenSSL).

Random scalars each run: the committed file is one draw; a fresh draw is just as valid.
Usage: python3 vectors/tools/crypto_vectors.py
"""
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
import hashlib

from cryptography.hazmat.primitives.asymmetric import ec, mlkem, x25519

DIR = Path(__file__).resolve().parent.parent / "crypto"
OUT = DIR / "ecdh-nist.json"
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
    mlkem_hybrid()


def raw(key):
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def mlkem_hybrid():
    """Client side of mlkem768x25519-sha256: our ephemeral from its seeds, OpenSSL's reply."""
    vectors = []
    for _ in range(3):
        pq = mlkem.MLKEM768PrivateKey.generate()
        cl = x25519.X25519PrivateKey.generate()
        c_init = raw(pq.public_key()) + raw(cl.public_key())
        k_pq, ct = pq.public_key().encapsulate()  # pyca returns (secret, ciphertext)
        server_cl = x25519.X25519PrivateKey.generate()
        k_cl = server_cl.exchange(cl.public_key())
        vectors.append(
            {
                "mlkem_seed": pq.private_bytes_raw().hex(),
                "x25519_scalar": cl.private_bytes_raw().hex(),
                "c_init": c_init.hex(),
                "s_reply": (ct + raw(server_cl.public_key())).hex(),
                "k": hashlib.sha256(k_pq + k_cl).hexdigest(),
            }
        )
    doc = {
        "source": "generated with pyca/cryptography (OpenSSL ML-KEM-768 and X25519); "
        "K = SHA-256(K_PQ || K_CL) per draft-ietf-sshm-mlkem-hybrid-kex \u00a72.4",
        "format": "client ephemeral from mlkem_seed (FIPS 203 d||z) and x25519_scalar sends "
        "c_init; on s_reply it derives k",
        "vectors": vectors,
    }
    (DIR / "mlkem768x25519.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
