/* A libssh2 client for the interop matrix: see README.md in this directory. */
#include <libssh2.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(LIBSSH2_SESSION *s, const char *what) {
    char *msg = NULL;
    libssh2_session_last_error(s, &msg, NULL, 0);
    fprintf(stderr, "libssh2: %s: %s\n", what, msg ? msg : "?");
    return 2;
}

/* Unpadded base64, as OpenSSH prints SHA256 fingerprints. */
static void b64(const unsigned char *in, size_t len, char *out) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0, o = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = in[i] << 16 | in[i + 1] << 8 | in[i + 2];
        out[o++] = t[v >> 18]; out[o++] = t[v >> 12 & 63];
        out[o++] = t[v >> 6 & 63]; out[o++] = t[v & 63];
    }
    if (len - i == 1) {
        unsigned v = in[i] << 16;
        out[o++] = t[v >> 18]; out[o++] = t[v >> 12 & 63];
    } else if (len - i == 2) {
        unsigned v = in[i] << 16 | in[i + 1] << 8;
        out[o++] = t[v >> 18]; out[o++] = t[v >> 12 & 63]; out[o++] = t[v >> 6 & 63];
    }
    out[o] = 0;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s HOST PORT USER KEYFILE FINGERPRINTS COMMAND\n", argv[0]);
        return 2;
    }
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    inet_pton(AF_INET, argv[1], &sin.sin_addr);
    if (connect(sock, (struct sockaddr *)&sin, sizeof sin) != 0) {
        perror("connect");
        return 2;
    }
    libssh2_init(0);
    LIBSSH2_SESSION *s = libssh2_session_init();
    libssh2_session_set_timeout(s, 20000);
    if (libssh2_session_handshake(s, sock) != 0)
        return fail(s, "handshake");

    const unsigned char *hash =
        (const unsigned char *)libssh2_hostkey_hash(s, LIBSSH2_HOSTKEY_HASH_SHA256);
    char fp[64] = "SHA256:";
    if (hash == NULL)
        return fail(s, "host key hash");
    b64(hash, 32, fp + 7);
    if (strstr(argv[5], fp) == NULL) {
        fprintf(stderr, "host key mismatch: %s\n", fp);
        return 3;
    }
    fprintf(stderr, "negotiated: kex=%s hostkey=%s cipher=%s mac=%s\n",
            libssh2_session_methods(s, LIBSSH2_METHOD_KEX),
            libssh2_session_methods(s, LIBSSH2_METHOD_HOSTKEY),
            libssh2_session_methods(s, LIBSSH2_METHOD_CRYPT_CS),
            libssh2_session_methods(s, LIBSSH2_METHOD_MAC_CS));

    if (libssh2_userauth_publickey_fromfile(s, argv[3], NULL, argv[4], NULL) != 0)
        return fail(s, "publickey authentication");

    LIBSSH2_CHANNEL *c = libssh2_channel_open_session(s);
    if (c == NULL)
        return fail(s, "open session");
    int rc = argv[6][0] ? libssh2_channel_exec(c, argv[6]) : libssh2_channel_shell(c);
    if (rc != 0)
        return fail(s, "exec/shell request");

    char buf[16384];
    ssize_t n;
    while ((n = read(0, buf, sizeof buf)) > 0)
        for (ssize_t off = 0; off < n;) {
            ssize_t w = libssh2_channel_write(c, buf + off, (size_t)(n - off));
            if (w < 0)
                return fail(s, "write");
            off += w;
        }
    libssh2_channel_send_eof(c);
    /* Blocking mode: stdout until EOF, then the stderr libssh2 buffered meanwhile. */
    while ((n = libssh2_channel_read(c, buf, sizeof buf)) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    if (n < 0)
        return fail(s, "read");
    while ((n = libssh2_channel_read_stderr(c, buf, sizeof buf)) > 0)
        fwrite(buf, 1, (size_t)n, stderr);
    fflush(stdout);
    libssh2_channel_close(c);
    libssh2_channel_wait_closed(c);
    int status = libssh2_channel_get_exit_status(c);
    char *signal = NULL;
    libssh2_channel_get_exit_signal(c, &signal, NULL, NULL, NULL, NULL, NULL);
    libssh2_channel_free(c);
    libssh2_session_disconnect(s, "done");
    libssh2_session_free(s);
    close(sock);
    libssh2_exit();
    return signal ? 4 : status;
}
