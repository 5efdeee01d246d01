//! Stage 1: list every account of the organization, with where it sits. The organization tree
//! is walked (`ListRoots`, then per parent `ListOrganizationalUnitsForParent` and
//! `ListAccountsForParent`, parents of one level in parallel under the concurrency bound), so
//! every account gets its OU path; when the walk is denied, `ListAccounts` lists the accounts
//! without paths. Also: one account's tags (`ListTagsForResource`).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use aws_sdk_organizations::types::Account as SdkAccount;

use futures::StreamExt;
use tracing::warn;

use crate::aws::call::{AwsCallError, Caller, Operation};
use crate::aws::paging::{self, Ignore, OnPage};
use crate::model::{Account, FailureReason, UNKNOWN_STATUS};

/// The organization as `DescribeOrganization` and the listings describe it.
#[derive(Debug, Clone)]
pub struct Organization {
    pub id: String,
    pub management_account_id: String,
    /// In tree order (each parent's accounts in listing order, then its OUs depth first), or in
    /// `ListAccounts` order when the tree could not be walked.
    pub accounts: Vec<Account>,
}

/// Most items a page may hold.
const PAGE_SIZE: i32 = 20;
/// Stop following `NextToken` after this many pages (AWS organizations hold at most tens of
/// thousands of accounts): a token that never ends is a bug, not a bigger organization.
const MAX_PAGES: usize = 50_000;

/// OUs nest at most five levels below the root; a deeper walk is a bug.
const MAX_DEPTH: usize = 8;

/// Where accounts go as soon as a page of a listing names them, each account once, so that
/// audits start while the listing goes on. Bounded: a listing faster than the audits waits for
/// them instead of queueing the whole organization.
pub type Found = tokio::sync::mpsc::Sender<Account>;

/// An account as a listing page gives it, and whether it came without a state; an error for an
/// account without `Id`.
type Converted = Result<(Account, bool), AwsCallError>;

/// Sends each newly listed account to [`Found`].
struct Sink {
    found: Found,
    management_account_id: String,
    seen: Mutex<HashSet<String>>,
}

impl OnPage<Converted> for Sink {
    async fn page(&self, accounts: &[Converted]) {
        for (account, _) in accounts.iter().flatten() {
            let new = self.seen.lock().expect("seen lock").insert(account.id.clone());
            // The receiver gone means the refresh is over: nothing left to tell.
            if new && self.found.send(account.clone()).await.is_err() {
                return;
            }
        }
    }
}

impl Sink {
    /// The accounts of one listing page, as the exporter keeps them.
    fn convert(&self, accounts: &[SdkAccount], ou_path: Option<&str>) -> Vec<Converted> {
        accounts
            .iter()
            .map(|a| {
                to_account(a, ou_path.map(str::to_string), &self.management_account_id)
                    .ok_or_else(|| AwsCallError::malformed(Operation::ListAccounts, "an account without Id"))
            })
            .collect()
    }
}

/// The account as the exporter keeps it, and whether the listing gave it no state; `None`
/// without an `Id`.
fn to_account(a: &SdkAccount, ou_path: Option<String>, management_account_id: &str) -> Option<(Account, bool)> {
    let id = a.id()?;
    // `State` supersedes `Status` (retired 2026-09-09); older answers carry only the latter. An
    // account with neither is still an account: it is audited.
    let status = a.state().map(|s| s.as_str()).or(a.status().map(|s| s.as_str()));
    Some((
        Account {
            id: id.to_string(),
            name: a.name().unwrap_or_default().to_string(),
            status: status.unwrap_or(UNKNOWN_STATUS).to_string(),
            is_management: id == management_account_id,
            ou_path,
            tags: Vec::new(),
        },
        status.is_none(),
    ))
}

/// List the organization. Every account is also sent to `found` as soon as its page arrives
/// (before the listing ends); `found` is dropped when the listing ends.
pub async fn discover(
    client: &aws_sdk_organizations::Client,
    caller: &Caller,
    concurrency: usize,
    found: Found,
) -> Result<Organization, AwsCallError> {
    const DESCRIBE: Operation = Operation::DescribeOrganization;
    let described = caller.call(DESCRIBE, || client.describe_organization().send()).await?;
    let org = described
        .organization()
        .ok_or_else(|| AwsCallError::malformed(DESCRIBE, "answer holds no Organization"))?;
    let management_account_id = org
        .master_account_id()
        .ok_or_else(|| AwsCallError::malformed(DESCRIBE, "answer holds no MasterAccountId"))?
        .to_string();
    let id = org.id().unwrap_or_default().to_string();
    let sink = Sink {
        found,
        management_account_id: management_account_id.clone(),
        seen: Mutex::new(HashSet::new()),
    };

    let listed = match walk_tree(client, caller, concurrency, &sink).await {
        Ok(listed) => listed,
        Err(e) if e.reason == FailureReason::AccessDenied => {
            warn!(operation = %e.operation, error = ?e.message, "cannot walk the organization tree; listing the accounts without their OU paths (grant organizations:ListRoots, ListOrganizationalUnitsForParent and ListAccountsForParent for them)");
            list_accounts(client, caller, &sink).await?
        }
        Err(e) => return Err(e),
    };
    drop(sink);

    let mut accounts = Vec::with_capacity(listed.len());
    let mut seen = HashSet::new();
    let mut stateless = Vec::new();
    for converted in listed {
        let (account, no_state) = converted?;
        if !seen.insert(account.id.clone()) {
            continue;
        }
        if no_state {
            stateless.push(account.id.clone());
        }
        accounts.push(account);
    }
    if !stateless.is_empty() {
        warn!(
            accounts = %stateless.join(","),
            "the listing gave neither State nor Status for {} account(s); they are listed with status UNKNOWN and audited",
            stateless.len()
        );
    }
    Ok(Organization {
        id,
        management_account_id,
        accounts,
    })
}

async fn list_accounts(
    client: &aws_sdk_organizations::Client,
    caller: &Caller,
    sink: &Sink,
) -> Result<Vec<Converted>, AwsCallError> {
    const LIST: Operation = Operation::ListAccounts;
    paging::paged(
        caller,
        LIST,
        MAX_PAGES,
        |token| {
            client
                .list_accounts()
                .max_results(PAGE_SIZE)
                .set_next_token(token)
                .send()
        },
        |out| out.next_token(),
        |out| sink.convert(out.accounts(), None),
        sink,
    )
    .await
}

/// One parent's accounts with `path`, in listing order; they also go to `sink` page by page.
async fn accounts_of(
    client: &aws_sdk_organizations::Client,
    caller: &Caller,
    parent: &str,
    path: &str,
    sink: &Sink,
) -> Result<Vec<Converted>, AwsCallError> {
    const ACCOUNTS: Operation = Operation::ListAccountsForParent;
    paging::paged(
        caller,
        ACCOUNTS,
        MAX_PAGES,
        |token| {
            client
                .list_accounts_for_parent()
                .parent_id(parent)
                .max_results(PAGE_SIZE)
                .set_next_token(token)
                .send()
        },
        |out| out.next_token(),
        |out| sink.convert(out.accounts(), Some(path)),
        sink,
    )
    .await
}

/// One parent's OUs (id, name), in listing order.
async fn units_of(
    client: &aws_sdk_organizations::Client,
    caller: &Caller,
    parent: &str,
) -> Result<Vec<(String, String)>, AwsCallError> {
    const UNITS: Operation = Operation::ListOrganizationalUnitsForParent;
    paging::paged(
        caller,
        UNITS,
        MAX_PAGES,
        |token| {
            client
                .list_organizational_units_for_parent()
                .parent_id(parent)
                .max_results(PAGE_SIZE)
                .set_next_token(token)
                .send()
        },
        |out| out.next_token(),
        |out| {
            out.organizational_units()
                .iter()
                .filter_map(|u| Some((u.id()?.to_string(), u.name().unwrap_or_default().to_string())))
                .collect()
        },
        &Ignore,
    )
    .await
}

/// One listing of the walk, and what it found.
enum Listing {
    Accounts(String, Vec<Converted>),
    Units(String, usize, Vec<(String, String)>),
}

/// Every account under the roots with its path of names, in tree order. Each parent's accounts
/// and OUs are two listings; an OU's own listings start as soon as its parent's OU listing ends
/// (not when a whole level is done), at most `concurrency` listings at once, so that the walk
/// takes as long as its longest chain of pages.
async fn walk_tree(
    client: &aws_sdk_organizations::Client,
    caller: &Caller,
    concurrency: usize,
    sink: &Sink,
) -> Result<Vec<Converted>, AwsCallError> {
    const ROOTS: Operation = Operation::ListRoots;
    let roots = paging::paged(
        caller,
        ROOTS,
        MAX_PAGES,
        |token| client.list_roots().set_next_token(token).send(),
        |out| out.next_token(),
        |out| {
            out.roots()
                .iter()
                .filter_map(|r| Some((r.id()?.to_string(), r.name().unwrap_or("Root").to_string())))
                .collect()
        },
        &Ignore,
    )
    .await?;
    // (parent, its path of names, depth): listings to start.
    let mut waiting: std::collections::VecDeque<(String, String, usize)> =
        roots.iter().map(|(id, path)| (id.clone(), path.clone(), 0)).collect();
    let mut paths: HashMap<String, String> = HashMap::new();
    let mut accounts: HashMap<String, Vec<Converted>> = HashMap::new();
    let mut units: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let mut running = futures::stream::FuturesUnordered::new();
    loop {
        while running.len() + 1 < concurrency.max(2) {
            let Some((id, path, depth)) = waiting.pop_front() else {
                break;
            };
            paths.insert(id.clone(), path);
            let path = &paths[&id];
            let (id_a, path_a) = (id.clone(), path.clone());
            running.push(futures::future::Either::Left(async move {
                let listed = accounts_of(client, caller, &id_a, &path_a, sink).await?;
                Ok::<_, AwsCallError>(Listing::Accounts(id_a, listed))
            }));
            running.push(futures::future::Either::Right(async move {
                let listed = units_of(client, caller, &id).await?;
                Ok::<_, AwsCallError>(Listing::Units(id, depth, listed))
            }));
        }
        match running.next().await {
            None => break,
            Some(Err(e)) => return Err(e),
            Some(Ok(Listing::Accounts(id, listed))) => {
                accounts.insert(id, listed);
            }
            Some(Ok(Listing::Units(id, depth, listed))) => {
                // OUs nest at most five levels below the root: deeper is a bug, not walked.
                if depth < MAX_DEPTH {
                    let path = &paths[&id];
                    waiting.extend(
                        listed
                            .iter()
                            .map(|(unit, name)| (unit.clone(), format!("{path}/{name}"), depth + 1)),
                    );
                }
                units.insert(id, listed);
            }
        }
    }
    // Put the tree together depth first.
    let mut out = Vec::new();
    let mut stack: Vec<String> = roots.into_iter().rev().map(|(id, _)| id).collect();
    while let Some(id) = stack.pop() {
        let Some(listed) = accounts.remove(&id) else { continue };
        out.extend(listed);
        if let Some(children) = units.remove(&id) {
            stack.extend(children.into_iter().rev().map(|(unit, _)| unit));
        }
    }
    Ok(out)
}

/// The account's tags (`organizations:ListTagsForResource`), as (key, value).
pub async fn account_tags(
    client: &aws_sdk_organizations::Client,
    caller: &Caller,
    account_id: &str,
) -> Result<Vec<(String, String)>, AwsCallError> {
    const TAGS: Operation = Operation::ListTagsForResource;
    paging::paged(
        caller,
        TAGS,
        MAX_PAGES,
        |token| {
            client
                .list_tags_for_resource()
                .resource_id(account_id)
                .set_next_token(token)
                .send()
        },
        |out| out.next_token(),
        |out| {
            out.tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()
        },
        &Ignore,
    )
    .await
}
