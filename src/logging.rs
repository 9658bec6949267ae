//! The process's logger. dropshot logs through slog and puts each request's `uri` on every line
//! it writes for that request. Acceptance tokens are credentials and, by Leadping's contract,
//! travel in a path (`GET /businesses/invitations/token/{token}`); bearer tokens are credentials
//! too, and email addresses are personal data. Logs are read by more people than may see any of
//! them, so every line is masked before it is written ([`mask`]): its message and every value,
//! whatever its key, in every format. The `uri` also loses its query values and, in any case,
//! the segment after `/token/`.
//!
//! Two formats: bunyan JSON lines (for log pipelines; the default in production) and slog-term's
//! human-readable lines (the default elsewhere, coloured on a terminal).
//!
//! Lines are formatted and written on one background thread (slog-async), each line with one
//! `write` call (a buffered writer flushed per line; slog-term's terminal decorator, which
//! dropshot's `StderrTerminal` uses, makes dozens of writes per line and capped the process near
//! 20k lines/s). When the queue is full a line is dropped rather than stall a request, but never
//! silently: [`dropped_log_lines`] counts every one, and the next line that fits is preceded by a
//! warning saying how many were lost.

use std::borrow::Cow;
use std::fmt;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

use dropshot::ConfigLoggingLevel;
use slog::{Drain, KV, Key, Level, OwnedKV, OwnedKVList, Record, Serializer};
use slog_async::{AsyncCore, AsyncError};

/// Lines the queue could hold before new ones are dropped: a few megabytes at most, which rides
/// out bursts far above what the log thread writes per second.
const QUEUE_LINES: usize = 8192;

/// Every line dropped since the process started because the log queue was full.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// How many log lines the process has dropped because its log queue was full.
pub fn dropped_log_lines() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Bunyan JSON lines.
    Json,
    /// slog-term's human-readable lines.
    Text,
}

/// The process's logger: credentials and addresses masked ([`RedactTokens`]), filtered by
/// `level`, queued to the writer thread ([`Counted`]), written on stderr in `format`.
pub fn logger_in(level: &ConfigLoggingLevel, format: LogFormat) -> anyhow::Result<slog::Logger> {
    let core = if format == LogFormat::Json {
        let out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
        let json = slog_bunyan::with_name("leadping-invitations", out)
            .set_flush(true)
            .build();
        queue(json.ignore_res())
    } else if std::io::stderr().is_terminal() {
        let format =
            slog_term::FullFormat::new(slog_term::TermDecorator::new().stderr().build()).build();
        queue(format.ignore_res())
    } else {
        let out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
        let format = slog_term::FullFormat::new(slog_term::PlainDecorator::new(out)).build();
        queue(format.ignore_res())
    };
    // The level first: a line the level filters out (dropshot's per-request trace lines) costs
    // no masking.
    let drain =
        slog::LevelFilter(RedactTokens(Counted::new(core)), Level::from(level)).ignore_res();
    Ok(slog::Logger::root(drain, slog::o!()))
}

/// [`logger_in`] with the human-readable format (the tests' and tools' logger).
pub fn logger(level: &ConfigLoggingLevel) -> anyhow::Result<slog::Logger> {
    logger_in(level, LogFormat::Text)
}

fn queue<D>(drain: D) -> AsyncCore
where
    D: Drain<Ok = (), Err = slog::Never> + Send + 'static,
{
    AsyncCore::custom(drain)
        .chan_size(QUEUE_LINES)
        .thread_name("log-writer".into())
        .build()
}

/// Hands lines to the writer thread without ever blocking; counts what the full queue refused,
/// and reports the count in the log as soon as a line fits again.
pub struct Counted {
    core: AsyncCore,
    /// Dropped lines not yet reported in the log.
    unreported: AtomicU64,
}

impl Counted {
    fn new(core: AsyncCore) -> Self {
        Counted {
            core,
            unreported: AtomicU64::new(0),
        }
    }

    fn dropped(&self, n: u64) {
        DROPPED.fetch_add(n, Ordering::Relaxed);
        self.unreported.fetch_add(n, Ordering::Relaxed);
    }
}

impl Drain for Counted {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        let unreported = self.unreported.swap(0, Ordering::Relaxed);
        if unreported > 0 {
            let total = dropped_log_lines();
            let accepted = self.core.log(
                &slog::record!(
                    Level::Warning,
                    "",
                    &format_args!("log queue full: lines dropped"),
                    slog::b!("dropped" => unreported, "dropped_total" => total)
                ),
                values,
            );
            if accepted.is_err() {
                // Still full: the count waits for the next line (the report itself is not
                // counted as a dropped line).
                self.unreported.fetch_add(unreported, Ordering::Relaxed);
            }
        }
        match self.core.log(record, values) {
            Ok(()) => {}
            Err(AsyncError::Full) => self.dropped(1),
            // The writer thread is gone (the process is ending): nothing can be written.
            Err(_) => self.dropped(1),
        }
        Ok(())
    }
}

/// `uri` as a log may show it: the segment after a `token` segment (in any case and however
/// percent-encoded: the path of the acceptance-token look-up, as the router decodes it) and
/// every query value replaced by `[redacted]`, then [`mask`]ed.
pub fn redact_uri(uri: &str) -> Cow<'_, str> {
    let (path, query) = match uri.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (uri, None),
    };
    let token_at = path
        .split('/')
        .position(|segment| decoded(segment).eq_ignore_ascii_case("token"));
    if token_at.is_none() && query.is_none() {
        return mask(uri);
    }
    let mut out = String::with_capacity(uri.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if token_at.is_some_and(|at| i == at + 1) {
            out.push_str("[redacted]");
        } else {
            out.push_str(segment);
        }
    }
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((key, _)) => {
                    out.push_str(key);
                    out.push_str("=[redacted]");
                }
                None => out.push_str(pair),
            }
        }
    }
    Cow::Owned(mask(&out).into_owned())
}

/// `text` percent-decoded until nothing more decodes (a double encoding, `%2540` for `@`,
/// included; four rounds at most), invalid UTF-8 replaced.
pub fn decoded(text: &str) -> Cow<'_, str> {
    let mut current = Cow::Borrowed(text);
    for _ in 0..4 {
        if !current.contains('%') {
            break;
        }
        let next = percent_encoding::percent_decode_str(&current)
            .decode_utf8_lossy()
            .into_owned();
        if next == *current {
            break;
        }
        current = Cow::Owned(next);
    }
    current
}

/// `text` with every acceptance token's MAC, bearer JWT and email address it contains masked:
/// a `.` followed by 32 or more hex digits (a token's MAC) becomes `.[redacted]`, a JWT
/// (`eyJ...`, three dot-separated base64url parts) `[redacted-jwt]`, and an email address keeps
/// the first character of its local part and its domain (`a•••@example.com`, as `safeMessage`
/// shows it). Written by hand rather than with a regex engine: three fixed shapes, on every log
/// value, where a scan that allocates only when it finds one is cheapest.
///
/// A path or query can carry any of them percent-encoded (`a%40x.com`, `inv_1%2E<mac>`, a JWT
/// with `%2E` for its dots, twice encoded as `%252E`), which the router and a reader decode
/// but the scan would not see: every run of text between delimiters that holds a `%` is also
/// read decoded ([`decoded`]), and shown decoded and masked when that finds anything.
pub fn mask(text: &str) -> Cow<'_, str> {
    if !text.contains(['@', '.', '%']) {
        return Cow::Borrowed(text);
    }
    let masked = mask_raw(text);
    if !masked.contains('%') {
        return masked;
    }
    match mask_encoded(&masked) {
        None => masked,
        Some(more) => Cow::Owned(more),
    }
}

/// [`mask`]'s second look: each run of `text` between delimiters that holds a `%`, decoded; the
/// text with each run whose decoded form has something to mask replaced by that form masked, or
/// `None` when no run has.
fn mask_encoded(text: &str) -> Option<String> {
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut start = 0;
    for (at, c) in text.char_indices().chain([(text.len(), ' ')]) {
        if !is_delimiter(c) {
            continue;
        }
        let run = &text[start..at];
        if run.contains('%') {
            let plain = decoded(run);
            if let Cow::Owned(masked) = mask_raw(&plain) {
                let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
                o.push_str(&text[copied..start]);
                o.push_str(&masked);
                copied = at;
            }
        }
        start = at + c.len_utf8();
    }
    let mut o = out?;
    o.push_str(&text[copied..]);
    Some(o)
}

/// [`mask`] on the text as it is.
fn mask_raw(text: &str) -> Cow<'_, str> {
    if !text.contains(['@', '.']) {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    let flush = |out: &mut Option<String>, copied: &mut usize, upto: usize, with: &str| {
        let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
        o.push_str(&text[*copied..upto]);
        o.push_str(with);
    };
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'.' {
            let run = bytes[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_hexdigit())
                .count();
            if run >= 32 {
                flush(&mut out, &mut copied, i, ".[redacted]");
                i += 1 + run;
                copied = i;
                continue;
            }
        } else if b == b'e'
            && bytes[i..].starts_with(b"eyJ")
            && (i == 0 || !is_b64url(bytes[i - 1]))
        {
            let end = i + bytes[i..]
                .iter()
                .take_while(|c| is_b64url(**c) || **c == b'.')
                .count();
            if text[i..end].matches('.').count() >= 2 {
                flush(&mut out, &mut copied, i, "[redacted-jwt]");
                i = end;
                copied = i;
                continue;
            }
        } else if b == b'@' {
            // The local part: back to a delimiter; the domain: on to one, with a dot in it.
            let start = text[copied..i]
                .rfind(|c: char| is_delimiter(c))
                .map_or(copied, |at| {
                    copied + at + text[copied + at..].chars().next().map_or(1, char::len_utf8)
                });
            let end = text[i + 1..]
                .find(|c: char| is_delimiter(c))
                .map_or(text.len(), |at| i + 1 + at);
            let domain = &text[i + 1..end];
            if start < i && domain.contains('.') {
                let first = text[start..i].chars().next().unwrap_or('?');
                let first = if first.is_ascii_alphanumeric() {
                    first
                } else {
                    '?'
                };
                flush(
                    &mut out,
                    &mut copied,
                    start,
                    &format!("{first}\u{2022}\u{2022}\u{2022}@"),
                );
                copied = i + 1;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

fn is_b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// What ends an email address in running text.
fn is_delimiter(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\''
                | '`'
                | '<'
                | '>'
                | '('
                | ')'
                | '['
                | ']'
                | ','
                | ';'
                | ':'
                | '='
                | '/'
                | '?'
                | '&'
                | '{'
                | '}'
                | '|'
                | '\\'
        )
}

/// A drain that masks every line before its inner drain sees it: the message and every value,
/// the logger's and the line's own ([`mask`]; the `uri` by [`redact_uri`]).
pub struct RedactTokens<D>(pub D);

impl<D: Drain> Drain for RedactTokens<D> {
    type Ok = D::Ok;
    type Err = D::Err;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<D::Ok, D::Err> {
        let redacted = OwnedKVList::from(OwnedKV(Redacted(values.clone())));
        let kv = RedactedRecordKv(record.kv());
        let statics = slog::RecordStatic {
            location: record.location(),
            level: record.level(),
            tag: record.tag(),
        };
        // Most messages are fixed text ("request completed") with nothing to mask: those pass
        // as they are, without being formatted here.
        let fixed = record
            .msg()
            .as_str()
            .filter(|m| matches!(mask(m), Cow::Borrowed(_)));
        if fixed.is_some() {
            return self.0.log(
                &Record::new(&statics, record.msg(), slog::BorrowedKV(&kv)),
                &redacted,
            );
        }
        let message = record.msg().to_string();
        let message = mask(&message);
        self.0.log(
            &Record::new(&statics, &format_args!("{message}"), slog::BorrowedKV(&kv)),
            &redacted,
        )
    }
}

struct Redacted(OwnedKVList);

impl KV for Redacted {
    fn serialize(&self, record: &Record<'_>, serializer: &mut dyn Serializer) -> slog::Result {
        self.0
            .serialize(record, &mut RedactingSerializer(serializer))
    }
}

struct RedactedRecordKv<'a>(slog::BorrowedKV<'a>);

impl KV for RedactedRecordKv<'_> {
    fn serialize(&self, record: &Record<'_>, serializer: &mut dyn Serializer) -> slog::Result {
        self.0
            .serialize(record, &mut RedactingSerializer(serializer))
    }
}

struct RedactingSerializer<'a>(&'a mut dyn Serializer);

/// Values only the server writes, never a client's text nor a secret (ids it generated,
/// addresses, statuses, timings, names of outcomes): passed on without formatting or scanning,
/// which on every request line is most of the masking's cost. Anything else is masked.
const SAFE_KEYS: &[&str] = &[
    "req_id",
    "remote_addr",
    "local_addr",
    "response_code",
    "latency_us",
    "operation_id",
    "problem_type",
    "outbox_id",
    "attempt",
    "outcome",
    "reply_code",
];

/// Passes typed values through as they are, so structured drains keep their types.
macro_rules! forward {
    ($($method:ident: $t:ty),* $(,)?) => {
        $(fn $method(&mut self, key: Key, val: $t) -> slog::Result {
            self.0.$method(key, val)
        })*
    };
}

impl Serializer for RedactingSerializer<'_> {
    fn emit_arguments(&mut self, key: Key, val: &fmt::Arguments<'_>) -> slog::Result {
        if SAFE_KEYS.iter().any(|safe| key == *safe) {
            return self.0.emit_arguments(key, val);
        }
        let text = val.to_string();
        self.emit_str(key, &text)
    }

    fn emit_str(&mut self, key: Key, val: &str) -> slog::Result {
        if SAFE_KEYS.iter().any(|safe| key == *safe) {
            return self.0.emit_str(key, val);
        }
        let val = if key == "uri" {
            redact_uri(val)
        } else {
            mask(val)
        };
        self.0.emit_str(key, &val)
    }

    fn emit_unit(&mut self, key: Key) -> slog::Result {
        self.0.emit_unit(key)
    }

    fn emit_none(&mut self, key: Key) -> slog::Result {
        self.0.emit_none(key)
    }

    forward!(
        emit_usize: usize, emit_isize: isize, emit_bool: bool, emit_char: char,
        emit_u8: u8, emit_i8: i8, emit_u16: u16, emit_i16: i16, emit_u32: u32, emit_i32: i32,
        emit_u64: u64, emit_i64: i64, emit_f32: f32, emit_f64: f64, emit_u128: u128, emit_i128: i128,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn the_token_in_a_lookup_path_and_query_values_are_redacted_and_nothing_else_is() {
        assert_eq!(
            redact_uri("/businesses/invitations/token/inv_1.abcdef?x=1"),
            "/businesses/invitations/token/[redacted]?x=[redacted]"
        );
        assert_eq!(
            redact_uri("/businesses/invitations/token/inv_1.abcdef"),
            "/businesses/invitations/token/[redacted]"
        );
        // dropshot routes paths as they are, but a log shows what was asked, in any case.
        assert_eq!(
            redact_uri("/Businesses/Invitations/TOKEN/inv_1.abcdef/x"),
            "/Businesses/Invitations/TOKEN/[redacted]/x"
        );
        assert_eq!(
            redact_uri("/accept?token=inv_1.abcdef&flag"),
            "/accept?token=[redacted]&flag"
        );
        assert_eq!(
            redact_uri("/businesses/me/invitations/inv_1/resend"),
            "/businesses/me/invitations/inv_1/resend"
        );
    }

    #[test]
    fn tokens_jwts_and_email_addresses_are_masked_wherever_they_appear() {
        let mac = "5f2b9c0d".repeat(8);
        assert_eq!(
            mask(&format!("bad token inv_1.{mac} here")),
            "bad token inv_1.[redacted] here"
        );
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl";
        assert_eq!(mask(&format!("Bearer {jwt}")), "Bearer [redacted-jwt]");
        assert_eq!(
            mask("refused ann.lee+x@example.com, and \"b@x.io\""),
            "refused a\u{2022}\u{2022}\u{2022}@example.com, and \"b\u{2022}\u{2022}\u{2022}@x.io\""
        );
        // Invisible and odd characters belong to the address they are in.
        assert_eq!(mask("a\u{200b}b@x.com"), "a\u{2022}\u{2022}\u{2022}@x.com");
        assert_eq!(mask("\u{1F600}@x.com"), "?\u{2022}\u{2022}\u{2022}@x.com");
        // Not addresses, not tokens: left alone.
        for plain in [
            "a @ b",
            "user@localhost",
            "v1.2.3",
            "inv_1.abc",
            "@x.com",
            "",
        ] {
            assert_eq!(mask(plain), plain);
        }
    }

    #[test]
    fn percent_encoded_secrets_are_read_decoded_and_masked() {
        let mac = "5f2b9c0d".repeat(8);
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl";
        assert_eq!(
            redact_uri("/businesses/me/invitations/ann%40example.com/resend"),
            "/businesses/me/invitations/a\u{2022}\u{2022}\u{2022}@example.com/resend"
        );
        assert_eq!(
            redact_uri(&format!("/nowhere/inv_1%2E{mac}")),
            "/nowhere/inv_1.[redacted]"
        );
        assert_eq!(
            redact_uri(&format!("/x/{}", jwt.replace('.', "%2e"))),
            "/x/[redacted-jwt]"
        );
        // Twice encoded, and the token segment itself encoded: the router decodes it.
        assert_eq!(
            mask("ann%2540example%252Ecom"),
            "a\u{2022}\u{2022}\u{2022}@example.com"
        );
        assert_eq!(
            redact_uri("/businesses/invitations/%74OKEN/inv_1.abc"),
            "/businesses/invitations/%74OKEN/[redacted]"
        );
        // Encoded text with nothing to mask stays as it was.
        for plain in ["/a%20b/c", "100%", "%zz@", "50%25.off"] {
            assert_eq!(mask(plain), plain);
        }
    }

    /// Collects every line's key-values as `key=value` text.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<String>>>);

    struct Text<'a>(&'a mut String);

    impl Serializer for Text<'_> {
        fn emit_arguments(&mut self, key: Key, val: &fmt::Arguments<'_>) -> slog::Result {
            self.0.push_str(&format!("{key}={val} "));
            Ok(())
        }
    }

    impl Drain for Capture {
        type Ok = ();
        type Err = slog::Never;

        fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
            let mut line = format!("{} ", record.msg());
            values.serialize(record, &mut Text(&mut line)).unwrap();
            record.kv().serialize(record, &mut Text(&mut line)).unwrap();
            self.0.lock().unwrap().push(line);
            Ok(())
        }
    }

    /// A writer that holds every line until the test opens the gate, so the queue fills.
    struct Gated {
        gate: Arc<(Mutex<bool>, std::sync::Condvar)>,
        lines: Capture,
        /// Lines the writer has taken off the queue.
        taken: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Drain for Gated {
        type Ok = ();
        type Err = slog::Never;

        fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
            self.taken.fetch_add(1, Ordering::SeqCst);
            let (open, cv) = &*self.gate;
            let mut open = open.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            drop(open);
            self.lines.log(record, values)
        }
    }

    #[test]
    fn a_full_queue_drops_lines_without_blocking_and_says_how_many() {
        let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let lines = Capture::default();
        let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let core = AsyncCore::custom(Gated {
            gate: gate.clone(),
            lines: lines.clone(),
            taken: taken.clone(),
        })
        .chan_size(4)
        .build();
        let log = slog::Logger::root(Counted::new(core), slog::o!());
        // The writer takes a first line and holds it at the gate, so that from now on nothing
        // leaves the queue until the test opens the gate, however the threads are scheduled.
        slog::info!(log, "first");
        while taken.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let before = dropped_log_lines();
        // Four lines fill the queue; the rest are refused, and logging them returns at once.
        for i in 0..50 {
            slog::info!(log, "line {}", i);
        }
        let dropped = dropped_log_lines() - before;
        // Open the gate before any assertion: a failing one would otherwise hang on the writer.
        {
            let (open, cv) = &*gate;
            *open.lock().unwrap() = true;
            cv.notify_all();
        }
        assert_eq!(dropped, 46);
        // Wait for the writer to drain the queue before logging the line that carries the report.
        while lines.0.lock().unwrap().len() < 1 + 4 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        slog::info!(log, "after");
        drop(log);
        let lines = lines.0.lock().unwrap().clone();
        let report = &lines[lines.len() - 2];
        assert!(
            report.starts_with("log queue full: lines dropped")
                && report.contains(&format!("dropped={dropped} ")),
            "{lines:?}"
        );
        assert!(lines[lines.len() - 1].starts_with("after"), "{lines:?}");
        // first, lines 0 to 3, the report, after.
        assert_eq!(lines.len(), 7, "{lines:?}");
    }

    #[test]
    fn request_lines_never_carry_an_acceptance_token() {
        let capture = Capture::default();
        let root = slog::Logger::root(RedactTokens(capture.clone()), slog::o!());
        // What dropshot does for each request: a child logger with the uri, then lines on it.
        let token = "inv_0123.5f2b9c0d";
        let request = root.new(slog::o!(
            "method" => "GET",
            "uri" => format!("/businesses/invitations/token/{token}"),
        ));
        slog::info!(request, "request completed"; "response_code" => 200u16);
        let plain = root.new(slog::o!("uri" => "/businesses/me/invitations"));
        slog::info!(plain, "request completed");
        let lines = capture.0.lock().unwrap().clone();
        assert_eq!(lines.len(), 2);
        assert!(!lines[0].contains(token), "{}", lines[0]);
        assert!(
            lines[0].contains("uri=/businesses/invitations/token/[redacted]")
                && lines[0].contains("response_code=200")
                && lines[0].contains("method=GET"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].contains("uri=/businesses/me/invitations "),
            "{}",
            lines[1]
        );
    }
}
