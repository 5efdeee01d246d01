#!/usr/bin/env python3
"""Check the IAM policies of deploy/iam/ and the roles of deploy/cloudformation/.

- every deploy/iam/*.json parses and every statement has Effect, Action and Resource;
- every action exists (AWS's action list as shipped with cfn-lint, when importable), and a
  statement scoped to ARNs only names actions that support resource-level permissions;
- each exporter-side policy grants exactly the actions the exporter calls in that mode, and the
  audit roles exactly the four IAM reads (least privilege both ways: nothing missing, nothing
  extra);
- exporter-policy.json is exporter-common-policy.json + exporter-assume-root-policy.json;
- the roles in the CloudFormation templates grant the same four actions as
  member-audit-role-policy.json, trust sts:AssumeRole only, and allow 3600 s sessions.

Run with the test venv's python (scripts/test.sh): it needs PyYAML, which cfn-lint brings.
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IAM = ROOT / "deploy" / "iam"
CFN = ROOT / "deploy" / "cloudformation"

AUDIT_ROLE_ACTIONS = {
    "iam:GenerateCredentialReport",
    "iam:GetAccountSummary",
    "iam:GetCredentialReport",
    "iam:ListVirtualMFADevices",
}
COMMON = {
    "organizations:DescribeOrganization",
    "organizations:ListAccounts",
    "organizations:ListRoots",
    "organizations:ListOrganizationalUnitsForParent",
    "organizations:ListAccountsForParent",
    "organizations:ListTagsForResource",
} | AUDIT_ROLE_ACTIONS
ASSUME_ROOT = {"iam:ListOrganizationsFeatures", "sts:AssumeRoot"}
EXPECTED = {
    "exporter-common-policy.json": COMMON,
    "exporter-assume-root-policy.json": ASSUME_ROOT,
    "exporter-policy.json": COMMON | ASSUME_ROOT,
    "exporter-member-role-policy.json": {"sts:AssumeRole"},
    "exporter-management-account-role-policy.json": {"sts:AssumeRole"},
    "member-audit-role-policy.json": AUDIT_ROLE_ACTIONS,
    "management-audit-role-policy.json": AUDIT_ROLE_ACTIONS,
    "scp-allow-root-audit-example.json": {"*"},
}
TASK_POLICY = "arn:aws:iam::aws:policy/root-task/IAMAuditRootUserCredentials"

errors = []


def fail(where, msg):
    errors.append(f"{where}: {msg}")


def as_list(value):
    return value if isinstance(value, list) else [value]


def aws_actions():
    """{service: {action_lowercase: [resource types]}} from cfn-lint's copy of AWS's data."""
    try:
        from importlib.resources import files

        spec = files("cfnlint.data.AdditionalSpecs").joinpath("Policies.json").read_text()
    except Exception:  # noqa: BLE001 - cfn-lint absent or reorganised: skip that check
        print("note: cfn-lint's action list not found; action names not checked")
        return None
    return {svc: {a: v.get("Resources", []) for a, v in d.get("Actions", {}).items()}
            for svc, d in json.loads(spec).items()}


def check_statement(where, st, known):
    for key in ("Effect", "Action", "Resource"):
        if key not in st:
            fail(where, f"statement {st.get('Sid', '?')} has no {key}")
    if st.get("Effect") not in ("Allow", "Deny"):
        fail(where, f"statement {st.get('Sid', '?')}: Effect {st.get('Effect')!r}")
    for key in ("NotAction", "NotResource", "Principal"):
        if key in st:
            fail(where, f"statement {st.get('Sid', '?')} uses {key}")
    actions = [a for a in as_list(st.get("Action", [])) if isinstance(a, str)]
    resources = as_list(st.get("Resource", []))
    if not actions or not resources or not all(isinstance(r, str) for r in resources):
        fail(where, f"statement {st.get('Sid', '?')}: empty or non-string Action/Resource")
    if known is None or "Resource" not in st:
        return actions
    for action in actions:
        if action == "*":
            continue
        svc, _, name = action.partition(":")
        types = known.get(svc, {}).get(name.lower())
        if types is None:
            fail(where, f"unknown action {action}")
        elif resources != ["*"] and not types:
            fail(where, f"{action} has no resource-level permissions: its Resource must be \"*\"")
    return actions


def check_policy_files(known):
    documents = {}
    for path in sorted(IAM.glob("*.json")):
        where = f"deploy/iam/{path.name}"
        try:
            doc = json.loads(path.read_text())
        except ValueError as e:
            fail(where, f"not JSON: {e}")
            continue
        documents[path.name] = doc
        if doc.get("Version") != "2012-10-17":
            fail(where, "Version must be 2012-10-17")
        statements = doc.get("Statement")
        if not isinstance(statements, list) or not statements:
            fail(where, "Statement must be a non-empty list")
            continue
        sids = [st.get("Sid") for st in statements]
        if len(set(sids)) != len(sids):
            fail(where, "duplicate Sid")
        actions = set()
        for st in statements:
            actions |= set(check_statement(where, st, known))
        if path.name not in EXPECTED:
            fail(where, "not listed in tests/deploy/check_policies.py EXPECTED")
        elif actions != EXPECTED[path.name]:
            fail(where, f"missing {sorted(EXPECTED[path.name] - actions)}, "
                        f"extra {sorted(actions - EXPECTED[path.name])}")
    for name in EXPECTED:
        if name not in documents:
            fail(f"deploy/iam/{name}", "missing")

    # exporter-policy.json (setup i in one document) is the union of its two parts.
    parts = [documents.get("exporter-common-policy.json"),
             documents.get("exporter-assume-root-policy.json")]
    whole = documents.get("exporter-policy.json")
    if whole and all(parts) and whole["Statement"] != parts[0]["Statement"] + parts[1]["Statement"]:
        fail("deploy/iam/exporter-policy.json",
             "is not exporter-common-policy.json + exporter-assume-root-policy.json")

    # AssumeRoot only with the audit task policy.
    for name, doc in documents.items():
        for st in doc.get("Statement", []):
            if "sts:AssumeRoot" in as_list(st.get("Action", [])):
                pinned = st.get("Condition", {}).get("StringEquals", {}).get("sts:TaskPolicyArn")
                if pinned != TASK_POLICY:
                    fail(f"deploy/iam/{name}", "sts:AssumeRoot not pinned to IAMAuditRootUserCredentials")
    return documents


def cfn_loader():
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def tag(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
        return {name: value}

    Loader.add_multi_constructor("!", tag)
    return lambda text: yaml.load(text, Loader=Loader)


def check_templates():
    load = cfn_loader()
    templates = sorted(CFN.glob("*.yaml"))
    if {t.name for t in templates} < {"member-audit-role.yaml", "management-audit-role.yaml"}:
        fail("deploy/cloudformation", "member-audit-role.yaml or management-audit-role.yaml missing")
    for path in templates:
        where = f"deploy/cloudformation/{path.name}"
        doc = load(path.read_text())
        roles = [r for r in doc.get("Resources", {}).values() if r.get("Type") == "AWS::IAM::Role"]
        if len(roles) != 1:
            fail(where, "expected exactly one AWS::IAM::Role")
            continue
        props = roles[0]["Properties"]
        if props.get("MaxSessionDuration") != 3600:
            fail(where, "MaxSessionDuration must be 3600")
        if "ManagedPolicyArns" in props:
            fail(where, "no managed policies: the inline policy is the whole grant")
        actions = set()
        for policy in props.get("Policies", []):
            for st in policy["PolicyDocument"]["Statement"]:
                actions |= set(check_statement(where, st, None))
                if st.get("Effect") != "Allow" or st.get("Resource") != "*":
                    fail(where, "audit statements are Allow on \"*\"")
        if actions != AUDIT_ROLE_ACTIONS:
            fail(where, f"role grants {sorted(actions)}, not {sorted(AUDIT_ROLE_ACTIONS)}")
        for st in props["AssumeRolePolicyDocument"]["Statement"]:
            if st.get("Action") != "sts:AssumeRole" or "aws:PrincipalArn" not in st.get(
                    "Condition", {}).get("ArnEquals", {}):
                fail(where, "trust must be sts:AssumeRole pinned with aws:PrincipalArn")
        if "RoleArn" not in doc.get("Outputs", {}):
            fail(where, "no RoleArn output")


def main():
    known = aws_actions()
    check_policy_files(known)
    check_templates()
    for e in errors:
        print(f"FAIL {e}")
    if errors:
        return 1
    print(f"ok: {len(list(IAM.glob('*.json')))} policies, {len(list(CFN.glob('*.yaml')))} templates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
