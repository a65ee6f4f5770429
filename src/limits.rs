//! Every hard limit of the stack as a named constant: the one place to audit what a peer can
//! make us hold. Lengths are bytes unless the name says otherwise.

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
