//! The operations each Query-protocol service answers (the faults and rate limits of a scenario
//! name them). A leaf.

/// The IAM operations served: the audit task policy's (the first [`AUDIT_ACTIONS_COUNT`]), the
/// management account's `ListOrganizationsFeatures`, and the credential report and virtual MFA
/// listing.
pub(crate) const IAM: [&str; 11] = [
    "GetAccountSummary",
    "GetUser",
    "GetLoginProfile",
    "ListAccessKeys",
    "GetAccessKeyLastUsed",
    "ListMFADevices",
    "ListSigningCertificates",
    "ListOrganizationsFeatures",
    "GenerateCredentialReport",
    "GetCredentialReport",
    "ListVirtualMFADevices",
];

/// How many of [`IAM`], from its start, are the actions the task policy
/// `IAMAuditRootUserCredentials` allows.
pub(crate) const AUDIT_ACTIONS_COUNT: usize = 7;

/// The STS operations served.
pub(crate) const STS: [&str; 3] = ["AssumeRoot", "GetCallerIdentity", "AssumeRole"];
