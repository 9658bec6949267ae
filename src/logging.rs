//! The process's logger. dropshot logs through slog and puts each request's `uri` on every line
//! it writes for that request. Acceptance tokens are credentials and, by Leadping's contract,
//! travel in a path (`GET /businesses/invitations/token/{token}`), so the logger rewrites that
//! value before any line is written: logs are read by more people than may accept invitations.
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

/// The process's logger: acceptance tokens redacted ([`RedactTokens`]), filtered by `level`,
/// queued to the writer thread ([`Counted`]). Human-readable lines on stderr, coloured on a
/// terminal.
pub fn logger(level: &ConfigLoggingLevel) -> anyhow::Result<slog::Logger> {
    let core = if std::io::stderr().is_terminal() {
        let format =
            slog_term::FullFormat::new(slog_term::TermDecorator::new().stderr().build()).build();
        queue(format.ignore_res())
    } else {
        let out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
        let format = slog_term::FullFormat::new(slog_term::PlainDecorator::new(out)).build();
        queue(format.ignore_res())
    };
    let drain = slog::LevelFilter(Counted::new(core), Level::from(level)).ignore_res();
    Ok(slog::Logger::root(RedactTokens(drain), slog::o!()))
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

const TOKEN_PATH: &str = "/businesses/invitations/token/";

/// `uri` with the acceptance token in it replaced by `[redacted]`.
pub fn redact_uri(uri: &str) -> Cow<'_, str> {
    let Some(at) = uri.find(TOKEN_PATH) else {
        return Cow::Borrowed(uri);
    };
    let start = at + TOKEN_PATH.len();
    let end = uri[start..]
        .find(['?', '#'])
        .map_or(uri.len(), |i| start + i);
    Cow::Owned(format!("{}[redacted]{}", &uri[..start], &uri[end..]))
}

/// A drain that hands its inner drain the logger's key-values with `uri` redacted.
pub struct RedactTokens<D>(pub D);

impl<D: Drain> Drain for RedactTokens<D> {
    type Ok = D::Ok;
    type Err = D::Err;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<D::Ok, D::Err> {
        let redacted = OwnedKVList::from(OwnedKV(Redacted(values.clone())));
        self.0.log(record, &redacted)
    }
}

struct Redacted(OwnedKVList);

impl KV for Redacted {
    fn serialize(&self, record: &Record<'_>, serializer: &mut dyn Serializer) -> slog::Result {
        self.0
            .serialize(record, &mut RedactingSerializer(serializer))
    }
}

struct RedactingSerializer<'a>(&'a mut dyn Serializer);

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
        if key == "uri" {
            return self.0.emit_str(key, &redact_uri(&val.to_string()));
        }
        self.0.emit_arguments(key, val)
    }

    fn emit_str(&mut self, key: Key, val: &str) -> slog::Result {
        let val = if key == "uri" {
            redact_uri(val)
        } else {
            Cow::Borrowed(val)
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
    fn the_token_in_a_lookup_path_is_redacted_and_nothing_else_is() {
        assert_eq!(
            redact_uri("/businesses/invitations/token/inv_1.abcdef?x=1"),
            "/businesses/invitations/token/[redacted]?x=1"
        );
        assert_eq!(
            redact_uri("/businesses/invitations/token/inv_1.abcdef"),
            "/businesses/invitations/token/[redacted]"
        );
        assert_eq!(
            redact_uri("/businesses/me/invitations/inv_1/resend"),
            "/businesses/me/invitations/inv_1/resend"
        );
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
    }

    impl Drain for Gated {
        type Ok = ();
        type Err = slog::Never;

        fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
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
        let core = AsyncCore::custom(Gated {
            gate: gate.clone(),
            lines: lines.clone(),
        })
        .chan_size(4)
        .build();
        let log = slog::Logger::root(Counted::new(core), slog::o!());
        let before = dropped_log_lines();
        // Four lines fill the queue (a fifth if the writer took one before blocking on it);
        // the rest are refused, and logging them returns at once.
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
        assert!((45..=46).contains(&dropped), "dropped {dropped}");
        // Wait for the writer to drain the queue before logging the line that carries the report.
        while lines.0.lock().unwrap().len() < (50 - dropped) as usize {
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
        assert_eq!(lines.len() as u64, 50 - dropped + 2);
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
