//! Stage 1: list every account of the organization, with where it sits. The organization tree
//! is walked (`ListRoots`, then per parent `ListOrganizationalUnitsForParent` and
//! `ListAccountsForParent`, parents of one level in parallel under the concurrency bound), so
//! every account gets its OU path; when the walk is denied, `ListAccounts` lists the accounts
//! without paths. Also: one account's tags (`ListTagsForResource`).

use std::collections::{HashMap, HashSet};

use futures::StreamExt;
use tracing::warn;

use crate::aws::call::{AwsCallError, Caller, Operation};
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

/// Follow `NextToken` through every page of one listing; `page(token)` sends one request.
async fn paged<T, P, F, Fut>(
    operation: Operation,
    mut page: F,
    mut items: impl FnMut(&P) -> Vec<T>,
) -> Result<Vec<T>, AwsCallError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(P, Option<String>), AwsCallError>>,
{
    let mut out = Vec::new();
    let mut seen_tokens = HashSet::new();
    let mut token = None;
    for _ in 0..MAX_PAGES {
        let (answer, next) = page(token.take()).await?;
        out.extend(items(&answer));
        match next.filter(|t| !t.is_empty()) {
            Some(t) if !seen_tokens.insert(t.clone()) => {
                return Err(AwsCallError::malformed(
                    operation,
                    "NextToken repeats; stopping instead of looping",
                ));
            }
            Some(t) => token = Some(t),
            None => return Ok(out),
        }
    }
    Err(AwsCallError::malformed(
        operation,
        format!("more than {MAX_PAGES} pages"),
    ))
}

pub async fn discover(
    client: &aws_sdk_organizations::Client,
    caller: &Caller,
    concurrency: usize,
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

    let listed = match walk_tree(client, caller, concurrency).await {
        Ok(listed) => listed,
        Err(e) if e.reason == FailureReason::AccessDenied => {
            warn!(operation = %e.operation, error = ?e.message, "cannot walk the organization tree; listing the accounts without their OU paths (grant organizations:ListRoots, ListOrganizationalUnitsForParent and ListAccountsForParent for them)");
            list_accounts(client, caller).await?
        }
        Err(e) => return Err(e),
    };

    let mut accounts = Vec::with_capacity(listed.len());
    let mut seen = HashSet::new();
    let mut stateless = Vec::new();
    for (a, ou_path) in listed {
        let Some(account_id) = a.id() else {
            return Err(AwsCallError::malformed(
                Operation::ListAccounts,
                "an account without Id",
            ));
        };
        if !seen.insert(account_id.to_string()) {
            continue;
        }
        // `State` supersedes `Status` (retired 2026-09-09); older answers carry only the
        // latter. An account with neither is still an account: it is audited.
        let status = match a.state().map(|s| s.as_str()).or(a.status().map(|s| s.as_str())) {
            Some(s) => s.to_string(),
            None => {
                stateless.push(account_id.to_string());
                UNKNOWN_STATUS.to_string()
            }
        };
        accounts.push(Account {
            id: account_id.to_string(),
            name: a.name().unwrap_or_default().to_string(),
            status,
            is_management: account_id == management_account_id,
            ou_path,
            tags: Vec::new(),
        });
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

type Listed = (aws_sdk_organizations::types::Account, Option<String>);

async fn list_accounts(client: &aws_sdk_organizations::Client, caller: &Caller) -> Result<Vec<Listed>, AwsCallError> {
    const LIST: Operation = Operation::ListAccounts;
    let accounts = paged(
        LIST,
        |token| async move {
            let out = caller
                .call(LIST, || {
                    client
                        .list_accounts()
                        .max_results(PAGE_SIZE)
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
            let next = out.next_token().map(str::to_string);
            Ok((out, next))
        },
        |out| out.accounts().to_vec(),
    )
    .await?;
    Ok(accounts.into_iter().map(|a| (a, None)).collect())
}

/// One parent's children: its accounts and its OUs (id, name), in listing order.
struct Children {
    accounts: Vec<aws_sdk_organizations::types::Account>,
    units: Vec<(String, String)>,
}

async fn children(
    client: &aws_sdk_organizations::Client,
    caller: &Caller,
    parent: &str,
) -> Result<Children, AwsCallError> {
    const ACCOUNTS: Operation = Operation::ListAccountsForParent;
    const UNITS: Operation = Operation::ListOrganizationalUnitsForParent;
    let accounts = paged(
        ACCOUNTS,
        |token| async move {
            let out = caller
                .call(ACCOUNTS, || {
                    client
                        .list_accounts_for_parent()
                        .parent_id(parent)
                        .max_results(PAGE_SIZE)
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
            let next = out.next_token().map(str::to_string);
            Ok((out, next))
        },
        |out| out.accounts().to_vec(),
    );
    let units = paged(
        UNITS,
        |token| async move {
            let out = caller
                .call(UNITS, || {
                    client
                        .list_organizational_units_for_parent()
                        .parent_id(parent)
                        .max_results(PAGE_SIZE)
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
            let next = out.next_token().map(str::to_string);
            Ok((out, next))
        },
        |out| {
            out.organizational_units()
                .iter()
                .filter_map(|u| Some((u.id()?.to_string(), u.name().unwrap_or_default().to_string())))
                .collect()
        },
    );
    let (accounts, units) = futures::try_join!(accounts, units)?;
    Ok(Children { accounts, units })
}

/// Every account under the roots with its path of names, in tree order.
async fn walk_tree(
    client: &aws_sdk_organizations::Client,
    caller: &Caller,
    concurrency: usize,
) -> Result<Vec<Listed>, AwsCallError> {
    const ROOTS: Operation = Operation::ListRoots;
    let roots = paged(
        ROOTS,
        |token| async move {
            let out = caller
                .call(ROOTS, || client.list_roots().set_next_token(token.clone()).send())
                .await?;
            let next = out.next_token().map(str::to_string);
            Ok((out, next))
        },
        |out| {
            out.roots()
                .iter()
                .filter_map(|r| Some((r.id()?.to_string(), r.name().unwrap_or("Root").to_string())))
                .collect()
        },
    )
    .await?;
    // Breadth first, one level at a time in parallel; then put the tree together depth first.
    let mut found: HashMap<String, (String, Children)> = HashMap::new();
    let mut level: Vec<(String, String)> = roots.clone();
    for _ in 0..=MAX_DEPTH {
        if level.is_empty() {
            break;
        }
        let listed: Vec<Result<(String, String, Children), AwsCallError>> = futures::stream::iter(level)
            .map(|(id, path)| async move {
                let c = children(client, caller, &id).await?;
                Ok((id, path, c))
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        level = Vec::new();
        for result in listed {
            let (id, path, c) = result?;
            level.extend(
                c.units
                    .iter()
                    .map(|(unit, name)| (unit.clone(), format!("{path}/{name}"))),
            );
            found.insert(id, (path, c));
        }
    }
    let mut out = Vec::new();
    let mut stack: Vec<String> = roots.into_iter().rev().map(|(id, _)| id).collect();
    while let Some(id) = stack.pop() {
        let Some((path, c)) = found.remove(&id) else { continue };
        out.extend(c.accounts.into_iter().map(|a| (a, Some(path.clone()))));
        stack.extend(c.units.into_iter().rev().map(|(unit, _)| unit));
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
    paged(
        TAGS,
        |token| async move {
            let out = caller
                .call(TAGS, || {
                    client
                        .list_tags_for_resource()
                        .resource_id(account_id)
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
            let next = out.next_token().map(str::to_string);
            Ok((out, next))
        },
        |out| {
            out.tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()
        },
    )
    .await
}
