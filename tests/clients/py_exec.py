"""A paramiko or asyncssh client for the interop matrix: see README.md in this directory.

    python py_exec.py paramiko|asyncssh HOST PORT USER KEYFILE FINGERPRINTS COMMAND
"""
import asyncio
import base64
import hashlib
import sys


def fingerprint(blob):
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def check_host(blob, fingerprints):
    fp = fingerprint(blob)
    if fp not in fingerprints.split(","):
        print(f"host key mismatch: {fp}", file=sys.stderr)
        sys.exit(3)


def run_paramiko(host, port, user, key_file, fingerprints, command):
    import paramiko

    stdin = sys.stdin.buffer.read()
    t = paramiko.Transport((host, int(port)))
    t.banner_timeout = t.auth_timeout = 20
    t.start_client(timeout=20)
    check_host(t.get_remote_server_key().asbytes(), fingerprints)
    print(f"negotiated: kex={t.kex_engine.__class__.__name__} cipher={t.local_cipher} "
          f"hostkey={t.host_key_type}", file=sys.stderr)
    key = paramiko.PKey.from_path(key_file) if hasattr(paramiko.PKey, "from_path") else None
    if key is None:
        for cls in (paramiko.Ed25519Key, paramiko.RSAKey, paramiko.ECDSAKey):
            try:
                key = cls.from_private_key_file(key_file)
                break
            except paramiko.SSHException:
                continue
    t.auth_publickey(user, key)
    chan = t.open_session(timeout=20)
    chan.settimeout(20)
    if command:
        chan.exec_command(command)
    else:
        chan.invoke_shell()
    chan.sendall(stdin)
    chan.shutdown_write()
    out = chan.makefile("rb").read()
    err = chan.makefile_stderr("rb").read()
    status = chan.recv_exit_status()
    sys.stdout.buffer.write(out)
    sys.stderr.buffer.write(err)
    t.close()
    return status


async def run_asyncssh(host, port, user, key_file, fingerprints, command):
    import asyncssh

    stdin = sys.stdin.buffer.read()
    conn = await asyncio.wait_for(
        asyncssh.connect(host, int(port), username=user, client_keys=[key_file],
                         known_hosts=None, agent_path=None, config=None,
                         login_timeout=20), 20)
    check_host(conn.get_server_host_key().public_data, fingerprints)
    print(f"negotiated: kex={conn.get_extra_info('kex_alg') or '?'} "
          f"cipher={conn.get_extra_info('send_cipher') or '?'}", file=sys.stderr)
    result = await asyncio.wait_for(
        conn.run(command or None, input=stdin, encoding=None, term_type=None), 20)
    conn.close()
    sys.stdout.buffer.write(result.stdout or b"")
    sys.stderr.buffer.write(result.stderr or b"")
    return 4 if result.exit_status is None else result.exit_status


def main():
    if len(sys.argv) != 8:
        print(__doc__, file=sys.stderr)
        return 2
    which, args = sys.argv[1], sys.argv[2:]
    try:
        if which == "paramiko":
            return run_paramiko(*args)
        return asyncio.run(run_asyncssh(*args))
    except SystemExit:
        raise
    except Exception as e:  # a connection or authentication failure, as the C clients say it
        print(f"{which}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
