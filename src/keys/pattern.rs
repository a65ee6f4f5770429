//! OpenSSH's `*` / `?` patterns [sshd(8) PATTERNS], shared by known_hosts and authorized_keys.

/// Whether `s` matches `p` (`*` any run, `?` one byte); `fold_case` for host names.
pub(crate) fn glob(p: &[u8], s: &[u8], fold_case: bool) -> bool {
    let (mut pi, mut si, mut star, mut mark) = (0usize, 0usize, None, 0usize);
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some(pi);
                mark = si;
                pi = pi.saturating_add(1);
            }
            Some(&c)
                if c == b'?'
                    || s.get(si)
                        .is_some_and(|&b| b == c || (fold_case && b.eq_ignore_ascii_case(&c))) =>
            {
                pi = pi.saturating_add(1);
                si = si.saturating_add(1);
            }
            _ => match star {
                Some(st) => {
                    pi = st.saturating_add(1);
                    mark = mark.saturating_add(1);
                    si = mark;
                }
                None => return false,
            },
        }
    }
    p.get(pi..).unwrap_or_default().iter().all(|&c| c == b'*')
}
