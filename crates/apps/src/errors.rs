//! How failures read: one line, the same through the command line and the server.

/// An error and its causes on one line, joined by `: ` as anyhow's `{:#}` does, each cause left
/// out when the text before it already ends with it: a wrapper whose message quotes its source
/// (`gallery g.db: disk full`, source `disk full`) would otherwise print it twice. convnet's
/// error types keep their sources out of their messages; this is for those that do not (a
/// library's, a `with_context` that formats the error it wraps).
pub fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = String::new();
    for cause in std::iter::successors(Some(err), |e| e.source()) {
        let part = cause.to_string();
        let part = part.trim();
        if part.is_empty() || line.ends_with(part) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(part);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::{Context, anyhow};

    fn chain(parts: &[&str]) -> anyhow::Error {
        let (last, wrappers) = parts.split_last().expect("one part at least");
        wrappers
            .iter()
            .rev()
            .fold(anyhow!(last.to_string()), |e, w| e.context(w.to_string()))
    }

    #[test]
    fn causes_join_on_one_line_without_repeats() {
        let line = |p: &[&str]| one_line(chain(p).as_ref());
        assert_eq!(
            line(&[
                "cannot read w.pth",
                "No such file or directory (os error 2)"
            ]),
            "cannot read w.pth: No such file or directory (os error 2)"
        );
        assert_eq!(
            line(&[
                "gallery g.db: disk I/O error",
                "disk I/O error",
                "Error code 10: disk I/O error"
            ]),
            "gallery g.db: disk I/O error: Error code 10: disk I/O error"
        );
        assert_eq!(line(&["a: b", "b"]), "a: b");
        assert_eq!(line(&["only"]), "only");
        let io = Err::<(), _>(std::io::Error::other("disk full"))
            .context("gallery g.db: disk full")
            .context("cannot enrol")
            .unwrap_err();
        assert_eq!(
            one_line(io.as_ref()),
            "cannot enrol: gallery g.db: disk full"
        );
    }
}
