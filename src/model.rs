//! Plain data the exporter passes between its stages: accounts found by discovery, what an audit
//! learned about one account's root user, and why an audit failed.

use std::time::SystemTime;

use crate::label::labels;
use crate::operation::Operation;

/// One account of the organization, as `organizations:ListAccounts` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub name: String,
    /// The Organizations account state (`ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`, `CLOSED`,
    /// `PENDING_ACTIVATION`, or whatever AWS adds later).
    pub status: String,
    pub is_management: bool,
    /// Where the account sits: the names from the root down, like `Root/Workloads/Prod`;
    /// `None` when the organization tree could not be read.
    pub ou_path: Option<String>,
    /// The configured tags the account has, as (key, value), in the order of `account_tags`.
    pub tags: Vec<(String, String)>,
}

/// The status of an account whose listing carries neither `State` nor `Status`.
pub const UNKNOWN_STATUS: &str = "UNKNOWN";

impl Account {
    pub fn is_active(&self) -> bool {
        self.status == "ACTIVE"
    }

    /// Active, or of unknown state: an account whose state AWS did not say is still audited
    /// (an audit that fails says so), never silently skipped.
    pub fn may_be_active(&self) -> bool {
        self.is_active() || self.status == UNKNOWN_STATUS
    }
}

/// The four root-user flags of `iam:GetAccountSummary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct RootSummary {
    pub mfa_enabled: bool,
    pub access_keys_present: bool,
    pub password_present: bool,
    pub signing_certificates_present: bool,
}

/// Status of a root access key or signing certificate as IAM reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialStatus {
    Active,
    Inactive,
    /// `Expired` (access keys only) and any status AWS adds later.
    Other,
}

impl CredentialStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "Active" => Self::Active,
            "Inactive" => Self::Inactive,
            _ => Self::Other,
        }
    }
}

/// One root access key, from `iam:ListAccessKeys` and `iam:GetAccessKeyLastUsed`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccessKey {
    /// The access key id (not a secret; AWS prints it in CloudTrail and the console).
    pub id: String,
    pub status: CredentialStatus,
    #[serde(with = "opt_unix")]
    pub created: Option<SystemTime>,
    /// `None` when the key was never used, or when its last use could not be read.
    #[serde(with = "opt_unix")]
    pub last_used: Option<SystemTime>,
}

/// Kind of an MFA device, told from the form of its serial number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MfaType {
    Virtual,
    Hardware,
    Passkey,
    Sms,
    /// A hardware TOTP token or a FIDO security key or passkey: what a device that is not
    /// virtual is, when only the credential report and the virtual devices can be read.
    NonVirtual,
}

impl MfaType {
    /// The kinds a root session tells apart.
    pub const ALL: [MfaType; 4] = [Self::Virtual, Self::Hardware, Self::Passkey, Self::Sms];

    /// The kinds that can be told apart without a root session.
    pub const WITHOUT_ROOT_SESSION: [MfaType; 2] = [Self::Virtual, Self::NonVirtual];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Virtual => "virtual",
            Self::Hardware => "hardware",
            Self::Passkey => "passkey",
            Self::Sms => "sms",
            Self::NonVirtual => "non_virtual",
        }
    }

    /// Virtual: `arn:aws:iam::ACCOUNT:mfa/NAME`; FIDO security key or passkey:
    /// `arn:aws:iam::ACCOUNT:u2f/...`; SMS: `...:sms-mfa/...`; a bare serial (no ARN) is a
    /// hardware TOTP token.
    pub fn from_serial(serial: &str) -> Self {
        if !serial.starts_with("arn:") {
            return Self::Hardware;
        }
        let resource = serial.splitn(6, ':').nth(5).unwrap_or("");
        if resource.starts_with("u2f/") {
            Self::Passkey
        } else if resource.starts_with("sms-mfa/") {
            Self::Sms
        } else {
            Self::Virtual
        }
    }
}

/// The root user's console password, from `iam:GetLoginProfile` and `iam:GetUser`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Password {
    #[serde(with = "opt_unix")]
    pub created: Option<SystemTime>,
    #[serde(with = "opt_unix")]
    pub last_used: Option<SystemTime>,
}

/// What the deeper calls of a `full` audit learned. Each part is `None` when its call failed
/// (the failure is then listed in [`AuditFindings::failed_operations`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RootDetails {
    pub access_keys: Option<Vec<AccessKey>>,
    pub mfa_devices: Option<Vec<MfaType>>,
    /// `Some(None)`: read, and there is no password.
    pub password: Option<Option<Password>>,
    pub signing_certificates: Option<Vec<CredentialStatus>>,
    pub source: DetailSource,
}

/// Where the deeper facts came from; the credential report's are coarser.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DetailSource {
    /// The root session's own calls: key ids, creation times, every MFA kind.
    #[default]
    RootSession,
    /// The IAM credential report (at most 4 hours old by AWS's rules) and the virtual MFA
    /// devices: keys by slot (`key_1`, `key_2`) with their last rotation, MFA as `virtual` or
    /// `non_virtual`, no password creation time.
    CredentialReport {
        #[serde(with = "opt_unix")]
        generated: Option<SystemTime>,
    },
}

impl DetailSource {
    /// Where the deep facts came from, for a log line: `root session`, or the credential report
    /// with the time AWS generated it.
    pub fn describe(self) -> String {
        match self {
            DetailSource::RootSession => "root session".into(),
            DetailSource::CredentialReport { generated: Some(t) } => {
                format!("credential report generated {}", humantime::format_rfc3339_seconds(t))
            }
            DetailSource::CredentialReport { generated: None } => "credential report".into(),
        }
    }

    pub fn mfa_types(self) -> &'static [MfaType] {
        match self {
            DetailSource::RootSession => &MfaType::ALL,
            DetailSource::CredentialReport { .. } => &MfaType::WITHOUT_ROOT_SESSION,
        }
    }
}

/// Everything one successful audit of one account learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFindings {
    pub summary: RootSummary,
    /// Present in `full` mode.
    pub details: Option<RootDetails>,
    /// Deeper calls that failed while the summary was read (partial result).
    pub failed_operations: Vec<AwsCallError>,
    /// Credentials whose deep figures contradicted `GetAccountSummary` of the same audit (a
    /// credential report older than the change, most often): their deep parts in `details` are
    /// withheld (`None`), so that only the summary speaks for them.
    pub inconsistencies: Vec<Credential>,
}

labels! {
    /// A kind of root credential, as both the summary and the deep calls describe it: the
    /// bounded `credential` label of `aws_root_audit_inconsistency`.
    pub enum Credential {
        AccessKeys => "access_keys",
        SigningCertificates => "signing_certificates",
        Mfa => "mfa",
        Password => "password",
    }
}

/// Why an audit failed, as the snapshot keeps it: the bounded reason (a label value) and the
/// one-line message for logs and reports (from AWS or the exporter; never credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: FailureReason,
    pub message: String,
}

/// One failed AWS call, as plain data: the operation, the bounded reason, and the one-line
/// message (classified from the SDK's error by `aws::call`). `message` comes from AWS or the SDK and never holds credentials; it
/// goes to logs and reports, never into a label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed ({reason}): {message}")]
pub struct AwsCallError {
    pub operation: Operation,
    pub reason: FailureReason,
    pub message: String,
}

impl AwsCallError {
    /// An answer that arrived but cannot be used (a missing field, a value out of range).
    pub fn malformed(operation: Operation, message: impl Into<String>) -> Self {
        AwsCallError {
            operation,
            reason: FailureReason::BadResponse,
            message: message.into(),
        }
    }
}

labels! {
    /// Why an audit (or one AWS call) failed. A bounded set: these strings become label values.
    pub enum FailureReason {
        AccessDenied => "access_denied",
        RootAccessNotEnabled => "root_access_not_enabled",
        /// The exporter found no AWS credentials of its own.
        NoCredentials => "no_credentials",
        /// A session's credentials expired before the calls made with them.
        ExpiredToken => "expired_token",
        /// No way into the account is configured (e.g. the management account, from elsewhere,
        /// without `management_account_role_arn`).
        NotConfigured => "not_configured",
        Throttled => "throttled",
        Timeout => "timeout",
        Network => "network",
        /// An answer arrived but does not have the form AWS documents (a missing field, a value
        /// out of range, a ragged credential report): nothing of it is used.
        BadResponse => "bad_response",
        Other => "other",
    }
}

/// Seconds since the Unix epoch, for metrics and reports.
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

mod opt_unix {
    use std::time::SystemTime;

    pub fn serialize<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&humantime::format_rfc3339_seconds(*t).to_string()),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mfa_type_from_serial_forms() {
        for (serial, kind) in [
            (
                "arn:aws:iam::123456789012:mfa/root-account-mfa-device",
                MfaType::Virtual,
            ),
            (
                "arn:aws:iam::123456789012:u2f/root/yubi-ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                MfaType::Passkey,
            ),
            ("GAHT12345678", MfaType::Hardware),
            ("arn:aws:iam::123456789012:sms-mfa/root", MfaType::Sms),
            // A virtual device whose name contains "u2f" is still virtual.
            ("arn:aws:iam::123456789012:mfa/u2f-backup", MfaType::Virtual),
        ] {
            assert_eq!(MfaType::from_serial(serial), kind, "{serial}");
        }
    }

    #[test]
    fn credential_status_parse() {
        assert_eq!(CredentialStatus::parse("Active"), CredentialStatus::Active);
        assert_eq!(CredentialStatus::parse("Inactive"), CredentialStatus::Inactive);
        assert_eq!(CredentialStatus::parse("Expired"), CredentialStatus::Other);
    }
}
