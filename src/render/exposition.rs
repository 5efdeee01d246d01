//! Writing metric families as OpenMetrics text, with label values and help texts escaped as
//! the format requires: any string from AWS or a user (an account name with a quote, a
//! backslash or a newline) stays inside its label value.

use std::fmt::Write;

/// A sample value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(i64::from(v))
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

/// Append `s` escaped for a label value: `\` -> `\\`, `"` -> `\"`, newline -> `\n`. The same
/// rule holds in the Prometheus text format 0.0.4 and OpenMetrics.
pub fn escape_label_value(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Append `s` escaped for a `# HELP` line (OpenMetrics: `\\`, `\"`, `\n`).
fn escape_help(out: &mut String, s: &str) {
    escape_label_value(out, s);
}

fn write_value(out: &mut String, v: Value) {
    match v {
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) if f.is_nan() => out.push_str("NaN"),
        Value::Float(f) if f.is_infinite() => out.push_str(if f > 0.0 { "+Inf" } else { "-Inf" }),
        Value::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
    }
}

/// Writes gauge families into a `String`, or in chunks of about [`CHUNK`] bytes to a sink (so
/// that a large exposition is never whole in memory).
#[derive(Default)]
pub struct Writer<'s> {
    out: String,
    sink: Option<&'s mut dyn FnMut(&str)>,
}

/// Size of the chunks a streaming [`Writer`] hands to its sink.
pub const CHUNK: usize = 64 * 1024;

impl std::fmt::Debug for Writer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("buffered", &self.out.len())
            .field("streaming", &self.sink.is_some())
            .finish()
    }
}

impl<'s> Writer<'s> {
    /// A writer that hands its text to `sink` in chunks of whole lines.
    pub fn streaming(sink: &'s mut dyn FnMut(&str)) -> Self {
        Writer {
            out: String::with_capacity(CHUNK + 4096),
            sink: Some(sink),
        }
    }

    /// What was written (for a streaming writer: what was not yet handed to the sink, which
    /// gets it now, leaving the returned string empty).
    pub fn into_string(mut self) -> String {
        if let Some(sink) = self.sink.take() {
            sink(&self.out);
            self.out.clear();
        }
        self.out
    }

    fn line_done(&mut self) {
        if self.out.len() >= CHUNK
            && let Some(sink) = self.sink.as_mut()
        {
            sink(&self.out);
            self.out.clear();
        }
    }

    /// `# HELP` and `# TYPE` lines of a gauge family.
    pub fn gauge(&mut self, name: &str, help: &str) {
        self.family(name, help, "gauge");
    }

    /// `# HELP` and `# TYPE` lines of a counter family, OpenMetrics style: `name` without
    /// `_total`, which its samples carry (`openmetrics_to_text` renames it for the text format).
    pub fn counter(&mut self, name: &str, help: &str) {
        self.family(name, help, "counter");
    }

    fn family(&mut self, name: &str, help: &str, kind: &str) {
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        escape_help(&mut self.out, help);
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind);
        self.out.push('\n');
        self.line_done();
    }

    /// One sample; `names` and `values` pair up.
    pub fn sample<'v>(&mut self, name: &str, names: &[&str], values: impl IntoIterator<Item = &'v str>, value: Value) {
        self.out.push_str(name);
        if !names.is_empty() {
            self.out.push('{');
            let mut values = values.into_iter();
            for (i, n) in names.iter().enumerate() {
                let v = values.next().unwrap_or_default();
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(n);
                self.out.push_str("=\"");
                escape_label_value(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        write_value(&mut self.out, value);
        self.out.push('\n');
        self.line_done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut w = Writer::default();
        w.sample(
            "m",
            &["a", "b"],
            ["say \"hi\" \\ back", "two\nlines\t{x=1}"],
            Value::Int(1),
        );
        assert_eq!(
            w.into_string(),
            "m{a=\"say \\\"hi\\\" \\\\ back\",b=\"two\\nlines\t{x=1}\"} 1\n"
        );
    }

    #[test]
    fn a_streaming_writer_hands_out_whole_lines_and_everything() {
        let mut chunks: Vec<String> = Vec::new();
        let mut sink = |c: &str| chunks.push(c.to_string());
        let mut w = Writer::streaming(&mut sink);
        let mut whole = Writer::default();
        for i in 0..20_000 {
            let name = format!("n{i}");
            w.sample("m", &["a"], [name.as_str()], Value::Int(i));
            whole.sample("m", &["a"], [name.as_str()], Value::Int(i));
        }
        assert!(w.into_string().is_empty());
        assert!(chunks.len() > 2, "{} chunks", chunks.len());
        assert!(chunks.iter().all(|c| c.ends_with('\n') && c.len() < CHUNK + 100));
        assert_eq!(chunks.concat(), whole.into_string());
    }

    #[test]
    fn values_are_written_as_prometheus_reads_them() {
        let mut w = Writer::default();
        w.sample("m", &[], [], Value::Float(3600.0));
        w.sample("m", &[], [], Value::Float(f64::NAN));
        w.sample("m", &[], [], Value::Float(f64::INFINITY));
        w.sample("m", &[], [], Value::from(true));
        assert_eq!(w.into_string(), "m 3600.0\nm NaN\nm +Inf\nm 1\n");
    }
}
