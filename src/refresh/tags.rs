//! Account tags (`organizations:ListTagsForResource`), read after each listing while audits
//! run, and cached.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tracing::warn;

use super::Refresher;
use crate::aws::call::AwsCallError;
use crate::discovery;
use crate::model::Account;

/// Account tags as last read, and when: read again at most every [`TAGS_MAX_AGE`].
pub(super) type TagCache = HashMap<String, (Instant, Vec<(String, String)>)>;

/// How long account tags are served before they are read again.
pub const TAGS_MAX_AGE: Duration = Duration::from_secs(3600);

impl Refresher {
    pub(super) async fn read_tags(&self, accounts: &mut [Account]) {
        let mut cache = self.tags.lock().await;
        let stale: Vec<String> = accounts
            .iter()
            .filter(|a| cache.get(&a.id).is_none_or(|(at, _)| at.elapsed() >= TAGS_MAX_AGE))
            .map(|a| a.id.clone())
            .collect();
        type Read = (String, Result<Vec<(String, String)>, AwsCallError>);
        let read: Vec<Read> = futures::stream::iter(stale)
            .map(|id| async move {
                let tags = discovery::account_tags(&self.organizations, &self.caller, &id).await;
                (id, tags)
            })
            .buffer_unordered(self.config.concurrency)
            .collect()
            .await;
        let mut failed = Vec::new();
        for (id, tags) in read {
            match tags {
                Ok(tags) => {
                    cache.insert(id, (Instant::now(), tags));
                }
                Err(e) => failed.push((id, e)),
            }
        }
        if let Some((_, e)) = failed.first() {
            warn!(
                accounts = failed.len(),
                reason = %e.reason,
                error = ?e.message,
                "cannot read account tags (organizations:ListTagsForResource); known tags are kept, others are empty"
            );
        }
        cache.retain(|id, _| accounts.iter().any(|a| &a.id == id));
        for account in accounts.iter_mut() {
            account.tags = self
                .config
                .account_tags
                .iter()
                .filter_map(|key| {
                    let (_, tags) = cache.get(&account.id)?;
                    tags.iter().find(|(k, _)| k == key).cloned()
                })
                .collect();
        }
    }
}
