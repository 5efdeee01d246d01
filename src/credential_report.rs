//! The IAM credential report (`iam:GetCredentialReport`): a CSV with one row per IAM user and
//! one for the root user. Without a root session it is where the deeper facts about the root
//! user's keys, password and certificates come from. Parsed strictly by header name, never by
//! column position; `N/A`, `no_information` and `not_supported` mean "unknown" or "none".

use std::collections::HashMap;
use std::time::SystemTime;

use crate::model::{AccessKey, CredentialStatus};

/// What the report says of the root user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootRow {
    /// Keys by slot (1, 2); a slot without a key is left out. The report has no key ids: each
    /// key's id is `key_1` / `key_2`, and `created` is the time the key was last rotated.
    pub access_keys: Vec<AccessKey>,
    /// `password_last_used`: `None` when never used or unknown.
    pub password_last_used: Option<SystemTime>,
    /// Certificates by slot; a slot without a certificate is left out.
    pub signing_certificates: Vec<CredentialStatus>,
    pub mfa_active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("the credential report is not valid CSV: {0}")]
    Csv(&'static str),
    #[error("the credential report lacks the column {0}")]
    MissingColumn(&'static str),
    #[error("the credential report names the column {0} twice")]
    DuplicateColumn(String),
    #[error("the credential report's line {line} has {fields} fields, its header {header}")]
    Ragged { line: usize, fields: usize, header: usize },
    #[error("the credential report has no row for the root user (<root_account>)")]
    NoRootRow,
    #[error("the credential report has more than one row for the root user (<root_account>)")]
    TwoRootRows,
    #[error("the credential report has {column} = {value:?}, expected true or false")]
    BadFlag { column: &'static str, value: String },
    #[error(
        "the credential report has {column} = {value:?}, expected a time like 2019-03-02T10:00:00+00:00, N/A, no_information or not_supported"
    )]
    BadTime { column: &'static str, value: String },
}

/// Every column this parser reads; a report without one of them is refused.
const REQUIRED: [&str; 14] = [
    "user",
    "password_last_used",
    "mfa_active",
    "access_key_1_active",
    "access_key_1_last_rotated",
    "access_key_1_last_used_date",
    "access_key_2_active",
    "access_key_2_last_rotated",
    "access_key_2_last_used_date",
    "cert_1_active",
    "cert_1_last_rotated",
    "cert_2_active",
    "cert_2_last_rotated",
    "arn",
];

/// A value this long is no report value (the longest documented ones are ARNs and times);
/// reported cut, so that an error never carries a whole report.
const MAX_ECHO: usize = 64;

fn echo(value: &str) -> String {
    match value.char_indices().nth(MAX_ECHO) {
        Some((cut, _)) => format!("{}...", &value[..cut]),
        None => value.to_string(),
    }
}

/// Split RFC 4180 CSV into rows of fields (quoted fields may hold commas, quotes and line
/// breaks).
fn rows(text: &str) -> Result<Vec<Vec<String>>, ReportError> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if at_start => quoted = true,
            (false, '"') => return Err(ReportError::Csv("a quote inside an unquoted field")),
            (false, ',') => {
                row.push(std::mem::take(&mut field));
                at_start = true;
                continue;
            }
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                at_start = true;
                continue;
            }
            (false, c) => field.push(c),
        }
        at_start = false;
    }
    if quoted {
        return Err(ReportError::Csv("an unterminated quoted field"));
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

/// A time of the report (`2019-03-02T10:00:00+00:00`): `Ok(None)` for the documented words of
/// "none" or "unknown" (`N/A`, `no_information`, `not_supported`), an error for anything else
/// that is not a time.
fn time(column: &'static str, value: &str) -> Result<Option<SystemTime>, ReportError> {
    if matches!(value, "N/A" | "no_information" | "not_supported") {
        return Ok(None);
    }
    let utc = value
        .strip_suffix("+00:00")
        .or_else(|| value.strip_suffix('Z'))
        .unwrap_or(value);
    humantime::parse_rfc3339_weak(utc)
        .map(Some)
        .map_err(|_| ReportError::BadTime {
            column,
            value: echo(value),
        })
}

/// Parse the report's CSV and return the root user's row. Strict: every line has as many fields
/// as the header, every column read is there once, and every value read is of its documented
/// form; anything else is an error, never a partial read.
pub fn root_row(csv: &str) -> Result<RootRow, ReportError> {
    let mut rows = rows(csv)?.into_iter();
    let header = rows.next().ok_or(ReportError::Csv("no header"))?;
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, h) in header.iter().enumerate() {
        if index.insert(h.trim(), i).is_some() {
            return Err(ReportError::DuplicateColumn(echo(h.trim())));
        }
    }
    if let Some(missing) = REQUIRED.iter().find(|c| !index.contains_key(*c)) {
        return Err(ReportError::MissingColumn(missing));
    }
    let mut root = None;
    for (n, row) in rows.enumerate() {
        if row.len() != header.len() {
            return Err(ReportError::Ragged {
                line: n + 2,
                fields: row.len(),
                header: header.len(),
            });
        }
        if row[index["user"]] == "<root_account>" {
            if root.is_some() {
                return Err(ReportError::TwoRootRows);
            }
            root = Some(row);
        }
    }
    let root = root.ok_or(ReportError::NoRootRow)?;
    // Every column read is in REQUIRED, so it is in `index`, and every row is as long as the
    // header.
    let cell = |column: &'static str| root[index[column]].trim();
    let flag = |column: &'static str| -> Result<bool, ReportError> {
        match cell(column) {
            "true" | "TRUE" | "True" => Ok(true),
            "false" | "FALSE" | "False" => Ok(false),
            other => Err(ReportError::BadFlag {
                column,
                value: echo(other),
            }),
        }
    };
    let at = |column: &'static str| time(column, cell(column));
    let mut access_keys = Vec::new();
    for (slot, active, rotated, used) in [
        (
            "key_1",
            "access_key_1_active",
            "access_key_1_last_rotated",
            "access_key_1_last_used_date",
        ),
        (
            "key_2",
            "access_key_2_active",
            "access_key_2_last_rotated",
            "access_key_2_last_used_date",
        ),
    ] {
        // Every value is checked, also those of an empty slot.
        let (active, created, last_used) = (flag(active)?, at(rotated)?, at(used)?);
        // A slot holds a key when it has a rotation time.
        if created.is_some() {
            access_keys.push(AccessKey {
                id: slot.to_string(),
                status: if active {
                    CredentialStatus::Active
                } else {
                    CredentialStatus::Inactive
                },
                created,
                last_used,
            });
        }
    }
    let mut signing_certificates = Vec::new();
    for (active, rotated) in [
        ("cert_1_active", "cert_1_last_rotated"),
        ("cert_2_active", "cert_2_last_rotated"),
    ] {
        let (active, rotated) = (flag(active)?, at(rotated)?);
        if rotated.is_some() {
            signing_certificates.push(if active {
                CredentialStatus::Active
            } else {
                CredentialStatus::Inactive
            });
        }
    }
    Ok(RootRow {
        access_keys,
        password_last_used: at("password_last_used")?,
        signing_certificates,
        mfa_active: flag("mfa_active")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

    fn t(s: &str) -> Option<SystemTime> {
        Some(humantime::parse_rfc3339(s).unwrap())
    }

    #[test]
    fn root_row_with_two_keys_a_password_and_a_certificate() {
        let csv = format!(
            "{HEADER}\n\
             ci-deployer,arn:aws:iam::222222222222:user/ci-deployer,2020-01-01T00:00:00+00:00,true,N/A,2020-01-01T00:00:00+00:00,N/A,false,true,2020-01-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
             <root_account>,arn:aws:iam::222222222222:root,2018-01-01T00:00:00+00:00,not_supported,2025-10-30T08:15:00+00:00,not_supported,not_supported,true,true,2019-03-02T10:00:00+00:00,2025-11-01T12:00:00+00:00,eu-west-1,s3,false,2020-06-01T00:00:00+00:00,N/A,N/A,N/A,true,2021-01-01T00:00:00+00:00,false,N/A\n"
        );
        let root = root_row(&csv).unwrap();
        assert!(root.mfa_active);
        assert_eq!(root.password_last_used, t("2025-10-30T08:15:00Z"));
        assert_eq!(
            root.access_keys,
            vec![
                AccessKey {
                    id: "key_1".into(),
                    status: CredentialStatus::Active,
                    created: t("2019-03-02T10:00:00Z"),
                    last_used: t("2025-11-01T12:00:00Z"),
                },
                AccessKey {
                    id: "key_2".into(),
                    status: CredentialStatus::Inactive,
                    created: t("2020-06-01T00:00:00Z"),
                    last_used: None,
                },
            ]
        );
        assert_eq!(root.signing_certificates, vec![CredentialStatus::Active]);
    }

    #[test]
    fn a_clean_root_has_no_keys_and_unknowns_stay_unknown() {
        let csv = format!(
            "{HEADER}\r\n<root_account>,arn:aws:iam::222222222222:root,2018-01-01T00:00:00+00:00,not_supported,no_information,not_supported,not_supported,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\r\n"
        );
        let root = root_row(&csv).unwrap();
        assert!(root.access_keys.is_empty() && root.signing_certificates.is_empty());
        assert_eq!(root.password_last_used, None);
        assert!(!root.mfa_active);
    }

    #[test]
    fn columns_are_found_by_name_and_quoted_fields_are_read() {
        // Another column order, an extra column, and a quoted user name with a comma.
        let csv = "arn,user,mfa_active,extra,password_last_used,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n\
                   \"arn:aws:iam::1:user/a,b\",\"a,\"\"b\"\"\",false,x,N/A,false,N/A,N/A,false,N/A,N/A,false,N/A,false,N/A\n\
                   arn:aws:iam::1:root,<root_account>,true,y,N/A,true,2019-03-02T10:00:00+00:00,N/A,false,N/A,N/A,false,N/A,false,N/A";
        let root = root_row(csv).unwrap();
        assert_eq!(root.access_keys.len(), 1);
        assert!(root.mfa_active);
    }

    #[test]
    fn broken_reports_say_what_is_wrong() {
        assert_eq!(root_row(""), Err(ReportError::Csv("no header")));
        assert_eq!(
            root_row(&format!("{HEADER}\nuser1,arn,x\n")),
            Err(ReportError::Ragged {
                line: 2,
                fields: 3,
                header: 22
            })
        );
        assert_eq!(
            root_row("user,arn\n<root_account>,arn:aws:iam::1:root\n"),
            Err(ReportError::MissingColumn("password_last_used"))
        );
        assert!(matches!(
            root_row(&format!(
                "{HEADER}\n<root_account>,a,b,c,N/A,e,f,maybe,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
            )),
            Err(ReportError::BadFlag {
                column: "mfa_active",
                ..
            })
        ));
        assert_eq!(
            root_row("user\n\"<root_account>\n"),
            Err(ReportError::Csv("an unterminated quoted field"))
        );
    }

    /// The root row of a clean account, as AWS writes it.
    const CLEAN_ROOT: &str = "<root_account>,arn:aws:iam::222222222222:root,2018-01-01T00:00:00+00:00,not_supported,no_information,not_supported,not_supported,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A";

    #[test]
    fn a_ragged_row_is_refused_never_read_by_position() {
        // Key 2 active, but one field of the row went missing before it: read by position, the
        // key would read as inactive. Fewer or more fields than the header: refused, in the root
        // row or any other.
        let short = "<root_account>,arn:aws:iam::2:root,2018-01-01T00:00:00+00:00,not_supported,N/A,not_supported,false,false,N/A,N/A,N/A,N/A,true,2020-06-01T00:00:00+00:00,N/A,N/A,N/A,true,2021-01-01T00:00:00+00:00,false,N/A";
        assert!(matches!(
            root_row(&format!("{HEADER}\n{short}\n")),
            Err(ReportError::Ragged {
                line: 2,
                fields: 21,
                header: 22
            })
        ));
        let long = format!("{CLEAN_ROOT},true");
        assert!(matches!(
            root_row(&format!("{HEADER}\n{long}\n")),
            Err(ReportError::Ragged { fields: 23, .. })
        ));
        let other_user = "u,arn:aws:iam::2:user/u,2020-01-01T00:00:00+00:00,true";
        assert!(matches!(
            root_row(&format!("{HEADER}\n{CLEAN_ROOT}\n{other_user}\n")),
            Err(ReportError::Ragged { line: 3, fields: 4, .. })
        ));
    }

    #[test]
    fn every_value_read_must_have_its_documented_form() {
        // A rotation time that is no time (even in an empty slot), a duplicated column, two
        // root rows: refused with what was wrong.
        let bad_time = CLEAN_ROOT.replacen(
            "N/A,N/A,N/A,N/A,false,N/A,N/A",
            "N/A,N/A,N/A,N/A,false,yesterday,N/A",
            1,
        );
        assert_eq!(
            root_row(&format!("{HEADER}\n{bad_time}\n")),
            Err(ReportError::BadTime {
                column: "access_key_2_last_rotated",
                value: "yesterday".into()
            })
        );
        let dup = HEADER.replacen("cert_2_active", "cert_1_active", 1);
        assert_eq!(
            root_row(&format!("{dup}\n{CLEAN_ROOT}\n")),
            Err(ReportError::DuplicateColumn("cert_1_active".into()))
        );
        assert_eq!(
            root_row(&format!("{HEADER}\n{CLEAN_ROOT}\n{CLEAN_ROOT}\n")),
            Err(ReportError::TwoRootRows)
        );
        // An echoed value is cut: an error never carries a whole report.
        let long = "x".repeat(10_000);
        let huge = CLEAN_ROOT.replacen("not_supported,no_information", &format!("not_supported,{long}"), 1);
        let err = root_row(&format!("{HEADER}\n{huge}\n")).unwrap_err().to_string();
        assert!(err.len() < 300, "{err}");
    }
}
