//! Every hard limit of the stack as a named constant, with why and OpenSSH's value beside it:
//! the one place to audit what a peer can make us hold, how long we wait, and the defaults of
//! the settings a configuration may change. Lengths are bytes unless the name says otherwise.
//! (I/O sizes that only tune speed — read sizes, batch delays — stay beside the code they tune.)

/// Largest `packet_length` field we accept or send by default: OpenSSH's cap, so any packet an
/// OpenSSH peer may send fits [RFC4253 §6.1].
pub const MAX_PACKET_LEN: u32 = 256 * 1024;

/// The floor for a configured maximum packet length: RFC 4253 §6.1 requires 35000-byte packets
/// (32768 bytes of payload) to be processed.
pub const MIN_MAX_PACKET_LEN: u32 = 35_000;

/// Largest MAC or AEAD tag of any algorithm we implement (hmac-sha2-512).
pub const MAX_TAG_LEN: usize = 64;

/// Largest cipher block size of any algorithm we implement (AES).
pub const MAX_BLOCK_LEN: usize = 16;

/// Names inside a name-list are algorithm or method identifiers, capped at 64 characters
/// [RFC4251 §6]; we accept up to this many to leave room for odd peers, and reject beyond.
pub const MAX_NAME_LEN: usize = 256;

/// Cap on the number of names one name-list may carry.
pub const MAX_NAMES_PER_LIST: usize = 256;

/// A channel peer may send beyond the window we granted by `window / WINDOW_GRACE_DIVISOR` in
/// all before we disconnect: OpenSSH's 10 % grace (`channel_input_data`), so a channel buffers at
/// most 1.1 × its window [RFC4254 §5.2].
pub const WINDOW_GRACE_DIVISOR: u32 = 10;

/// USERAUTH_REQUESTs one connection may send, answered ones (PK_OK) included: each may cost a
/// key lookup (with `backend = "command"` a process). `max_auth_attempts` bounds the failures;
/// this bounds the rest. OpenSSH has no such cap (its MaxAuthTries skips PK_OK queries).
pub const MAX_AUTH_REQUESTS: u32 = 32;

/// How long a closing connection may take to flush its last bytes (our DISCONNECT) and shut
/// down: a peer that stopped reading cannot hold the task past it.
pub const FINAL_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// What one payload waiting behind a key exchange costs beyond its bytes: the `Vec` holding it
/// (24) and the packet it becomes (length, padding length, up to 19 bytes of padding, a MAC of
/// up to 64). The send queue's cap counts it per entry, so 5-byte replies cannot hide ten times
/// their size behind the cap (`TransportConfig::max_queued_bytes`).
pub const QUEUED_ENTRY_OVERHEAD: usize = 112;

/// `env` requests one session may send, allowed or not (OpenSSH's sshd: 128); past it they are
/// refused. Allowed ones keep one entry per name (the last value).
pub const MAX_ENV_REQUESTS: u32 = 128;

/// How long a session channel may stay open without a command before it is closed (the git
/// server uses its `idle_secs` instead).
pub const SESSION_START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// How long a connection that ended waits for its session tasks to clean up (kill git's
/// process group, log the session) before aborting them.
pub const TASK_CLEANUP: std::time::Duration = std::time::Duration::from_secs(10);

/// The smallest window a channel is granted once its connection's window budget is spent
/// (`ConnectionConfig::window_budget`): enough for a few packets, so it still makes progress.
pub const MIN_CHANNEL_WINDOW: u32 = 64 * 1024;

/// How long a connection on a PROXY-protocol listener may take to send its header (or its
/// first byte, on an `optional` one) before it is refused, or taken as a direct client.
pub const PROXY_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The longest PROXY v2 header body (addresses and TLVs) we read; the specification allows
/// 65535, balancers send well under 1 KiB (HAProxy's own limit on what it sends is 4 KiB too).
pub const MAX_PROXY_HEADER_LEN: usize = 4096;

/// How long a binary upgrade waits for the new process to say it is ready before stopping it
/// and serving on (nginx has no such bound: its old master waits for ever).
pub const UPGRADE_READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// How often a draining server looks at how many connections are still open.
pub const DRAIN_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// How long a git that is stopped (client gone, idle, shutdown) gets between the end of its
/// stdin and SIGKILL to its process group: enough for `receive-pack` to see EOF and remove its
/// quarantine of received objects. (sshd closes the pipes and lets the command run on.)
pub const GIT_STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Capacity of the pipe between a connection and a session task, per stream: eight 32 KiB
/// packets, so a bulk stream wakes the other side once per several packets; the buffer grows
/// only as far as it is used (idle sessions pay nothing). OpenSSH: a channel's buffers grow up
/// to its window (2 MiB) in the one process.
pub const PIPE_CAPACITY: usize = 256 * 1024;

/// The first read of a process's output the driver reads itself (an attached source): the
/// buffer is held only while the session streams, and protocol messages and ref lists fit.
/// OpenSSH reads a channel's file descriptors 16 KiB at a time (`CHAN_RBUF`).
pub const FIRST_SOURCE_READ: usize = 16 * 1024;

/// Later reads of a source that filled the first one (a pack streams): the transport's whole
/// queue at once, so one read and one wake-up fill many packets. OpenSSH: 16 KiB.
pub const STREAM_SOURCE_READ: usize = 256 * 1024;

/// Connections a remote forwarding of our client role (`ClientHandle::forward_remote`) queues
/// before the application takes them; more are refused with OPEN_FAILURE 4 (resource
/// shortage), so a flood on the server's port costs us at most this many channels. OpenSSH's
/// client has no queue: it connects each one to its local target at once.
pub const FORWARD_BACKLOG: usize = 16;

/// The peer's global requests whose replies may wait at once, behind one the application has
/// not answered yet (a `tcpip-forward` while it binds): one more disconnects. OpenSSH
/// answers each request before reading the next, so it queues none; `ssh` sends one per
/// `-R`, and no client we know of asks for more than a few before their answers.
pub const GLOBAL_REPLIES_QUEUED: usize = 256;

/// How long a server's `direct-tcpip` connect (allowed by the policy) may take before the
/// channel is refused with "connect failed". sshd has no timer of its own: the kernel's SYN
/// retries give up after about 2 minutes.
pub const FORWARD_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long resolving and binding a `tcpip-forward`'s address may take; the connection waits
/// meanwhile, as sshd (which resolves it blocking) does.
pub const FORWARD_BIND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `tcpip-forward` listeners one connection may hold; more are refused. sshd has no count of
/// its own (its descriptors limit it); ssh asks for one per `-R`.
pub const FORWARD_LISTENERS: usize = 64;

/// Principals, critical options or extensions one certificate may carry; more refuse it.
/// OpenSSH's `SSHKEY_CERT_MAX_PRINCIPALS` is 256 too.
pub const MAX_CERT_PRINCIPALS: usize = 256;

/// Longest nonce, key ID, principal, option name or option value in a certificate, in
/// bytes. OpenSSH bounds them only by the blob (itself bounded by the packet); a few hundred
/// bytes is what `ssh-keygen -s` writes.
pub const MAX_CERT_FIELD: usize = 4096;

/// Longest svn protocol item read during the svn+ssh handshake (greetings, authentication),
/// in bytes; longer refuses the session. A client's greeting response is a URL and a few
/// words. svnserve reads items of any size (its strings are bounded by memory only).
pub const SVN_MAX_ITEM: usize = 64 * 1024;

/// Deepest list nesting read in that handshake (the deepest it uses is 3).
pub const SVN_MAX_DEPTH: usize = 8;

/// How long the svn+ssh handshake (client greeting, connecting the svn server, its greeting
/// and authentication) may take in all.
pub const SVN_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The most of an HTTP key backend's answer we read; a longer one is a failure. An identity
/// is a few hundred bytes of JSON.
pub const HTTP_LOOKUP_MAX_RESPONSE: usize = 64 * 1024;

/// Answers of the HTTP key backend kept at once (each a user, a key blob and an identity:
/// about 200 bytes); when full, expired ones go, then the oldest. OpenSSH has no backend cache.
pub const HTTP_LOOKUP_CACHE_ENTRIES: usize = 10_000;

/// How long a token sent to the HTTP key backend is valid (its `exp` claim). gitlab-shell's
/// tokens last one minute too.
pub const HTTP_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(60);

/// What one socket read asks for: at most this much unprocessed input is held per connection
/// between reads (OpenSSH reads 32 KiB at a time).
pub const READ_CHUNK: usize = 64 * 1024;

/// The smallest channel window (the most a peer ever gave) whose peer may wait for our next
/// socket read while it is more than half a window behind (`QuickAck::pace` in
/// `driver/tcp.rs`): at the wait of 1 ms, half of it lasts the peer down to 512 MiB/s. OpenSSH
/// grants 2 MiB; a peer with a small window is read at once.
pub const BEHIND_MIN_WINDOW: u32 = 1024 * 1024;

/// Paced socket reads in a row that may find nothing (each after a 1 ms wait) before the
/// socket goes back to epoll: a peer that consumes slowly credits less often than every
/// millisecond, one that stopped is then waited for without a timer.
pub const PACED_EMPTY_POLLS: u8 = 4;

/// What a socket read asks for at first and after a small read left nothing buffered (an
/// idle connection): a KEXINIT, an authentication request, a keepalive fit. A read that fills
/// it grows the buffer to [`READ_CHUNK`], so a held connection keeps 2 KiB of input buffer,
/// not 64 KiB of address space with its first pages touched. OpenSSH: 32 KiB reads into a
/// buffer that grows.
pub const IDLE_READ_CHUNK: usize = 2 * 1024;

/// What one socket read asks for once a read filled [`READ_CHUNK`] on an authenticated
/// connection (the peer streams: a push, or a proxied upstream's pack): 4× fewer reads and
/// wake-ups per MiB, and a quarter as many partial packets moved to the front of the buffer.
/// Back to `READ_CHUNK` after a short read leaves nothing buffered.
pub const STREAM_READ_CHUNK: usize = 256 * 1024;

/// Smallest RSA modulus we accept, in bits. OpenSSH: `RequiredRSASize` 1024 (RFC 8332 §5
/// allows 1024); we follow current guidance instead.
pub const MIN_RSA_BITS: usize = 2048;

/// Largest RSA modulus we accept, in bits: verification cost grows with it. OpenSSH: 16384
/// (`SSHBUF_MAX_BIGNUM`).
pub const MAX_RSA_BITS: usize = 16384;

/// Bits of a DH private exponent: twice the strength of the largest group (8192-bit MODP,
/// ~256-bit) [RFC8268 §4]. OpenSSH's `dh_gen_key`: the same 512 bits with 256-bit ciphers.
pub const DH_EXPONENT_BITS: usize = 512;

/// Smallest DH group we take part in: below 2048 bits is too weak [RFC8270 §4]. OpenSSH:
/// `DH_GRP_MIN` 2048.
pub const DH_MIN_BITS: u32 = 2048;

/// Largest DH group we take part in: above 8192 bits too slow to offer an unauthenticated peer.
/// OpenSSH: `DH_GRP_MAX` 8192.
pub const DH_MAX_BITS: u32 = 8192;

/// Longest `exec` command accepted: git's own paths are far shorter. OpenSSH: no limit beyond
/// the packet size.
pub const MAX_COMMAND_LEN: usize = 4096;

/// Most output read from a `keys.command` program; a key list longer than this is an error.
/// OpenSSH's AuthorizedKeysCommand: no limit (it reads line by line).
pub const MAX_OUTPUT: u64 = 1024 * 1024;

/// Longest identification line, CR LF included [RFC4253 §4.2]. OpenSSH: 255 (8 KiB for lines
/// before it).
pub const MAX_LINE: usize = 255;

/// How many non-identification lines a server may send first (client role only): enough for a
/// TCP-wrapper banner, bounded against a peer that never stops. OpenSSH: 1024 lines.
pub const MAX_PRE_LINES: usize = 64;

/// How many bytes those lines may total ([`MAX_PRE_LINES`]). OpenSSH: 1024 lines of up to 8 KiB.
pub const MAX_PRE_BYTES: usize = 16 * 1024;

/// Above this the decode buffer is released after each packet, so a burst of large packets
/// does not pin memory on an otherwise idle connection.
pub const RETAIN_BUFFER_MAX: usize = 64 * 1024;

/// Rekey well before sequence numbers could wrap: RFC 4344 §3.1 wants it every 2^31 packets.
/// OpenSSH: after 2^31 packets too (`MAX_PACKETS`).
pub const REKEY_PACKETS: u64 = 1 << 31;

/// Queued upper-layer bytes above which writers are asked to pause: a batch of git's output
/// (see `driver::batch_read`) goes out in one `send` instead of one per 64 KiB.
pub const SOFT_QUEUE_BYTES: usize = 256 * 1024;

/// bcrypt rounds above this are refused in a private key file: a hostile file must not pin a CPU
/// for minutes. OpenSSH: no limit (its own files use 16).
pub const MAX_ROUNDS: u32 = 1 << 16;

/// Most extensions one EXT_INFO may carry; OpenSSH sends a handful and accepts any number
/// [RFC8308 §2.3].
pub const MAX_EXTENSIONS: u32 = 64;

/// The pipe size asked for once git's output streams (see `driver::batch_read`): room for two
/// batch delays (the timer rounds up) at a few hundred MB/s. Counts against the service
/// account's `pipe-user-pages-soft`.
pub const PIPE_BYTES: usize = 1024 * 1024;

/// The receive buffer asked for on a storage host's git daemon socket, read in batches like
/// git's pipe (see `driver::batch_read`). Linux caps it at twice `net.core.rmem_max` (416 KiB
/// by default); below [`MIN_BATCH_SOCKET`] the socket is read as data comes.
pub const SOCKET_RCVBUF: usize = 1024 * 1024;

/// The smallest receive buffer a batched socket read may wait on: at the batch delay of 1 ms,
/// 256 MB/s before a read finds it nearly full and reads on at once.
pub const MIN_BATCH_SOCKET: usize = 256 * 1024;

// Defaults of the settings a configuration may change (`TransportConfig`, `ConnectionConfig`,
// `AuthConfig`; the server's `portcullis.example.toml` sets its own where it differs).

/// Bytes before a re-exchange. OpenSSH: from the cipher's block size (4 GiB for AES, 2^32 blocks
/// for chacha20).
pub const REKEY_BYTES: u64 = 1 << 30;

/// Time before a re-exchange. OpenSSH: none by default (`RekeyLimit default none`).
pub const REKEY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long a key exchange may take once started (the first one is also bounded by the login
/// grace time). OpenSSH: no separate bound.
pub const KEX_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Upper-layer bytes the transport holds while a key exchange blocks sending; beyond it `send`
/// fails (writers must respect `send_blocked`). OpenSSH: unbounded (its output buffer grows).
pub const MAX_QUEUED_BYTES: usize = 1 << 20;

/// Window a channel is granted. OpenSSH: `CHAN_SES_WINDOW_DEFAULT`, 2 MiB.
pub const CHANNEL_WINDOW: u32 = 2 * 1024 * 1024;

/// Largest data payload we accept in one channel message (≥ 32768 [RFC4254 §5.2]). OpenSSH:
/// `CHAN_SES_PACKET_DEFAULT`, 32 KiB.
pub const CHANNEL_MAX_PACKET: u32 = 32 * 1024;

/// Channels one connection may have open at once. OpenSSH: `MaxSessions` 10.
pub const MAX_CHANNELS: usize = 10;

/// Window all channels of one connection may hold between them (see
/// `ConnectionConfig::window_budget`). OpenSSH: none (10 sessions × 2 MiB).
pub const WINDOW_BUDGET: u32 = 4 * 1024 * 1024;

/// Failed authentication attempts before the connection is closed [RFC4252 §4]. OpenSSH:
/// `MaxAuthTries` 6.
pub const MAX_AUTH_ATTEMPTS: u32 = 6;

/// Time from connect to successful authentication [RFC4252 §4]. OpenSSH: `LoginGraceTime` 120 s.
pub const LOGIN_GRACE: std::time::Duration = std::time::Duration::from_secs(120);

/// Longest user name accepted. OpenSSH: no limit beyond the packet (it refuses unknown users).
pub const MAX_USER_LEN: usize = 256;

/// How long a `keys.command` program may take. OpenSSH's AuthorizedKeysCommand: no limit.
pub const LOOKUP_COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// An accept loop out of descriptors (EMFILE) retries after this, doubling up to
/// [`ACCEPT_BACKOFF_MAX`]. OpenSSH's sshd: `accept` errors are logged and retried after a
/// poll; it has no backoff.
pub const ACCEPT_BACKOFF_MIN: std::time::Duration = std::time::Duration::from_millis(10);

/// See [`ACCEPT_BACKOFF_MIN`].
pub const ACCEPT_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(1);
