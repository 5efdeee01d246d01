//! The simulator's mutable world: the organization's accounts and their root users, the root
//! sessions it has issued, the injected faults, and a count of calls per operation.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use super::rng::{BASE64ISH, Rng, UPPER_DIGITS, fnv1a};
use super::scenario::{
    AccessKeySpec, AccountSpec, AssumeRootMode, CertificateSpec, FaultKind, FaultSpec, KeyStatus, MfaKind,
    PasswordSpec, RoleSpec, RootSpec, Scenario, StateFields, generated_accounts,
};
use super::wire::iso8601;

/// One action of a root user as CloudTrail records it: a change of its credentials made by one
/// IAM call, a console sign-in (successful or not), or any other API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RootChange {
    CreateAccessKey {
        id: String,
        created: SystemTime,
    },
    UpdateAccessKey {
        id: String,
        status: KeyStatus,
    },
    DeleteAccessKey {
        id: String,
    },
    CreateLoginProfile {
        created: SystemTime,
    },
    UpdateLoginProfile,
    DeleteLoginProfile,
    EnableMFADevice {
        serial: String,
    },
    DeactivateMFADevice {
        serial: String,
    },
    DeleteVirtualMFADevice {
        serial: String,
    },
    UploadSigningCertificate {
        id: String,
        uploaded: SystemTime,
    },
    UpdateSigningCertificate {
        id: String,
        status: KeyStatus,
    },
    DeleteSigningCertificate {
        id: String,
    },
    /// A root sign-in to the console; `mfa` is the device used, if any. A failed one changes
    /// nothing.
    ConsoleLogin {
        mfa: Option<String>,
        success: bool,
    },
    /// Any other API call root made (control API `ApiCall`): the event only, no state change.
    ApiCall {
        /// `s3.amazonaws.com`.
        event_source: String,
        event_name: String,
        read_only: bool,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct SimAccount {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) email: String,
    pub(crate) status: String,
    pub(crate) state_fields: StateFields,
    pub(crate) assume_root: AssumeRootMode,
    pub(crate) root: RootState,
    pub(crate) joined: SystemTime,
    pub(crate) roles: Vec<SimRole>,
    /// The root's or the OU's id.
    pub(crate) parent_id: String,
    /// Tags, sorted by key.
    pub(crate) tags: BTreeMap<String, String>,
    /// The latest IAM credential report, if one was ever generated.
    pub(crate) report: Option<CredentialReport>,
    /// How many reports were generated (GenerateCredentialReport answering STARTED).
    pub(crate) report_generations: u64,
}

/// An IAM role `sts:AssumeRole` can reach.
#[derive(Debug, Clone)]
pub(crate) struct SimRole {
    pub(crate) name: String,
    /// `AROA...`, the role's unique id.
    pub(crate) id: String,
    pub(crate) trusts: Vec<String>,
    pub(crate) external_id: Option<String>,
    pub(crate) max_session_duration: u64,
    /// Its sessions act with the exporter's permissions in the organization (see
    /// [`RoleSpec::organization_access`]).
    pub(crate) organization_access: bool,
}

impl SimRole {
    /// `trusts` defaults to the caller account.
    pub(crate) fn from_spec(spec: &RoleSpec, account_id: &str, caller_account_id: &str) -> SimRole {
        let mut rng = Rng::new(fnv1a(&format!("{account_id}/{}", spec.name)));
        SimRole {
            name: spec.name.clone(),
            id: format!("AROA{}", rng.token(UPPER_DIGITS, 17)),
            trusts: spec
                .trusts
                .clone()
                .unwrap_or_else(|| vec![caller_account_id.to_string()]),
            external_id: spec.external_id.clone(),
            max_session_duration: spec.max_session_duration,
            organization_access: spec.organization_access,
        }
    }
}

/// An organizational unit, made from the accounts' `ou` paths.
#[derive(Debug, Clone)]
pub(crate) struct SimOu {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) parent_id: String,
}

/// An IAM credential report: the account's users as they were when it was generated.
#[derive(Debug, Clone)]
pub(crate) struct CredentialReport {
    pub(crate) generated: SystemTime,
    /// When GetCredentialReport can return it (`generated` + `[credential_report] generation_ms`).
    pub(crate) ready: SystemTime,
    pub(crate) csv: String,
}

/// IAM regenerates a credential report at most every four hours; an older one has expired.
pub(crate) const REPORT_MAX_AGE: Duration = Duration::from_secs(4 * 3600);

/// What GenerateCredentialReport answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReportState {
    Started,
    InProgress,
    Complete,
}

impl ReportState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ReportState::Started => "STARTED",
            ReportState::InProgress => "INPROGRESS",
            ReportState::Complete => "COMPLETE",
        }
    }
}

/// A root access key or signing certificate with the id the simulator gave it.
#[derive(Debug, Clone)]
pub(crate) struct SimKey {
    pub(crate) id: String,
    pub(crate) spec: AccessKeySpec,
}

#[derive(Debug, Clone)]
pub(crate) struct SimCertificate {
    pub(crate) id: String,
    pub(crate) spec: CertificateSpec,
}

#[derive(Debug, Clone)]
pub(crate) struct RootState {
    pub(crate) mfa: Vec<MfaKind>,
    pub(crate) password: PasswordSpec,
    pub(crate) access_keys: Vec<SimKey>,
    pub(crate) signing_certificates: Vec<SimCertificate>,
}

/// One call of the control API's `POST .../root_actions`, checked by its reader.
#[derive(Debug, Clone)]
pub(crate) struct RootAction {
    /// An IAM action name, or `ConsoleLogin`.
    pub(crate) name: String,
    pub(crate) access_key_id: Option<String>,
    pub(crate) certificate_id: Option<String>,
    pub(crate) status: Option<KeyStatus>,
    pub(crate) mfa: Option<MfaKind>,
    /// For `ConsoleLogin`: the sign-in fails (wrong password), which changes nothing.
    pub(crate) sign_in_fails: bool,
}

/// The latest root session `sts:AssumeRoot` issued for an account, remembered after the session
/// itself expires and is forgotten: what an event of that session carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IssuedRootSession {
    /// The session's `ASIA...` access key id.
    pub(crate) access_key_id: String,
    /// Who called AssumeRoot, as GetCallerIdentity names it, and its account.
    pub(crate) issuer_arn: String,
    pub(crate) issuer_account_id: String,
}

/// Temporary credentials issued by AssumeRoot or AssumeRole.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) secret: String,
    pub(crate) token: String,
    pub(crate) account_id: String,
    pub(crate) kind: SessionKind,
    pub(crate) expires: SystemTime,
}

#[derive(Debug, Clone)]
pub(crate) enum SessionKind {
    /// AssumeRoot: the account's root user under a task policy.
    Root { task_policy: String },
    /// AssumeRole: a role of the account.
    Role {
        role_name: String,
        role_id: String,
        session_name: String,
        /// The role's `organization_access` when the session was issued.
        organization_access: bool,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct ActiveFault {
    pub(crate) spec: FaultSpec,
    pub(crate) remaining: Option<u64>,
}

#[derive(Debug)]
pub(crate) struct World {
    pub(crate) organization_id: String,
    pub(crate) management_account_id: String,
    /// The account of credentials the simulator did not issue.
    pub(crate) caller_account_id: String,
    /// The organization's one root, `r-xxxx`.
    pub(crate) root_id: String,
    /// OUs in the order their paths first appear among the accounts.
    pub(crate) ous: Vec<SimOu>,
    /// `[credential_report] generation_ms`.
    pub(crate) report_generation: Duration,
    pub(crate) features: Vec<String>,
    pub(crate) caller_access_key_ids: Option<Vec<String>>,
    pub(crate) accounts: Vec<SimAccount>,
    index: HashMap<String, usize>,
    pub(crate) sessions: HashMap<String, Session>,
    /// The latest AssumeRoot session of each account (one entry per account, so bounded by the
    /// organization's size).
    pub(crate) latest_root_sessions: HashMap<String, IssuedRootSession>,
    pub(crate) faults: Vec<ActiveFault>,
    pub(crate) calls: BTreeMap<String, u64>,
    /// Calls answered with the throttling error (a `[rate_limits]` bucket or a fault), by
    /// operation; also counted in `calls`.
    pub(crate) throttled: BTreeMap<String, u64>,
    pub(crate) rng: Rng,
}

/// A fixed join date for scenario accounts, so listings are reproducible.
fn joined_epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_836_800) // 2020-01-01T00:00:00Z
}

/// `n` lowercase letters and digits drawn from `seed`: the alphabet of Organizations ids.
fn lower_id(seed: u64, n: usize) -> String {
    Rng::new(seed).token(b"abcdefghijklmnopqrstuvwxyz0123456789", n)
}

impl SimAccount {
    fn from_spec(a: &AccountSpec, caller_account_id: &str, parent_id: String, rng: &mut Rng) -> SimAccount {
        SimAccount {
            id: a.id.clone(),
            name: a.name.clone(),
            email: a.email.clone().unwrap_or_else(|| format!("aws+{}@example.com", a.id)),
            status: a.status.clone(),
            state_fields: a.state_fields,
            assume_root: a.assume_root,
            root: RootState::from_spec(&a.root, &a.id, rng),
            joined: joined_epoch(),
            roles: a
                .roles
                .iter()
                .map(|r| SimRole::from_spec(r, &a.id, caller_account_id))
                .collect(),
            parent_id,
            tags: a.tags.clone(),
            report: None,
            report_generations: 0,
        }
    }

    /// An account the scenario does not list: the implicit management account or a generated
    /// one, directly under the root, without roles or tags.
    fn unlisted(id: String, name: String, email: String, root: RootState, root_id: &str) -> SimAccount {
        SimAccount {
            id,
            name,
            email,
            status: "ACTIVE".into(),
            state_fields: StateFields::default(),
            assume_root: AssumeRootMode::Ok,
            root,
            joined: joined_epoch(),
            roles: Vec::new(),
            parent_id: root_id.to_string(),
            tags: BTreeMap::new(),
            report: None,
            report_generations: 0,
        }
    }
}

/// `[generate] ous`: that many OUs under the root, `generated-001` and on, with ids unlike those
/// of `existing`.
fn generated_ous(root_id: &str, count: usize, existing: &[SimOu]) -> Vec<SimOu> {
    let root_suffix = root_id.trim_start_matches("r-");
    let mut taken: HashSet<String> = existing.iter().map(|o| o.id.clone()).collect();
    (1..=count)
        .map(|n| {
            let name = format!("generated-{n:03}");
            let mut salt = 0u64;
            let id = loop {
                let id = format!("ou-{root_suffix}-{}", lower_id(fnv1a(&name) ^ salt, 8));
                if taken.insert(id.clone()) {
                    break id;
                }
                salt += 1;
            };
            SimOu {
                id,
                name,
                parent_id: root_id.to_string(),
            }
        })
        .collect()
}

/// The OUs the accounts' `ou` paths name, in order of first appearance, and each account's
/// parent (by index in `accounts`): the OU of its path, or the root.
fn build_ous(root_id: &str, accounts: &[AccountSpec]) -> (Vec<SimOu>, Vec<String>) {
    let root_suffix = root_id.trim_start_matches("r-");
    let mut ous: Vec<SimOu> = Vec::new();
    let mut by_path: HashMap<String, String> = HashMap::new();
    let mut taken: HashSet<String> = HashSet::new();
    let mut parents = Vec::with_capacity(accounts.len());
    for a in accounts {
        let Some(path) = &a.ou else {
            parents.push(root_id.to_string());
            continue;
        };
        let mut parent = root_id.to_string();
        let mut prefix = String::new();
        for name in path.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(name);
            if let Some(id) = by_path.get(&prefix) {
                parent = id.clone();
                continue;
            }
            let mut salt = 0u64;
            let id = loop {
                let id = format!("ou-{root_suffix}-{}", lower_id(fnv1a(&prefix) ^ salt, 8));
                if taken.insert(id.clone()) {
                    break id;
                }
                salt += 1;
            };
            ous.push(SimOu {
                id: id.clone(),
                name: name.to_string(),
                parent_id: parent,
            });
            by_path.insert(prefix.clone(), id.clone());
            parent = id;
        }
        parents.push(parent);
    }
    (ous, parents)
}

impl World {
    pub(crate) fn new(scenario: &Scenario) -> World {
        let seed = scenario.generate.as_ref().map(|g| g.seed).unwrap_or(0);
        let mut rng = Rng::new(seed ^ 0x5EED);
        let org = &scenario.organization;
        let caller = org.caller_account_id().to_string();
        let root_id = format!("r-{}", lower_id(fnv1a(&org.id), 4));
        let (mut ous, parents) = build_ous(&root_id, &scenario.accounts);
        let mut accounts = Vec::new();
        if !scenario.accounts.iter().any(|a| a.id == org.management_account_id) {
            // Implicit: a hardware MFA device and no other credential.
            let root = RootState::from_spec(
                &RootSpec {
                    mfa: vec![MfaKind::Hardware],
                    ..RootSpec::default()
                },
                &org.management_account_id,
                &mut rng,
            );
            accounts.push(SimAccount::unlisted(
                org.management_account_id.clone(),
                org.management_account_name.clone(),
                format!("{}@example.com", org.management_account_name),
                root,
                &root_id,
            ));
        }
        for (a, parent) in scenario.accounts.iter().zip(parents) {
            accounts.push(SimAccount::from_spec(a, &caller, parent, &mut rng));
        }
        if let Some(g) = &scenario.generate {
            let generated_ous = generated_ous(&root_id, g.ous, &ous);
            ous.extend(generated_ous.iter().cloned());
            let taken: HashSet<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
            for (n, (id, spec)) in generated_accounts(g, &taken).into_iter().enumerate() {
                let root = RootState::from_spec(&spec, &id, &mut rng);
                let parent = match generated_ous.is_empty() {
                    true => &root_id,
                    false => &generated_ous[n % generated_ous.len()].id,
                };
                accounts.push(SimAccount::unlisted(
                    id.clone(),
                    format!("generated-{:05}", n + 1),
                    format!("aws+{id}@example.com"),
                    root,
                    parent,
                ));
            }
        }
        let index = accounts.iter().enumerate().map(|(i, a)| (a.id.clone(), i)).collect();
        World {
            organization_id: org.id.clone(),
            management_account_id: org.management_account_id.clone(),
            caller_account_id: caller,
            root_id,
            ous,
            report_generation: Duration::from_millis(scenario.credential_report.generation_ms),
            features: org.features.clone(),
            caller_access_key_ids: org.caller_access_key_ids.clone(),
            accounts,
            index,
            sessions: HashMap::new(),
            latest_root_sessions: HashMap::new(),
            faults: scenario
                .faults
                .iter()
                .map(|f| ActiveFault {
                    spec: f.clone(),
                    remaining: f.count,
                })
                .collect(),
            calls: BTreeMap::new(),
            throttled: BTreeMap::new(),
            rng,
        }
    }

    pub(crate) fn account(&self, id: &str) -> Option<&SimAccount> {
        self.index.get(id).map(|&i| &self.accounts[i])
    }

    pub(crate) fn account_mut(&mut self, id: &str) -> Option<&mut SimAccount> {
        self.index.get(id).map(|&i| &mut self.accounts[i])
    }

    pub(crate) fn has_feature(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }

    /// Replace an account's root user (control API), and say what changed as the IAM calls
    /// that would have made the change. Keys and certificates are matched by position: one that
    /// stays keeps its id. `None` when the account is unknown.
    pub(crate) fn set_root(&mut self, id: &str, spec: &RootSpec, now: SystemTime) -> Option<Vec<RootChange>> {
        let mut rng = self.rng.clone();
        let account = self.account_mut(id)?;
        let mut new = RootState::from_spec(spec, id, &mut rng);
        let old = account.root.clone();
        let mut changes = Vec::new();
        for i in 0..old.access_keys.len().max(new.access_keys.len()) {
            match (old.access_keys.get(i), new.access_keys.get_mut(i)) {
                (Some(o), Some(n)) => {
                    n.id = o.id.clone();
                    if o.spec.status() != n.spec.status() {
                        changes.push(RootChange::UpdateAccessKey {
                            id: n.id.clone(),
                            status: n.spec.status(),
                        });
                    }
                }
                (Some(o), None) => changes.push(RootChange::DeleteAccessKey { id: o.id.clone() }),
                (None, Some(n)) => {
                    let created = match &n.spec {
                        AccessKeySpec::Detailed { created: Some(t), .. } => *t,
                        _ => now,
                    };
                    changes.push(RootChange::CreateAccessKey {
                        id: n.id.clone(),
                        created,
                    });
                    // A new key is active; another status takes a second call.
                    if n.spec.status() != KeyStatus::Active {
                        changes.push(RootChange::UpdateAccessKey {
                            id: n.id.clone(),
                            status: n.spec.status(),
                        });
                    }
                }
                (None, None) => {}
            }
        }
        match (old.password.present(), new.password.present()) {
            (false, true) => changes.push(RootChange::CreateLoginProfile {
                created: match &new.password {
                    PasswordSpec::Dates { created: Some(t), .. } => *t,
                    _ => now,
                },
            }),
            (true, false) => changes.push(RootChange::DeleteLoginProfile),
            _ => {}
        }
        let old_serials = old.mfa_serials(id);
        let new_serials = new.mfa_serials(id);
        for serial in old_serials.iter().filter(|s| !new_serials.contains(s)) {
            changes.push(RootChange::DeactivateMFADevice { serial: serial.clone() });
        }
        for serial in new_serials.iter().filter(|s| !old_serials.contains(s)) {
            changes.push(RootChange::EnableMFADevice { serial: serial.clone() });
        }
        for i in 0..old.signing_certificates.len().max(new.signing_certificates.len()) {
            match (old.signing_certificates.get(i), new.signing_certificates.get_mut(i)) {
                (Some(o), Some(n)) => {
                    n.id = o.id.clone();
                    if o.spec.status() != n.spec.status() {
                        changes.push(RootChange::UpdateSigningCertificate {
                            id: n.id.clone(),
                            status: n.spec.status(),
                        });
                    }
                }
                (Some(o), None) => changes.push(RootChange::DeleteSigningCertificate { id: o.id.clone() }),
                (None, Some(n)) => {
                    changes.push(RootChange::UploadSigningCertificate {
                        id: n.id.clone(),
                        uploaded: now,
                    });
                    if n.spec.status() != KeyStatus::Active {
                        changes.push(RootChange::UpdateSigningCertificate {
                            id: n.id.clone(),
                            status: n.spec.status(),
                        });
                    }
                }
                (None, None) => {}
            }
        }
        account.root = new;
        self.rng = rng;
        Some(changes)
    }

    /// Perform one IAM call (or a console sign-in) on an account's root user (control API) and
    /// say what it changed. The account must exist. An error is (HTTP status, message): 404 for
    /// a key or certificate root does not have, 409 when the call would fail in AWS.
    pub(crate) fn root_action(
        &mut self,
        id: &str,
        action: &RootAction,
        now: SystemTime,
    ) -> Result<RootChange, (u16, String)> {
        // Both ids are drawn for every action, so that the random sequence does not depend on it.
        let tail = &id[id.len().saturating_sub(4)..];
        let new_key_id = format!("AKIA{tail}{}", self.rng.token(UPPER_DIGITS, 12));
        let new_cert_id = self.rng.token(UPPER_DIGITS, 32);
        let account = self
            .account_mut(id)
            .ok_or_else(|| (404, format!("account {id} is not in the simulated organization")))?;
        let root = &mut account.root;
        match action.name.as_str() {
            "CreateAccessKey" => root.create_access_key(id, new_key_id, now),
            "DeleteAccessKey" => root.delete_access_key(id, action),
            "UpdateAccessKey" => root.update_access_key(id, action),
            "CreateLoginProfile" | "UpdateLoginProfile" | "DeleteLoginProfile" => {
                root.change_login_profile(id, &action.name, now)
            }
            "EnableMFADevice" => root.enable_mfa_device(id, action),
            "DeactivateMFADevice" | "DeleteVirtualMFADevice" => root.remove_mfa_device(id, action),
            "UploadSigningCertificate" => root.upload_signing_certificate(id, new_cert_id, now),
            "UpdateSigningCertificate" => root.update_signing_certificate(id, action),
            "DeleteSigningCertificate" => root.delete_signing_certificate(id, action),
            "ConsoleLogin" if action.sign_in_fails => Ok(RootChange::ConsoleLogin {
                mfa: None,
                success: false,
            }),
            "ConsoleLogin" => root.console_login(id, now),
            other => Err((400, format!("unknown action {other:?}"))),
        }
    }

    /// Draw whether a fault hits this call; consumes one from a burst when it does.
    pub(crate) fn fault_for(&mut self, operation: &str, account_id: Option<&str>) -> Option<(FaultKind, u64)> {
        for i in 0..self.faults.len() {
            let f = &self.faults[i];
            let op_matches = f.spec.operation == "*" || f.spec.operation == operation;
            let account_matches = match (&f.spec.account_id, account_id) {
                (None, _) => true,
                (Some(want), Some(got)) => want == got,
                (Some(_), None) => false,
            };
            if !op_matches || !account_matches || f.remaining == Some(0) {
                continue;
            }
            let rate = f.spec.rate;
            if rate < 1.0 && self.rng.fraction() >= rate {
                continue;
            }
            let f = &mut self.faults[i];
            if let Some(r) = f.remaining.as_mut() {
                *r -= 1;
            }
            return Some((f.spec.kind, f.spec.delay_ms));
        }
        None
    }

    /// Issue temporary credentials for `account_id` (a root session or a role session).
    pub(crate) fn issue_session(
        &mut self,
        account_id: &str,
        kind: SessionKind,
        duration: Duration,
    ) -> (String, Session) {
        let akid = format!("ASIA{}", self.rng.token(UPPER_DIGITS, 16));
        let session = Session {
            secret: self.rng.token(BASE64ISH, 40),
            token: format!("IQoJb3JpZ2luX2Vj{}", self.rng.token(BASE64ISH, 120)),
            account_id: account_id.to_string(),
            kind,
            expires: SystemTime::now() + duration,
        };
        // Forget sessions that expired long ago, so a long run does not grow without bound.
        let horizon = SystemTime::now() - Duration::from_secs(3600);
        self.sessions.retain(|_, s| s.expires > horizon);
        self.sessions.insert(akid.clone(), session.clone());
        (akid, session)
    }

    /// Remember the root session AssumeRoot issued for `account_id` as its latest.
    pub(crate) fn note_root_session(&mut self, account_id: &str, session: IssuedRootSession) {
        self.latest_root_sessions.insert(account_id.to_string(), session);
    }

    /// Root of `id` makes an API call of `service` (`s3`) with its first active access key at
    /// `now`, which AWS records as the key's last use (GetAccessKeyLastUsed, the credential
    /// report's `access_key_N_last_used_*`): the key's id, or 409 when root has no active key,
    /// 404 for an unknown account.
    pub(crate) fn use_root_access_key(
        &mut self,
        id: &str,
        service: &str,
        now: SystemTime,
    ) -> Result<String, (u16, String)> {
        let account = self
            .account_mut(id)
            .ok_or_else(|| (404, format!("account {id} is not in the simulated organization")))?;
        let Some(key) = account
            .root
            .access_keys
            .iter_mut()
            .find(|k| k.spec.status() == KeyStatus::Active)
        else {
            return conflict_id(format!(
                "root of {id} has no active access key to call with; add one with CreateAccessKey or use session \"console\" or \"assumed_root\""
            ));
        };
        let created = match &key.spec {
            AccessKeySpec::Status(_) => None,
            AccessKeySpec::Detailed { created, .. } => *created,
        };
        key.spec = AccessKeySpec::Detailed {
            status: KeyStatus::Active,
            created,
            last_used: Some(now),
            last_used_service: Some(service.to_string()),
            last_used_region: Some("us-east-1".into()),
        };
        Ok(key.id.clone())
    }

    /// Replace an account's roles (control API). `None` when the account is unknown.
    pub(crate) fn set_roles(&mut self, id: &str, roles: &[RoleSpec]) -> Option<()> {
        let caller = self.caller_account_id.clone();
        let account = self.account_mut(id)?;
        account.roles = roles.iter().map(|r| SimRole::from_spec(r, id, &caller)).collect();
        Some(())
    }

    /// GenerateCredentialReport for an account at `now`: a new report when there is none or the
    /// last one is four hours old or more (STARTED), else the state of the last one. `None` when
    /// the account is unknown.
    pub(crate) fn generate_credential_report(&mut self, id: &str, now: SystemTime) -> Option<ReportState> {
        let generation = self.report_generation;
        let account = self.account_mut(id)?;
        match &account.report {
            Some(r) if now < r.ready => return Some(ReportState::InProgress),
            Some(r) if now.duration_since(r.generated).unwrap_or_default() < REPORT_MAX_AGE => {
                return Some(ReportState::Complete);
            }
            _ => {}
        }
        let csv = credential_report_csv(account);
        account.report = Some(CredentialReport {
            generated: now,
            ready: now + generation,
            csv,
        });
        account.report_generations += 1;
        Some(ReportState::Started)
    }

    pub(crate) fn count_call(&mut self, operation: &str) {
        *self.calls.entry(operation.to_string()).or_default() += 1;
    }

    pub(crate) fn count_throttled(&mut self, operation: &str) {
        match self.throttled.get_mut(operation) {
            Some(n) => *n += 1,
            None => {
                self.throttled.insert(operation.to_string(), 1);
            }
        }
    }
}

impl RootState {
    pub(crate) fn from_spec(spec: &RootSpec, account_id: &str, rng: &mut Rng) -> RootState {
        let tail = &account_id[account_id.len().saturating_sub(4)..];
        RootState {
            mfa: spec.mfa.clone(),
            password: spec.password.clone(),
            access_keys: spec
                .access_keys
                .iter()
                .map(|k| SimKey {
                    id: format!("AKIA{tail}{}", rng.token(UPPER_DIGITS, 12)),
                    spec: k.clone(),
                })
                .collect(),
            signing_certificates: spec
                .signing_certificates
                .iter()
                .map(|c| SimCertificate {
                    id: rng.token(UPPER_DIGITS, 32),
                    spec: c.clone(),
                })
                .collect(),
        }
    }

    /// MFA serial numbers in the forms AWS uses for each device kind. The root's first virtual
    /// device has the name the console gives it, `root-account-mfa-device`; more are numbered.
    pub(crate) fn mfa_serials(&self, account_id: &str) -> Vec<String> {
        let mut virtual_seen = 0;
        self.mfa
            .iter()
            .enumerate()
            .map(|(i, kind)| match kind {
                MfaKind::Virtual => {
                    virtual_seen += 1;
                    match virtual_seen {
                        1 => format!("arn:aws:iam::{account_id}:mfa/root-account-mfa-device"),
                        n => format!("arn:aws:iam::{account_id}:mfa/root-account-mfa-device-{n}"),
                    }
                }
                MfaKind::Passkey => {
                    format!("arn:aws:iam::{account_id}:u2f/root/passkey-{i}-ABCDEFGHIJKLMNOPQRSTUVWXYZ")
                }
                MfaKind::Hardware => format!("GAHT{:08}", 12_345_678 + i),
                MfaKind::Sms => format!("arn:aws:iam::{account_id}:sms-mfa/root-{i}"),
            })
            .collect()
    }
}

/// The IAM users every simulated account has besides its root user, so that a reader of the
/// credential report or of ListVirtualMFADevices must pick root's entry: `ci-deployer` (an access
/// key, no password, no MFA) and `ops-admin` (a password and a virtual MFA device).
pub(crate) struct IamUser {
    pub(crate) name: &'static str,
    pub(crate) created: SystemTime,
    /// The password: when it was last changed and last used.
    pub(crate) password: Option<(SystemTime, SystemTime)>,
    /// A virtual MFA device (`arn:aws:iam::ACCOUNT:mfa/NAME`), enabled then.
    pub(crate) virtual_mfa: Option<SystemTime>,
    /// One active access key: created, last used, region, service.
    pub(crate) access_key: Option<(SystemTime, SystemTime, &'static str, &'static str)>,
}

/// What a root action answers: the change, or (HTTP status, message).
type ActionResult = Result<RootChange, (u16, String)>;

fn conflict(message: String) -> ActionResult {
    Err((409, message))
}

fn conflict_id(message: String) -> Result<String, (u16, String)> {
    Err((409, message))
}

/// The status an Update action sets (400 without one).
fn wanted_status(action: &RootAction) -> Result<KeyStatus, (u16, String)> {
    action.status.ok_or_else(|| {
        (
            400,
            format!("{} needs \"status\": \"Active\" or \"Inactive\"", action.name),
        )
    })
}

/// Where the credential an action names is in root's list (404 when absent), or the newest
/// one when it names none (409 when there is none). `what` names the kind in messages.
fn pick<T>(
    items: &[T],
    id_of: impl Fn(&T) -> &String,
    wanted: &Option<String>,
    id: &str,
    what: &str,
) -> Result<usize, (u16, String)> {
    match wanted {
        Some(w) => items
            .iter()
            .position(|x| id_of(x) == w)
            .ok_or_else(|| (404, format!("root of {id} has no {what} {w}"))),
        None if items.is_empty() => Err((409, format!("root of {id} has no {what}"))),
        None => Ok(items.len() - 1),
    }
}

/// AWS allows root 2 access keys and 2 signing certificates: 409 when `count` is at that limit.
fn room_for_another(id: &str, count: usize, what: &str) -> Result<(), (u16, String)> {
    if count >= 2 {
        return Err((
            409,
            format!("root of {id} already has {count} {what}; AWS allows 2 (LimitExceeded)"),
        ));
    }
    Ok(())
}

/// The steps of [`World::root_action`], one per kind of root credential; `id` is the account's.
impl RootState {
    /// The access key an action names, or the newest one.
    fn pick_key(&self, id: &str, wanted: &Option<String>) -> Result<usize, (u16, String)> {
        pick(&self.access_keys, |k| &k.id, wanted, id, "access key")
    }

    /// The signing certificate an action names, or the newest one.
    fn pick_cert(&self, id: &str, wanted: &Option<String>) -> Result<usize, (u16, String)> {
        pick(&self.signing_certificates, |c| &c.id, wanted, id, "signing certificate")
    }

    fn create_access_key(&mut self, id: &str, key_id: String, now: SystemTime) -> ActionResult {
        room_for_another(id, self.access_keys.len(), "access keys")?;
        self.access_keys.push(SimKey {
            id: key_id.clone(),
            spec: AccessKeySpec::Detailed {
                status: KeyStatus::Active,
                created: Some(now),
                last_used: None,
                last_used_service: None,
                last_used_region: None,
            },
        });
        Ok(RootChange::CreateAccessKey {
            id: key_id,
            created: now,
        })
    }

    fn delete_access_key(&mut self, id: &str, action: &RootAction) -> ActionResult {
        let i = self.pick_key(id, &action.access_key_id)?;
        Ok(RootChange::DeleteAccessKey {
            id: self.access_keys.remove(i).id,
        })
    }

    fn update_access_key(&mut self, id: &str, action: &RootAction) -> ActionResult {
        let status = wanted_status(action)?;
        let i = self.pick_key(id, &action.access_key_id)?;
        let key = &mut self.access_keys[i];
        key.spec = match key.spec.clone() {
            AccessKeySpec::Status(_) => AccessKeySpec::Status(status),
            AccessKeySpec::Detailed {
                created,
                last_used,
                last_used_service,
                last_used_region,
                ..
            } => AccessKeySpec::Detailed {
                status,
                created,
                last_used,
                last_used_service,
                last_used_region,
            },
        };
        Ok(RootChange::UpdateAccessKey {
            id: key.id.clone(),
            status,
        })
    }

    /// CreateLoginProfile, UpdateLoginProfile or DeleteLoginProfile.
    fn change_login_profile(&mut self, id: &str, name: &str, now: SystemTime) -> ActionResult {
        match (name, self.password.present()) {
            ("CreateLoginProfile", true) => {
                conflict(format!("root of {id} already has a password (EntityAlreadyExists)"))
            }
            ("CreateLoginProfile", false) => {
                self.password = PasswordSpec::Dates {
                    created: Some(now),
                    last_used: None,
                };
                Ok(RootChange::CreateLoginProfile { created: now })
            }
            (_, false) => conflict(format!("root of {id} has no password (NoSuchEntity)")),
            ("UpdateLoginProfile", true) => Ok(RootChange::UpdateLoginProfile),
            (_, true) => {
                self.password = PasswordSpec::Flag(false);
                Ok(RootChange::DeleteLoginProfile)
            }
        }
    }

    fn enable_mfa_device(&mut self, id: &str, action: &RootAction) -> ActionResult {
        if self.mfa.len() >= 8 {
            return conflict(format!("root of {id} already has 8 MFA devices; AWS allows 8"));
        }
        self.mfa.push(action.mfa.unwrap_or(MfaKind::Virtual));
        Ok(RootChange::EnableMFADevice {
            serial: self.mfa_serials(id).pop().expect("a device was added"),
        })
    }

    /// DeactivateMFADevice (of the kind asked, or any) or DeleteVirtualMFADevice: the newest
    /// such device goes.
    fn remove_mfa_device(&mut self, id: &str, action: &RootAction) -> ActionResult {
        let delete_virtual = action.name == "DeleteVirtualMFADevice";
        let kind = if delete_virtual {
            Some(MfaKind::Virtual)
        } else {
            action.mfa
        };
        let serials = self.mfa_serials(id);
        let found = self.mfa.iter().rposition(|m| kind.is_none_or(|k| *m == k));
        let serial = match found {
            Some(i) => {
                self.mfa.remove(i);
                serials[i].clone()
            }
            // Root has no virtual device left: the call deletes an unassigned one.
            None if delete_virtual => format!("arn:aws:iam::{id}:mfa/root-account-mfa-device"),
            None => return conflict(format!("root of {id} has no such MFA device")),
        };
        Ok(if delete_virtual {
            RootChange::DeleteVirtualMFADevice { serial }
        } else {
            RootChange::DeactivateMFADevice { serial }
        })
    }

    fn upload_signing_certificate(&mut self, id: &str, cert_id: String, now: SystemTime) -> ActionResult {
        room_for_another(id, self.signing_certificates.len(), "signing certificates")?;
        self.signing_certificates.push(SimCertificate {
            id: cert_id.clone(),
            spec: CertificateSpec::Status(KeyStatus::Active),
        });
        Ok(RootChange::UploadSigningCertificate {
            id: cert_id,
            uploaded: now,
        })
    }

    fn update_signing_certificate(&mut self, id: &str, action: &RootAction) -> ActionResult {
        let status = wanted_status(action)?;
        let i = self.pick_cert(id, &action.certificate_id)?;
        let cert = &mut self.signing_certificates[i];
        cert.spec = CertificateSpec::Status(status);
        Ok(RootChange::UpdateSigningCertificate {
            id: cert.id.clone(),
            status,
        })
    }

    fn delete_signing_certificate(&mut self, id: &str, action: &RootAction) -> ActionResult {
        let i = self.pick_cert(id, &action.certificate_id)?;
        Ok(RootChange::DeleteSigningCertificate {
            id: self.signing_certificates.remove(i).id,
        })
    }

    /// A console sign-in: needs a password, and records its use.
    fn console_login(&mut self, id: &str, now: SystemTime) -> ActionResult {
        let created = match &self.password {
            PasswordSpec::Flag(false) => {
                return conflict(format!("root of {id} has no password: a console sign-in would fail"));
            }
            PasswordSpec::Flag(true) => None,
            PasswordSpec::Dates { created, .. } => *created,
        };
        self.password = PasswordSpec::Dates {
            created,
            last_used: Some(now),
        };
        Ok(RootChange::ConsoleLogin {
            mfa: self.mfa_serials(id).into_iter().next(),
            success: true,
        })
    }
}

fn at(epoch_seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(epoch_seconds)
}

pub(crate) fn iam_users() -> [IamUser; 2] {
    [
        IamUser {
            name: "ci-deployer",
            created: at(1_619_827_200), // 2021-05-01T00:00:00Z
            password: None,
            virtual_mfa: None,
            access_key: Some((at(1_619_827_200), at(1_763_607_600), "us-east-1", "sts")), // last used 2025-11-20T03:00:00Z
        },
        IamUser {
            name: "ops-admin",
            created: at(1_580_515_200),                             // 2020-02-01T00:00:00Z
            password: Some((at(1_706_745_600), at(1_757_923_200))), // changed 2024-02-01, used 2025-09-15T08:00:00Z
            virtual_mfa: Some(at(1_706_745_600)),
            access_key: None,
        },
    ]
}

/// A one-time unassigned virtual MFA device every account has (an abandoned enrolment):
/// ListVirtualMFADevices lists it for `Unassigned` and `Any`, without a `User`.
pub(crate) const UNASSIGNED_MFA_NAME: &str = "unassigned-spare";

/// A time as the credential report writes it: `2019-03-02T10:00:00+00:00`.
pub(crate) fn report_time(t: SystemTime) -> String {
    let s = iso8601(t);
    match s.strip_suffix('Z') {
        Some(rest) => format!("{rest}+00:00"),
        None => s,
    }
}

/// How the control API breaks a stored credential report, as a broken report would be broken:
/// the exporter must refuse it, never read it by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReportCorruption {
    /// The root row loses its `password_last_changed` field: every later field shifts left.
    DropField,
    /// The root row gains a field at its end.
    ExtraField,
    /// The header loses `cert_2_active`, and every row that field.
    MissingColumn,
    /// The root row's `access_key_1_last_rotated` becomes a word that is no time.
    BadTime,
}

impl ReportCorruption {
    pub(crate) const NAMES: [&str; 4] = ["drop_field", "extra_field", "missing_column", "bad_time"];

    pub(crate) fn parse(name: &str) -> Result<Self, String> {
        Ok(match name {
            "drop_field" => Self::DropField,
            "extra_field" => Self::ExtraField,
            "missing_column" => Self::MissingColumn,
            "bad_time" => Self::BadTime,
            other => {
                return Err(format!(
                    "corrupt = {other:?} is not a corruption; allowed: {}",
                    Self::NAMES.join(", ")
                ));
            }
        })
    }

    /// The report's text, broken. Fields are split on commas: the simulator's own reports quote
    /// nothing but user names of IAM users, which none of these touch in the root row.
    pub(crate) fn apply(self, csv: &str) -> String {
        let column = |name: &str| {
            REPORT_HEADER
                .split(',')
                .position(|c| c == name)
                .expect("a report column")
        };
        let mut lines: Vec<String> = csv.lines().map(str::to_string).collect();
        let edit = |line: &str, f: &dyn Fn(&mut Vec<String>)| -> String {
            let mut fields: Vec<String> = line.split(',').map(str::to_string).collect();
            f(&mut fields);
            fields.join(",")
        };
        for line in lines.iter_mut() {
            let root = line.starts_with("<root_account>,");
            *line = match self {
                Self::DropField if root => edit(line, &|f| {
                    f.remove(column("password_last_changed"));
                }),
                Self::ExtraField if root => format!("{line},true"),
                Self::MissingColumn => edit(line, &|f| {
                    f.remove(column("cert_2_active"));
                }),
                Self::BadTime if root => edit(line, &|f| f[column("access_key_1_last_rotated")] = "yesterday".into()),
                _ => continue,
            };
        }
        lines.join("\n") + "\n"
    }
}

/// The credential report's header, exactly AWS's.
pub(crate) const REPORT_HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

/// The account's IAM credential report as AWS writes it: the header, root's row
/// (`<root_account>`), then one row per IAM user.
pub(crate) fn credential_report_csv(account: &SimAccount) -> String {
    let id = &account.id;
    let root = &account.root;
    let na = || "N/A".to_string();
    let bool_text = |b: bool| if b { "true" } else { "false" }.to_string();
    let mut row = vec![
        "<root_account>".to_string(),
        format!("arn:aws:iam::{id}:root"),
        report_time(account.joined),
        // AWS does not say whether root has a password here; GetAccountSummary does.
        "not_supported".into(),
        match &root.password {
            PasswordSpec::Flag(false) => na(),
            PasswordSpec::Dates { last_used: Some(t), .. } => report_time(*t),
            _ => "no_information".into(),
        },
        "not_supported".into(),
        "not_supported".into(),
        bool_text(!root.mfa.is_empty()),
    ];
    for n in 0..2 {
        match root.access_keys.get(n) {
            None => row.extend([bool_text(false), na(), na(), na(), na()]),
            Some(k) => {
                let (created, used) = match &k.spec {
                    AccessKeySpec::Status(_) => (account.joined, None),
                    AccessKeySpec::Detailed {
                        created,
                        last_used,
                        last_used_service,
                        last_used_region,
                        ..
                    } => (
                        created.unwrap_or(account.joined),
                        last_used.map(|t| {
                            (
                                t,
                                last_used_region.clone().unwrap_or_else(|| "us-east-1".into()),
                                last_used_service.clone().unwrap_or_else(|| "iam".into()),
                            )
                        }),
                    ),
                };
                row.push(bool_text(k.spec.status() == KeyStatus::Active));
                row.push(report_time(created));
                match used {
                    Some((t, region, service)) => row.extend([report_time(t), region, service]),
                    None => row.extend([na(), na(), na()]),
                }
            }
        }
    }
    for n in 0..2 {
        match root.signing_certificates.get(n) {
            None => row.extend([bool_text(false), na()]),
            Some(c) => row.extend([
                bool_text(c.spec.status() == KeyStatus::Active),
                report_time(account.joined),
            ]),
        }
    }
    let mut csv = format!("{REPORT_HEADER}\n{}\n", row.join(","));
    for u in iam_users() {
        let mut row = vec![
            u.name.to_string(),
            format!("arn:aws:iam::{id}:user/{}", u.name),
            report_time(u.created),
        ];
        match u.password {
            Some((changed, used)) => row.extend([bool_text(true), report_time(used), report_time(changed), na()]),
            None => row.extend([bool_text(false), na(), na(), na()]),
        }
        row.push(bool_text(u.virtual_mfa.is_some()));
        match u.access_key {
            Some((created, used, region, service)) => row.extend([
                bool_text(true),
                report_time(created),
                report_time(used),
                region.into(),
                service.into(),
            ]),
            None => row.extend([bool_text(false), na(), na(), na(), na()]),
        }
        row.extend([bool_text(false), na(), na(), na(), na()]);
        row.extend([bool_text(false), na(), bool_text(false), na()]);
        csv.push_str(&row.join(","));
        csv.push('\n');
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(extra: &str) -> Scenario {
        Scenario::parse(
            &format!(
                "[organization]\nid = \"o-exampleorg1\"\nmanagement_account_id = \"111111111111\"\n\n[[accounts]]\nid = \"222222222222\"\nname = \"a\"\nstate_fields = \"none\"\n{extra}"
            ),
            "t",
        )
        .unwrap()
    }

    #[test]
    fn generated_accounts_are_the_worlds_and_reproducible() {
        let s = scenario("\n[generate]\naccounts = 50\nseed = 3\nmfa = 0.5\n");
        let world = World::new(&s);
        assert_eq!(world.accounts.len(), 52);
        let taken: HashSet<&str> = ["111111111111", "222222222222"].into_iter().collect();
        let generated = generated_accounts(s.generate.as_ref().unwrap(), &taken);
        let ids: Vec<&str> = generated.iter().map(|(id, _)| id.as_str()).collect();
        let world_ids: Vec<&str> = world.accounts[2..].iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, world_ids);
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(world.accounts[2].name, "generated-00001");
        assert!(
            world.accounts[2..]
                .iter()
                .all(|a| a.state_fields == StateFields::StateAndStatus)
        );
        assert_eq!(
            world.account("222222222222").unwrap().state_fields,
            StateFields::Neither
        );
    }

    #[test]
    fn generated_accounts_are_spread_over_generated_ous() {
        let s = Scenario::parse(
            "[organization]\nid = \"o-exampleorg1\"\nmanagement_account_id = \"111111111111\"\n\n[[accounts]]\nid = \"222222222222\"\nname = \"a\"\nou = \"generated-001\"\n\n[generate]\naccounts = 5\nous = 2\n",
            "t",
        )
        .unwrap();
        let world = World::new(&s);
        let ous: Vec<(&str, &str)> = world
            .ous
            .iter()
            .map(|o| (o.name.as_str(), o.parent_id.as_str()))
            .collect();
        let root = world.root_id.as_str();
        assert_eq!(
            ous,
            [
                ("generated-001", root),
                ("generated-001", root),
                ("generated-002", root)
            ]
        );
        let ids: HashSet<&str> = world.ous.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids.len(), 3, "a listed OU of the same name keeps its own id");
        let parents: Vec<&str> = world.accounts[2..].iter().map(|a| a.parent_id.as_str()).collect();
        let (a, b) = (world.ous[1].id.as_str(), world.ous[2].id.as_str());
        assert_eq!(parents, [a, b, a, b, a]);
        let too_many = "[organization]\nid = \"o-exampleorg1\"\nmanagement_account_id = \"111111111111\"\n\n[generate]\naccounts = 5\nous = 1001\n";
        let e = Scenario::parse(too_many, "t").unwrap_err().to_string();
        assert!(e.contains("generate.ous = 1001 is too many; allowed: 0 to 1000"), "{e}");
    }

    #[test]
    fn ous_come_from_the_account_paths_with_stable_ids() {
        let s = Scenario::parse(
            "[organization]\nid = \"o-exampleorg1\"\nmanagement_account_id = \"111111111111\"\ncaller_account_id = \"333333333333\"\n\n[[accounts]]\nid = \"111111111111\"\nname = \"m\"\nroles = [\"Audit\"]\n\n[[accounts]]\nid = \"222222222222\"\nname = \"a\"\nou = \"W/P\"\n\n[[accounts]]\nid = \"333333333333\"\nname = \"b\"\nou = \"W\"\n\n[[accounts]]\nid = \"444444444444\"\nname = \"c\"\nou = \"W/P\"\n",
            "t",
        )
        .unwrap();
        let world = World::new(&s);
        assert_eq!(world.accounts.len(), 4, "the listed management account only once");
        let names: Vec<(&str, &str)> = world
            .ous
            .iter()
            .map(|o| (o.name.as_str(), o.parent_id.as_str()))
            .collect();
        assert_eq!(names, [("W", world.root_id.as_str()), ("P", world.ous[0].id.as_str())]);
        assert_eq!(world.account("111111111111").unwrap().parent_id, world.root_id);
        assert_eq!(world.account("222222222222").unwrap().parent_id, world.ous[1].id);
        assert_eq!(world.account("333333333333").unwrap().parent_id, world.ous[0].id);
        assert_eq!(world.account("444444444444").unwrap().parent_id, world.ous[1].id);
        assert_eq!(World::new(&s).ous[1].id, world.ous[1].id);
        // A role given by name trusts the caller account.
        let role = &world.account("111111111111").unwrap().roles[0];
        assert_eq!(role.trusts, ["333333333333"]);
        assert!(role.id.starts_with("AROA") && role.id.len() == 21, "{}", role.id);
    }

    #[test]
    fn report_times_use_an_explicit_utc_offset() {
        assert_eq!(
            report_time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_551_520_800)),
            "2019-03-02T10:00:00+00:00"
        );
        let csv = credential_report_csv(&World::new(&scenario("")).accounts[1]);
        let root = csv.lines().nth(1).unwrap();
        assert_eq!(
            root,
            "<root_account>,arn:aws:iam::222222222222:root,2020-01-01T00:00:00+00:00,not_supported,N/A,not_supported,not_supported,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A"
        );
        assert!(csv.lines().all(|l| l.split(',').count() == 22), "{csv}");
    }

    #[test]
    fn a_not_aws_fault_is_drawn_like_any_other_and_bursts_run_out() {
        let s = scenario(
            "\n[[faults]]\noperation = \"ListAccounts\"\nkind = \"not_aws\"\ncount = 2\n\n[[faults]]\nkind = \"slow\"\ndelay_ms = 7\naccount_id = \"222222222222\"\n",
        );
        let mut world = World::new(&s);
        assert_eq!(world.fault_for("ListAccounts", None), Some((FaultKind::NotAws, 0)));
        assert_eq!(
            world.fault_for("GetAccountSummary", Some("222222222222")),
            Some((FaultKind::Slow, 7))
        );
        assert_eq!(world.fault_for("GetAccountSummary", None), None);
        assert_eq!(world.fault_for("ListAccounts", None), Some((FaultKind::NotAws, 0)));
        assert_eq!(world.fault_for("ListAccounts", None), None);
    }

    #[test]
    fn a_call_with_roots_key_is_its_last_use_in_the_credential_report() {
        let mut world = World::new(&scenario("root = { access_keys = [\"Inactive\", \"Active\"] }\n"));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_569_006); // 2026-11-25T01:10:06Z
        let active = world.account("222222222222").unwrap().root.access_keys[1].id.clone();
        assert_eq!(world.use_root_access_key("222222222222", "s3", now), Ok(active.clone()));
        let csv = credential_report_csv(world.account("222222222222").unwrap());
        let root = csv.lines().nth(1).unwrap();
        let fields: Vec<&str> = root.split(',').collect();
        let column = |name: &str| REPORT_HEADER.split(',').position(|c| c == name).unwrap();
        assert_eq!(fields[column("access_key_1_last_used_date")], "N/A", "{root}");
        assert_eq!(fields[column("access_key_2_active")], "true");
        assert_eq!(
            fields[column("access_key_2_last_used_date")],
            "2026-11-25T01:10:06+00:00"
        );
        assert_eq!(fields[column("access_key_2_last_used_service")], "s3");
        assert_eq!(fields[column("access_key_2_last_used_region")], "us-east-1");
        assert_eq!(
            fields[column("access_key_2_last_rotated")],
            "2020-01-01T00:00:00+00:00",
            "the creation date stays"
        );
        // Without an active key: 409, nothing changes.
        let mut world = World::new(&scenario("root = { access_keys = [\"Inactive\"] }\n"));
        let (status, m) = world.use_root_access_key("222222222222", "s3", now).unwrap_err();
        assert_eq!(status, 409);
        assert!(m.contains("222222222222") && m.contains("no active access key"), "{m}");
    }
}
