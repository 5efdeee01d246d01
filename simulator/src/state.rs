//! The simulator's mutable world: the organization's accounts and their root users, the root
//! sessions it has issued, the injected faults, and a count of calls per operation.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use super::scenario::{
    AccessKeySpec, AssumeRootMode, CertificateSpec, FaultKind, FaultSpec, GenerateSpec, KeyStatus, MfaKind,
    PasswordSpec, RootSpec, Scenario, StateFields,
};

/// Deterministic pseudo-random numbers (SplitMix64): reproducible generated organizations and
/// fault draws without a dependency.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn fraction(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `n` characters from an alphabet.
    pub(crate) fn token(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[(self.next_u64() % alphabet.len() as u64) as usize] as char)
            .collect()
    }
}

pub(crate) const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
pub(crate) const BASE64ISH: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

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

/// Temporary credentials issued by AssumeRoot.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) secret: String,
    pub(crate) token: String,
    pub(crate) account_id: String,
    pub(crate) task_policy: String,
    pub(crate) expires: SystemTime,
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
    pub(crate) features: Vec<String>,
    pub(crate) caller_access_key_ids: Option<Vec<String>>,
    pub(crate) accounts: Vec<SimAccount>,
    index: HashMap<String, usize>,
    pub(crate) sessions: HashMap<String, Session>,
    pub(crate) faults: Vec<ActiveFault>,
    pub(crate) calls: BTreeMap<String, u64>,
    pub(crate) rng: Rng,
}

/// A fixed join date for scenario accounts, so listings are reproducible.
fn joined_epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_836_800) // 2020-01-01T00:00:00Z
}

impl World {
    pub(crate) fn new(scenario: &Scenario) -> World {
        let seed = scenario.generate.as_ref().map(|g| g.seed).unwrap_or(0);
        let mut rng = Rng::new(seed ^ 0x5EED);
        let org = &scenario.organization;
        let mut accounts = Vec::new();
        if !scenario.accounts.iter().any(|a| a.id == org.management_account_id) {
            accounts.push(SimAccount {
                id: org.management_account_id.clone(),
                name: org.management_account_name.clone(),
                email: format!("{}@example.com", org.management_account_name),
                status: "ACTIVE".into(),
                state_fields: StateFields::default(),
                assume_root: AssumeRootMode::Ok,
                root: RootState::from_spec(
                    &RootSpec {
                        mfa: vec![MfaKind::Hardware],
                        ..RootSpec::default()
                    },
                    &org.management_account_id,
                    &mut rng,
                ),
                joined: joined_epoch(),
            });
        }
        for a in &scenario.accounts {
            accounts.push(SimAccount {
                id: a.id.clone(),
                name: a.name.clone(),
                email: a.email.clone().unwrap_or_else(|| format!("aws+{}@example.com", a.id)),
                status: a.status.clone(),
                state_fields: a.state_fields,
                assume_root: a.assume_root,
                root: RootState::from_spec(&a.root, &a.id, &mut rng),
                joined: joined_epoch(),
            });
        }
        if let Some(g) = &scenario.generate {
            let taken: HashSet<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
            for (n, (id, spec)) in generated_accounts(g, &taken).into_iter().enumerate() {
                accounts.push(SimAccount {
                    name: format!("generated-{:05}", n + 1),
                    email: format!("aws+{id}@example.com"),
                    status: "ACTIVE".into(),
                    state_fields: StateFields::default(),
                    assume_root: AssumeRootMode::Ok,
                    root: RootState::from_spec(&spec, &id, &mut rng),
                    joined: joined_epoch(),
                    id,
                });
            }
        }
        let index = accounts.iter().enumerate().map(|(i, a)| (a.id.clone(), i)).collect();
        World {
            organization_id: org.id.clone(),
            management_account_id: org.management_account_id.clone(),
            features: org.features.clone(),
            caller_access_key_ids: org.caller_access_key_ids.clone(),
            accounts,
            index,
            sessions: HashMap::new(),
            faults: scenario
                .faults
                .iter()
                .map(|f| ActiveFault {
                    spec: f.clone(),
                    remaining: f.count,
                })
                .collect(),
            calls: BTreeMap::new(),
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

    /// Replace an account's root user (control API). `None` when the account is unknown.
    pub(crate) fn set_root(&mut self, id: &str, spec: &RootSpec) -> Option<()> {
        let mut rng = self.rng.clone();
        let account = self.account_mut(id)?;
        account.root = RootState::from_spec(spec, id, &mut rng);
        self.rng = rng;
        Some(())
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

    /// Issue root-session credentials for `account_id`.
    pub(crate) fn issue_session(
        &mut self,
        account_id: &str,
        task_policy: &str,
        duration: Duration,
    ) -> (String, Session) {
        let akid = format!("ASIA{}", self.rng.token(UPPER_DIGITS, 16));
        let session = Session {
            secret: self.rng.token(BASE64ISH, 40),
            token: format!("IQoJb3JpZ2luX2Vj{}", self.rng.token(BASE64ISH, 120)),
            account_id: account_id.to_string(),
            task_policy: task_policy.to_string(),
            expires: SystemTime::now() + duration,
        };
        // Forget sessions that expired long ago, so a long run does not grow without bound.
        let horizon = SystemTime::now() - Duration::from_secs(3600);
        self.sessions.retain(|_, s| s.expires > horizon);
        self.sessions.insert(akid.clone(), session.clone());
        (akid, session)
    }

    pub(crate) fn count_call(&mut self, operation: &str) {
        *self.calls.entry(operation.to_string()).or_default() += 1;
    }
}

/// The accounts `[generate]` adds, in listing order: increasing ids from 500000000001 on that
/// are not `taken` (the listed accounts), and their root users, drawn from the seed.
pub(crate) fn generated_accounts(g: &GenerateSpec, taken: &HashSet<&str>) -> Vec<(String, RootSpec)> {
    let mut grng = Rng::new(g.seed);
    let mut out = Vec::with_capacity(g.accounts);
    let mut candidate: u64 = 500_000_000_000;
    while out.len() < g.accounts {
        candidate += 1 + grng.next_u64() % 997;
        let id = format!("{candidate:012}");
        if taken.contains(id.as_str()) {
            continue;
        }
        let mut spec = RootSpec::default();
        if grng.fraction() < g.mfa {
            spec.mfa = vec![MfaKind::Virtual];
        }
        if grng.fraction() < g.password {
            spec.password = PasswordSpec::Flag(true);
        }
        if grng.fraction() < g.access_keys {
            spec.access_keys = vec![AccessKeySpec::Status(KeyStatus::Active)];
        }
        if grng.fraction() < g.signing_certificates {
            spec.signing_certificates = vec![CertificateSpec::Status(KeyStatus::Active)];
        }
        out.push((id, spec));
    }
    out
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

    /// MFA serial numbers in the forms AWS uses for each device kind.
    pub(crate) fn mfa_serials(&self, account_id: &str) -> Vec<String> {
        self.mfa
            .iter()
            .enumerate()
            .map(|(i, kind)| match kind {
                MfaKind::Virtual => format!("arn:aws:iam::{account_id}:mfa/root-account-mfa-device-{i}"),
                MfaKind::Passkey => {
                    format!("arn:aws:iam::{account_id}:u2f/root/passkey-{i}-ABCDEFGHIJKLMNOPQRSTUVWXYZ")
                }
                MfaKind::Hardware => format!("GAHT{:08}", 12_345_678 + i),
                MfaKind::Sms => format!("arn:aws:iam::{account_id}:sms-mfa/root-{i}"),
            })
            .collect()
    }
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
}
