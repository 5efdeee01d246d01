//! The invariants, judged after every refresh from the scrape alone and what earlier scrapes
//! showed: a failure never looks like a clean account.
//!
//! How a scrape is placed in time: `refreshes` (both results of
//! `aws_root_exporter_refreshes_total`) numbers the snapshot it shows; the previous scrape the
//! checker saw showed refresh `prev`; refreshes `prev + 1 ..= now - 1`, if any, were never seen.
//! An account's audit is identified by its `aws_root_audit_last_success_timestamp_seconds`: the
//! credential gauges served with one timestamp must always be the same, whatever happens to the
//! account's later audits.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::scrape::{AccountView, Scrape};
use super::world::{Account, FLAG_FAMILIES, Normalised, Part, Root, World, is_reason, number, part_of};

/// What the previous scrape showed.
struct Seen {
    refreshes: u64,
    /// When that refresh started, when it listed the organization.
    started: Option<f64>,
    last_refresh_success: Option<f64>,
    last_success: HashMap<&'static str, Option<f64>>,
}

#[derive(Default)]
pub struct Checker {
    pub checks: u64,
    pub violations: Vec<String>,
    pub phase: String,
    /// Scrapes judged.
    pub refreshes: u64,
    /// Scrape texts that showed a violation, for the evidence.
    pub evidence: Vec<(String, String)>,
    /// Keep every judged scrape in the evidence.
    pub keep_all: bool,
    last: Option<Seen>,
    /// (account, last-success timestamp bits) -> its credential samples.
    audits: HashMap<(&'static str, u64), String>,
    /// Newest last-success timestamp seen per account.
    newest: HashMap<&'static str, f64>,
    /// last_refresh_success bits -> the per-account section of that snapshot.
    sections: HashMap<u64, Vec<String>>,
    /// Counter series -> last value.
    counters: BTreeMap<String, f64>,
    refresh_now: u64,
}

/// The verdict on one scrape.
pub struct Verdict {
    /// Refresh number it showed.
    pub refresh: u64,
    /// Discovery succeeded and every selected account that can be audited was.
    pub all_good: bool,
    pub refresh_ok: bool,
}

impl Checker {
    /// Count one check; record a violation when `ok` is false.
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) -> bool {
        self.checks += 1;
        if !ok {
            let msg = format!("[{} | refresh {}] {}", self.phase, self.refresh_now, what());
            eprintln!("chaos: VIOLATION {msg}");
            self.violations.push(msg);
        }
        ok
    }

    /// When the last judged refresh started (unix seconds), if it listed the organization.
    pub fn last_started(&self) -> Option<f64> {
        self.last.as_ref().and_then(|l| l.started)
    }

    /// The refresh number the last judged scrape showed.
    pub fn last_refresh(&self) -> u64 {
        self.last.as_ref().map(|l| l.refreshes).unwrap_or(0)
    }

    /// Judge the scrape of a refresh that just finished.
    pub fn observe(&mut self, s: &Scrape, world: &World) -> Verdict {
        let violations_before = self.violations.len();
        let k = s.refreshes();
        self.refresh_now = k;
        self.refreshes += 1;
        let (prev_k, prev_f) = self
            .last
            .as_ref()
            .map(|l| (l.refreshes, l.last_refresh_success))
            .unwrap_or((0, None));
        // Refreshes since the previous scrape: lo..=k; the ones before k were not seen.
        let lo = prev_k + 1;
        let gap = k > lo;
        let r = s.value("aws_root_exporter_refresh_success", &[]);
        let f = s.value("aws_root_exporter_last_refresh_success_timestamp_seconds", &[]);
        let listed = r == Some(1.0);

        self.counters_never_decrease(s);
        self.check(k > prev_k, || format!("refreshes_total went from {prev_k} to {k}"));
        self.check(r == Some(0.0) || r == Some(1.0), || {
            format!("aws_root_exporter_refresh_success is {r:?}, not 0 or 1")
        });
        if world.discovery_must_fail(k) {
            self.check(!listed, || {
                "listing the organization cannot succeed (its calls always fail), yet refresh_success = 1".into()
            });
        }
        if listed {
            self.check(f.is_some_and(|f| prev_f.is_none_or(|p| f > p)), || {
                format!("a successful refresh must advance last_refresh_success_timestamp ({prev_f:?} -> {f:?})")
            });
        } else {
            self.check(
                f == prev_f || gap && f.is_some_and(|f| prev_f.is_none_or(|p| f >= p)),
                || format!("a failed refresh changed last_refresh_success_timestamp ({prev_f:?} -> {f:?})"),
            );
        }

        let Some(f) = f else {
            // No refresh has listed the organization yet: nothing about accounts.
            let section = s.account_section();
            self.check(section.is_empty(), || {
                format!("samples about accounts before any successful refresh: {section:?}")
            });
            self.last = Some(Seen {
                refreshes: k,
                started: None,
                last_refresh_success: None,
                last_success: HashMap::new(),
            });
            return self.verdict(s, violations_before, k, false, false);
        };

        // A snapshot is a function of its refresh: a failed refresh serves the last listing as is.
        let section = s.account_section();
        match self.sections.get(&f.to_bits()) {
            Some(old) => {
                let old = old.clone();
                self.check(old == section, || {
                    format!(
                        "two scrapes of the snapshot listed at {} differ in their account samples:\n  before: {:?}\n  now:    {:?}",
                        number(f),
                        diff(&old, &section),
                        diff(&section, &old)
                    )
                });
            }
            None => {
                self.sections.insert(f.to_bits(), section);
            }
        }

        // Where the per-account state comes from: this refresh, or unseen ones.
        let origin = if listed {
            Some((k, k))
        } else if Some(f) != prev_f {
            Some((lo, k - 1))
        } else {
            None
        };

        // The organization as listed: every account, never a partial list.
        let listed_ids: BTreeSet<String> = s
            .info()
            .iter()
            .filter_map(|(l, _)| l.get("account_id").cloned())
            .collect();
        let want: BTreeSet<String> = world.accounts.iter().map(|a| a.id.to_string()).collect();
        self.check(listed_ids == want, || {
            format!("aws_organizations_account_info lists {listed_ids:?}, the organization is {want:?}")
        });

        let mut all_good = listed && k >= world.settled_from();
        let mut views = Vec::new();
        for a in &world.accounts {
            let v = s.account(a.id);
            let good = self.account(world, a, &v, k, lo, gap, listed, f, prev_f, origin);
            all_good &= good;
            views.push((a, v));
        }

        // The aggregate agrees with the per-account samples.
        let audited = views
            .iter()
            .filter(|(a, v)| a.selected() && v.success == Some(1.0))
            .count();
        let selected = views.iter().filter(|(a, _)| a.selected()).count();
        for (outcome, n) in [
            ("audited", audited),
            ("failed", selected - audited),
            ("skipped", world.accounts.len() - selected),
        ] {
            let got = s.value("aws_root_exporter_accounts", &[("outcome", outcome)]);
            self.check(got == Some(n as f64), || {
                format!("aws_root_exporter_accounts{{outcome={outcome:?}}} is {got:?}, the accounts say {n}")
            });
        }

        // No access key is served under two accounts (sessions never cross accounts).
        let mut owner: HashMap<String, &str> = HashMap::new();
        for (a, v) in &views {
            for id in v.access_key_ids() {
                if let Some(other) = owner.insert(id.clone(), a.id) {
                    self.check(other == a.id, || {
                        format!("access key {id} is served for both {other} and {}", a.id)
                    });
                }
            }
        }

        // The organization's feature, when it was certainly read in this refresh.
        if listed
            && !world.may_fail("ListOrganizationsFeatures", None, k, k)
            && let Some(on) = world.root_access.certain(k)
        {
            let got = s.value(
                "aws_organizations_feature_enabled",
                &[("feature", "RootCredentialsManagement")],
            );
            let want = if *on { 1.0 } else { 0.0 };
            self.check(got == Some(want), || {
                format!("aws_organizations_feature_enabled{{feature=\"RootCredentialsManagement\"}} is {got:?}, the organization has {want}")
            });
        }

        let duration = s.value("aws_root_exporter_refresh_duration_seconds", &[]);
        self.last = Some(Seen {
            refreshes: k,
            started: duration.filter(|_| listed).map(|d| f - d),
            last_refresh_success: Some(f),
            last_success: world
                .accounts
                .iter()
                .map(|a| (a.id, s.account(a.id).last_success))
                .collect(),
        });
        self.verdict(s, violations_before, k, all_good, listed)
    }

    fn verdict(&mut self, s: &Scrape, violations_before: usize, k: u64, all_good: bool, refresh_ok: bool) -> Verdict {
        if self.keep_all || self.violations.len() > violations_before && self.evidence.len() < 20 {
            self.evidence.push((format!("refresh-{k:04}.metrics"), s.text.clone()));
        }
        Verdict {
            refresh: k,
            all_good,
            refresh_ok,
        }
    }

    fn counters_never_decrease(&mut self, s: &Scrape) {
        for (name, samples) in &s.families {
            if !name.ends_with("_total") {
                continue;
            }
            for (labels, v) in samples {
                let key = format!("{name}{labels:?}");
                if let Some(before) = self.counters.insert(key.clone(), *v) {
                    let v = *v;
                    self.check(v >= before, || format!("counter {key} went down from {before} to {v}"));
                }
            }
        }
    }

    /// The checks of one account; returns whether it was audited successfully in this refresh
    /// or cannot be.
    #[allow(clippy::too_many_arguments)]
    fn account(
        &mut self,
        world: &World,
        a: &Account,
        v: &AccountView,
        k: u64,
        lo: u64,
        gap: bool,
        listed: bool,
        f: f64,
        prev_f: Option<f64>,
        origin: Option<(u64, u64)>,
    ) -> bool {
        let who = format!("{} ({})", a.id, a.name);
        let info_ok = v.info.len() == 1 && {
            let l = &v.info[0];
            l.get("status").map(String::as_str) == Some(a.status)
                && l.get("management").map(String::as_str) == Some(if a.management { "true" } else { "false" })
                && l.get("audited").map(String::as_str) == Some(if a.selected() { "true" } else { "false" })
        };
        self.check(info_ok, || {
            format!("{who}: aws_organizations_account_info is {:?}", v.info)
        });

        if !a.selected() {
            self.check(
                v.success.is_none()
                    && v.last_success.is_none()
                    && v.credentials.is_empty()
                    && v.reasons.is_empty()
                    && v.failed_operations.is_empty(),
                || format!("{who} is not audited, yet it has audit samples: {v:?}"),
            );
            return true;
        }

        let ok = v.success == Some(1.0);
        self.check(ok || v.success == Some(0.0), || {
            format!(
                "{who}: aws_root_audit_success is {:?}; an audited account has 0 or 1 after the first refresh",
                v.success
            )
        });

        // 1. A failure never looks like a success.
        // Member accounts are reached through root sessions (AssumeRoot: no member role is
        // configured), which the fault matrix is aimed at. The management account is audited
        // another way (the exporter's own credentials) that other things block, and that reads
        // the deep facts otherwise (the credential report).
        let root_session = !a.management;
        if root_session {
            let method = v.method();
            self.check(method.is_none_or(|m| m == "assume_root" || m == "none"), || {
                format!("{who}: method={method:?}, but only AssumeRoot can reach a member account here")
            });
        }
        let must_fail = listed && root_session && world.certain_failure(a, k);
        if must_fail {
            self.check(!ok, || {
                format!(
                    "{who} cannot be audited in this refresh (root session denied, feature off, or its calls always fail), yet aws_root_audit_success = 1 with {}",
                    v.credentials_text().replace('\n', "; ")
                )
            });
        }

        // The failure reason.
        if ok {
            self.check(v.reasons.is_empty(), || {
                format!("{who}: a failure reason next to a success: {:?}", v.reasons)
            });
        } else {
            let one = v.reasons.len() == 1 && v.reasons[0].1 == 1.0 && is_reason(&v.reasons[0].0);
            self.check(one, || {
                format!(
                    "{who}: a failed audit has exactly one documented failure reason, not {:?}",
                    v.reasons
                )
            });
            if let (true, Some((o_lo, o_hi))) = (one, origin) {
                let possible = world.possible_reasons(a, o_lo, o_hi);
                let reason = v.reasons[0].0.clone();
                self.check(possible.contains(reason.as_str()), || {
                    format!("{who} failed with reason {reason:?}, but nothing the simulator did could cause that (possible: {possible:?})")
                });
            }
        }

        // 2. The last-success timestamp: kept on failure, never backwards.
        let prev_ts = self
            .last
            .as_ref()
            .and_then(|l| l.last_success.get(a.id).copied())
            .flatten();
        let newest = self.newest.get(a.id).copied();
        match v.last_success {
            None => {
                self.check(!ok, || {
                    format!("{who}: a successful audit without a last-success timestamp")
                });
                self.check(newest.is_none(), || {
                    format!("{who}: its last-success timestamp ({newest:?}) disappeared")
                });
                // 1. Never audited successfully: no credential gauge at all.
                self.check(v.credentials.is_empty(), || {
                    format!(
                        "{who} was never audited successfully, yet serves credential gauges: {}",
                        v.credentials_text().replace('\n', "; ")
                    )
                });
            }
            Some(ts) => {
                self.check(newest.is_none_or(|n| ts >= n), || {
                    format!(
                        "{who}: last-success timestamp went backwards ({newest:?} -> {})",
                        number(ts)
                    )
                });
                if ok {
                    self.check(ts <= f, || {
                        format!(
                            "{who}: last success {} after the refresh that served it ({})",
                            number(ts),
                            number(f)
                        )
                    });
                    if listed {
                        // Audited in this refresh: newer than the previous listing.
                        self.check(prev_f.is_none_or(|p| ts > p), || {
                            format!(
                                "{who}: success in this refresh, but its timestamp {} is not newer than the previous refresh ({prev_f:?}): stale findings served as fresh",
                                number(ts)
                            )
                        });
                    }
                } else {
                    self.check(ts < f, || {
                        format!(
                            "{who}: failed, yet its last-success timestamp {} is not older than the refresh that served it ({})",
                            number(ts),
                            number(f)
                        )
                    });
                    if let Some(p) = prev_ts {
                        self.check(ts == p || gap, || {
                            format!(
                                "{who}: its audit failed, yet its last-success timestamp moved from {} to {} (no refresh was missed in between)",
                                number(p),
                                number(ts)
                            )
                        });
                    }
                }
                self.newest.insert(a.id, newest.map_or(ts, |n| n.max(ts)));

                // 1. / 3. The credential gauges of one audit never change; a new audit shows
                // what the simulator had.
                let text = v.credentials_text();
                match self.audits.get(&(a.id, ts.to_bits())).cloned() {
                    Some(before) => {
                        self.check(before == text, || {
                            format!(
                                "{who}: credential gauges of its audit at {} changed (success now: {ok}):\n  then: {}\n  now:  {}",
                                number(ts),
                                before.replace('\n', "; "),
                                text.replace('\n', "; ")
                            )
                        });
                    }
                    None => {
                        let (m_lo, m_hi) = if ok && listed { (k, k) } else { (lo, k) };
                        self.model(world, a, v, &who, m_lo, m_hi, root_session);
                        self.audits.insert((a.id, ts.to_bits()), text);
                    }
                }
            }
        }
        ok || must_fail
    }

    /// Invariant 3: a successful audit in refreshes `lo..=hi` shows exactly the root user the
    /// simulator had. With `root_session` false (another way in), only the four `GetAccountSummary` flags are
    /// compared: they describe the root user whoever reads them.
    #[allow(clippy::too_many_arguments)]
    fn model(&mut self, world: &World, a: &Account, v: &AccountView, who: &str, lo: u64, hi: u64, root_session: bool) {
        for (op, reason, value) in &v.failed_operations {
            self.check(
                *value == 1.0 && (part_of(op).is_some() || !root_session) && is_reason(reason),
                || format!("{who}: aws_root_audit_operation_failure{{operation={op:?},reason={reason:?}}} = {value}"),
            );
            if root_session {
                let reasons = world.deep_reasons(op, a, lo, hi);
                self.check(reasons.contains(reason.as_str()), || {
                    format!("{who}: {op} failed ({reason}) though nothing the simulator did could make it fail so (possible: {reasons:?})")
                });
            }
        }
        let failed = v.failed_parts();
        let compared = |n: Normalised| if root_session { n } else { restrict(&n, &FLAG_FAMILIES) };
        let actual = compared(v.normalised());
        let candidates = a.root.possible(lo, hi);
        let expected = |r: &Root| compared(r.expected(&failed));
        let whole = candidates.iter().any(|r| expected(r) == actual);
        // A root user replaced while the audit ran: each call reads one version of it, but
        // different calls may read different versions (AWS has no snapshot either).
        let torn = candidates.len() > 1
            && call_groups().iter().all(|families| {
                let mine = restrict(&actual, families);
                candidates.iter().any(|r| restrict(&expected(r), families) == mine)
            });
        self.check(whole || torn, || {
            let wanted: Vec<String> = candidates
                .iter()
                .map(|r| format!("{:?}", expected(r)))
                .collect();
            format!(
                "{who}: its successful audit in refresh {lo}..={hi} serves {actual:?}\n  but the simulator's root user was (one of) {}\n  (deep parts reported failed: {failed:?})",
                wanted.join("\n  or ")
            )
        });
    }
}

/// Families read by one call (or one pair of calls) each: the summary flags and each deep part.
fn call_groups() -> Vec<Vec<&'static str>> {
    let mut groups = vec![FLAG_FAMILIES.to_vec()];
    groups.extend([Part::Keys, Part::Mfa, Part::Password, Part::Certificates].map(|p| p.families().to_vec()));
    groups
}

fn restrict(n: &Normalised, families: &[&str]) -> Normalised {
    n.iter()
        .filter(|(f, _)| families.contains(&f.as_str()))
        .map(|(f, v)| (f.clone(), v.clone()))
        .collect()
}

/// Lines of `a` not in `b`.
fn diff(a: &[String], b: &[String]) -> Vec<String> {
    let b: BTreeSet<&String> = b.iter().collect();
    a.iter().filter(|l| !b.contains(l)).cloned().collect()
}
