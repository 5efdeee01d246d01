//! Every AWS API operation the exporter calls, one row each: the operation's name, its service,
//! whether it is made inside one account's audit, and the IAM action that allows it. `ALL`,
//! [`Operation::service`], [`Operation::name`], [`Operation::is_audit_call`] and the limit
//! tables derive from the rows, so adding an operation is one row (and its call site). A leaf:
//! it imports nothing of the exporter.

/// Who must hold an operation's IAM permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// The exporter's own role, a member audit role or the management audit role: the action
    /// must be in a policy of `deploy/iam/`.
    Policy(&'static str),
    /// Allowed by AWS's task policy `IAMAuditRootUserCredentials` inside a root session.
    TaskPolicy(&'static str),
    /// Needs no permission (`sts:GetCallerIdentity`).
    None,
}

/// One operation's facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// The operation's name in AWS's API reference.
    pub name: &'static str,
    /// The service's endpoint prefix, as in the SigV4 credential scope.
    pub service: &'static str,
    /// Made inside one account's audit (its way in and the calls in its session), as opposed to
    /// the organization-wide listing and the events queue: these share the bound of
    /// `concurrency` calls in flight at once (`aws::limit::Limits`).
    pub audit_call: bool,
    pub permission: Permission,
}

macro_rules! operations {
    ($($variant:ident => $name:literal, $service:literal, $audit:literal, $permission:expr;)*) => {
        /// Every AWS API operation the exporter calls.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Operation {
            $($variant,)*
        }

        impl Operation {
            /// Every operation, in table order (`operation as usize` indexes it).
            pub const ALL: &'static [Operation] = &[$(Operation::$variant,)*];

            /// The operation's row.
            pub const fn row(self) -> Row {
                match self {
                    $(Operation::$variant => Row {
                        name: $name,
                        service: $service,
                        audit_call: $audit,
                        permission: $permission,
                    },)*
                }
            }
        }
    };
}

use Permission::{Policy, TaskPolicy};

operations! {
    DescribeOrganization => "DescribeOrganization", "organizations", false, Policy("organizations:DescribeOrganization");
    ListAccounts => "ListAccounts", "organizations", false, Policy("organizations:ListAccounts");
    ListOrganizationsFeatures => "ListOrganizationsFeatures", "iam", false, Policy("iam:ListOrganizationsFeatures");
    AssumeRoot => "AssumeRoot", "sts", true, Policy("sts:AssumeRoot");
    GetAccountSummary => "GetAccountSummary", "iam", true, Policy("iam:GetAccountSummary");
    ListAccessKeys => "ListAccessKeys", "iam", true, TaskPolicy("iam:ListAccessKeys");
    GetAccessKeyLastUsed => "GetAccessKeyLastUsed", "iam", true, TaskPolicy("iam:GetAccessKeyLastUsed");
    ListMfaDevices => "ListMFADevices", "iam", true, TaskPolicy("iam:ListMFADevices");
    GetLoginProfile => "GetLoginProfile", "iam", true, TaskPolicy("iam:GetLoginProfile");
    GetUser => "GetUser", "iam", true, TaskPolicy("iam:GetUser");
    ListSigningCertificates => "ListSigningCertificates", "iam", true, TaskPolicy("iam:ListSigningCertificates");
    GetCallerIdentity => "GetCallerIdentity", "sts", false, Permission::None;
    AssumeRole => "AssumeRole", "sts", true, Policy("sts:AssumeRole");
    GenerateCredentialReport => "GenerateCredentialReport", "iam", true, Policy("iam:GenerateCredentialReport");
    GetCredentialReport => "GetCredentialReport", "iam", true, Policy("iam:GetCredentialReport");
    ListVirtualMfaDevices => "ListVirtualMFADevices", "iam", true, Policy("iam:ListVirtualMFADevices");
    ListRoots => "ListRoots", "organizations", false, Policy("organizations:ListRoots");
    ListOrganizationalUnitsForParent => "ListOrganizationalUnitsForParent", "organizations", false, Policy("organizations:ListOrganizationalUnitsForParent");
    ListAccountsForParent => "ListAccountsForParent", "organizations", false, Policy("organizations:ListAccountsForParent");
    ListTagsForResource => "ListTagsForResource", "organizations", false, Policy("organizations:ListTagsForResource");
    ReceiveMessage => "ReceiveMessage", "sqs", false, Policy("sqs:ReceiveMessage");
    // DeleteMessageBatch is authorized by the sqs:DeleteMessage action.
    DeleteMessageBatch => "DeleteMessageBatch", "sqs", false, Policy("sqs:DeleteMessage");
}

impl Operation {
    /// The service's endpoint prefix, as in the SigV4 credential scope.
    pub const fn service(self) -> &'static str {
        self.row().service
    }

    /// The operation's name in AWS's API reference.
    pub const fn name(self) -> &'static str {
        self.row().name
    }

    /// See [`Row::audit_call`].
    pub const fn is_audit_call(self) -> bool {
        self.row().audit_call
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.service(), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_operation_at_its_index() {
        for (i, op) in Operation::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i, "{op:?}");
        }
        let names: std::collections::BTreeSet<_> = Operation::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(names.len(), Operation::ALL.len(), "names are unique");
    }

    #[test]
    fn the_permission_names_the_operations_service() {
        for op in Operation::ALL {
            match op.row().permission {
                Permission::Policy(action) | Permission::TaskPolicy(action) => {
                    assert!(action.starts_with(&format!("{}:", op.service())), "{op:?}: {action}")
                }
                Permission::None => assert_eq!(*op, Operation::GetCallerIdentity),
            }
        }
    }
}
