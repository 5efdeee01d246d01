#!/usr/bin/env python3
"""Check the IAM policies of deploy/iam/ and the roles of deploy/cloudformation/.

- every deploy/iam/*.json parses and every statement has Effect, Action and Resource;
- every action exists (AWS's action list as shipped with cfn-lint, when importable), and a
  statement scoped to ARNs only names actions that support resource-level permissions;
- each exporter-side policy grants exactly the actions the exporter calls in that mode, and the
  audit roles exactly the four IAM reads (least privilege both ways: nothing missing, nothing
  extra);
- exporter-policy.json is exporter-common-policy.json + exporter-assume-root-policy.json;
- the roles in the audit-role CloudFormation templates grant the same four actions as
  member-audit-role-policy.json, trust sts:AssumeRole only, and allow 3600 s sessions;
- the events templates: the forwarder's role may only events:PutEvents on the central bus and
  only EventBridge may assume it; the central bus admits only the organization; only the
  central rule may send to the queues; the exporter's cross-account grant is exactly
  exporter-events-policy.json's actions; both rules match the same root-credential and root-use
  patterns, in the state that lets read-only root calls through (IncludeReadOnlyRootCalls);
- sample events against those patterns: root console sign-ins (successful and failed), root API
  calls (mutating, read-only, in an AssumeRoot session) are forwarded; an IAM user's sign-in or
  call, a call invoked by an AWS service, an AwsServiceEvent and a non-AWS sender are not;
- the policies name no partition: every ARN starts with the placeholder `arn:PARTITION:`
  (deploy/iam/README.md), and the checks above run on each file with PARTITION replaced by
  each partition (aws, aws-us-gov, aws-cn), so a substituted policy is the one checked;
- every Allow of sts:AssumeRoot or sts:AssumeRole, in the policies and in the audit roles' trust
  policies, requires aws:ResourceOrgID = ${aws:PrincipalOrgID} (only accounts of the caller's
  own organization);
- the event queues are kept (DeletionPolicy and UpdateReplacePolicy Retain), and the
  forwarder StackSet's Deployment text turns on trusted access for StackSets
  (aws cloudformation activate-organizations-access);
- several organizations: organization-access-role-policy.json is exporter-common-policy.json +
  exporter-assume-root-policy.json + exporter-member-role-policy.json (the access role in
  another organization does there what the exporter's role does in its own, AccessMode auto);
  exporter-organization-access-policy.json allows only sts:AssumeRole on the documented role
  name in any account, the one statement without the organization condition (its target is in
  another organization); organization-access-role.yaml grants, for each AccessMode, exactly
  discovery, the own-account audit and that mode's calls (plus the events queue's four SQS
  actions on that one queue with EventsQueueArn; no wildcard action), pins AssumeRoot
  to the audit task and both ways in to its own organization, trusts only the exporter's role
  (aws:PrincipalArn = ExporterRoleArn, principal that role's account) with sts:ExternalId exactly
  when ExternalId is set, and allows 3600 s sessions;
- every template is known here (a new one must say what is checked about it).

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
# Consuming the events queue of events-central.yaml (events_queue_url). No kms:Decrypt: the
# queue uses SSE-SQS unless a customer managed key is chosen (deploy/iam/README.md).
EVENTS = {
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueUrl",
    "sqs:ReceiveMessage",
}
EXPECTED = {
    "exporter-common-policy.json": COMMON,
    "exporter-assume-root-policy.json": ASSUME_ROOT,
    "exporter-policy.json": COMMON | ASSUME_ROOT,
    "exporter-member-role-policy.json": {"sts:AssumeRole"},
    "exporter-management-account-role-policy.json": {"sts:AssumeRole"},
    "exporter-events-policy.json": EVENTS,
    "member-audit-role-policy.json": AUDIT_ROLE_ACTIONS,
    "management-audit-role-policy.json": AUDIT_ROLE_ACTIONS,
    "scp-allow-root-audit-example.json": {"*"},
    "exporter-organization-access-policy.json": {"sts:AssumeRole"},
    "organization-access-role-policy.json": COMMON | ASSUME_ROOT | {"sts:AssumeRole"},
}
# The one grant without aws:ResourceOrgID: the exporter's role may assume the per-organization
# access role, by its documented name, in any account (another organization's).
ORG_ACCESS_ROLE = "aws-root-exporter-org-access"
CROSS_ORG_POLICY = "exporter-organization-access-policy.json"
CROSS_ORG_SID = "AssumeOtherOrganizationsAccessRole"
ORG_ACCESS_TEMPLATE = "organization-access-role.yaml"
# What the access role grants in each AccessMode: the exporter's calls in that mode.
ACCESS_MODES = {
    "assume_root": COMMON | ASSUME_ROOT,
    "role": COMMON | {"sts:AssumeRole"},
    "auto": COMMON | ASSUME_ROOT | {"sts:AssumeRole"},
}
PARTITION = "PARTITION"
PARTITIONS = ("aws", "aws-us-gov", "aws-cn")
SAME_ORG = {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}
ASSUME = {"sts:AssumeRoot", "sts:AssumeRole"}
ACTIVATE_STACKSETS = "aws cloudformation activate-organizations-access"


def task_policy(partition):
    return f"arn:{partition}:iam::aws:policy/root-task/IAMAuditRootUserCredentials"

AUDIT_TEMPLATES = {"member-audit-role.yaml", "management-audit-role.yaml"}
EVENTS_CENTRAL = "events-central.yaml"
EVENTS_FORWARDER = "events-member-forwarder.yaml"
# The IAM calls that change a root credential (domain: "Events: learning of a change without
# polling"), matched for the root user and for AssumeRoot sessions, plus root console sign-in.
ROOT_CREDENTIAL_CALLS = [
    "CreateAccessKey", "UpdateAccessKey", "DeleteAccessKey",
    "CreateLoginProfile", "UpdateLoginProfile", "DeleteLoginProfile",
    "EnableMFADevice", "DeactivateMFADevice", "DeleteVirtualMFADevice",
    "UploadSigningCertificate", "UpdateSigningCertificate", "DeleteSigningCertificate",
]
EVENT_PATTERN = {"$or": [
    {"source": ["aws.iam"], "detail-type": ["AWS API Call via CloudTrail"],
     "detail": {"eventSource": ["iam.amazonaws.com"], "eventName": ROOT_CREDENTIAL_CALLS,
                "userIdentity": {"type": ["Root"]}}},
    {"source": ["aws.iam"], "detail-type": ["AWS API Call via CloudTrail"],
     "detail": {"eventSource": ["iam.amazonaws.com"], "eventName": ROOT_CREDENTIAL_CALLS,
                "userIdentity": {"sessionContext": {"assumedRoot": ["true"]}}}},
    {"source": ["aws.signin"], "detail-type": ["AWS Console Sign In via CloudTrail"],
     "detail": {"eventSource": ["signin.amazonaws.com"], "eventName": ["ConsoleLogin"],
                "userIdentity": {"type": ["Root"]}}},
    # Root use (CIS 4.3): any root API call no AWS service made on root's behalf, as CIS's
    # metric filter `$.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS &&
    # $.eventType != "AwsServiceEvent"`; only AWS sends an "aws." source.
    {"source": [{"prefix": "aws."}], "detail-type": ["AWS API Call via CloudTrail"],
     "detail": {"eventType": [{"anything-but": "AwsServiceEvent"}],
                "userIdentity": {"type": ["Root"], "invokedBy": [{"exists": False}]}}},
]}
# Both rules see read-only root calls unless IncludeReadOnlyRootCalls is "false": EventBridge
# hands a rule read-only management events only in this state.
READ_ONLY_PARAMETER = "IncludeReadOnlyRootCalls"
RULE_STATE = {"Fn::If": ["ReadOnlyRootCalls", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS", "ENABLED"]}

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


def arns(value):
    """Every string of a policy document that looks like an ARN."""
    if isinstance(value, dict):
        return [a for v in value.values() for a in arns(v)]
    if isinstance(value, list):
        return [a for v in value for a in arns(v)]
    return [value] if isinstance(value, str) and value.startswith("arn:") else []


def check_partition_placeholder():
    """The files name no partition; PARTITION is replaced by whoever deploys them."""
    for path in sorted(IAM.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except ValueError:
            continue  # reported by check_policy_files
        for arn in arns(doc):
            if not arn.startswith(f"arn:{PARTITION}:"):
                fail(f"deploy/iam/{path.name}", f"{arn!r} does not start with arn:{PARTITION}: "
                                                "(the documented partition placeholder)")


def check_policy_files(known, partition):
    documents = {}
    for path in sorted(IAM.glob("*.json")):
        where = f"deploy/iam/{path.name} ({partition})"
        try:
            doc = json.loads(path.read_text().replace(f"arn:{PARTITION}:", f"arn:{partition}:"))
        except ValueError as e:
            fail(where, f"not JSON: {e}")
            continue
        for arn in arns(doc):
            if not arn.startswith(f"arn:{partition}:"):
                fail(where, f"{arn!r} is not in partition {partition} after substitution")
        documents[path.name] = doc
        for st in doc.get("Statement", []) if isinstance(doc.get("Statement"), list) else []:
            if path.name == CROSS_ORG_POLICY and st.get("Sid") == CROSS_ORG_SID:
                want = f"arn:{partition}:iam::*:role/{ORG_ACCESS_ROLE}"
                if (st.get("Effect"), st.get("Action"), st.get("Resource"), "Condition" in st) != (
                        "Allow", "sts:AssumeRole", want, False):
                    fail(where, f"statement {CROSS_ORG_SID} must be exactly Allow sts:AssumeRole on "
                                f"{want}, without conditions")
                continue
            if st.get("Effect") == "Allow" and ASSUME & set(as_list(st.get("Action", []))):
                same_org = st.get("Condition", {}).get("StringEquals", {})
                if same_org.get("aws:ResourceOrgID") != SAME_ORG["aws:ResourceOrgID"]:
                    fail(where, f"statement {st.get('Sid', '?')} allows sts:AssumeRoot/AssumeRole "
                                "without aws:ResourceOrgID = ${aws:PrincipalOrgID}")
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
        fail(f"deploy/iam/exporter-policy.json ({partition})",
             "is not exporter-common-policy.json + exporter-assume-root-policy.json")
    # The access role of another organization (AccessMode auto) is the exporter's three parts.
    parts.append(documents.get("exporter-member-role-policy.json"))
    access = documents.get("organization-access-role-policy.json")
    if access and all(parts) and access["Statement"] != [st for p in parts for st in p["Statement"]]:
        fail(f"deploy/iam/organization-access-role-policy.json ({partition})",
             "is not exporter-common-policy.json + exporter-assume-root-policy.json + "
             "exporter-member-role-policy.json")
    cross = documents.get(CROSS_ORG_POLICY)
    if cross and [st.get("Sid") for st in cross.get("Statement", [])] != [CROSS_ORG_SID]:
        fail(f"deploy/iam/{CROSS_ORG_POLICY} ({partition})", f"must hold only {CROSS_ORG_SID}")

    # The events queue policy names one SQS queue, never a wildcard.
    for st in documents.get("exporter-events-policy.json", {}).get("Statement", []):
        for resource in as_list(st.get("Resource", [])):
            if not str(resource).startswith(f"arn:{partition}:sqs:") or "*" in str(resource):
                fail(f"deploy/iam/exporter-events-policy.json ({partition})",
                     f"Resource {resource!r} is not one SQS queue ARN")

    # AssumeRoot only with the audit task policy.
    for name, doc in documents.items():
        for st in doc.get("Statement", []):
            if "sts:AssumeRoot" in as_list(st.get("Action", [])):
                pinned = st.get("Condition", {}).get("StringEquals", {}).get("sts:TaskPolicyArn")
                if pinned != task_policy(partition):
                    fail(f"deploy/iam/{name} ({partition})",
                         "sts:AssumeRoot not pinned to IAMAuditRootUserCredentials")
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
    known = AUDIT_TEMPLATES | {EVENTS_CENTRAL, EVENTS_FORWARDER, ORG_ACCESS_TEMPLATE}
    missing = known - {t.name for t in templates}
    if missing:
        fail("deploy/cloudformation", f"missing {sorted(missing)}")
    docs = {}
    for path in templates:
        where = f"deploy/cloudformation/{path.name}"
        doc = load(path.read_text())
        docs[path.name] = doc
        if path.name in AUDIT_TEMPLATES:
            check_audit_template(where, doc)
        elif path.name not in known:
            fail(where, "not known to tests/deploy/check_policies.py: add its checks")
    if EVENTS_CENTRAL in docs:
        check_events_central(f"deploy/cloudformation/{EVENTS_CENTRAL}", docs[EVENTS_CENTRAL])
    if EVENTS_FORWARDER in docs:
        check_events_forwarder(f"deploy/cloudformation/{EVENTS_FORWARDER}", docs[EVENTS_FORWARDER])
    if ORG_ACCESS_TEMPLATE in docs:
        check_org_access_template(f"deploy/cloudformation/{ORG_ACCESS_TEMPLATE}", docs[ORG_ACCESS_TEMPLATE])


def resolve(value, conditions):
    """A template value with every Fn::If decided by `conditions` ({name: bool}); statements
    that resolve to AWS::NoValue are dropped from lists."""
    if isinstance(value, dict):
        if "Fn::If" in value:
            name, yes, no = value["Fn::If"]
            return resolve(yes if conditions[name] else no, conditions)
        return {k: resolve(v, conditions) for k, v in value.items()}
    if isinstance(value, list):
        items = [resolve(v, conditions) for v in value]
        return [v for v in items if v != {"Ref": "AWS::NoValue"}]
    return value


def literal(value, params):
    """Fn::Sub strings and Refs of a statement as the deployed policy has them: ${AWS::Partition}
    as aws, parameters as `params` gives them."""
    if isinstance(value, dict):
        if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
            text = value["Fn::Sub"].replace("${AWS::Partition}", "aws")
            for name, v in params.items():
                text = text.replace("${" + name + "}", v)
            return text
        if set(value) == {"Ref"} and value["Ref"] in params:
            return params[value["Ref"]]
        return {k: literal(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [literal(v, params) for v in value]
    return value


def check_org_access_template(where, doc):
    params = doc.get("Parameters", {})
    if params.get("AccessMode", {}).get("AllowedValues") != list(ACCESS_MODES):
        fail(where, f"AccessMode must allow exactly {list(ACCESS_MODES)}")
    if params.get("RoleName", {}).get("Default") != ORG_ACCESS_ROLE:
        fail(where, f"RoleName must default to {ORG_ACCESS_ROLE} (the exporter policy's role name)")
    for name in ("ExporterRoleArn", "ExternalId", "MemberRoleName"):
        if name not in params:
            fail(where, f"no parameter {name}")
    _, props = one(where, doc, "AWS::IAM::Role")
    if not props:
        return
    if props.get("MaxSessionDuration") != 3600:
        fail(where, "MaxSessionDuration must be 3600")
    if "ManagedPolicyArns" in props:
        fail(where, "no managed policies: the inline policy is the whole grant")
    task = task_policy("aws")
    params = {"MemberRoleName": "RootAuditRole",
              "ManagementAccountRoleArn": "arn:aws:iam::111111111111:role/RootAuditManagementRole",
              "EventsQueueArn": "arn:aws:sqs:us-east-1:111111111111:aws-root-exporter-events"}
    # Where each way in may go: the member audit role (any account of this organization), the
    # management account's audit role, any member's root.
    way_in = {"AuditMemberRootUsersOnly": "arn:aws:iam::*:root",
              "AssumeMemberAuditRole": "arn:aws:iam::*:role/RootAuditRole",
              "AssumeManagementAccountAuditRole": params["ManagementAccountRoleArn"],
              "ConsumeRootCredentialEvents": params["EventsQueueArn"]}
    exporter_account = {"Fn::Sub": ["arn:${AWS::Partition}:iam::${ExporterAccountId}:root",
                                    {"ExporterAccountId": {"Fn::Select": [4, {"Fn::Split": [":", {"Ref": "ExporterRoleArn"}]}]}}]}
    for mode, expected in ACCESS_MODES.items():
        for external_id in (False, True):
            for management_role, events in ((False, False), (True, False), (False, True), (True, True)):
                conditions = {
                    "HasExternalId": external_id,
                    "UsesAssumeRoot": mode != "role",
                    "UsesMemberRole": mode != "assume_root",
                    "HasManagementAccountRole": management_role,
                    "HasEventsQueue": events,
                }
                case = f"{where} (AccessMode {mode}, ExternalId {'set' if external_id else 'empty'}, " \
                       f"ManagementAccountRoleArn {'set' if management_role else 'empty'}, " \
                       f"EventsQueueArn {'set' if events else 'empty'})"
                role = resolve(props, conditions)
                actions = set()
                for policy in role.get("Policies", []):
                    for st in literal(policy["PolicyDocument"]["Statement"], params):
                        actions |= set(check_statement(case, st, None))
                        if st.get("Sid") in way_in and st.get("Resource") != way_in[st["Sid"]]:
                            fail(case, f"{st['Sid']} Resource {st.get('Resource')!r}, want {way_in[st['Sid']]!r}")
                        acts = set(as_list(st.get("Action", [])))
                        if any("*" in a for a in acts):
                            fail(case, f"wildcard action in {st.get('Sid', '?')}")
                        if ASSUME & acts and st.get("Condition", {}).get("StringEquals", {}).get(
                                "aws:ResourceOrgID") != SAME_ORG["aws:ResourceOrgID"]:
                            fail(case, f"{st.get('Sid', '?')} allows a way in without aws:ResourceOrgID = "
                                       "${aws:PrincipalOrgID} (this organization only)")
                        if "sts:AssumeRoot" in acts and st["Condition"]["StringEquals"].get(
                                "sts:TaskPolicyArn") != task:
                            fail(case, "sts:AssumeRoot not pinned to IAMAuditRootUserCredentials")
                want = expected | ({"sts:AssumeRole"} if management_role else set()) | (EVENTS if events else set())
                if actions != want:
                    fail(case, f"missing {sorted(want - actions)}, extra {sorted(actions - want)}")
                trust = role["AssumeRolePolicyDocument"]["Statement"]
                if len(trust) != 1:
                    fail(case, "the trust must be one statement")
                    continue
                st = trust[0]
                if (st.get("Effect"), st.get("Action"), st.get("Principal")) != (
                        "Allow", "sts:AssumeRole", {"AWS": exporter_account}):
                    fail(case, "the trust must allow only sts:AssumeRole, to the exporter role's account")
                cond = st.get("Condition", {})
                if cond.get("ArnEquals") != {"aws:PrincipalArn": {"Ref": "ExporterRoleArn"}}:
                    fail(case, "the trust must name only the exporter's role (aws:PrincipalArn = ExporterRoleArn)")
                want_external = {"sts:ExternalId": {"Ref": "ExternalId"}} if external_id else None
                if cond.get("StringEquals") != want_external:
                    fail(case, f"the trust's StringEquals must be {want_external}")
                if set(cond) - {"ArnEquals", "StringEquals"}:
                    fail(case, f"unexpected trust conditions {sorted(set(cond) - {'ArnEquals', 'StringEquals'})}")
    if "RoleArn" not in doc.get("Outputs", {}):
        fail(where, "no RoleArn output")


def check_audit_template(where, doc):
    roles = [r for r in doc.get("Resources", {}).values() if r.get("Type") == "AWS::IAM::Role"]
    if len(roles) != 1:
        fail(where, "expected exactly one AWS::IAM::Role")
        return
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
        # StringEquals, or !If [condition, StringEquals, StringEquals]: every branch must keep
        # the organization condition.
        equals = st.get("Condition", {}).get("StringEquals", {})
        branches = equals["Fn::If"][1:] if isinstance(equals, dict) and "Fn::If" in equals else [equals]
        if any(not isinstance(b, dict) or b.get("aws:ResourceOrgID") != SAME_ORG["aws:ResourceOrgID"]
               for b in branches):
            fail(where, "trust must require aws:ResourceOrgID = ${aws:PrincipalOrgID} (in every "
                        "branch of its StringEquals)")
    if "RoleArn" not in doc.get("Outputs", {}):
        fail(where, "no RoleArn output")


def resources_of(doc, kind):
    return {name: r for name, r in doc.get("Resources", {}).items() if r.get("Type") == kind}


def one(where, doc, kind):
    found = resources_of(doc, kind)
    if len(found) != 1:
        fail(where, f"expected exactly one {kind}, found {len(found)}")
        return None, {}
    name, resource = next(iter(found.items()))
    return name, resource.get("Properties", {})


def unwrap_if(statement):
    """A statement written as !If [condition, statement, !Ref AWS::NoValue]: the statement."""
    if isinstance(statement, dict) and "Fn::If" in statement:
        return statement["Fn::If"][1]
    return statement


def check_rule_pattern(where, props, doc):
    if props.get("EventPattern") != EVENT_PATTERN:
        fail(where, "the rule's EventPattern is not the root-credential pattern of "
                    "tests/deploy/check_policies.py (EVENT_PATTERN): change both or neither")
    if props.get("State") != RULE_STATE:
        fail(where, f"the rule's State must be {RULE_STATE} (read-only root calls reach a rule "
                    "only in state ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS)")
    parameter = doc.get("Parameters", {}).get(READ_ONLY_PARAMETER, {})
    if parameter.get("Default") != "true" or parameter.get("AllowedValues") != ["true", "false"]:
        fail(where, f"parameter {READ_ONLY_PARAMETER} must allow \"true\" and \"false\", "
                    "default \"true\" (every root call matters for CIS 4.3)")
    condition = doc.get("Conditions", {}).get("ReadOnlyRootCalls")
    if condition != {"Fn::Equals": [{"Ref": READ_ONLY_PARAMETER}, "true"]}:
        fail(where, f"condition ReadOnlyRootCalls must be {READ_ONLY_PARAMETER} = \"true\"")


# ---------------------------------------------------------------------------------------------
# EventBridge pattern matching, for the sample events below: the subset of EventBridge's
# content filtering the patterns use (exact values, prefix, anything-but, exists, $or).
# ---------------------------------------------------------------------------------------------

_MISSING = object()


def value_matches(rule, value):
    """One element of a pattern's list against one field value (`_MISSING` when absent)."""
    if isinstance(rule, dict):
        (kind, arg), = rule.items()
        if kind == "exists":
            return (value is not _MISSING) == arg
        if value is _MISSING:
            return False
        if kind == "prefix":
            return isinstance(value, str) and value.startswith(arg)
        if kind == "anything-but":
            return value not in as_list(arg)
        raise ValueError(f"pattern operator {kind!r} not supported by this checker")
    return value is not _MISSING and value == rule and type(value) is type(rule)


def field_matches(rules, value):
    # An array in the event matches when any of its elements does.
    values = value if isinstance(value, list) else [value]
    return any(value_matches(rule, v) for rule in rules for v in values)


def pattern_matches(pattern, event):
    for key, rules in pattern.items():
        if key == "$or":
            if not any(pattern_matches(p, event) for p in rules):
                return False
            continue
        value = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(rules, dict):
            if not isinstance(value, dict) or not pattern_matches(rules, value):
                return False
        elif not field_matches(rules, value):
            return False
    return True


def sample_event(detail_type, source, **detail):
    """An event as EventBridge delivers it (the simulator's shapes, simulator/README.md)."""
    account = "222222222222"
    base = {"eventVersion": "1.09", "eventTime": "2026-12-04T22:00:00Z", "awsRegion": "us-east-1",
            "recipientAccountId": account, "eventID": "00000000-0000-4000-8000-000000000000",
            "readOnly": False, "eventType": "AwsApiCall", "managementEvent": True,
            "eventCategory": "Management"}
    base.update(detail)
    return {"version": "0", "id": "1", "detail-type": detail_type, "source": source,
            "account": account, "time": "2026-12-04T22:00:00Z", "region": "us-east-1",
            "resources": [], "detail": base}


ROOT = {"type": "Root", "principalId": "222222222222", "arn": "arn:aws:iam::222222222222:root",
        "accountId": "222222222222", "accessKeyId": "ASIAEXAMPLEEXAMPLE01"}


def sign_in(outcome, identity=None):
    detail = {"userIdentity": identity or dict(ROOT, accessKeyId=""),
              "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
              "eventType": "AwsConsoleSignIn", "responseElements": {"ConsoleLogin": outcome},
              "additionalEventData": {"MFAUsed": "No"}}
    if outcome == "Failure":
        detail["errorMessage"] = "Failed authentication"
    return sample_event("AWS Console Sign In via CloudTrail", "aws.signin", **detail)


def api_call(source, event_source, name, identity, **detail):
    return sample_event("AWS API Call via CloudTrail", source, eventSource=event_source,
                        eventName=name, userIdentity=identity, **detail)


SAMPLES = [
    # (what, event, forwarded)
    ("root console sign-in", sign_in("Success"), True),
    ("failed root console sign-in", sign_in("Failure"), True),
    ("root API call (s3:PutBucketPolicy from the console)",
     api_call("aws.s3", "s3.amazonaws.com", "PutBucketPolicy", ROOT), True),
    ("read-only root API call", api_call("aws.ec2", "ec2.amazonaws.com", "DescribeInstances", ROOT,
                                         readOnly=True), True),
    ("root API call in an AssumeRoot session",
     api_call("aws.s3", "s3.amazonaws.com", "DeleteBucketPolicy",
              dict(ROOT, sessionContext={"attributes": {"mfaAuthenticated": "false"},
                                         "assumedRoot": "true"})), True),
    ("root credential change", api_call("aws.iam", "iam.amazonaws.com", "CreateAccessKey", ROOT), True),
    ("IAM user's console sign-in",
     sign_in("Success", {"type": "IAMUser", "arn": "arn:aws:iam::222222222222:user/ops-admin",
                         "accountId": "222222222222", "userName": "ops-admin"}), False),
    ("IAM user's API call",
     api_call("aws.s3", "s3.amazonaws.com", "PutBucketPolicy",
              {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn":
               "arn:aws:iam::222222222222:user/ops-admin", "accountId": "222222222222",
               "userName": "ops-admin"}), False),
    ("root call invoked by an AWS service",
     api_call("aws.s3", "s3.amazonaws.com", "PutObject",
              dict(ROOT, invokedBy="cloudtrail.amazonaws.com")), False),
    ("AwsServiceEvent (as AWS sends it)",
     sample_event("AWS Service Event via CloudTrail", "aws.kms", eventSource="kms.amazonaws.com",
                  eventName="RotateKey", eventType="AwsServiceEvent",
                  userIdentity={"type": "Root", "accountId": "222222222222"}), False),
    ("AwsServiceEvent under the API call detail-type",
     api_call("aws.kms", "kms.amazonaws.com", "RotateKey", ROOT, eventType="AwsServiceEvent"), False),
    ("a custom sender's fake root call (no aws. source)",
     api_call("acme.app", "s3.amazonaws.com", "PutBucketPolicy", ROOT), False),
]


def check_event_samples():
    # The matcher itself first: each operator can say no.
    for pattern, event, want in [
        ({"a": [{"exists": False}]}, {"a": 1}, False),
        ({"a": [{"exists": False}]}, {}, True),
        ({"a": [{"anything-but": "x"}]}, {}, False),
        ({"a": [{"anything-but": "x"}]}, {"a": "x"}, False),
        ({"a": [{"prefix": "aws."}]}, {"a": "awsx"}, False),
        ({"a": {"b": ["c"]}}, {"a": "c"}, False),
        ({"a": ["c"]}, {"a": ["x", "c"]}, True),
        ({"$or": [{"a": ["x"]}, {"b": ["y"]}]}, {"b": "y"}, True),
    ]:
        if pattern_matches(pattern, event) != want:
            fail("tests/deploy/check_policies.py", f"matcher: {pattern} on {event} is not {want}")
    for what, event, forwarded in SAMPLES:
        if pattern_matches(EVENT_PATTERN, event) != forwarded:
            fail("EVENT_PATTERN", f"{what}: {'not ' if forwarded else ''}matched, "
                                  f"but it must {'' if forwarded else 'not '}be forwarded")


def check_events_central(where, doc):
    if resources_of(doc, "AWS::IAM::Role"):
        fail(where, "the central stack needs no IAM role")
    bus, _ = one(where, doc, "AWS::Events::EventBus")
    _, bus_policy = one(where, doc, "AWS::Events::EventBusPolicy")
    st = bus_policy.get("Statement", {})
    if (st.get("Effect") != "Allow" or st.get("Action") != "events:PutEvents"
            or st.get("Resource") != {"Fn::GetAtt": f"{bus}.Arn"}
            or st.get("Condition") != {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}}):
        fail(where, "the bus policy must allow only events:PutEvents on the bus, "
                    "only with aws:PrincipalOrgID = OrganizationId")

    rule, rule_props = one(where, doc, "AWS::Events::Rule")
    check_rule_pattern(where, rule_props, doc)
    if rule_props.get("EventBusName") != {"Ref": bus}:
        fail(where, "the rule must sit on the central bus")

    queues = resources_of(doc, "AWS::SQS::Queue")
    main = [n for n, q in queues.items() if "RedrivePolicy" in q.get("Properties", {})]
    if len(queues) != 2 or len(main) != 1:
        fail(where, "expected a queue with a RedrivePolicy and its dead-letter queue")
        return
    queue = main[0]
    dlq = next(n for n in queues if n != queue)
    qprops = queues[queue]["Properties"]
    redrive = qprops["RedrivePolicy"]
    if redrive.get("deadLetterTargetArn") != {"Fn::GetAtt": f"{dlq}.Arn"} or not isinstance(
            redrive.get("maxReceiveCount"), int):
        fail(where, "the queue's RedrivePolicy must name the dead-letter queue and a maxReceiveCount")
    if qprops.get("VisibilityTimeout") != 60:
        fail(where, "VisibilityTimeout must be 60 s")
    for name, q in queues.items():
        if q.get("DeletionPolicy") != "Retain" or q.get("UpdateReplacePolicy") != "Retain":
            fail(where, f"{name}: DeletionPolicy and UpdateReplacePolicy must be Retain (unread "
                        "root credential events must not vanish with the stack)")
        p = q.get("Properties", {})
        if "SqsManagedSseEnabled" not in p or "KmsMasterKeyId" not in p:
            fail(where, f"{name}: encryption must be SSE-SQS or the KmsKeyArn key")
    targets = rule_props.get("Targets", [])
    if [t.get("Arn") for t in targets] != [{"Fn::GetAtt": f"{queue}.Arn"}]:
        fail(where, "the rule's only target must be the queue")

    _, queue_policy = one(where, doc, "AWS::SQS::QueuePolicy")
    statements = [unwrap_if(st) for st in queue_policy.get("PolicyDocument", {}).get("Statement", [])]
    senders = [st for st in statements if st.get("Effect") == "Allow"
               and st.get("Principal") == {"Service": "events.amazonaws.com"}]
    consumers = [st for st in statements if st.get("Effect") == "Allow" and st not in senders]
    if len(senders) != 1 or senders[0].get("Action") != "sqs:SendMessage" or senders[0].get(
            "Condition") != {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": f"{rule}.Arn"}}}:
        fail(where, "EventBridge may only sqs:SendMessage, and only from the central rule (aws:SourceArn)")
    for st in consumers:
        if st.get("Principal") != {"AWS": {"Ref": "ExporterRoleArn"}}:
            fail(where, f"queue policy statement {st.get('Sid')} allows an unexpected principal")
        if set(as_list(st.get("Action", []))) != EVENTS:
            fail(where, f"the exporter's queue grant is {sorted(as_list(st.get('Action', [])))}, "
                        f"not exporter-events-policy.json's {sorted(EVENTS)}")
    for output in ("EventBusArn", "QueueUrl", "QueueArn"):
        if output not in doc.get("Outputs", {}):
            fail(where, f"no {output} output")


def check_events_forwarder(where, doc):
    role, props = one(where, doc, "AWS::IAM::Role")
    if role is None:
        return
    if "ManagedPolicyArns" in props:
        fail(where, "no managed policies: the inline policy is the whole grant")
    actions = set()
    for policy in props.get("Policies", []):
        for st in policy["PolicyDocument"]["Statement"]:
            # Resource is a Ref, which check_statement (strings only) would refuse.
            actions |= set(as_list(st.get("Action", [])))
            if st.get("Effect") != "Allow" or st.get("Resource") != {"Ref": "CentralEventBusArn"}:
                fail(where, "the forwarder may put events on the central bus only")
    if actions != {"events:PutEvents"}:
        fail(where, f"role grants {sorted(actions)}, not ['events:PutEvents']")
    for st in props["AssumeRolePolicyDocument"]["Statement"]:
        if st.get("Action") != "sts:AssumeRole" or st.get("Principal") != {
                "Service": "events.amazonaws.com"}:
            fail(where, "only EventBridge (events.amazonaws.com) may assume the forwarder's role")
    deployment = doc.get("Metadata", {}).get("Deployment", "")
    if ACTIVATE_STACKSETS not in deployment or "--permission-model SERVICE_MANAGED" not in deployment:
        fail(where, f"Metadata.Deployment must say `{ACTIVATE_STACKSETS}` before the "
                    "service-managed StackSet")
    _, rule_props = one(where, doc, "AWS::Events::Rule")
    check_rule_pattern(where, rule_props, doc)
    if "EventBusName" in rule_props:
        fail(where, "the forwarder's rule belongs on the default bus (no EventBusName)")
    if [(t.get("Arn"), t.get("RoleArn")) for t in rule_props.get("Targets", [])] != [
            ({"Ref": "CentralEventBusArn"}, {"Fn::GetAtt": f"{role}.Arn"})]:
        fail(where, "the rule's only target must be the central bus, through the forwarder's role")
    asserts = [a.get("Assert") for r in doc.get("Rules", {}).values() for a in r.get("Assertions", [])]
    if {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]} not in asserts:
        fail(where, "Rules must refuse every region but us-east-1")


def main():
    known = aws_actions()
    check_partition_placeholder()
    for partition in PARTITIONS:
        check_policy_files(known, partition)
    check_templates()
    check_event_samples()
    for e in errors:
        print(f"FAIL {e}")
    if errors:
        return 1
    print(f"ok: {len(list(IAM.glob('*.json')))} policies (in partitions {', '.join(PARTITIONS)}), "
          f"{len(list(CFN.glob('*.yaml')))} templates, {len(SAMPLES)} sample events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
