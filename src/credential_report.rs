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
    #[error("the credential report has no row for the root user (<root_account>)")]
    NoRootRow,
    #[error("the credential report has {column} = {value:?}, expected true or false")]
    BadFlag { column: &'static str, value: String },
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

/// A time of the report (`2019-03-02T10:00:00+00:00`); `None` for `N/A`, `no_information`,
/// `not_supported` and anything else that is not a time.
fn time(value: &str) -> Option<SystemTime> {
    let value = value.trim();
    let utc = value
        .strip_suffix("+00:00")
        .map(|v| format!("{v}Z"))
        .unwrap_or_else(|| value.to_string());
    humantime::parse_rfc3339_weak(utc.trim_end_matches('Z')).ok()
}

/// Whether a slot holds a credential: it has a rotation time.
fn present(value: &str) -> bool {
    time(value).is_some()
}

/// Parse the report's CSV and return the root user's row.
pub fn root_row(csv: &str) -> Result<RootRow, ReportError> {
    let mut rows = rows(csv)?.into_iter();
    let header = rows.next().ok_or(ReportError::Csv("no header"))?;
    let index: HashMap<&str, usize> = header.iter().enumerate().map(|(i, h)| (h.trim(), i)).collect();
    let root = rows
        .find(|r| index.get("user").and_then(|&i| r.get(i)).map(|u| u.as_str()) == Some("<root_account>"))
        .ok_or(ReportError::NoRootRow)?;
    let cell = |column: &'static str| -> Result<&str, ReportError> {
        index
            .get(column)
            .and_then(|&i| root.get(i))
            .map(|v| v.trim())
            .ok_or(ReportError::MissingColumn(column))
    };
    let flag = |column: &'static str| -> Result<bool, ReportError> {
        match cell(column)? {
            "true" | "TRUE" | "True" => Ok(true),
            "false" | "FALSE" | "False" => Ok(false),
            other => Err(ReportError::BadFlag {
                column,
                value: other.to_string(),
            }),
        }
    };
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
        if present(cell(rotated)?) {
            access_keys.push(AccessKey {
                id: slot.to_string(),
                status: if flag(active)? {
                    CredentialStatus::Active
                } else {
                    CredentialStatus::Inactive
                },
                created: time(cell(rotated)?),
                last_used: time(cell(used)?),
            });
        }
    }
    let mut signing_certificates = Vec::new();
    for (active, rotated) in [
        ("cert_1_active", "cert_1_last_rotated"),
        ("cert_2_active", "cert_2_last_rotated"),
    ] {
        if present(cell(rotated)?) {
            signing_certificates.push(if flag(active)? {
                CredentialStatus::Active
            } else {
                CredentialStatus::Inactive
            });
        }
    }
    Ok(RootRow {
        access_keys,
        password_last_used: time(cell("password_last_used")?),
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
            Err(ReportError::NoRootRow)
        );
        assert_eq!(
            root_row("user,arn\n<root_account>,arn:aws:iam::1:root\n"),
            Err(ReportError::MissingColumn("access_key_1_last_rotated"))
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
}
