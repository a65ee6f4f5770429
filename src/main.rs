//! The `portcullis` binary. The protocol stack is being built bottom-up (see README.md); the
//! server command arrives with the git server issue, and until then this says so plainly.

use std::process::ExitCode;

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        Some("--version" | "-V") => {
            println!("portcullis {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "portcullis {}: the SSH server is not built yet; only the protocol library \
                 (wire codec, binary packet protocol) exists so far. See README.md.",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::from(2)
        }
    }
}
