//! The exporter's log: one line per event on stderr, as text, JSON lines or logfmt.

use crate::config::{LogFormat, LogLevel};

/// Log to stderr, one line per event. `level` applies to the exporter's own events; the AWS
/// SDK's stay at `warn`. `RUST_LOG`, when set, replaces both, except that the request signer and
/// the SDK's orchestrator are never logged below `info` (at debug and trace they print canonical
/// requests and the credentials' access key ids).
/// Colour only on a terminal (text). JSON lines come from [`JsonLines`], logfmt from [`Logfmt`].
pub fn init_logging(format: LogFormat, level: LogLevel) {
    use std::io::IsTerminal;
    let level = level.as_str();
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => tracing_subscriber::EnvFilter::new(v),
        _ => tracing_subscriber::EnvFilter::new(format!("warn,aws_root_exporter={level},aws_org_simulator={level}")),
    }
    .add_directive("aws_sigv4=info".parse().expect("a valid directive"))
    .add_directive(
        "aws_smithy_runtime::client::orchestrator=info"
            .parse()
            .expect("a valid directive"),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.event_format(JsonLines).try_init(),
        LogFormat::Logfmt => builder.event_format(Logfmt).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// One JSON object per event, in tracing-subscriber's JSON shape (`timestamp`, `level`,
/// `fields` with `message`, `target`, and `spans` when there are any), except that a field
/// recorded with `?` whose Debug form is a quoted string (`account_name = ?name`, which keeps
/// hostile names on one line in text logs) is the JSON string of its content: `"prod"`, not
/// `"\"prod\""`. Numbers and booleans stay JSON numbers and booleans.
pub struct JsonLines;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use serde_json::{Map, Value};
        let (timestamp, pairs) = time_and_fields(event)?;
        let fields: Map<String, Value> = pairs.into_iter().collect();
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(timestamp));
        line.insert("level".into(), Value::String(meta.level().to_string()));
        line.insert("fields".into(), Value::Object(fields));
        line.insert("target".into(), Value::String(meta.target().to_string()));
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<Value> = scope.from_root().map(|s| Value::String(s.name().to_string())).collect();
            line.insert("spans".into(), Value::Array(spans));
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// The time of an event (RFC 3339, UTC) and its fields as JSON values, in their order.
fn time_and_fields(event: &tracing::Event<'_>) -> Result<(String, Vec<(String, serde_json::Value)>), std::fmt::Error> {
    use tracing_subscriber::fmt::time::FormatTime;
    let mut time = String::new();
    tracing_subscriber::fmt::time::SystemTime
        .format_time(&mut tracing_subscriber::fmt::format::Writer::new(&mut time))?;
    let mut fields = Vec::new();
    event.record(&mut JsonFields(&mut fields));
    Ok((time, fields))
}

/// Records an event's fields as JSON values, in the order the event gives them.
struct JsonFields<'a>(&'a mut Vec<(String, serde_json::Value)>);

impl tracing::field::Visit for JsonFields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        let value = debug_string(&text).unwrap_or(text);
        self.0.push((field.name().into(), serde_json::Value::String(value)));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name().into(), value.into()));
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.push((field.name().into(), value.into()));
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.push((field.name().into(), value.into()));
    }

    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.push((field.name().into(), value.into()));
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.push((field.name().into(), value.into()));
    }
}

/// The content of a string in Rust's Debug form (`"say \"hi\"\n"`), or `None` when `text` is
/// not one (a struct, a number, an `Option`, or a quote inside that is not escaped).
fn debug_string(text: &str) -> Option<String> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return None,
            '\\' => out.push(match chars.next()? {
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                '0' => '\0',
                '\\' => '\\',
                '"' => '"',
                '\'' => '\'',
                'u' => {
                    let hex: String = chars.by_ref().skip(1).take_while(|c| *c != '}').collect();
                    char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
                }
                _ => return None,
            }),
            c => out.push(c),
        }
    }
    Some(out)
}

/// One logfmt line per event, as Prometheus's promslog prints them:
/// `time=2026-12-04T20:30:00.123Z level=INFO source=aws_root_exporter::refresh msg="refresh finished" audited=12`.
/// Values with a space, `=`, `"`, a backslash or a control character, and empty ones, are quoted,
/// with `\"`, `\\`, `\n`, `\r`, `\t` escaped: a hostile account name stays inside its value
/// on one line. Fields logged with `?` that are Debug strings are written as their content.
pub struct Logfmt;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Logfmt
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let (time, mut fields) = time_and_fields(event)?;
        let meta = event.metadata();
        let message = match fields.iter().position(|(k, _)| k == "message") {
            Some(i) => match fields.remove(i).1 {
                serde_json::Value::String(m) => m,
                other => other.to_string(),
            },
            None => String::new(),
        };
        let mut line = format!(
            "time={} level={} source={} msg={}",
            logfmt_value(&time),
            meta.level(),
            logfmt_value(meta.target()),
            logfmt_value(&message)
        );
        for (key, value) in fields {
            let value = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            line.push_str(&format!(" {key}={}", logfmt_value(&value)));
        }
        writeln!(writer, "{line}")
    }
}

/// A logfmt value: bare when it can be, else quoted with escapes.
fn logfmt_value(value: &str) -> String {
    let bare = !value.is_empty()
        && !value
            .chars()
            .any(|c| c == ' ' || c == '=' || c == '"' || c == '\\' || c.is_control());
    if bare {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_strings_are_read_back() {
        for original in [
            "prod",
            "say \"hi\" \\ back",
            "two\nlines\tand {x=\"1\"}",
            "ünïcødé ✓ 🔑",
            "bell\u{7}",
            "",
        ] {
            assert_eq!(
                debug_string(&format!("{original:?}")).as_deref(),
                Some(original),
                "{original:?}"
            );
        }
        for not_a_string in [
            "Some(\"x\")",
            "42",
            "\"a\" and \"b\"",
            "\"",
            "\"bad \\q escape\"",
            "1.5s",
        ] {
            assert_eq!(debug_string(not_a_string), None, "{not_a_string}");
        }
    }

    /// What events logged by `log` come out as through the real layer with `format`.
    fn captured<F>(format: F, log: impl FnOnce()) -> String
    where
        F: for<'w> tracing_subscriber::fmt::FormatEvent<
                tracing_subscriber::Registry,
                tracing_subscriber::fmt::format::DefaultFields,
            > + Send
            + Sync
            + 'static,
    {
        #[derive(Clone, Default)]
        struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .event_format(format)
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// The JSON lines of events logged by `log`, through the real layer.
    fn json_lines(log: impl FnOnce()) -> Vec<serde_json::Value> {
        captured(JsonLines, log)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn json_log_fields_are_json_strings_numbers_and_booleans() {
        let hostile = "two\nlines \"q\" \\";
        let lines = json_lines(|| {
            let span = tracing::info_span!("refresh");
            let _entered = span.enter();
            tracing::info!(
                account_name = ?"prod",
                hostile = ?hostile,
                id = %"111111111111",
                duration = ?std::time::Duration::from_millis(1500),
                count = 3u64,
                ok = true,
                "audit finished"
            );
        });
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        let fields = &line["fields"];
        assert_eq!(fields["account_name"], "prod");
        assert_eq!(fields["hostile"], hostile);
        assert_eq!(fields["id"], "111111111111");
        assert_eq!(fields["duration"], "1.5s");
        assert_eq!(fields["count"], 3);
        assert_eq!(fields["ok"], true);
        assert_eq!(fields["message"], "audit finished");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["spans"], serde_json::json!(["refresh"]));
        assert!(line["timestamp"].as_str().unwrap().starts_with("20"), "{line}");
        assert_eq!(line["target"], "aws_root_exporter::logging::tests");
    }

    #[test]
    fn logfmt_lines_keep_hostile_values_inside_their_quotes() {
        let text = captured(Logfmt, || {
            tracing::warn!(account_name = ?"two\nlines \"q\" \\ x=1", account_id = %"111111111111", count = 3u64, "root audit failed");
        });
        assert_eq!(text.lines().count(), 1, "{text}");
        let line = text.trim_end();
        assert!(
            line.starts_with("time=")
                && line.contains(" level=WARN source=aws_root_exporter::logging::tests msg=\"root audit failed\""),
            "{line}"
        );
        assert!(
            line.ends_with(r#" account_name="two\nlines \"q\" \\ x=1" account_id=111111111111 count=3"#),
            "{line}"
        );
        assert_eq!(logfmt_value(""), "\"\"");
        assert_eq!(logfmt_value("plain"), "plain");
        assert_eq!(logfmt_value("bell\u{7}"), "\"bell\\u{0007}\"");
    }
}
