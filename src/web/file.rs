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
                    return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
                }
                out.insert(key, value);
            }
            Ok(Some(out))
        }
    }
    d.deserialize_any(Visitor)
}

/// Parse the file's text. An empty file (or only comments) is an empty configuration, as in
/// exporter-toolkit. The error is serde's message with its position, on one line.
pub(super) fn parse(text: &str) -> Result<RawFile, String> {
    let empty = text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    });
    if empty {
        return Ok(RawFile::default());
    }
    serde_norway::from_str::<Option<RawFile>>(text)
        .map(Option::unwrap_or_default)
        .map_err(|e| e.to_string().replace('\n', " "))
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
    fn duplicate_users_are_refused() {
        let e = parse("basic_auth_users:\n  a: x\n  a: y\n").unwrap_err();
        assert!(e.contains("duplicate"), "{e}");
    }
}
