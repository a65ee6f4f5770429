/* A libssh client for the interop matrix: see README.md in this directory. */
#include <libssh/libssh.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>

static int fail(ssh_session s, const char *what) {
    fprintf(stderr, "libssh: %s: %s\n", what, ssh_get_error(s));
    return 2;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s HOST PORT USER KEYFILE FINGERPRINTS COMMAND\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[2]);
    ssh_session s = ssh_new();
    ssh_options_set(s, SSH_OPTIONS_HOST, argv[1]);
    ssh_options_set(s, SSH_OPTIONS_PORT, &port);
    ssh_options_set(s, SSH_OPTIONS_USER, argv[3]);
    /* Our own settings only: no ~/.ssh/config, no agent. */
    ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &(int){0});
    long timeout = 20;
    ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &timeout);
    if (ssh_connect(s) != SSH_OK)
        return fail(s, "connect");

    ssh_key host = NULL;
    unsigned char *hash = NULL;
    size_t hlen = 0;
    if (ssh_get_server_publickey(s, &host) != SSH_OK ||
        ssh_get_publickey_hash(host, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) != 0)
        return fail(s, "host key");
    char *fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
    if (fp == NULL || strstr(argv[5], fp) == NULL) {
        fprintf(stderr, "host key mismatch: %s\n", fp ? fp : "?");
        return 3;
    }
    fprintf(stderr, "negotiated: kex=%s hostkey=%s cipher=%s\n", ssh_get_kex_algo(s),
            ssh_key_type_to_char(ssh_key_type(host)), ssh_get_cipher_out(s));

    ssh_key key = NULL;
    if (ssh_pki_import_privkey_file(argv[4], NULL, NULL, NULL, &key) != SSH_OK)
        return fail(s, "read key");
    if (ssh_userauth_publickey(s, NULL, key) != SSH_AUTH_SUCCESS)
        return fail(s, "publickey authentication");

    ssh_channel c = ssh_channel_new(s);
    if (c == NULL || ssh_channel_open_session(c) != SSH_OK)
        return fail(s, "open session");
    int rc = argv[6][0] ? ssh_channel_request_exec(c, argv[6]) : ssh_channel_request_shell(c);
    if (rc != SSH_OK)
        return fail(s, "exec/shell request");

    /* Both directions at once, as git needs (it answers the ref advertisement): stdin goes
       to the channel as it comes, the channel's stdout/stderr come back as they arrive. */
    char buf[16384];
    int stdin_open = 1;
    for (;;) {
        int moved = 0;
        if (stdin_open) {
            struct pollfd p = {.fd = 0, .events = POLLIN};
            if (poll(&p, 1, 5) > 0) {
                ssize_t n = read(0, buf, sizeof buf);
                if (n <= 0) {
                    ssh_channel_send_eof(c);
                    stdin_open = 0;
                } else if (ssh_channel_write(c, buf, (uint32_t)n) != n) {
                    return fail(s, "write");
                }
                moved = 1;
            }
        }
        for (int is_stderr = 0; is_stderr < 2; is_stderr++) {
            int r = ssh_channel_read_nonblocking(c, buf, sizeof buf, is_stderr);
            if (r == SSH_ERROR)
                return fail(s, "read");
            if (r > 0) {
                fwrite(buf, 1, (size_t)r, is_stderr ? stderr : stdout);
                fflush(is_stderr ? stderr : stdout);
                moved = 1;
            }
        }
        if (ssh_channel_is_eof(c) && ssh_channel_poll(c, 0) <= 0 && ssh_channel_poll(c, 1) <= 0)
            break;
        if (!moved && !stdin_open)
            ssh_channel_poll_timeout(c, 5, 0);
    }
    fflush(stdout);
    int status = ssh_channel_get_exit_status(c);
    ssh_channel_close(c);
    ssh_channel_free(c);
    ssh_disconnect(s);
    ssh_free(s);
    return status < 0 ? 4 : status;
}
