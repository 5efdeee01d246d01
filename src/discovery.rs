//! Stage 1: list every account of the organization.

use std::collections::HashSet;

use tracing::warn;

use crate::aws::call::{AwsCallError, Caller, Operation};
use crate::model::{Account, UNKNOWN_STATUS};

/// The organization as `DescribeOrganization` and `ListAccounts` describe it.
#[derive(Debug, Clone)]
pub struct Organization {
    pub id: String,
    pub management_account_id: String,
    /// In listing order.
    pub accounts: Vec<Account>,
}

/// Most accounts a page may hold.
const PAGE_SIZE: i32 = 20;
/// Stop following `NextToken` after this many pages (AWS organizations hold at most tens of
/// thousands of accounts): a token that never ends is a bug, not a bigger organization.
const MAX_PAGES: usize = 50_000;

pub async fn discover(client: &aws_sdk_organizations::Client, caller: &Caller) -> Result<Organization, AwsCallError> {
    const DESCRIBE: Operation = Operation::DescribeOrganization;
    const LIST: Operation = Operation::ListAccounts;
    let described = caller.call(DESCRIBE, || client.describe_organization().send()).await?;
    let org = described
        .organization()
        .ok_or_else(|| AwsCallError::malformed(DESCRIBE, "answer holds no Organization"))?;
    let management_account_id = org
        .master_account_id()
        .ok_or_else(|| AwsCallError::malformed(DESCRIBE, "answer holds no MasterAccountId"))?
        .to_string();
    let id = org.id().unwrap_or_default().to_string();

    let mut accounts = Vec::new();
    let mut stateless = Vec::new();
    let mut seen = HashSet::new();
    let mut seen_tokens = HashSet::new();
    let mut next_token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = caller
            .call(LIST, || {
                client
                    .list_accounts()
                    .max_results(PAGE_SIZE)
                    .set_next_token(next_token.clone())
                    .send()
            })
            .await?;
        for a in page.accounts() {
            let Some(account_id) = a.id() else {
                return Err(AwsCallError::malformed(LIST, "an account without Id"));
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
            });
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => {
                if !seen_tokens.insert(t.to_string()) {
                    return Err(AwsCallError::malformed(
                        LIST,
                        "NextToken repeats; stopping instead of looping",
                    ));
                }
                next_token = Some(t.to_string());
            }
            _ => {
                if !stateless.is_empty() {
                    warn!(
                        accounts = %stateless.join(","),
                        "ListAccounts gave neither State nor Status for {} account(s); they are listed with status UNKNOWN and audited",
                        stateless.len()
                    );
                }
                return Ok(Organization {
                    id,
                    management_account_id,
                    accounts,
                });
            }
        }
    }
    Err(AwsCallError::malformed(LIST, format!("more than {MAX_PAGES} pages")))
}
