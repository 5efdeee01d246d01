//! The shape of the web configuration file, as exporter-toolkit defines it
//! (`docs/web-configuration.md` there): YAML, unknown keys refused. Only reading and shape here;
//! what the values mean is checked in [`super::WebConfig::load`].

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file. Every section may be absent or empty.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub tls_server_config: Option<RawTls>,
    #[serde(default)]
    pub http_server_config: Option<RawHttp>,
    /// User name -> bcrypt hash.
    #[serde(default, deserialize_with = "unique_keys")]
    pub basic_auth_users: Option<BTreeMap<String, Option<String>>>,
    /// exporter-toolkit's request rate limiter: read only to refuse it by name.
    #[serde(default)]
    pub rate_limit: Option<serde_norway::Value>,
}

/// `tls_server_config`. Strings are optional so that `key:` with no value reads as unset, as in
/// exporter-toolkit.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    /// The certificate chain, inline PEM.
    pub cert: Option<String>,
    /// The private key, inline PEM. A secret: never shown.
    pub key: Option<String>,
    /// The CA certificates for client certificates, inline PEM.
    pub client_ca: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub client_ca_file: Option<String>,
    pub client_auth_type: Option<String>,
    pub client_allowed_sans: Option<Vec<String>>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    pub cipher_suites: Option<Vec<String>>,
    pub prefer_server_cipher_suites: Option<bool>,
    pub curve_preferences: Option<Vec<String>>,
}

/// `http_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    /// Accepted for compatibility and not used: the server speaks HTTP/1.1 only.
    #[allow(dead_code)]
    pub http2: Option<bool>,
    #[serde(default, deserialize_with = "unique_keys")]
    pub headers: Option<BTreeMap<String, Option<String>>>,
}

/// A mapping of strings whose keys appear once (a second `alice:` is a mistake, not an update;
/// exporter-toolkit's strict YAML refuses it too), or nothing.
fn unique_keys<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<BTreeMap<String, Option<String>>>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Option<BTreeMap<String, Option<String>>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a mapping of names to strings")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((key, value)) = map.next_entry::<String, Option<String>>()? {
                if out.contains_key(&key) {
                    return Err(serde::de::Error::custom("duplicate key (each name may appear once)"));
                }
                out.insert(key, value);
            }
            Ok(Some(out))
        }
    }
    d.deserialize_any(Visitor)
}

/// How deep `[` and `{` may nest. The web configuration nests two levels; the YAML parser takes
/// time that grows with the square of the depth (100,000 levels: half a minute).
const MAX_FLOW_DEPTH: usize = 32;

/// Parse the file's text. An empty file (or only comments) is an empty configuration, as in
/// exporter-toolkit. The error is serde's message with its position, on one line, with every
/// value of the file it quotes cut out (see [`redact`]).
pub(super) fn parse(text: &str) -> Result<RawFile, String> {
    let empty = text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    });
    if empty {
        return Ok(RawFile::default());
    }
    check_depth(text)?;
    serde_norway::from_str::<Option<RawFile>>(text)
        .map(Option::unwrap_or_default)
        .map_err(|e| {
            redact(&e.to_string().replace('\n', " "))
                .replace("struct RawFile", "a mapping of the web configuration's keys")
                .replace("struct RawTls", "a mapping of tls_server_config's keys")
                .replace("struct RawHttp", "a mapping of http_server_config's keys")
        })
}

/// Refuse `[` and `{` nested deeper than [`MAX_FLOW_DEPTH`] (outside quotes and comments), before
/// the YAML parser sees them.
fn check_depth(text: &str) -> Result<(), String> {
    let (mut depth, mut line) = (0usize, 1usize);
    let (mut single, mut double, mut comment, mut escaped) = (false, false, false, false);
    let mut previous = '\n';
    for c in text.chars() {
        if c == '\n' {
            line += 1;
            comment = false;
            single = single && depth > 0; // a quoted scalar spans lines only inside flows
            double = double && depth > 0;
        } else if comment {
        } else if double {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => double = false,
                _ => {}
            }
        } else if single {
            single = c != '\'';
        } else {
            match c {
                '#' if previous.is_whitespace() => comment = true,
                '"' => double = true,
                '\'' => single = true,
                '[' | '{' => {
                    depth += 1;
                    if depth > MAX_FLOW_DEPTH {
                        return Err(format!(
                            "`[` or `{{` nested more than {MAX_FLOW_DEPTH} levels deep at line {line}"
                        ));
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        previous = c;
    }
    Ok(())
}

/// serde's message without any value of the file: `string "..."` (and a number, a boolean, a
/// character) becomes the type alone, a quoted name stays only when it looks like a key of the
/// format (`keyfile`, not a line of a key or a hash), and a key path stays only when it is plain.
/// A password, a bcrypt hash or PEM text pasted in the wrong place never reaches the log.
pub(super) fn redact(message: &str) -> String {
    let keyish = |s: &str| {
        !s.is_empty()
            && s.len() <= 40
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    // The key path serde puts first (`tls_server_config.cert_file: ...`).
    if let Some((path, tail)) = rest.split_once(": ")
        && !path.contains(' ')
    {
        // Each segment short: a map key (a user name) could be a line of a key pasted there.
        let plain = path.split('.').all(|segment| segment.len() <= 32)
            && path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '[' | ']' | '@' | '+'));
        out.push_str(if plain { path } else { "(a key not shown)" });
        out.push_str(": ");
        rest = tail;
    }
    while let Some(i) = rest.find(['"', '`']) {
        let quote = rest[i..].chars().next().unwrap_or('"');
        let before = &rest[..i];
        let after = &rest[i + 1..];
        // The end of the quoted part: the next unescaped quote of the same kind.
        let mut end = None;
        let mut escaped = false;
        for (j, c) in after.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quote == '"' => escaped = true,
                c if c == quote => {
                    end = Some(j);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else {
            out.push_str(before);
            out.push_str("(not shown)");
            return out;
        };
        let inner = &after[..end];
        // `invalid type: string "..."`, `integer `5``: keep the type, drop the value.
        let typed = ["string ", "integer ", "floating point ", "boolean ", "character "]
            .iter()
            .any(|t| before.ends_with(t));
        if typed {
            out.push_str(before.trim_end());
        } else if keyish(inner) {
            out.push_str(before);
            out.push(quote);
            out.push_str(inner);
            out.push(quote);
        } else {
            out.push_str(before);
            out.push_str("(not shown)");
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_files_and_sections_are_an_empty_configuration() {
        for text in ["", "# nothing\n", "---\n", "tls_server_config:\nbasic_auth_users:\n"] {
            let f = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!(
                f.tls_server_config.is_none() && f.basic_auth_users.is_none(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_their_place() {
        let e = parse("tls_server_config:\n  cert_file: a\n  certfile: b\n").unwrap_err();
        assert!(e.contains("certfile") && e.contains("line 3"), "{e}");
        let e = parse("basic_auth: {}\n").unwrap_err();
        assert!(e.contains("basic_auth") && e.contains("basic_auth_users"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = "[".repeat(100_000);
        let e = parse(&format!("basic_auth_users: {deep}\n")).unwrap_err();
        assert!(e.contains("nested more than 32 levels") && e.contains("line 1"), "{e}");
        let e = parse(&format!("a: 1\nb: {}\n", "{".repeat(33))).unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        // Brackets in quotes and comments are text.
        let quoted = format!(
            "http_server_config:\n  headers:\n    Content-Security-Policy: \"{}\" # {}\n",
            "[".repeat(40),
            "{".repeat(40)
        );
        parse(&quoted).unwrap();
        parse("tls_server_config:\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n").unwrap();
    }

    #[test]
    fn errors_never_quote_a_value_of_the_file() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nabcdEFGHijklMNOPqrstUVWXyz0123456789abcdefghijklmnop\n-----END PRIVATE KEY-----\n";
        let hash = "$2y$10$pQc88oiAvVu09YRYZtgjy.t5X19LsZ/qRm4blFxVrBfLkD4FPhvDS";
        for (text, secrets) in [
            (pem.to_string(), vec!["MIIEvQ", "abcdEFGH", "BEGIN"]),
            (format!("basic_auth_users: \"{hash}\"\n"), vec!["pQc88", "$2y$"]),
            (format!("basic_auth_users: {hash}\n"), vec!["pQc88"]),
            ("basic_auth_users: hunter2\n".to_string(), vec!["hunter2"]),
            ("basic_auth_users:\n  alice: [hunter2]\n".to_string(), vec!["hunter2"]),
            ("tls_server_config: 123456789\n".to_string(), vec!["123456789"]),
            (format!("{hash}: 1\n"), vec!["pQc88"]),
            (
                "tls_server_config:\n  MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw: x\n".to_string(),
                vec!["MIIEvQ"],
            ),
            (
                "basic_auth_users:\n  MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7: [x]\n".to_string(),
                vec!["MIIEvQ"],
            ),
        ] {
            let e = parse(&text).unwrap_err();
            for secret in secrets {
                assert!(!e.contains(secret), "{secret} in {e}");
            }
            assert!(
                e.contains("line") || e.contains("invalid type") || e.contains("unknown field"),
                "{e}"
            );
        }
        let e = parse("basic_auth_users: \"x\"\n").unwrap_err();
        assert!(
            e.contains("basic_auth_users") && e.contains("invalid type: string, expected"),
            "{e}"
        );
    }

    /// Shapes that make YAML parsers slow or big, at the file size limit: each is refused (the
    /// time they take is bounded by the size cap and the nesting limit; about half a second at
    /// most in a debug build).
    #[test]
    fn adversarial_shapes_at_the_size_limit_are_refused() {
        let mb = 1024 * 1024;
        let mut aliases = String::from("rate_limit:\n  a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..20 {
            let p = i - 1;
            aliases += &format!("  a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n");
        }
        for (name, text) in [
            ("compact sequences", "- ".repeat(mb / 2)),
            ("complex keys", "? ".repeat(mb / 2)),
            (
                "indentation",
                (0..1400).map(|i| format!("{}a{i}:\n", " ".repeat(i))).collect(),
            ),
            ("alias expansion", aliases),
            ("flow nesting", "[".repeat(mb)),
        ] {
            assert!(parse(&text).is_err(), "{name}");
        }
    }

    #[test]
    fn duplicate_users_are_refused() {
        let e = parse("basic_auth_users:\n  a: x\n  a: y\n").unwrap_err();
        assert!(e.contains("duplicate"), "{e}");
    }
}
