#!/usr/bin/env python3
"""Cross-check the AWS simulator (aws-org-simulator) with boto3, an independent AWS client.

The simulator's own tests drive it with the Rust SDK. This script talks to the same simulator
with boto3/botocore (a different client, with its own serializers, parsers and paginators) and
checks that it answers as AWS documents, for the scenario it was started with:

    aws-org-simulator --scenario FILE --listen 127.0.0.1:0
    python3 simulator/tests/boto3/check_simulator.py --endpoint http://127.0.0.1:PORT --scenario FILE

or, for several organizations in one world, with every scenario the simulator was started with,
in the same order (`--scenario A --scenario B`): then it checks the organizations together (see
the last item below) instead of the one-scenario checks.

What it checks:
  * organizations:ListAccounts, paged by hand with MaxResults=3 and NextToken, and through the
    botocore paginator: no page is larger than asked, no account twice, both walks agree, every
    account of the scenario is listed with its name, e-mail and status, and the total is the
    scenario's accounts plus `[generate] accounts` (plus the management account when the
    scenario does not list it: AWS always lists it); each account's entry carries State, Status,
    both or neither as its `state_fields` says (AWS retired Status on 2026-09-09);
  * organizations:DescribeOrganization gives the organization id and management account id;
  * iam:ListOrganizationsFeatures gives the organization id and the enabled features;
  * sts:GetCallerIdentity answers;
  * for each ACTIVE member account with assume_root = "ok": sts:AssumeRoot with the audit task
    policy, then, with those root-session credentials, iam:GetAccountSummary has the four root
    flags the scenario implies, and iam:ListUsers (outside the task policy) is AccessDenied;
  * for each member account with assume_root = "access_denied": AccessDenied, from AssumeRoot
    itself or from GetAccountSummary inside the session (an SCP without the aws:AssumedRoot
    carve-out denies the latter);
  * AssumeRoot on the management account and on an account outside the organization fails
    with AccessDenied;
  * sts:GetCallerIdentity names the caller account (`caller_account_id`, default the management
    account); with the caller's own credentials, iam:GetAccountSummary has that account's root
    flags, iam:GenerateCredentialReport reaches COMPLETE and iam:GetCredentialReport's CSV has
    AWS's header and the root row its `root` implies, and iam:ListVirtualMFADevices lists root's
    virtual devices (and pages with the paginator);
  * organizations:ListRoots gives one root; walking the tree with the ListOrganizationalUnitsForParent
    and ListAccountsForParent paginators finds every account once, at its `ou` path;
    organizations:ListTagsForResource gives each account's `tags`; unknown parents and targets
    are ParentNotFoundException / TargetNotFoundException;
  * for every role of every account: sts:AssumeRole succeeds when the account is ACTIVE and the
    role trusts the caller account (with its ExternalId; without it, AccessDenied), else it is
    AccessDenied; in the role session GetCallerIdentity is the assumed-role ARN, the root flags,
    the credential report's root row and ListVirtualMFADevices describe that account, and
    iam:ListUsers and organizations:ListAccounts are denied; a missing role is AccessDenied and
    DurationSeconds=43201 a ValidationError;
  * with --control (the simulator's control API): a `not_aws` fault makes sts:GetCallerIdentity,
    organizations:ListAccounts and a root session's iam:GetAccountSummary answer HTTP 500
    text/html, which botocore reports without an AWS error code (only the status, "500"); the
    control API refuses a fault the scenario file would refuse (400, {"error": ...}). These
    checks replace the simulator's faults and leave none. It also replaces one account's tags
    through the control API, reads them back with ListTagsForResource and puts them back;
  * sqs (AWS JSON 1.0, which botocore's sqs client speaks): without `[events]`, GetQueueUrl and
    ReceiveMessage answer AWS.SimpleQueueService.NonExistentQueue; with it, GetQueueUrl gives
    ENDPOINT/MANAGEMENT_ACCOUNT/QUEUE_NAME, other queues do not exist, and bad inputs get AWS's
    codes (InvalidParameterValue, ReceiptHandleIsInvalid, EmptyBatchRequest). With --control too:
    a raw message (POST /_simulator/queue/messages) is long polled, hidden while in flight,
    redelivered with a new receipt handle and ApproximateReceiveCount 2 after
    ChangeMessageVisibility 0, and batch deleted; CreateAccessKey and DeleteAccessKey (from an
    AssumeRoot session) through POST /_simulator/accounts/ID/root_actions arrive as EventBridge
    events with the CloudTrail record's fields and no secret; ConsoleLogin of a root with a
    password arrives as a sign-in event; root activity (ConsoleLogin Success and Failure,
    ApiCall from the console, with root's key, whose GetAccessKeyLastUsed then says so, and in
    AssumeRoot sessions: an operator's and, after boto3's own AssumeRoot, `issued_to: "self"`
    with and without hints) arrives with AWS's fields, the self events carrying the AccessKeyId
    boto3 got; access_denied and not_aws faults apply to ReceiveMessage;
  * with --control, rate limits (PUT /_simulator/rate_limits, the scenario's [rate_limits]): once
    a bucket is empty, sts:GetCallerIdentity answers HTTP 400 Throttling, organizations:ListRoots
    TooManyRequestsException and, with [events], sqs:GetQueueUrl RequestThrottled, each a
    ClientError with that code when botocore does not retry, and retried by botocore's standard
    mode (it classifies the 400 as throttling); GET /_simulator/calls/throttled counts them; the
    control API refuses a rate limit the scenario file would refuse. The check lifts every limit.
  * with several scenarios: each organization's caller key (the first of its
    `caller_access_key_ids`; the environment's key for a first scenario that lists none) is that
    organization's caller (GetCallerIdentity, ListAccounts, DescribeOrganization); for every
    role with `organization_access` that trusts another organization's caller account:
    AssumeRole without its ExternalId and by its own organization's caller is AccessDenied, with
    it the session is the assumed-role ARN in that account, ListAccounts and
    ListOrganizationsFeatures there name the role's organization, AssumeRoot from it reaches a
    member of that organization (whose GetAccountSummary flags match the scenario) and not a
    member of the caller's organization, which the caller's own key cannot reach in the other
    organization either.

Each check prints one line; the last line is "N passed, M failed". The exit status is 0 only when
nothing failed. Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (defaults:
AKIDEXAMPLE / secret); no AWS configuration file and no real AWS endpoint is ever used.
Root-session credentials are never printed.
"""

from __future__ import annotations

import argparse
import base64
import csv
import datetime as dt
import io
import time
import json
import os
import re
import sys
import tomllib
import traceback
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

try:
    import boto3
    import botocore.config
    import botocore.exceptions
except ImportError:  # pragma: no cover - depends on the environment
    print("boto3 is not installed: python3 -m pip install boto3", file=sys.stderr)
    sys.exit(2)

AUDIT_TASK_POLICY = "arn:aws:iam::aws:policy/root-task/IAMAuditRootUserCredentials"
ROOT_FLAGS = (
    "AccountMFAEnabled",
    "AccountAccessKeysPresent",
    "AccountPasswordPresent",
    "AccountSigningCertificatesPresent",
)
# ListAccounts: the legacy Status enum; State (newer) adds PENDING_ACTIVATION and CLOSED (whose
# legacy Status is SUSPENDED).
LEGACY_STATUSES = {"ACTIVE", "SUSPENDED", "PENDING_CLOSURE"}
LEGACY_STATUS = {"CLOSED": "SUSPENDED"}
ALL_STATES = LEGACY_STATUSES | {"PENDING_ACTIVATION", "CLOSED"}
ACCOUNT_ID = re.compile(r"^\d{12}$")
PAGE_SIZE = 3
SESSION_SECONDS = 120
# AssumeRole's shortest session.
ROLE_SESSION_SECONDS = 900
# AWS models no specific error for an AssumeRoot that is not allowed (the management account, an
# account outside the organization, an SCP): authorization failures come back as AccessDenied.
DENIED_CODES = {"AccessDenied"}


# ---------------------------------------------------------------------------------------------
# Scenario
# ---------------------------------------------------------------------------------------------


@dataclass
class ScenarioRole:
    name: str
    trusts: list[str]
    external_id: str | None
    organization_access: bool = False


@dataclass
class ScenarioAccount:
    id: str
    name: str
    email: str | None
    status: str
    assume_root: str
    state_fields: str
    flags: dict[str, int]
    root: dict[str, Any] = field(default_factory=dict)
    roles: list[ScenarioRole] = field(default_factory=list)
    ou: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def listed_with_state(self) -> bool:
        return self.state_fields in ("state_and_status", "state_only")

    @property
    def listed_with_status(self) -> bool:
        # The retired Status has no value for PENDING_ACTIVATION.
        return self.state_fields in ("state_and_status", "status_only") and self.status != "PENDING_ACTIVATION"


# The implicit management account's root user (when [[accounts]] does not list it).
IMPLICIT_MANAGEMENT_ROOT: dict[str, Any] = {"mfa": ["hardware"]}


@dataclass
class Scenario:
    org_id: str
    management_id: str
    caller_id: str
    features: list[str]
    accounts: list[ScenarioAccount]
    generated: int
    generation_ms: int = 0
    # `[events]`: queue_name, delivery_delay_ms, visibility_timeout_s; None without a queue.
    events: dict[str, Any] | None = None
    # `caller_access_key_ids`; None when the scenario lets any key call.
    caller_keys: list[str] | None = None

    @property
    def explicit_ids(self) -> set[str]:
        return {a.id for a in self.accounts}

    def account(self, account_id: str) -> ScenarioAccount | None:
        return next((a for a in self.accounts if a.id == account_id), None)

    def root_of(self, account_id: str) -> dict[str, Any]:
        acct = self.account(account_id)
        if acct is not None:
            return acct.root
        if account_id == self.management_id:
            return IMPLICIT_MANAGEMENT_ROOT
        return {}


def _truthy_password(value: Any) -> bool:
    # `password = true`, or a table { created = ..., last_used = ... } meaning "has one".
    if isinstance(value, dict):
        return True
    return bool(value)


def expected_flags(root: dict[str, Any] | None) -> dict[str, int]:
    """The four GetAccountSummary flags a scenario root table implies.

    A missing `root` table means a root user without credentials. Access keys count whatever
    their status: AWS sets AccountAccessKeysPresent for an Inactive key too.
    """
    root = root or {}
    return {
        "AccountMFAEnabled": int(len(root.get("mfa", []) or []) > 0),
        "AccountAccessKeysPresent": int(len(root.get("access_keys", []) or []) > 0),
        "AccountPasswordPresent": int(_truthy_password(root.get("password", False))),
        "AccountSigningCertificatesPresent": int(
            len(root.get("signing_certificates", []) or []) > 0
        ),
    }


def load_roles(raw: list[Any], caller: str) -> list[ScenarioRole]:
    roles = []
    for r in raw or []:
        if isinstance(r, str):
            roles.append(ScenarioRole(name=r, trusts=[caller], external_id=None))
        else:
            roles.append(
                ScenarioRole(
                    name=str(r["name"]),
                    trusts=[str(t) for t in r.get("trusts", [caller])],
                    external_id=r.get("external_id"),
                    organization_access=bool(r.get("organization_access", False)),
                )
            )
    return roles


def load_scenario(path: str) -> Scenario:
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    org = doc.get("organization", {})
    management = str(org["management_account_id"])
    caller = str(org.get("caller_account_id", management))
    accounts = []
    for raw in doc.get("accounts", []):
        accounts.append(
            ScenarioAccount(
                id=str(raw["id"]),
                name=str(raw.get("name", "")),
                email=raw.get("email"),
                status=str(raw.get("status", "ACTIVE")),
                assume_root=str(raw.get("assume_root", "ok")),
                state_fields=str(raw.get("state_fields", "state_and_status")),
                flags=expected_flags(raw.get("root")),
                root=raw.get("root") or {},
                roles=load_roles(raw.get("roles", []), caller),
                ou=raw.get("ou"),
                tags={str(k): str(v) for k, v in (raw.get("tags") or {}).items()},
            )
        )
    generate = doc.get("generate", {}) or {}
    return Scenario(
        org_id=str(org["id"]),
        management_id=management,
        caller_id=caller,
        features=[str(f) for f in org.get("features", [])],
        accounts=accounts,
        generated=int(generate.get("accounts", 0) or 0),
        generation_ms=int((doc.get("credential_report") or {}).get("generation_ms", 0)),
        events=doc.get("events"),
        caller_keys=[str(k) for k in org["caller_access_key_ids"]] if "caller_access_key_ids" in org else None,
    )


# ---------------------------------------------------------------------------------------------
# Checks bookkeeping
# ---------------------------------------------------------------------------------------------


class CheckFailed(Exception):
    pass


def require(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


@dataclass
class Results:
    passed: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)

    def run(self, name: str, fn: Callable[[], str | None]) -> bool:
        try:
            detail = fn()
        except CheckFailed as e:
            self._fail(name, str(e))
            return False
        except botocore.exceptions.ClientError as e:
            self._fail(name, f"unexpected {error_code(e)}: {error_message(e)}")
            return False
        except botocore.exceptions.BotoCoreError as e:
            self._fail(name, f"{type(e).__name__}: {e}")
            return False
        except Exception as e:  # a bug here, or a malformed answer: report, keep going
            self._fail(name, f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
            return False
        self.passed += 1
        print(f"ok   {name}" + (f": {detail}" if detail else ""), flush=True)
        return True

    def _fail(self, name: str, why: str) -> None:
        self.failed += 1
        self.failures.append(name)
        print(f"FAIL {name}: {why}", flush=True)


def error_code(e: botocore.exceptions.ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", "?"))


def error_message(e: botocore.exceptions.ClientError) -> str:
    return str(e.response.get("Error", {}).get("Message", ""))


# ---------------------------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------------------------


@dataclass
class Clients:
    endpoint: str
    region: str
    access_key: str
    secret_key: str

    def _config(self, total_max_attempts: int | None) -> botocore.config.Config:
        # By default 2 retries (3 attempts); total_max_attempts=1 turns retries off.
        retries: dict[str, Any] = {"max_attempts": 2, "mode": "standard"}
        if total_max_attempts is not None:
            retries = {"total_max_attempts": total_max_attempts, "mode": "standard"}
        return botocore.config.Config(
            region_name=self.region,
            retries=retries,
            connect_timeout=5,
            read_timeout=30,
        )

    def client(
        self, service: str, credentials: dict[str, str] | None = None, total_max_attempts: int | None = None
    ):
        if credentials is None:
            creds = {
                "aws_access_key_id": self.access_key,
                "aws_secret_access_key": self.secret_key,
            }
        else:
            creds = {
                "aws_access_key_id": credentials["AccessKeyId"],
                "aws_secret_access_key": credentials["SecretAccessKey"],
                "aws_session_token": credentials["SessionToken"],
            }
        # A bare botocore session: no profile, no config file, only what is passed here.
        session = boto3.session.Session(region_name=self.region, **creds)
        return session.client(service, endpoint_url=self.endpoint, config=self._config(total_max_attempts))


# ---------------------------------------------------------------------------------------------
# Organizations
# ---------------------------------------------------------------------------------------------


def list_accounts_by_hand(org) -> tuple[list[dict[str, Any]], list[int]]:
    accounts: list[dict[str, Any]] = []
    sizes: list[int] = []
    token: str | None = None
    for _ in range(100_000):  # a NextToken that never ends is a failure, not a hang
        kwargs: dict[str, Any] = {"MaxResults": PAGE_SIZE}
        if token:
            kwargs["NextToken"] = token
        page = org.list_accounts(**kwargs)
        batch = page.get("Accounts", [])
        sizes.append(len(batch))
        accounts.extend(batch)
        token = page.get("NextToken")
        if not token:
            return accounts, sizes
    raise CheckFailed("NextToken still present after 100000 pages")


def list_accounts_by_paginator(org) -> tuple[list[dict[str, Any]], list[int]]:
    accounts: list[dict[str, Any]] = []
    sizes: list[int] = []
    paginator = org.get_paginator("list_accounts")
    for page in paginator.paginate(PaginationConfig={"PageSize": PAGE_SIZE}):
        batch = page.get("Accounts", [])
        sizes.append(len(batch))
        accounts.extend(batch)
    return accounts, sizes


def account_state(acct: dict[str, Any]) -> str | None:
    return acct.get("State") or acct.get("Status")


def check_listing(
    scenario: Scenario, listed: list[dict[str, Any]], sizes: list[int], how: str
) -> str:
    require(
        all(s <= PAGE_SIZE for s in sizes),
        f"{how}: a page exceeds MaxResults={PAGE_SIZE}: sizes {sizes}",
    )
    ids = [a.get("Id") for a in listed]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    require(not dupes, f"{how}: accounts listed more than once: {dupes}")
    bad = [i for i in ids if not isinstance(i, str) or not ACCOUNT_ID.match(i)]
    require(not bad, f"{how}: account ids that are not 12 digits: {bad[:5]}")

    by_id = {a["Id"]: a for a in listed}
    problems = []
    for want in scenario.accounts:
        got = by_id.get(want.id)
        if got is None:
            problems.append(f"{want.id} ({want.name}) missing")
            continue
        if got.get("Name") != want.name:
            problems.append(f"{want.id}: Name {got.get('Name')!r} != {want.name!r}")
        if want.email is not None and got.get("Email") != want.email:
            problems.append(f"{want.id}: Email {got.get('Email')!r} != {want.email!r}")
        if ("State" in got) != want.listed_with_state:
            problems.append(f"{want.id}: State {'present' if 'State' in got else 'absent'}, state_fields = {want.state_fields!r}")
        if ("Status" in got) != want.listed_with_status:
            problems.append(f"{want.id}: Status {'present' if 'Status' in got else 'absent'}, state_fields = {want.state_fields!r}")
        if "State" in got and got["State"] != want.status:
            problems.append(f"{want.id}: State {got['State']!r} != {want.status!r}")
        legacy = LEGACY_STATUS.get(want.status, want.status)
        if "Status" in got and got["Status"] != legacy:
            problems.append(f"{want.id}: Status {got['Status']!r} != {legacy!r}")
        arn = got.get("Arn", "")
        if not (arn.startswith("arn:aws:organizations::") and arn.endswith("/" + want.id)):
            problems.append(f"{want.id}: unexpected Arn {arn!r}")
    for acct in listed:
        if acct["Id"] in scenario.explicit_ids:
            continue
        if not acct.get("Name"):
            problems.append(f"{acct['Id']}: generated account without a Name")
        if account_state(acct) not in ALL_STATES:
            problems.append(f"{acct['Id']}: state {account_state(acct)!r} is not an AWS state")
    require(not problems, f"{how}: " + "; ".join(problems[:10]))

    require(
        scenario.management_id in by_id,
        f"{how}: management account {scenario.management_id} not listed (AWS always lists it)",
    )
    management_extra = 0 if scenario.management_id in scenario.explicit_ids else 1
    want_total = len(scenario.accounts) + scenario.generated + management_extra
    require(
        len(listed) == want_total,
        f"{how}: {len(listed)} accounts, want {want_total} = {len(scenario.accounts)} explicit"
        f" + {scenario.generated} generated + {management_extra} management",
    )
    return f"{len(listed)} accounts in {len(sizes)} pages (sizes {sizes[:8]}{'...' if len(sizes) > 8 else ''})"


# ---------------------------------------------------------------------------------------------
# Root sessions
# ---------------------------------------------------------------------------------------------


def assume_root(sts, target: str) -> dict[str, Any]:
    return sts.assume_root(
        TargetPrincipal=target,
        TaskPolicyArn={"arn": AUDIT_TASK_POLICY},
        DurationSeconds=SESSION_SECONDS,
    )


def check_credentials(resp: dict[str, Any], seconds: int = SESSION_SECONDS) -> dict[str, str]:
    creds = resp.get("Credentials") or {}
    for key in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"):
        require(bool(creds.get(key)), f"the answer lacks Credentials.{key}")
    require(creds["AccessKeyId"].startswith("ASIA"), "temporary credentials' key id does not start with ASIA")
    expiration = creds["Expiration"]
    if isinstance(expiration, dt.datetime):
        now = dt.datetime.now(dt.timezone.utc)
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=dt.timezone.utc)
        left = (expiration - now).total_seconds()
        # Allow generous clock skew between the simulator and this host.
        require(-5 < left <= seconds + 300, f"Expiration {expiration} is {left:.0f}s away, want {seconds}s")
    return creds


def expect_denied(fn: Callable[[], Any], what: str) -> str:
    try:
        fn()
    except botocore.exceptions.ClientError as e:
        code = error_code(e)
        require(code in DENIED_CODES, f"{what}: error code {code!r}, want one of {sorted(DENIED_CODES)}")
        return f"{code} ({error_message(e)[:80]})" if error_message(e) else code
    raise CheckFailed(f"{what} succeeded, want AccessDenied")


def audit_ok_account(clients: Clients, sts, acct: ScenarioAccount) -> str:
    creds = check_credentials(assume_root(sts, acct.id))
    iam = clients.client("iam", creds)
    summary = iam.get_account_summary().get("SummaryMap", {})
    wrong = []
    for key in ROOT_FLAGS:
        if key not in summary:
            wrong.append(f"{key} missing")
        elif summary[key] != acct.flags[key]:
            wrong.append(f"{key}={summary[key]} want {acct.flags[key]}")
    require(not wrong, "GetAccountSummary: " + ", ".join(wrong))
    denied = expect_denied(iam.list_users, "iam:ListUsers in the audit root session")
    flags = " ".join(f"{k.removeprefix('Account')}={acct.flags[k]}" for k in ROOT_FLAGS)
    return f"{flags}; ListUsers -> {denied}"


def audit_denied_account(clients: Clients, sts, acct: ScenarioAccount) -> str:
    try:
        resp = assume_root(sts, acct.id)
    except botocore.exceptions.ClientError as e:
        code = error_code(e)
        require(code in DENIED_CODES, f"AssumeRoot: error code {code!r}, want AccessDenied")
        return f"AssumeRoot -> {code}"
    creds = check_credentials(resp)
    iam = clients.client("iam", creds)
    denied = expect_denied(iam.get_account_summary, "GetAccountSummary in the root session")
    return f"AssumeRoot ok, GetAccountSummary -> {denied}"


def unknown_assume_root(acct: ScenarioAccount) -> str:
    raise CheckFailed(f"unknown assume_root value {acct.assume_root!r} (want ok or access_denied)")


def unknown_account_id(taken: set[str]) -> str:
    for candidate in ("999999999999", "123456789012", "000000000001"):
        if candidate not in taken:
            return candidate
    n = 100000000000
    while str(n) in taken:
        n += 1
    return str(n)


# ---------------------------------------------------------------------------------------------
# Control API: a non-AWS answer
# ---------------------------------------------------------------------------------------------


def put_control(control: str, path: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        control.rstrip("/") + path,
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def set_faults(control: str, faults: Any) -> None:
    status, body = put_control(control, "/_simulator/faults", faults)
    require(status == 200, f"PUT /_simulator/faults {faults}: {status} {body}")


def expect_not_aws(fn: Callable[[], Any], what: str) -> str:
    """botocore's reading of an HTTP 500 text/html answer: no AWS error code, only the status."""
    try:
        fn()
    except botocore.exceptions.ClientError as e:
        meta = e.response.get("ResponseMetadata", {})
        status = meta.get("HTTPStatusCode")
        content_type = (meta.get("HTTPHeaders") or {}).get("content-type", "")
        require(status == 500, f"{what}: HTTP {status}, want 500")
        require(content_type.startswith("text/html"), f"{what}: Content-Type {content_type!r}")
        code = error_code(e)
        require(code == "500", f"{what}: error code {code!r}, want botocore's generic '500' (no AWS code)")
        return f"HTTP 500 {content_type}, code {code!r} after {meta.get('RetryAttempts', 0)} retries"
    raise CheckFailed(f"{what} succeeded, want an HTML 500")


def not_aws_answers(clients: Clients, control: str, org, sts, member: ScenarioAccount | None) -> str:
    set_faults(
        control,
        [{"operation": "GetCallerIdentity", "kind": "not_aws"}, {"operation": "ListAccounts", "kind": "not_aws"}],
    )
    seen = [
        "sts " + expect_not_aws(sts.get_caller_identity, "sts:GetCallerIdentity"),
        "organizations " + expect_not_aws(org.list_accounts, "organizations:ListAccounts"),
    ]
    if member is not None:
        set_faults(control, {"GetAccountSummary": {"kind": "not_aws", "account_id": member.id}})
        iam = clients.client("iam", check_credentials(assume_root(sts, member.id)))
        seen.append(f"iam ({member.id}) " + expect_not_aws(iam.get_account_summary, "iam:GetAccountSummary"))
    set_faults(control, [])
    sts.get_caller_identity()
    org.list_accounts(MaxResults=1)
    return "; ".join(seen)


def control_refuses_bad_faults(control: str) -> str:
    refused = []
    for fault in (
        {"operation": "AssumeRoleWithSAML", "kind": "not_aws"},
        {"kind": "not_aws", "rate": 2},
        {"kind": "slow", "delay_ms": 10, "dealy": 1},
        {"kind": "not_aws", "account_id": "12"},
    ):
        status, body = put_control(control, "/_simulator/faults", [fault])
        message = (body or {}).get("error") if isinstance(body, dict) else None
        require(status == 400 and isinstance(message, str), f"{fault}: {status} {body}, want 400 {{'error': ...}}")
        refused.append(message.split(";")[0][:60])
    return " | ".join(refused)


def throttled_counts(control: str) -> dict[str, int]:
    status, body = get_control(control, "/_simulator/calls/throttled")
    require(status == 200 and isinstance(body, dict), f"GET /_simulator/calls/throttled: {status} {body}")
    return body


def expect_throttled(fn: Callable[[], Any], code: str, attempts: int, what: str) -> None:
    """`fn` fails with HTTP 400 `code` after `attempts` attempts (botocore's RetryAttempts + 1)."""
    try:
        fn()
    except botocore.exceptions.ClientError as e:
        meta = e.response.get("ResponseMetadata", {})
        got = (error_code(e), meta.get("HTTPStatusCode"), meta.get("RetryAttempts", 0) + 1)
        require(got == (code, 400, attempts), f"{what}: (code, status, attempts) {got}, want {(code, 400, attempts)}")
        return
    raise CheckFailed(f"{what} succeeded, want {code}")


def rate_limits_throttle(clients: Clients, control: str, scenario: Scenario) -> str:
    """One token each, refilled every 100 s: the second call of each operation is throttled."""
    slow = {"rate": 0.01, "burst": 1}
    calls: list[tuple[str, str, Callable[[Any], Any], str]] = [
        ("sts", "GetCallerIdentity", lambda c: c.get_caller_identity(), "Throttling"),
        ("organizations", "ListRoots", lambda c: c.list_roots(), "TooManyRequestsException"),
    ]
    if scenario.events is not None:
        name = scenario.events["queue_name"]
        calls.append(("sqs", "GetQueueUrl", lambda c: c.get_queue_url(QueueName=name), "RequestThrottled"))
    before = throttled_counts(control)
    status, body = put_control(control, "/_simulator/rate_limits", {op: slow for _, op, _, _ in calls})
    require(status == 200, f"PUT /_simulator/rate_limits: {status} {body}")
    try:
        seen = []
        for service, op, call, code in calls:
            once = clients.client(service, total_max_attempts=1)
            call(once)
            expect_throttled(lambda: call(once), code, 1, f"{service}:{op} without retries")
            # botocore's standard mode retries a 400 only for a throttling (or transient) code.
            retrying = clients.client(service, total_max_attempts=2)
            expect_throttled(lambda: call(retrying), code, 2, f"{service}:{op} with retries")
            seen.append(f"{service}:{op} {code}")
        after = throttled_counts(control)
        for _, op, _, _ in calls:
            counted = after.get(op, 0) - before.get(op, 0)
            require(counted == 3, f"/_simulator/calls/throttled counts {counted} for {op}, want 3")
        status, body = put_control(control, "/_simulator/rate_limits", {"AssumeRoot": {"rate": 0}})
        message = (body or {}).get("error") if isinstance(body, dict) else None
        require(
            status == 400 and isinstance(message, str) and "rate_limits.AssumeRoot.rate = 0" in message,
            f"rate 0: {status} {body}, want 400 naming rate_limits.AssumeRoot.rate",
        )
    finally:
        put_control(control, "/_simulator/rate_limits", {})
    for service, _, call, _ in calls:
        call(clients.client(service, total_max_attempts=1))
    return "; ".join(seen) + "; counted; rate 0 refused; lifted"


# ---------------------------------------------------------------------------------------------
# SQS: the [events] queue (AWS JSON 1.0, query-compatible errors) and the events in it
# ---------------------------------------------------------------------------------------------

NO_SUCH_QUEUE = "AWS.SimpleQueueService.NonExistentQueue"
DEFAULT_QUEUE_NAME = "aws-root-events"


def post_control(control: str, path: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        control.rstrip("/") + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def get_control(control: str, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(control.rstrip("/") + path, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def sqs_protocol(sqs) -> str:
    return str(sqs.meta.service_model.protocol)


def no_queue(sqs, scenario: Scenario, endpoint: str) -> str:
    """Without [events]: GetQueueUrl and ReceiveMessage answer QueueDoesNotExist."""
    url = f"{endpoint.rstrip('/')}/{scenario.management_id}/{DEFAULT_QUEUE_NAME}"
    codes = [
        expect_code(lambda: sqs.get_queue_url(QueueName=DEFAULT_QUEUE_NAME), {NO_SUCH_QUEUE}, "GetQueueUrl"),
        expect_code(lambda: sqs.receive_message(QueueUrl=url), {NO_SUCH_QUEUE}, "ReceiveMessage"),
    ]
    return f"protocol {sqs_protocol(sqs)}; " + "; ".join(codes)


def queue_url_of(sqs, scenario: Scenario, endpoint: str) -> str:
    assert scenario.events is not None
    name = scenario.events["queue_name"]
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    want = f"{endpoint.rstrip('/')}/{scenario.management_id}/{name}"
    require(url == want, f"QueueUrl {url!r} != {want!r}")
    return url


def check_queue(sqs, scenario: Scenario, endpoint: str) -> str:
    """With [events]: the queue's URL, an empty short poll, errors for other queues and bad inputs."""
    require(sqs_protocol(sqs) == "json", f"botocore's sqs speaks {sqs_protocol(sqs)!r}, want 'json' (AWS JSON 1.0)")
    url = queue_url_of(sqs, scenario, endpoint)
    got = sqs.get_queue_url(QueueName=scenario.events["queue_name"], QueueOwnerAWSAccountId=scenario.management_id)
    require(got["QueueUrl"] == url, f"with the owner: {got['QueueUrl']!r}")
    seen = [
        expect_code(lambda: sqs.get_queue_url(QueueName="no-such-queue"), {NO_SUCH_QUEUE}, "GetQueueUrl"),
        expect_code(
            lambda: sqs.receive_message(QueueUrl=url + "-other"), {NO_SUCH_QUEUE}, "ReceiveMessage other queue"
        ),
        expect_code(
            lambda: sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11),
            {"InvalidParameterValue"},
            "MaxNumberOfMessages=11",
        ),
        expect_code(
            lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=21),
            {"InvalidParameterValue"},
            "WaitTimeSeconds=21",
        ),
        expect_code(
            lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle="AQEBnot-a-handle"),
            {"ReceiptHandleIsInvalid"},
            "DeleteMessage",
        ),
        expect_code(
            lambda: sqs.delete_message_batch(QueueUrl=url, Entries=[]),
            {"AWS.SimpleQueueService.EmptyBatchRequest"},
            "DeleteMessageBatch []",
        ),
    ]
    return f"{url}; " + "; ".join(seen)


def receive(sqs, url: str, wait: int = 0, **kwargs: Any) -> list[dict[str, Any]]:
    r = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=wait,
        MessageSystemAttributeNames=["All"],
        **kwargs,
    )
    return r.get("Messages", [])


def drain(sqs, url: str) -> int:
    """Delete every visible message."""
    n = 0
    while True:
        got = receive(sqs, url)
        if not got:
            return n
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": f"m{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
        )
        n += len(got)


def raw_messages(sqs, scenario: Scenario, endpoint: str, control: str) -> str:
    """A raw message through the control API: long poll, attributes, visibility, redelivery, batch delete."""
    url = queue_url_of(sqs, scenario, endpoint)
    drain(sqs, url)
    body = '{"boto3": "raw message"}'
    status, answer = post_control(control, "/_simulator/queue/messages", {"body": body})
    require(status == 200, f"POST /_simulator/queue/messages: {status} {answer}")
    started = time.monotonic()
    got = receive(sqs, url, wait=5, VisibilityTimeout=30)
    took = time.monotonic() - started
    require(len(got) == 1, f"{len(got)} messages, want 1")
    m = got[0]
    require(m["MessageId"] == answer["message_id"], f"MessageId {m['MessageId']} != {answer['message_id']}")
    require(m["Body"] == body, f"Body {m['Body']!r}")
    require(m["MD5OfBody"] == __import__("hashlib").md5(body.encode()).hexdigest(), f"MD5OfBody {m['MD5OfBody']}")
    attrs = m.get("Attributes", {})
    require(attrs.get("ApproximateReceiveCount") == "1", f"Attributes {attrs}")
    sent = int(attrs.get("SentTimestamp", "0"))
    require(abs(time.time() * 1000 - sent) < 60_000, f"SentTimestamp {sent}")
    require(receive(sqs, url) == [], "a message in flight was received again")
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    again = receive(sqs, url)
    require(len(again) == 1, f"after ChangeMessageVisibility 0: {len(again)} messages")
    require(again[0]["Attributes"]["ApproximateReceiveCount"] == "2", f"{again[0]['Attributes']}")
    require(again[0]["ReceiptHandle"] != m["ReceiptHandle"], "the receipt handle did not change")
    r = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "latest", "ReceiptHandle": again[0]["ReceiptHandle"]},
            {"Id": "bogus", "ReceiptHandle": "AQEBnot-a-handle"},
        ],
    )
    require([e["Id"] for e in r.get("Successful", [])] == ["latest"], f"Successful {r.get('Successful')}")
    failed = r.get("Failed", [])
    require(
        [(e["Id"], e["Code"], e["SenderFault"]) for e in failed] == [("bogus", "ReceiptHandleIsInvalid", True)],
        f"Failed {failed}",
    )
    status, counts = get_control(control, "/_simulator/queue")
    require(status == 200 and counts["visible"] == 0 and counts["in_flight"] == 0, f"queue {status} {counts}")
    return f"long poll answered in {took:.2f}s; redelivered with a new handle; {counts}"


def root_events(sqs, scenario: Scenario, endpoint: str, control: str) -> str:
    """Root credential changes made through the control API arrive as EventBridge events."""
    url = queue_url_of(sqs, scenario, endpoint)
    drain(sqs, url)
    member = next(
        (a for a in scenario.accounts if a.id != scenario.management_id and len(a.root.get("access_keys") or []) < 2),
        None,
    )
    require(member is not None, "no member account with room for an access key")
    path = f"/_simulator/accounts/{member.id}/root_actions"
    status, created = post_control(control, path, {"action": "CreateAccessKey"})
    require(status == 200 and created.get("queued") is True, f"CreateAccessKey: {status} {created}")
    key = created["access_key_id"]
    status, deleted = post_control(
        control, path, {"action": "DeleteAccessKey", "access_key_id": key, "session": "assumed_root"}
    )
    require(status == 200, f"DeleteAccessKey: {status} {deleted}")
    delay = int(scenario.events.get("delivery_delay_ms", 0)) / 1000
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + delay + 10
    while len(events) < 2 and time.monotonic() < deadline:
        for m in receive(sqs, url, wait=2):
            require("secret" not in m["Body"].lower(), f"a secret in {m['Body']}")
            events.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    require(len(events) == 2, f"{len(events)} events, want 2")
    for e, name, event_id in (
        (events[0], "CreateAccessKey", created["event_id"]),
        (events[1], "DeleteAccessKey", deleted["event_id"]),
    ):
        d = e["detail"]
        for k, want in (
            ("version", "0"),
            ("detail-type", "AWS API Call via CloudTrail"),
            ("source", "aws.iam"),
            ("account", member.id),
            ("region", "us-east-1"),
        ):
            require(e.get(k) == want, f"{name}: {k} {e.get(k)!r} != {want!r}")
        for k, want in (
            ("eventSource", "iam.amazonaws.com"),
            ("eventName", name),
            ("eventID", event_id),
            ("awsRegion", "us-east-1"),
            ("eventType", "AwsApiCall"),
            ("readOnly", False),
            ("managementEvent", True),
            ("recipientAccountId", member.id),
            ("eventCategory", "Management"),
        ):
            require(d.get(k) == want, f"{name}: detail.{k} {d.get(k)!r} != {want!r}")
        who = d["userIdentity"]
        require(
            who.get("type") == "Root" and who.get("arn") == f"arn:aws:iam::{member.id}:root",
            f"{name}: userIdentity {who}",
        )
        dt.datetime.fromisoformat(e["time"].replace("Z", "+00:00"))
    require(
        events[0]["detail"]["responseElements"]["accessKey"]["accessKeyId"] == key,
        f"CreateAccessKey responseElements {events[0]['detail']['responseElements']}",
    )
    require(
        events[1]["detail"]["requestParameters"] == {"accessKeyId": key},
        f"DeleteAccessKey requestParameters {events[1]['detail']['requestParameters']}",
    )
    require(
        events[1]["detail"]["userIdentity"].get("sessionContext", {}).get("assumedRoot") == "true",
        f"DeleteAccessKey from AssumeRoot: {events[1]['detail']['userIdentity']}",
    )
    signed_in = ""
    with_password = next(
        (a for a in scenario.accounts if a.id != scenario.management_id and _truthy_password(a.root.get("password"))),
        None,
    )
    if with_password is not None:
        status, login = post_control(control, f"/_simulator/accounts/{with_password.id}/root_actions", {"action": "ConsoleLogin"})
        require(status == 200, f"ConsoleLogin: {status} {login}")
        got = []
        deadline = time.monotonic() + delay + 10
        while not got and time.monotonic() < deadline:
            got = receive(sqs, url, wait=2)
        require(len(got) == 1, f"{len(got)} sign-in events")
        e = json.loads(got[0]["Body"])
        sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
        d = e["detail"]
        require(
            (e["source"], e["detail-type"], d["eventSource"], d["eventName"], d["responseElements"])
            == ("aws.signin", "AWS Console Sign In via CloudTrail", "signin.amazonaws.com", "ConsoleLogin", {"ConsoleLogin": "Success"}),
            f"ConsoleLogin event {e}",
        )
        want_mfa = "Yes" if with_password.root.get("mfa") else "No"
        require(d["additionalEventData"]["MFAUsed"] == want_mfa, f"MFAUsed {d['additionalEventData']}")
        signed_in = f"; ConsoleLogin {with_password.id} MFAUsed={want_mfa}"
    return f"{member.id}: CreateAccessKey {key}, DeleteAccessKey (AssumeRoot){signed_in}"


def _key_status(key: Any) -> str:
    return key if isinstance(key, str) else str((key or {}).get("status", ""))


def root_activity(sqs, sts, clients: Clients, scenario: Scenario, endpoint: str, control: str) -> str:
    """Root use through the control API: sign-ins (successful and failed) and root API calls from
    the console, with root's key and in AssumeRoot sessions (an operator's, and boto3's own
    `issued_to: "self"`), read back with boto3's SQS client."""
    url = queue_url_of(sqs, scenario, endpoint)
    drain(sqs, url)
    members = [
        a
        for a in scenario.accounts
        if a.id != scenario.management_id and a.status == "ACTIVE" and a.assume_root == "ok"
    ]
    require(bool(members), "no active member account AssumeRoot reaches")
    # Prefer one whose root has a password (a successful sign-in too), then an active key.
    member = max(
        members,
        key=lambda a: (
            _truthy_password(a.root.get("password")),
            any(_key_status(k) == "Active" for k in a.root.get("access_keys") or []),
        ),
    )
    path = f"/_simulator/accounts/{member.id}/root_actions"
    s3_call = {"action": "ApiCall", "event_source": "s3.amazonaws.com", "event_name": "PutBucketPolicy"}
    # (what, body, the checks of its event)
    steps: list[tuple[str, dict[str, Any]]] = []
    if _truthy_password(member.root.get("password")):
        steps.append(("sign-in", {"action": "ConsoleLogin", "outcome": "Success"}))
    steps.append(("failed sign-in", {"action": "ConsoleLogin", "outcome": "Failure"}))
    steps.append(("console call", dict(s3_call, session="console")))
    has_key = any(_key_status(k) == "Active" for k in member.root.get("access_keys") or [])
    if has_key:
        steps.append(("access key call", dict(s3_call, event_name="ListBuckets", read_only=True, session="access_key")))
    steps.append(("operator's AssumeRoot call", dict(s3_call, session="assumed_root")))
    answers: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for what, body in steps:
        status, answer = post_control(control, path, body)
        require(status == 200 and answer.get("queued") is True, f"{what}: {status} {answer}")
        answers.append((what, body, answer))
    # boto3's own AssumeRoot session, then two calls "in" it.
    creds = check_credentials(assume_root(sts, member.id))
    me = sts.get_caller_identity()["Arn"]
    self_call = {
        "action": "ApiCall",
        "event_source": "iam.amazonaws.com",
        "event_name": "GetAccountSummary",
        "read_only": True,
        "session": "assumed_root",
        "issued_to": "self",
    }
    for what, body in (("own session call", self_call), ("own session call without hints", dict(self_call, hints=False))):
        status, answer = post_control(control, path, body)
        require(status == 200 and answer.get("queued") is True, f"{what}: {status} {answer}")
        require(answer.get("access_key_id") == creds["AccessKeyId"], f"{what}: answer {answer}")
        answers.append((what, body, answer))

    delay = int(scenario.events.get("delivery_delay_ms", 0)) / 1000
    by_id: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + delay + 10
    while len(by_id) < len(answers) and time.monotonic() < deadline:
        for m in receive(sqs, url, wait=2):
            e = json.loads(m["Body"])
            by_id[e["detail"]["eventID"]] = e
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    require(len(by_id) == len(answers), f"{len(by_id)} events, want {len(answers)}")

    root_arn = f"arn:aws:iam::{member.id}:root"
    operator = f"arn:aws:sts::{scenario.caller_id}:assumed-role/Admin/operator"
    seen = []
    for what, body, answer in answers:
        e = by_id.get(answer["event_id"])
        require(e is not None, f"{what}: no event with eventID {answer['event_id']}")
        d = e["detail"]
        who = d["userIdentity"]
        require(e["account"] == member.id and d["recipientAccountId"] == member.id, f"{what}: account {e}")
        require(who.get("type") == "Root" and who.get("arn") == root_arn, f"{what}: userIdentity {who}")
        require(who.get("principalId") == member.id and who.get("accountId") == member.id, f"{what}: {who}")
        dt.datetime.fromisoformat(e["time"].replace("Z", "+00:00"))
        dt.datetime.fromisoformat(d["eventTime"].replace("Z", "+00:00"))
        if body["action"] == "ConsoleLogin":
            outcome = body["outcome"]
            require(
                (e["source"], e["detail-type"], d["eventName"], d["eventType"], d["responseElements"])
                == ("aws.signin", "AWS Console Sign In via CloudTrail", "ConsoleLogin", "AwsConsoleSignIn",
                    {"ConsoleLogin": outcome}),
                f"{what}: {e}",
            )
            require(who.get("accessKeyId") == "", f"{what}: accessKeyId {who.get('accessKeyId')!r}")
            if outcome == "Failure":
                require(d.get("errorMessage") == "Failed authentication", f"{what}: errorMessage {d.get('errorMessage')!r}")
                require(d["additionalEventData"]["MFAUsed"] == "No", f"{what}: {d['additionalEventData']}")
            else:
                require("errorMessage" not in d, f"{what}: errorMessage in a success")
            seen.append(f"{what} {outcome}")
            continue
        service = body["event_source"].split(".")[0]
        for k, want in (
            ("source", f"aws.{service}"),
            ("detail-type", "AWS API Call via CloudTrail"),
            ("region", "us-east-1"),
        ):
            require(e.get(k) == want, f"{what}: {k} {e.get(k)!r} != {want!r}")
        for k, want in (
            ("eventSource", body["event_source"]),
            ("eventName", body["event_name"]),
            ("readOnly", body.get("read_only", False)),
            ("eventType", "AwsApiCall"),
            ("managementEvent", True),
            ("eventCategory", "Management"),
            ("awsRegion", "us-east-1"),
        ):
            require(d.get(k) == want, f"{what}: detail.{k} {d.get(k)!r} != {want!r}")
        require("invokedBy" not in who and "invokedBy" not in d, f"{what}: invokedBy in {d}")
        require(who.get("accessKeyId") == answer["access_key_id"], f"{what}: accessKeyId {who} vs {answer}")
        session = body["session"]
        if session == "console":
            require(who["accessKeyId"].startswith("ASIA"), f"{what}: {who}")
            require(d.get("sessionCredentialFromConsole") == "true", f"{what}: {d}")
            require("assumedRoot" not in who.get("sessionContext", {}), f"{what}: {who}")
        elif session == "access_key":
            require(who["accessKeyId"].startswith("AKIA") and "sessionContext" not in who, f"{what}: {who}")
            iam = clients.client("iam", check_credentials(assume_root(sts, member.id)))
            used = iam.get_access_key_last_used(AccessKeyId=who["accessKeyId"])["AccessKeyLastUsed"]
            require(used.get("ServiceName") == service and used.get("Region") == "us-east-1", f"{what}: {used}")
            age = (dt.datetime.now(dt.timezone.utc) - used["LastUsedDate"]).total_seconds()
            require(abs(age) < 120, f"{what}: LastUsedDate {used['LastUsedDate']}")
        else:
            ctx = who.get("sessionContext", {})
            require(ctx.get("attributes", {}).get("mfaAuthenticated") == "false", f"{what}: {who}")
            require("sessionCredentialFromConsole" not in d, f"{what}: {d}")
            issued_to = operator if body.get("issued_to") is None else me
            if body.get("issued_to") == "self":
                require(who["accessKeyId"] == creds["AccessKeyId"],
                        f"{what}: accessKeyId {who['accessKeyId']} != AssumeRoot's {creds['AccessKeyId']}")
            if body.get("hints", True):
                require(ctx.get("assumedRoot") == "true", f"{what}: {who}")
                require(
                    who.get("inScopeOf") == {"issuerAccountId": scenario.caller_id, "credentialsIssuedTo": issued_to},
                    f"{what}: inScopeOf {who.get('inScopeOf')}",
                )
            else:
                require("assumedRoot" not in ctx and "inScopeOf" not in who, f"{what}: hints in {who}")
        seen.append(what)
    return f"{member.id}: " + ", ".join(seen)


def sqs_faults(sqs, scenario: Scenario, endpoint: str, control: str) -> str:
    url = queue_url_of(sqs, scenario, endpoint)
    set_faults(control, {"ReceiveMessage": {"kind": "access_denied", "count": 1}})
    denied = expect_code(lambda: sqs.receive_message(QueueUrl=url), {"AccessDenied"}, "ReceiveMessage")
    set_faults(control, {"ReceiveMessage": {"kind": "not_aws"}})
    html = expect_not_aws(lambda: sqs.receive_message(QueueUrl=url), "sqs:ReceiveMessage")
    set_faults(control, [])
    sqs.receive_message(QueueUrl=url)
    return f"{denied}; {html}"


# ---------------------------------------------------------------------------------------------
# Reaching accounts without AssumeRoot: role sessions, the credential report, virtual MFA
# ---------------------------------------------------------------------------------------------

REPORT_HEADER = (
    "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,"
    "password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,"
    "access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,"
    "access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,"
    "access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,"
    "cert_1_last_rotated,cert_2_active,cert_2_last_rotated"
).split(",")
# Where the scenario gives no date, the simulator uses the account's creation time.
ACCOUNT_CREATED = "2020-01-01T00:00:00+00:00"
CALLER_ROLE_ARN = "arn:aws:sts::{}:assumed-role/aws-root-exporter/simulated"


def report_time(value: Any) -> str:
    """A scenario date (TOML datetime or RFC 3339 string) as the credential report writes it."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def expected_root_row(account_id: str, root: dict[str, Any]) -> dict[str, str]:
    """Root's credential report row, as AWS writes it, from the scenario's `root` table."""
    password = root.get("password", False)
    if password is False:
        last_used = "N/A"
    elif isinstance(password, dict) and password.get("last_used") is not None:
        last_used = report_time(password["last_used"])
    else:
        last_used = "no_information"
    row = {
        "user": "<root_account>",
        "arn": f"arn:aws:iam::{account_id}:root",
        "user_creation_time": ACCOUNT_CREATED,
        "password_enabled": "not_supported",
        "password_last_used": last_used,
        "password_last_changed": "not_supported",
        "password_next_rotation": "not_supported",
        "mfa_active": "true" if root.get("mfa") else "false",
    }
    keys = list(root.get("access_keys", []) or [])
    for n in (1, 2):
        p = f"access_key_{n}_"
        if len(keys) < n:
            row.update({p + "active": "false", p + "last_rotated": "N/A", p + "last_used_date": "N/A",
                        p + "last_used_region": "N/A", p + "last_used_service": "N/A"})
            continue
        key = keys[n - 1]
        key = {"status": key} if isinstance(key, str) else key
        row[p + "active"] = "true" if key["status"] == "Active" else "false"
        row[p + "last_rotated"] = report_time(key["created"]) if key.get("created") else ACCOUNT_CREATED
        if key.get("last_used") is not None:
            row[p + "last_used_date"] = report_time(key["last_used"])
            row[p + "last_used_region"] = key.get("last_used_region", "us-east-1")
            row[p + "last_used_service"] = key.get("last_used_service", "iam")
        else:
            row.update({p + "last_used_date": "N/A", p + "last_used_region": "N/A", p + "last_used_service": "N/A"})
    certs = list(root.get("signing_certificates", []) or [])
    for n in (1, 2):
        if len(certs) < n:
            row[f"cert_{n}_active"] = "false"
            row[f"cert_{n}_last_rotated"] = "N/A"
        else:
            cert = certs[n - 1]
            status = cert if isinstance(cert, str) else cert["status"]
            row[f"cert_{n}_active"] = "true" if status == "Active" else "false"
            row[f"cert_{n}_last_rotated"] = ACCOUNT_CREATED
    return row


def root_flags(root: dict[str, Any]) -> dict[str, int]:
    return expected_flags(root)


def check_summary(iam, root: dict[str, Any], what: str) -> str:
    summary = iam.get_account_summary().get("SummaryMap", {})
    want = root_flags(root)
    wrong = [f"{k}={summary.get(k)} want {want[k]}" for k in ROOT_FLAGS if summary.get(k) != want[k]]
    require(not wrong, f"{what} GetAccountSummary: " + ", ".join(wrong))
    return " ".join(f"{k.removeprefix('Account')}={want[k]}" for k in ROOT_FLAGS)


def check_report(iam, scenario: Scenario, account_id: str, what: str) -> str:
    """GenerateCredentialReport until COMPLETE, then root's row of GetCredentialReport."""
    deadline = time.monotonic() + scenario.generation_ms / 1000 + 10
    states = []
    while True:
        state = iam.generate_credential_report().get("State")
        states.append(state)
        require(state in ("STARTED", "INPROGRESS", "COMPLETE"), f"{what}: State {state!r}")
        if state == "COMPLETE":
            break
        if state == "INPROGRESS":
            try:
                iam.get_credential_report()
            except botocore.exceptions.ClientError as e:
                require(error_code(e) == "ReportInProgress", f"{what}: in progress, got {error_code(e)}")
                require(e.response["ResponseMetadata"]["HTTPStatusCode"] == 404, f"{what}: ReportInProgress not 404")
            else:
                raise CheckFailed(f"{what}: GetCredentialReport succeeded while INPROGRESS")
        require(time.monotonic() < deadline, f"{what}: no COMPLETE report after {states}")
        time.sleep(0.05 if state == "STARTED" else 0.1)
    report = iam.get_credential_report()
    require(report.get("ReportFormat") == "text/csv", f"{what}: ReportFormat {report.get('ReportFormat')!r}")
    require(isinstance(report.get("GeneratedTime"), dt.datetime), f"{what}: GeneratedTime {report.get('GeneratedTime')!r}")
    content = report["Content"]
    require(isinstance(content, bytes), f"{what}: Content is {type(content).__name__}, want decoded bytes")
    rows = list(csv.reader(io.StringIO(content.decode())))
    require(rows and rows[0] == REPORT_HEADER, f"{what}: header {rows[0] if rows else None}")
    require(all(len(r) == len(REPORT_HEADER) for r in rows[1:]), f"{what}: a row has the wrong length")
    roots = [r for r in rows[1:] if r[0] == "<root_account>"]
    require(len(roots) == 1, f"{what}: {len(roots)} <root_account> rows")
    got = dict(zip(REPORT_HEADER, roots[0]))
    want = expected_root_row(account_id, scenario.root_of(account_id))
    wrong = [f"{k}={got[k]!r} want {want[k]!r}" for k in REPORT_HEADER if got[k] != want[k]]
    require(not wrong, f"{what}: root row " + "; ".join(wrong))
    others = [r[0] for r in rows[1:] if r[0] != "<root_account>"]
    return f"report {'->'.join(states)}, root row ok, users {others}"


def check_virtual_mfa(iam, scenario: Scenario, account_id: str, what: str) -> str:
    root_arn = f"arn:aws:iam::{account_id}:root"
    assigned = iam.list_virtual_mfa_devices(AssignmentStatus="Assigned")["VirtualMFADevices"]
    mine = [d for d in assigned if (d.get("User") or {}).get("Arn") == root_arn]
    want = sum(1 for k in scenario.root_of(account_id).get("mfa", []) if k == "virtual")
    require(len(mine) == want, f"{what}: {len(mine)} root virtual devices, want {want}")
    for d in mine:
        require(d["SerialNumber"].startswith(f"arn:aws:iam::{account_id}:mfa/root-account-mfa-device"),
                f"{what}: serial {d['SerialNumber']!r}")
    paged = []
    for page in iam.get_paginator("list_virtual_mfa_devices").paginate(PaginationConfig={"PageSize": 1}):
        require(len(page["VirtualMFADevices"]) <= 1, f"{what}: a page exceeds MaxItems=1")
        paged.extend(d["SerialNumber"] for d in page["VirtualMFADevices"])
    everything = [d["SerialNumber"] for d in iam.list_virtual_mfa_devices()["VirtualMFADevices"]]
    require(paged == everything, f"{what}: paginated {paged} != one page {everything}")
    unassigned = iam.list_virtual_mfa_devices(AssignmentStatus="Unassigned")["VirtualMFADevices"]
    require(all("User" not in d for d in unassigned), f"{what}: an unassigned device has a User")
    return f"{len(mine)} root virtual device(s) of {len(everything)}"


def own_account(clients: Clients, scenario: Scenario, sts, iam) -> str:
    me = sts.get_caller_identity()
    require(me.get("Account") == scenario.caller_id, f"Account {me.get('Account')!r} != {scenario.caller_id!r}")
    want_arn = CALLER_ROLE_ARN.format(scenario.caller_id)
    require(me.get("Arn") == want_arn, f"Arn {me.get('Arn')!r} != {want_arn!r}")
    what = f"own credentials in {scenario.caller_id}"
    flags = check_summary(iam, scenario.root_of(scenario.caller_id), what)
    report = check_report(iam, scenario, scenario.caller_id, what)
    mfa = check_virtual_mfa(iam, scenario, scenario.caller_id, what)
    return f"{scenario.caller_id}: {flags}; {report}; {mfa}"


def expect_code(fn: Callable[[], Any], codes: set[str], what: str) -> str:
    try:
        fn()
    except botocore.exceptions.ClientError as e:
        code = error_code(e)
        require(code in codes, f"{what}: error code {code!r}, want one of {sorted(codes)}")
        return code
    raise CheckFailed(f"{what} succeeded, want {sorted(codes)}")


def assume_role(sts, account_id: str, role: str, external_id: str | None = None, **kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "RoleArn": f"arn:aws:iam::{account_id}:role/{role}",
        "RoleSessionName": "boto3-check",
        **kwargs,
    }
    if external_id is not None:
        args["ExternalId"] = external_id
    return sts.assume_role(**args)


def role_reachable(scenario: Scenario, acct: ScenarioAccount, role: ScenarioRole) -> bool:
    return acct.status == "ACTIVE" and scenario.caller_id in role.trusts


def check_role(clients: Clients, scenario: Scenario, sts, acct: ScenarioAccount, role: ScenarioRole) -> str:
    arn = f"arn:aws:iam::{acct.id}:role/{role.name}"
    if not role_reachable(scenario, acct, role):
        code = expect_code(lambda: assume_role(sts, acct.id, role.name, role.external_id), DENIED_CODES, f"AssumeRole {arn}")
        why = "not ACTIVE" if acct.status != "ACTIVE" else f"trusts {role.trusts}, not {scenario.caller_id}"
        return f"{code} ({why})"
    notes = []
    if role.external_id is not None:
        notes.append("without ExternalId " + expect_code(lambda: assume_role(sts, acct.id, role.name), DENIED_CODES, "AssumeRole without ExternalId"))
        notes.append("wrong ExternalId " + expect_code(lambda: assume_role(sts, acct.id, role.name, "wrong-external-id"), DENIED_CODES, "AssumeRole with a wrong ExternalId"))
    resp = assume_role(sts, acct.id, role.name, role.external_id, DurationSeconds=ROLE_SESSION_SECONDS)
    creds = check_credentials(resp, ROLE_SESSION_SECONDS)
    user = resp.get("AssumedRoleUser") or {}
    want_arn = f"arn:aws:sts::{acct.id}:assumed-role/{role.name}/boto3-check"
    require(user.get("Arn") == want_arn, f"AssumedRoleUser.Arn {user.get('Arn')!r} != {want_arn!r}")
    require(str(user.get("AssumedRoleId", "")).endswith(":boto3-check"), f"AssumedRoleId {user.get('AssumedRoleId')!r}")
    me = clients.client("sts", creds).get_caller_identity()
    require(me.get("Arn") == want_arn and me.get("Account") == acct.id, f"GetCallerIdentity {me.get('Arn')!r}")
    iam = clients.client("iam", creds)
    what = f"role session {want_arn}"
    flags = check_summary(iam, acct.root, what)
    report = check_report(iam, scenario, acct.id, what)
    mfa = check_virtual_mfa(iam, scenario, acct.id, what)
    denied = expect_denied(iam.list_users, "iam:ListUsers in a role session")
    if role.organization_access:
        # An organization's access role reads the organization.
        count = len(clients.client("organizations", creds).list_accounts()["Accounts"])
        org_denied = f"{count} accounts (organization_access)"
    else:
        org_denied = expect_code(clients.client("organizations", creds).list_accounts, {"AccessDeniedException"}, "organizations:ListAccounts in a role session")
    return "; ".join(notes + [flags, report, mfa, f"ListUsers -> {denied}", f"ListAccounts -> {org_denied}"])


# ---------------------------------------------------------------------------------------------
# Several organizations in one world
# ---------------------------------------------------------------------------------------------


def caller_key(scenario: Scenario, index: int, env_key: str) -> str | None:
    """The key that is this scenario's caller: its first listed key, or (first scenario only,
    listing none) any key; None when the scenario's caller cannot be reached by key."""
    if scenario.caller_keys:
        return scenario.caller_keys[0]
    return env_key if index == 0 else None


def all_account_ids(org) -> list[str]:
    ids: list[str] = []
    for page in org.get_paginator("list_accounts").paginate():
        ids.extend(a["Id"] for a in page.get("Accounts", []))
    return sorted(ids)


def expected_ids(scenario: Scenario) -> list[str] | None:
    # Generated accounts are not known here: compare the count only then.
    if scenario.generated:
        return None
    return sorted(scenario.explicit_ids | {scenario.management_id})


def check_lists(scenario: Scenario, ids: list[str], what: str) -> str:
    want = expected_ids(scenario)
    if want is None:
        require(len(ids) == len(scenario.explicit_ids | {scenario.management_id}) + scenario.generated, f"{what}: {len(ids)} accounts")
    else:
        require(ids == want, f"{what}: ListAccounts {ids} != {want}")
    return f"{len(ids)} accounts of {scenario.org_id}"


def org_caller(clients: Clients, scenario: Scenario, key: str) -> str:
    c = Clients(clients.endpoint, clients.region, key, clients.secret_key)
    me = c.client("sts").get_caller_identity()
    want_arn = CALLER_ROLE_ARN.format(scenario.caller_id)
    require(me.get("Account") == scenario.caller_id and me.get("Arn") == want_arn, f"GetCallerIdentity {me.get('Arn')!r}, want {want_arn!r}")
    org = c.client("organizations")
    listed = check_lists(scenario, all_account_ids(org), f"key {key}")
    o = org.describe_organization()["Organization"]
    require(o.get("Id") == scenario.org_id, f"DescribeOrganization Id {o.get('Id')!r} != {scenario.org_id!r}")
    return f"{me['Arn']}; {listed}"


def auditable_member(scenario: Scenario) -> ScenarioAccount | None:
    return next(
        (a for a in scenario.accounts if a.id != scenario.management_id and a.status == "ACTIVE" and a.assume_root == "ok"),
        None,
    )


def cross_org_role(
    clients: Clients,
    callers: list[tuple[Scenario, str]],
    owner: Scenario,
    acct: ScenarioAccount,
    role: ScenarioRole,
    caller: Scenario,
    key: str,
) -> str:
    """`caller`'s key assumes `owner`'s access role `role` in `acct` and acts in `owner`."""
    sts = Clients(clients.endpoint, clients.region, key, clients.secret_key).client("sts")
    notes = []
    if role.external_id is not None:
        notes.append("without ExternalId " + expect_code(lambda: assume_role(sts, acct.id, role.name), DENIED_CODES, "AssumeRole without ExternalId"))
    own = next((k for s, k in callers if s is owner), None)
    if own is not None and owner.caller_id not in role.trusts:
        own_sts = Clients(clients.endpoint, clients.region, own, clients.secret_key).client("sts")
        notes.append("by its own organization's caller " + expect_code(lambda: assume_role(own_sts, acct.id, role.name, role.external_id), DENIED_CODES, "AssumeRole by the owner's caller"))
    creds = check_credentials(assume_role(sts, acct.id, role.name, role.external_id, DurationSeconds=ROLE_SESSION_SECONDS), ROLE_SESSION_SECONDS)
    want_arn = f"arn:aws:sts::{acct.id}:assumed-role/{role.name}/boto3-check"
    me = clients.client("sts", creds).get_caller_identity()
    require(me.get("Arn") == want_arn and me.get("Account") == acct.id, f"GetCallerIdentity {me.get('Arn')!r} != {want_arn!r}")
    listed = check_lists(owner, all_account_ids(clients.client("organizations", creds)), "the access role's session")
    features = clients.client("iam", creds).list_organizations_features()
    require(features.get("OrganizationId") == owner.org_id, f"ListOrganizationsFeatures {features.get('OrganizationId')!r} != {owner.org_id!r}")
    session_sts = clients.client("sts", creds)
    member = auditable_member(owner)
    if member is not None and "RootCredentialsManagement" in owner.features:
        root = check_credentials(assume_root(session_sts, member.id))
        summary = clients.client("iam", root).get_account_summary().get("SummaryMap", {})
        wrong = [f"{k}={summary.get(k)} want {member.flags[k]}" for k in ROOT_FLAGS if summary.get(k) != member.flags[k]]
        require(not wrong, f"GetAccountSummary of {member.id} through the access role: " + ", ".join(wrong))
        notes.append(f"AssumeRoot {member.id} ok, flags match")
        caller_sts = Clients(clients.endpoint, clients.region, key, clients.secret_key).client("sts")
        notes.append(f"the caller's own key AssumeRoot {member.id} " + expect_denied(lambda: assume_root(caller_sts, member.id), "AssumeRoot into another organization with the caller's key"))
    former = auditable_member(caller)
    if former is not None:
        notes.append(f"AssumeRoot {former.id} (the caller's organization) " + expect_denied(lambda: assume_root(session_sts, former.id), "AssumeRoot into the caller's organization from the access role"))
    return "; ".join([want_arn, listed] + notes)


def check_organizations(clients: Clients, scenarios: list[Scenario], results: Results) -> None:
    callers: list[tuple[Scenario, str]] = []
    for i, scenario in enumerate(scenarios):
        key = caller_key(scenario, i, clients.access_key)
        if key is None:
            print(f"skip caller of {scenario.org_id}: no caller_access_key_ids to sign with", flush=True)
            continue
        callers.append((scenario, key))
        results.run(
            f"{scenario.org_id}: key {key} is its caller {scenario.caller_id}",
            lambda s=scenario, k=key: org_caller(clients, s, k),
        )
    checked = 0
    for owner in scenarios:
        for acct in owner.accounts:
            for role in acct.roles:
                if not role.organization_access or acct.status != "ACTIVE":
                    continue
                for caller, key in callers:
                    if caller is owner or caller.caller_id not in role.trusts:
                        continue
                    checked += 1
                    results.run(
                        f"{caller.org_id}'s caller assumes {owner.org_id}'s access role {acct.id} {role.name}",
                        lambda o=owner, a=acct, r=role, c=caller, k=key: cross_org_role(clients, callers, o, a, r, c, k),
                    )
    results.run(
        "the scenarios have a cross-organization access role to check",
        lambda: (require(checked > 0, "no role with organization_access trusts another scenario's caller"), f"{checked}")[1],
    )


# ---------------------------------------------------------------------------------------------
# Organizations: roots, OUs, tags
# ---------------------------------------------------------------------------------------------


def walk_tree(org) -> tuple[str, dict[str, str]]:
    """The root id, and every account's OU path ("" directly under the root)."""
    roots = org.list_roots()["Roots"]
    require(len(roots) == 1, f"{len(roots)} roots, want 1")
    root = roots[0]
    require(re.match(r"^r-[0-9a-z]{4,32}$", root.get("Id", "")) is not None, f"root Id {root.get('Id')!r}")
    require(root.get("Name") == "Root", f"root Name {root.get('Name')!r}")
    where: dict[str, str] = {}
    ou_pages = org.get_paginator("list_organizational_units_for_parent")
    account_pages = org.get_paginator("list_accounts_for_parent")
    todo = [(root["Id"], "")]
    seen_ous = set()
    while todo:
        parent, path = todo.pop(0)
        for page in account_pages.paginate(ParentId=parent, PaginationConfig={"PageSize": 2}):
            require(len(page["Accounts"]) <= 2, f"ListAccountsForParent {parent}: a page exceeds MaxResults=2")
            for a in page["Accounts"]:
                require(a["Id"] not in where, f"account {a['Id']} listed under two parents")
                where[a["Id"]] = path
        for page in ou_pages.paginate(ParentId=parent, PaginationConfig={"PageSize": 2}):
            require(len(page["OrganizationalUnits"]) <= 2, f"ListOrganizationalUnitsForParent {parent}: a page exceeds MaxResults=2")
            for ou in page["OrganizationalUnits"]:
                require(re.match(r"^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$", ou.get("Id", "")) is not None, f"OU Id {ou.get('Id')!r}")
                require(ou["Id"] not in seen_ous, f"OU {ou['Id']} listed twice")
                seen_ous.add(ou["Id"])
                todo.append((ou["Id"], f"{path}/{ou['Name']}" if path else ou["Name"]))
    return root["Id"], where


def check_tree(scenario: Scenario, org, listed: list[dict[str, Any]]) -> str:
    root_id, where = walk_tree(org)
    listed_ids = [a["Id"] for a in listed]
    require(sorted(where) == sorted(listed_ids), f"the tree holds {len(where)} accounts, ListAccounts {len(listed_ids)}")
    wrong = []
    for acct in scenario.accounts:
        if where.get(acct.id) != (acct.ou or ""):
            wrong.append(f"{acct.id} at {where.get(acct.id)!r}, want {acct.ou or ''!r}")
    require(not wrong, "; ".join(wrong[:10]))
    unknown_ou = f"ou-{root_id[2:]}-zzzzzzzz"
    code = expect_code(lambda: org.list_organizational_units_for_parent(ParentId=unknown_ou), {"ParentNotFoundException"}, f"ParentId {unknown_ou}")
    paths = sorted({p for p in where.values() if p})
    return f"root {root_id}, OUs {paths}; unknown parent -> {code}"


def check_tags(scenario: Scenario, org, stranger: str) -> str:
    wrong = []
    for acct in scenario.accounts:
        got = {t["Key"]: t["Value"] for t in org.list_tags_for_resource(ResourceId=acct.id)["Tags"]}
        if got != acct.tags:
            wrong.append(f"{acct.id}: {got} != {acct.tags}")
    require(not wrong, "; ".join(wrong[:10]))
    code = expect_code(lambda: org.list_tags_for_resource(ResourceId=stranger), {"TargetNotFoundException"}, f"ResourceId {stranger}")
    tagged = sum(1 for a in scenario.accounts if a.tags)
    return f"{tagged} of {len(scenario.accounts)} listed accounts tagged; unknown account -> {code}"


def control_changes_tags(control: str, org, scenario: Scenario) -> str:
    acct = next((a for a in scenario.accounts), None)
    account_id = acct.id if acct else scenario.management_id
    before = {t["Key"]: t["Value"] for t in org.list_tags_for_resource(ResourceId=account_id)["Tags"]}
    status, body = put_control(control, f"/_simulator/accounts/{account_id}/tags", {"boto3-check": "yes"})
    require(status == 200, f"PUT tags: {status} {body}")
    got = {t["Key"]: t["Value"] for t in org.list_tags_for_resource(ResourceId=account_id)["Tags"]}
    require(got == {"boto3-check": "yes"}, f"tags after PUT: {got}")
    status, body = put_control(control, f"/_simulator/accounts/{account_id}/tags", {"aws:nope": "x"})
    require(status == 400 and "aws:" in str((body or {}).get("error")), f"PUT aws: tag: {status} {body}")
    status, body = put_control(control, f"/_simulator/accounts/{account_id}/tags", before)
    require(status == 200, f"PUT tags back: {status} {body}")
    return f"{account_id}: set, read back, refused aws:, restored {before}"


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="simulator URL, e.g. http://127.0.0.1:4566")
    parser.add_argument(
        "--scenario",
        required=True,
        action="append",
        help="the scenario TOML the simulator runs; repeat for several organizations, in the simulator's order",
    )
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser.add_argument(
        "--control",
        help="the simulator's control API URL, for the not_aws checks (they replace its faults)",
    )
    args = parser.parse_args(argv)
    for flag, url in (("--endpoint", args.endpoint), ("--control", args.control)):
        if url is not None and not re.match(r"^https?://[^/\s]+", url):
            parser.error(f"{flag} must be a URL like http://127.0.0.1:4566, got {url!r}")

    # Only what this script passes reaches botocore: no profile, no shared config or
    # credentials file, no endpoint override from the environment.
    for var in list(os.environ):
        if var == "AWS_PROFILE" or var == "AWS_DEFAULT_PROFILE" or var.startswith("AWS_ENDPOINT_URL"):
            del os.environ[var]
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull

    clients = Clients(
        endpoint=args.endpoint,
        region=args.region,
        access_key=os.environ.get("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "secret"),
    )
    if len(args.scenario) > 1:
        scenarios = [load_scenario(p) for p in args.scenario]
        print(
            f"scenarios {', '.join(args.scenario)}: organizations {', '.join(s.org_id for s in scenarios)};"
            f" endpoint {args.endpoint}, boto3 {boto3.__version__}",
            flush=True,
        )
        results = Results()
        check_organizations(clients, scenarios, results)
        print(f"{results.passed} passed, {results.failed} failed", flush=True)
        return 0 if results.failed == 0 else 1
    args.scenario = args.scenario[0]
    scenario = load_scenario(args.scenario)
    print(
        f"scenario {args.scenario}: organization {scenario.org_id}, management"
        f" {scenario.management_id}, {len(scenario.accounts)} explicit + {scenario.generated}"
        f" generated accounts; endpoint {args.endpoint}, boto3 {boto3.__version__}",
        flush=True,
    )

    results = Results()
    org = clients.client("organizations")
    sts = clients.client("sts")
    iam = clients.client("iam")
    sqs = clients.client("sqs")

    listed: dict[str, list[dict[str, Any]]] = {}

    def by_hand() -> str:
        accounts, sizes = list_accounts_by_hand(org)
        listed["hand"] = accounts
        return check_listing(scenario, accounts, sizes, "NextToken loop")

    def by_paginator() -> str:
        accounts, sizes = list_accounts_by_paginator(org)
        listed["paginator"] = accounts
        return check_listing(scenario, accounts, sizes, "paginator")

    def walks_agree() -> str:
        require("hand" in listed and "paginator" in listed, "a listing failed above")
        a = [x["Id"] for x in listed["hand"]]
        b = [x["Id"] for x in listed["paginator"]]
        require(a == b, "the two walks list different accounts or orders")
        return f"{len(a)} accounts, same order"

    def describe_org() -> str:
        o = org.describe_organization()["Organization"]
        require(o.get("Id") == scenario.org_id, f"Id {o.get('Id')!r} != {scenario.org_id!r}")
        require(
            o.get("MasterAccountId") == scenario.management_id,
            f"MasterAccountId {o.get('MasterAccountId')!r} != {scenario.management_id!r}",
        )
        return f"{o['Id']}, management {o['MasterAccountId']}, FeatureSet {o.get('FeatureSet')}"

    def org_features() -> str:
        r = iam.list_organizations_features()
        require(
            r.get("OrganizationId") == scenario.org_id,
            f"OrganizationId {r.get('OrganizationId')!r} != {scenario.org_id!r}",
        )
        got = sorted(r.get("EnabledFeatures", []))
        require(got == sorted(scenario.features), f"EnabledFeatures {got} != {sorted(scenario.features)}")
        return ", ".join(got) or "(none)"

    def caller_identity() -> str:
        r = sts.get_caller_identity()
        require(ACCOUNT_ID.match(str(r.get("Account", ""))) is not None, f"Account {r.get('Account')!r}")
        require(str(r.get("Arn", "")).startswith("arn:aws:"), f"Arn {r.get('Arn')!r}")
        return f"{r['Account']} {r['Arn']}"

    results.run("organizations:ListAccounts by NextToken, MaxResults=3", by_hand)
    results.run("organizations:ListAccounts by paginator, PageSize=3", by_paginator)
    results.run("both ListAccounts walks agree", walks_agree)
    results.run("organizations:DescribeOrganization", describe_org)
    results.run("iam:ListOrganizationsFeatures", org_features)
    results.run("sts:GetCallerIdentity", caller_identity)
    results.run(
        f"own credentials: caller {scenario.caller_id}'s root (summary, credential report, virtual MFA)",
        lambda: own_account(clients, scenario, sts, iam),
    )
    results.run(
        "organizations:ListRoots, ListOrganizationalUnitsForParent, ListAccountsForParent: the OU tree",
        lambda: check_tree(scenario, org, listed.get("hand", [])),
    )

    for acct in scenario.accounts:
        if acct.id == scenario.management_id:
            continue
        label = f"{acct.id} ({acct.name}, {acct.status}, assume_root={acct.assume_root})"
        if acct.status != "ACTIVE":
            print(f"skip {label}: not ACTIVE, the exporter does not audit it", flush=True)
            continue
        if acct.assume_root == "ok":
            results.run(f"audit {label}", lambda a=acct: audit_ok_account(clients, sts, a))
        elif acct.assume_root == "access_denied":
            results.run(f"denied {label}", lambda a=acct: audit_denied_account(clients, sts, a))
        else:
            results.run(f"scenario {label}", lambda a=acct: unknown_assume_root(a))

    results.run(
        f"AssumeRoot on the management account {scenario.management_id} is denied",
        lambda: expect_denied(lambda: assume_root(sts, scenario.management_id), "AssumeRoot"),
    )
    taken = scenario.explicit_ids | {a["Id"] for a in listed.get("hand", [])}
    stranger = unknown_account_id(taken)
    results.run(
        f"AssumeRoot on {stranger}, outside the organization, is denied",
        lambda: expect_denied(lambda: assume_root(sts, stranger), "AssumeRoot"),
    )

    results.run(
        "organizations:ListTagsForResource",
        lambda: check_tags(scenario, org, stranger),
    )
    for acct in scenario.accounts:
        for role in acct.roles:
            results.run(
                f"sts:AssumeRole {acct.id} ({acct.name}, {acct.status}) role {role.name}",
                lambda a=acct, r=role: check_role(clients, scenario, sts, a, r),
            )
    reachable = next(
        ((a, r) for a in scenario.accounts for r in a.roles if role_reachable(scenario, a, r)),
        None,
    )
    target = reachable[0].id if reachable else scenario.management_id
    results.run(
        f"sts:AssumeRole into a role {target} lacks is denied",
        lambda: expect_code(lambda: assume_role(sts, target, "NoSuchRole-boto3-check"), DENIED_CODES, "AssumeRole"),
    )
    if reachable is not None:
        a, r = reachable
        results.run(
            "sts:AssumeRole with DurationSeconds=43201 is a ValidationError",
            lambda: expect_code(
                lambda: assume_role(sts, a.id, r.name, r.external_id, DurationSeconds=43201),
                {"ValidationError"},
                "AssumeRole",
            ),
        )

    if scenario.events is None:
        results.run("sqs: without [events] there is no queue", lambda: no_queue(sqs, scenario, args.endpoint))
    else:
        results.run(
            "sqs:GetQueueUrl, ReceiveMessage, DeleteMessage(Batch): the [events] queue and its errors",
            lambda: check_queue(sqs, scenario, args.endpoint),
        )

    if args.control:
        if scenario.events is not None:
            results.run(
                "sqs: a raw message, long polled, redelivered after ChangeMessageVisibility, batch deleted",
                lambda: raw_messages(sqs, scenario, args.endpoint, args.control),
            )
            results.run(
                "sqs: root credential changes arrive as EventBridge events (CloudTrail records)",
                lambda: root_events(sqs, scenario, args.endpoint, args.control),
            )
            results.run(
                "sqs: root sign-ins and root API calls arrive as EventBridge events (root_actions)",
                lambda: root_activity(sqs, sts, clients, scenario, args.endpoint, args.control),
            )
            results.run(
                "sqs: faults apply to ReceiveMessage",
                lambda: sqs_faults(sqs, scenario, args.endpoint, args.control),
            )
        results.run(
            "control API replaces an account's tags",
            lambda: control_changes_tags(args.control, org, scenario),
        )
        member = next(
            (
                a
                for a in scenario.accounts
                if a.id != scenario.management_id and a.status == "ACTIVE" and a.assume_root == "ok"
            ),
            None,
        )
        results.run(
            "not_aws fault: HTML 500 without an AWS error code (Query and JSON)",
            lambda: not_aws_answers(clients, args.control, org, sts, member),
        )
        results.run(
            "control API refuses faults the scenario file refuses",
            lambda: control_refuses_bad_faults(args.control),
        )
        results.run(
            "rate limits: each protocol's throttling error, which botocore retries as throttling",
            lambda: rate_limits_throttle(clients, args.control, scenario),
        )

    print(f"{results.passed} passed, {results.failed} failed", flush=True)
    return 0 if results.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
