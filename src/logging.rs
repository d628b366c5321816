//! Logging on stderr: readable text by default, one JSON object per line with
//! `--log-format json`. `STOCKOPS_LOG` takes a tracing filter
//! (`STOCKOPS_LOG=stockops=debug`). Reports go to stdout, never logs.
//!
//! At trace level the libraries log a great deal: sqlx every statement's
//! text, the AWS SDK its requests. Some statements carry a secret as a
//! literal (`CREATE ROLE ... PASSWORD 'SCRAM-SHA-256$...'` from `users add`
//! and `users rotate-password`), and an error may quote a connection URL.
//! Every line therefore passes through [`redact`] on its way to stderr,
//! whoever logged it: SCRAM and md5 password verifiers, `PASSWORD '...'`
//! literals, age secret keys and the password of a URL never reach a log.

use std::borrow::Cow;
use std::io::Write;

use clap::ValueEnum;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Install the global subscriber. `verbose` counts `-v` flags.
pub fn init(format: LogFormat, verbose: u8) -> anyhow::Result<()> {
    let default = match verbose {
        0 => "stockops=info,warn",
        1 => "stockops=debug,info",
        _ => "stockops=trace,debug",
    };
    let filter =
        EnvFilter::try_from_env("STOCKOPS_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(RedactedStderr);
    let result = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}

/// Stderr, with every event [`redact`]ed. The formatter writes each event
/// whole, in one call.
struct RedactedStderr;

impl<'a> MakeWriter<'a> for RedactedStderr {
    type Writer = RedactedStderr;

    fn make_writer(&'a self) -> Self::Writer {
        RedactedStderr
    }
}

impl Write for RedactedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr()
            .lock()
            .write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

pub(crate) const HIDDEN: &str = "<redacted>";

/// `text` with its secrets replaced by `<redacted>`: password verifiers
/// (`SCRAM-SHA-256$...`, `md5` and 32 hex digits), `PASSWORD '...'`
/// literals, age secret keys (`AGE-SECRET-KEY-1...`) and the password in
/// `scheme://user:password@host`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for rule in [scram, md5, password_literal, age_key, url_password] {
        if let Some(changed) = rule(&out) {
            out = Cow::Owned(changed);
        }
    }
    out
}

/// Replace each match `find` reports (start of the secret, its end) with
/// [`HIDDEN`]; `None` when nothing matched.
fn replace_all(text: &str, find: impl Fn(&str, usize) -> Option<(usize, usize)>) -> Option<String> {
    let mut out = String::new();
    let mut done = 0;
    let mut from = 0;
    while let Some((start, end)) = find(text, from) {
        out.push_str(&text[done..start]);
        out.push_str(HIDDEN);
        done = end;
        from = end.max(start + 1);
    }
    (done > 0).then(|| {
        out.push_str(&text[done..]);
        out
    })
}

/// Case-insensitive search for an ASCII `needle` from byte `from`.
fn find_ci(text: &str, needle: &str, from: usize) -> Option<usize> {
    let hay = text.as_bytes();
    let n = needle.as_bytes();
    (from..hay.len().saturating_sub(n.len() - 1))
        .find(|&i| hay[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// Where a run of bytes that `ok` accepts, starting at `from`, ends.
fn run_end(text: &str, from: usize, ok: impl Fn(u8) -> bool) -> usize {
    text.as_bytes()[from..]
        .iter()
        .position(|&b| !ok(b))
        .map_or(text.len(), |p| from + p)
}

/// `SCRAM-SHA-256$4096:salt$stored:server`, after the prefix.
fn scram(text: &str) -> Option<String> {
    replace_all(text, |t, from| {
        let at = find_ci(t, "SCRAM-SHA-256$", from)? + "SCRAM-SHA-256$".len();
        let end = run_end(t, at, |b| {
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b':' | b'$')
        });
        (end > at).then_some((at, end))
    })
}

/// `md5` and 32 hex digits: PostgreSQL's old verifier.
fn md5(text: &str) -> Option<String> {
    replace_all(text, |t, mut from| loop {
        let at = find_ci(t, "md5", from)? + 3;
        let end = run_end(t, at, |b| b.is_ascii_hexdigit());
        if end - at == 32 {
            return Some((at, end));
        }
        from = at;
    })
}

/// `PASSWORD '...'` (quotes doubled inside), the literal's contents.
fn password_literal(text: &str) -> Option<String> {
    replace_all(text, |t, mut from| loop {
        let word = find_ci(t, "PASSWORD", from)?;
        let after = word + "PASSWORD".len();
        let at = run_end(t, after, |b| b == b' ');
        let bytes = t.as_bytes();
        if at == after || bytes.get(at) != Some(&b'\'') {
            from = after;
            continue;
        }
        let mut end = at + 1;
        while end < bytes.len() {
            if bytes[end] == b'\'' && bytes.get(end + 1) == Some(&b'\'') {
                end += 2;
            } else if bytes[end] == b'\'' {
                break;
            } else {
                end += 1;
            }
        }
        return Some((at + 1, end));
    })
}

/// `AGE-SECRET-KEY-1...` (bech32).
fn age_key(text: &str) -> Option<String> {
    replace_all(text, |t, from| {
        let at = find_ci(t, "AGE-SECRET-KEY-1", from)? + "AGE-SECRET-KEY-1".len();
        let end = run_end(t, at, |b| b.is_ascii_alphanumeric());
        (end > at).then_some((at, end))
    })
}

/// The password of `scheme://user:password@host/...`.
fn url_password(text: &str) -> Option<String> {
    replace_all(text, |t, mut from| loop {
        let at = t[from..].find("://")? + from + 3;
        let authority_end = run_end(t, at, |b| {
            !matches!(b, b'/' | b'?' | b'#' | b'"' | b'\'' | b'\\' | b'<' | b'>')
                && !b.is_ascii_whitespace()
        });
        let authority = &t[at..authority_end];
        if let Some(userinfo) = authority.rfind('@').map(|p| &authority[..p]) {
            if let Some(colon) = userinfo.find(':') {
                if colon + 1 < userinfo.len() && &userinfo[colon + 1..] != HIDDEN {
                    return Some((at + colon + 1, at + userinfo.len()));
                }
            }
        }
        from = at;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_literals_keys_and_url_passwords_are_hidden() {
        let cases = [
            (
                r#"db.statement="CREATE ROLE \"u\" WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:GFDdtlN16i4Ytwz0HxRGcg==$nNOab+/c=:x/Y9z='; COMMENT""#,
                r#"db.statement="CREATE ROLE \"u\" WITH LOGIN PASSWORD '<redacted>'; COMMENT""#,
            ),
            (
                "verifier SCRAM-SHA-256$4096:abc=$def:ghi end",
                "verifier SCRAM-SHA-256$<redacted> end",
            ),
            (
                "ALTER ROLE x PASSWORD 'it''s secret' VALID UNTIL",
                "ALTER ROLE x PASSWORD '<redacted>' VALID UNTIL",
            ),
            (
                "rolpassword=md50123456789abcdef0123456789abcdef,",
                "rolpassword=md5<redacted>,",
            ),
            (
                "key AGE-SECRET-KEY-1QQPZRY9X8GF2TVDW0S3JN54KHCE6MUA7LQPZRY9X8GF2TVDW0S3JN54KHCE done",
                "key AGE-SECRET-KEY-1<redacted> done",
            ),
            (
                "connecting to postgres://app:p%40ss:w0rd@db.example:5432/inv?sslmode=require",
                "connecting to postgres://app:<redacted>@db.example:5432/inv?sslmode=require",
            ),
            (
                "two: postgres://a:x@h/d and s3://k:y@host/b",
                "two: postgres://a:<redacted>@h/d and s3://k:<redacted>@host/b",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "{input}");
        }
    }

    #[test]
    fn ordinary_lines_are_left_alone() {
        for line in [
            "connecting target=u@127.0.0.1:54329/db",
            "postgres://u@host/db and http://127.0.0.1:39000/bucket",
            "--password-stdin reads the password; PASSWORD NULL",
            "md5 of 31 hex: md50123456789abcdef0123456789abcde",
            "SELECT 1",
        ] {
            assert!(matches!(redact(line), Cow::Borrowed(_)), "{line}");
        }
    }
}
