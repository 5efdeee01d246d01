//! One `/metrics` answer, parsed with a real OpenMetrics parser, and the per-account view the
//! checks read.

use std::collections::BTreeMap;

use openmetrics_parser::openmetrics::parse_openmetrics;
use openmetrics_parser::{OpenMetricsType, OpenMetricsValue};

use super::world::{DEEP_OPERATIONS, Normalised, credential_families, number};

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone)]
pub struct Scrape {
    pub text: String,
    /// Sample name (counters with `_total`) -> samples.
    pub families: BTreeMap<String, Vec<(Labels, f64)>>,
}

/// The family listing every account of the organization.
pub const INFO_FAMILY: &str = "aws_organizations_account_info";

/// Families about accounts whose samples make up a snapshot's per-account section.
const ACCOUNT_STATUS_FAMILIES: [&str; 5] = [
    INFO_FAMILY,
    "aws_root_audit_success",
    "aws_root_audit_failure_reason",
    "aws_root_audit_last_success_timestamp_seconds",
    "aws_root_audit_operation_failure",
];

impl Scrape {
    pub fn parse(text: String) -> Result<Scrape, String> {
        let (parseable, empty) = without_empty_families(&text)?;
        let parsed = parse_openmetrics(&parseable).map_err(|e| format!("not valid OpenMetrics: {e:?}"))?;
        let mut families: BTreeMap<String, Vec<(Labels, f64)>> =
            empty.into_iter().map(|name| (name, Vec::new())).collect();
        for family in parsed.families.values() {
            let name = match family.family_type {
                OpenMetricsType::Counter => format!("{}_total", family.family_name),
                _ => family.family_name.clone(),
            };
            let mut samples = Vec::new();
            for s in family.iter_samples() {
                let labels: Labels = s
                    .get_labelset()
                    .map_err(|e| format!("{name}: {e:?}"))?
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let value = match &s.value {
                    OpenMetricsValue::Gauge(n) | OpenMetricsValue::Unknown(n) => n.as_f64(),
                    OpenMetricsValue::Counter(c) => c.value.as_f64(),
                    other => return Err(format!("{name}: unexpected sample {other:?}")),
                };
                samples.push((labels, value));
            }
            families.insert(name, samples);
        }
        Ok(Scrape { text, families })
    }

    pub fn samples(&self, family: &str) -> &[(Labels, f64)] {
        self.families.get(family).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The samples of the family that lists every account.
    pub fn info(&self) -> &[(Labels, f64)] {
        self.samples(INFO_FAMILY)
    }

    /// The value of the one sample of `family` whose labels include `labels`.
    pub fn value(&self, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples(family)
            .iter()
            .find(|(l, _)| labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
            .map(|(_, v)| *v)
    }

    /// Finished refreshes, both results.
    pub fn refreshes(&self) -> u64 {
        self.samples("aws_root_exporter_refreshes_total")
            .iter()
            .map(|(_, v)| *v as u64)
            .sum()
    }

    /// What tells one snapshot from another.
    pub fn fingerprint(&self) -> String {
        [
            "aws_root_exporter_refresh_duration_seconds",
            "aws_root_exporter_refresh_success",
            "aws_root_exporter_last_refresh_success_timestamp_seconds",
        ]
        .iter()
        .map(|f| format!("{f}={:?}", self.value(f, &[])))
        .collect::<Vec<_>>()
        .join(" ")
    }

    /// Every sample about accounts and the organization, one line each, sorted: what a refresh
    /// whose discovery failed must serve unchanged.
    pub fn account_section(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (name, samples) in &self.families {
            let about_accounts = ACCOUNT_STATUS_FAMILIES.contains(&name.as_str())
                || credential_families().contains(&name.as_str())
                || name == "aws_organizations_feature_enabled";
            if !about_accounts {
                continue;
            }
            for (labels, v) in samples {
                lines.push(format!("{name}{labels:?} {}", number(*v)));
            }
        }
        lines.sort();
        lines
    }

    pub fn account(&self, id: &str) -> AccountView {
        let mine = |family: &str| -> Vec<(Labels, f64)> {
            let samples = self.samples(family);
            samples
                .iter()
                .filter(|(l, _)| l.get("account_id").map(String::as_str) == Some(id))
                .map(|(l, v)| {
                    let mut l = l.clone();
                    l.remove("account_id");
                    l.remove("account_name");
                    (l, *v)
                })
                .collect()
        };
        let one = |family: &str| mine(family).first().map(|(_, v)| *v);
        let mut credentials = BTreeMap::new();
        for family in credential_families() {
            let samples = mine(family);
            if !samples.is_empty() {
                credentials.insert(family.to_string(), samples);
            }
        }
        AccountView {
            info: mine(INFO_FAMILY).into_iter().map(|(l, _)| l).collect(),
            success: one("aws_root_audit_success"),
            reasons: mine("aws_root_audit_failure_reason")
                .into_iter()
                .map(|(l, v)| (l.get("reason").cloned().unwrap_or_default(), v))
                .collect(),
            last_success: one("aws_root_audit_last_success_timestamp_seconds"),
            credentials,
            failed_operations: mine("aws_root_audit_operation_failure")
                .into_iter()
                .map(|(l, v)| {
                    (
                        l.get("operation").cloned().unwrap_or_default(),
                        l.get("reason").cloned().unwrap_or_default(),
                        v,
                    )
                })
                .collect(),
        }
    }
}

/// Everything `/metrics` says about one account.
#[derive(Debug, Clone)]
pub struct AccountView {
    /// Labels (beyond account_id / account_name) of its `aws_organizations_account_info` samples.
    pub info: Vec<Labels>,
    pub success: Option<f64>,
    /// `aws_root_audit_failure_reason`: (reason, value).
    pub reasons: Vec<(String, f64)>,
    pub last_success: Option<f64>,
    /// Credential family -> samples (labels beyond the account's).
    pub credentials: BTreeMap<String, Vec<(Labels, f64)>>,
    /// (operation, reason, value).
    pub failed_operations: Vec<(String, String, f64)>,
}

impl AccountView {
    /// How the exporter audits it (`method` of the info family), when it says.
    pub fn method(&self) -> Option<&str> {
        self.info.first()?.get("method").map(String::as_str)
    }

    /// The credential samples as exact text, for comparing two scrapes.
    pub fn credentials_text(&self) -> String {
        let mut lines: Vec<String> = self
            .credentials
            .iter()
            .flat_map(|(f, samples)| samples.iter().map(move |(l, v)| format!("{f}{l:?} {}", number(*v))))
            .collect();
        lines.sort();
        lines.join("\n")
    }

    /// The credential samples with access key ids replaced by `*` (see `Root::expected`).
    pub fn normalised(&self) -> Normalised {
        let mut out: Normalised = BTreeMap::new();
        for (family, samples) in &self.credentials {
            for (labels, v) in samples {
                let labels: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| {
                        if k == "access_key_id" {
                            format!("{k}=*")
                        } else {
                            format!("{k}={v}")
                        }
                    })
                    .collect();
                out.entry(family.clone())
                    .or_default()
                    .push(format!("{} {}", labels.join(","), number(*v)));
            }
        }
        for v in out.values_mut() {
            v.sort();
        }
        out
    }

    /// Access key ids in its key families.
    pub fn access_key_ids(&self) -> Vec<String> {
        self.credentials
            .values()
            .flatten()
            .filter_map(|(l, _)| l.get("access_key_id").cloned())
            .collect()
    }

    /// Parts whose deep call is reported failed.
    pub fn failed_parts(&self) -> std::collections::BTreeSet<super::world::Part> {
        self.failed_operations
            .iter()
            .filter_map(|(op, _, _)| DEEP_OPERATIONS.iter().find(|(o, _)| o == op).map(|(_, p)| *p))
            .collect()
    }
}

/// The exposition without the descriptors of families that have no samples, and their names.
///
/// OpenMetrics allows a family without samples (`metricfamily = *metric-descriptor *metric`),
/// and the exporter serves one whenever no account has, say, a failed deep call. The grammar of
/// openmetrics-parser 0.5 (`metricdescriptor* ~ metric+`) reads the descriptors of such a family
/// and of the next one as one family and fails ("Invalid metric name in family"). So the
/// descriptors of an empty family are checked here (exactly one HELP and one TYPE, of the same
/// name) and removed before the rest goes to the parser.
fn without_empty_families(text: &str) -> Result<(String, Vec<String>), String> {
    fn descriptor(line: &str) -> Option<(&str, &str)> {
        let rest = line.strip_prefix("# ")?;
        let (keyword, rest) = rest.split_once(' ')?;
        if !["HELP", "TYPE", "UNIT"].contains(&keyword) {
            return None;
        }
        let name = rest.split(' ').next()?;
        Some((keyword, name))
    }
    let mut out = String::with_capacity(text.len());
    let mut empty = Vec::new();
    // Descriptor lines of the family being read, until its first sample.
    let mut pending: Vec<&str> = Vec::new();
    let mut pending_name: Option<&str> = None;
    let flush_empty = |pending: &mut Vec<&str>, name: Option<&str>, empty: &mut Vec<String>| -> Result<(), String> {
        if let Some(name) = name {
            let keywords: Vec<&str> = pending.iter().filter_map(|l| descriptor(l)).map(|(k, _)| k).collect();
            if keywords != ["HELP", "TYPE"] {
                return Err(format!(
                    "family {name} has no samples and descriptors {pending:?}, not one HELP and one TYPE"
                ));
            }
            empty.push(name.to_string());
        }
        pending.clear();
        Ok(())
    };
    for line in text.lines() {
        if let Some((_, name)) = descriptor(line) {
            if pending_name.is_some_and(|p| p != name) {
                flush_empty(&mut pending, pending_name, &mut empty)?;
            }
            pending_name = Some(name);
            pending.push(line);
            continue;
        }
        if line == "# EOF" {
            flush_empty(&mut pending, pending_name, &mut empty)?;
            pending_name = None;
        } else if !pending.is_empty() {
            for l in pending.drain(..) {
                out.push_str(l);
                out.push('\n');
            }
            pending_name = None;
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok((out, empty))
}
