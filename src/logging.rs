//! The process's logger. dropshot logs through slog and puts each request's `uri` on every line
//! it writes for that request. Acceptance tokens are credentials and, by Leadping's contract,
//! travel in a path (`GET /businesses/invitations/token/{token}`), so the logger rewrites that
//! value before any line is written: logs are read by more people than may accept invitations.

use std::borrow::Cow;
use std::fmt;

use dropshot::{ConfigLogging, ConfigLoggingLevel};
use slog::{Drain, KV, Key, OwnedKV, OwnedKVList, Record, Serializer};

/// The process's logger: dropshot's terminal logger behind [`RedactTokens`].
pub fn logger(level: &ConfigLoggingLevel) -> anyhow::Result<slog::Logger> {
    let inner = ConfigLogging::StderrTerminal {
        level: level.clone(),
    }
    .to_logger("leadping-invitations")
    .map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))?;
    Ok(slog::Logger::root(RedactTokens(inner), slog::o!()))
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
