//! The table of AWS operations (`src/operation.rs`) against what ships beside the exporter: the
//! IAM policies of `deploy/iam/`, the task policy a root session has, and the simulator the
//! tests run against.

use std::collections::BTreeSet;

use aws_root_exporter::operation::{Operation, Permission};

/// Every action that some policy of `deploy/iam/` allows (an `Allow` statement's `Action`).
fn allowed_by_shipped_policies() -> BTreeSet<String> {
    let mut allowed = BTreeSet::new();
    for entry in std::fs::read_dir("deploy/iam").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let policy: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for statement in policy["Statement"].as_array().into_iter().flatten() {
            if statement["Effect"] != "Allow" {
                continue;
            }
            match &statement["Action"] {
                serde_json::Value::String(a) => {
                    allowed.insert(a.clone());
                }
                serde_json::Value::Array(list) => {
                    allowed.extend(list.iter().filter_map(|a| a.as_str().map(String::from)));
                }
                _ => {}
            }
        }
    }
    allowed
}

#[test]
fn every_operation_the_exporter_calls_is_allowed_where_it_is_called() {
    let allowed = allowed_by_shipped_policies();
    // What AWS's task policy IAMAuditRootUserCredentials allows (domain: the audit path).
    let task_policy = [
        "iam:GetAccountSummary",
        "iam:GetUser",
        "iam:GetLoginProfile",
        "iam:ListAccessKeys",
        "iam:GetAccessKeyLastUsed",
        "iam:ListMFADevices",
        "iam:ListSigningCertificates",
    ];
    for op in Operation::ALL {
        match op.row().permission {
            Permission::Policy(action) => assert!(
                allowed.contains(action),
                "{op}: {action} is in no policy of deploy/iam/ ({allowed:?})"
            ),
            Permission::TaskPolicy(action) => assert!(
                task_policy.contains(&action),
                "{op}: {action} is not allowed by the audit task policy"
            ),
            Permission::None => assert_eq!(*op, Operation::GetCallerIdentity),
        }
    }
    // And nothing of the exporter's own policies is an action it never calls: every non-wildcard
    // action of the exporter-side and audit-role policies belongs to some operation's row, or to
    // the events queue's set-up (GetQueueUrl, ChangeMessageVisibility).
    let called: BTreeSet<&str> = Operation::ALL
        .iter()
        .filter_map(|op| match op.row().permission {
            Permission::Policy(a) | Permission::TaskPolicy(a) => Some(a),
            Permission::None => None,
        })
        .collect();
    let not_called: Vec<&String> = allowed
        .iter()
        .filter(|a| !a.contains('*') && !called.contains(a.as_str()))
        .filter(|a| !["sqs:GetQueueUrl", "sqs:ChangeMessageVisibility"].contains(&a.as_str()))
        .collect();
    assert!(not_called.is_empty(), "allowed but never called: {not_called:?}");
}

#[test]
fn audit_calls_are_the_calls_made_inside_one_accounts_session_or_way_in() {
    let audit: BTreeSet<&str> = Operation::ALL
        .iter()
        .filter(|op| op.is_audit_call())
        .map(|op| op.name())
        .collect();
    // The ways in (AssumeRoot, AssumeRole) and every call made with a session's credentials.
    let expected: BTreeSet<&str> = [
        "AssumeRoot",
        "AssumeRole",
        "GetAccountSummary",
        "ListAccessKeys",
        "GetAccessKeyLastUsed",
        "ListMFADevices",
        "GetLoginProfile",
        "GetUser",
        "ListSigningCertificates",
        "GenerateCredentialReport",
        "GetCredentialReport",
        "ListVirtualMFADevices",
    ]
    .into_iter()
    .collect();
    assert_eq!(audit, expected);
}

#[test]
fn the_simulator_serves_every_operation_the_exporter_calls() {
    let served = aws_org_simulator::served_operations();
    for op in Operation::ALL {
        assert!(
            served.contains(&op.name()),
            "{op}: the simulator does not serve {}",
            op.name()
        );
    }
}
