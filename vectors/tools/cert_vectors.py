#!/usr/bin/env python3
"""Writes vectors/keys/certificates.json: OpenSSH certificates made by `ssh-keygen -s` (the
independent implementation), with what `ssh-keygen -L` and PROTOCOL.certkeys say about each,
and a few broken blobs. Run from the repository root: python3 vectors/tools/cert_vectors.py
(needs ssh-keygen; every run makes new keys, so the file changes completely)."""

import base64
import json
import subprocess
import tempfile
from pathlib import Path

OUT = Path("vectors/keys/certificates.json")
# 2026-06-01T00:00:00Z: inside every "valid" window below.
NOW = 1780272000


def keygen(d, name, *args):
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-C", name, "-f", str(d / name), *args],
                   check=True)
    return (d / f"{name}.pub").read_text().split()[:2]


def sign(d, ca, user, *args):
    subprocess.run(["ssh-keygen", "-q", "-s", str(d / ca), *args, str(d / f"{user}.pub")],
                   check=True)
    return (d / f"{user}-cert.pub").read_text().split()[:2]


def main():
    cases = []
    with tempfile.TemporaryDirectory() as t:
        d = Path(t)
        cas = {"ca_ed": keygen(d, "ca_ed", "-t", "ed25519"),
               "ca_ec": keygen(d, "ca_ec", "-t", "ecdsa", "-b", "384"),
               "ca_rsa": keygen(d, "ca_rsa", "-t", "rsa", "-b", "2048")}
        users = {"u_ed": ("-t", "ed25519"), "u_ec": ("-t", "ecdsa", "-b", "256"),
                 "u_ec521": ("-t", "ecdsa", "-b", "521"), "u_rsa": ("-t", "rsa", "-b", "2048")}

        def case(name, ca, user, args, expect, addr="10.1.2.3", **fields):
            key = keygen(d, f"{user}_{name}", *users[user])
            cert = sign(d, ca, f"{user}_{name}", *args)
            cases.append({"name": name, "cert": " ".join(cert), "ca": " ".join(cas[ca]),
                          "key": " ".join(key), "now": NOW, "addr": addr,
                          "expect": expect, **fields})

        case("full", "ca_ed", "u_ed",
             ["-I", "alice@laptop", "-n", "alice,admins", "-z", "42",
              "-V", "20260101000000Z:20300101000000Z",
              "-O", "force-command=git-upload-pack 'team/app.git'",
              "-O", "source-address=10.0.0.0/8,192.0.2.7", "-O", "verify-required",
              "-O", "no-port-forwarding"], "ok",
             serial=42, kind="user", key_id="alice@laptop", principals=["alice", "admins"],
             valid_after=1767225600, valid_before=1893456000,
             force_command="git-upload-pack 'team/app.git'",
             source_address="10.0.0.0/8,192.0.2.7", verify_required=True,
             port_forwarding=False)
        case("ecdsa-by-rsa-ca", "ca_rsa", "u_ec", ["-I", "bob", "-n", "bob"], "ok",
             serial=0, kind="user", key_id="bob", principals=["bob"], port_forwarding=True,
             valid_after=0, valid_before=18446744073709551615)
        case("p521-by-ecdsa-ca", "ca_ec", "u_ec521", ["-I", "c", "-n", "carol"], "ok",
             principals=["carol"])
        case("rsa-by-ed25519-ca", "ca_ed", "u_rsa",
             ["-I", "d", "-n", "dave", "-O", "no-touch-required"], "ok", principals=["dave"])
        case("expired", "ca_ed", "u_ed", ["-I", "e", "-n", "erin", "-V", "20200101:20210101"],
             "Expired")
        case("not-yet-valid", "ca_ed", "u_ed",
             ["-I", "f", "-n", "frank", "-V", "20290101:20300101"], "NotYetValid")
        case("source-address-mismatch", "ca_ed", "u_ed",
             ["-I", "g", "-n", "gina", "-O", "source-address=192.0.2.0/24"], "SourceAddress")
        case("unknown-critical-option", "ca_rsa", "u_ec",
             ["-I", "h", "-n", "hal", "-O", "critical:frob@example.org=yes"],
             "UnknownCriticalOption")
        case("host-certificate", "ca_ed", "u_ed", ["-h", "-I", "host", "-n", "git.example.org"],
             "WrongKind", kind="host")
        case("unknown-extension-ignored", "ca_ed", "u_ed",
             ["-I", "i", "-n", "ivy", "-O", "extension:frob@example.org=yes"], "ok")

    # Broken blobs, from the first certificate.
    first = cases[0]
    kind, b64 = first["cert"].split()
    blob = base64.b64decode(b64)

    def broken(name, data, expect):
        cases.append({"name": name, "cert": f"{kind} {base64.b64encode(data).decode()}",
                      "ca": first["ca"], "key": first["key"], "now": NOW, "addr": "10.1.2.3",
                      "expect": expect})

    broken("bad-signature", blob[:-1] + bytes([blob[-1] ^ 1]), "BadSignature")
    broken("truncated", blob[:-10], "Malformed")
    broken("trailing-byte", blob + b"\0", "Malformed")
    OUT.write_text(json.dumps({
        "source": "ssh-keygen -s / -L (OpenSSH 9.2p1), vectors/tools/cert_vectors.py",
        "format": "cert/ca/key: OpenSSH one-line keys; now: seconds since the epoch and addr: "
                  "the client's address for the check; expect: ok or the CertError variant "
                  "(Malformed: parsing fails); other fields: what the certificate says",
        "cases": cases}, indent=1) + "\n")


if __name__ == "__main__":
    main()
