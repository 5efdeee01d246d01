//! The one way a listing is read page by page, for every protocol: Organizations' `NextToken`
//! and IAM's `Marker` (with `IsTruncated`) alike.

use std::collections::HashSet;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::call::Caller;
use crate::model::AwsCallError;
use crate::operation::Operation;

/// What hears of each page of a listing as it arrives.
pub trait OnPage<T> {
    fn page(&self, items: &[T]) -> impl std::future::Future<Output = ()> + Send;
}

/// Hears nothing.
pub struct Ignore;

impl<T> OnPage<T> for Ignore {
    fn page(&self, _: &[T]) -> impl std::future::Future<Output = ()> + Send {
        std::future::ready(())
    }
}

/// Follow a listing's continuation token (Organizations' `NextToken`, IAM's `Marker`) through
/// every page of one listing of `operation`, at most `max_pages`: `send(token)` sends one request
/// (through `caller`, once per attempt), `next_token` reads the answer's (`None` on the last
/// page), `items` takes a page's items, and `on_page` hears of them as each page arrives. A token
/// that repeats, or more pages than `max_pages`, is a `bad_response`.
pub async fn paged<T, P, E, F, Fut>(
    caller: &Caller,
    operation: Operation,
    max_pages: usize,
    mut send: F,
    next_token: fn(&P) -> Option<&str>,
    mut items: impl FnMut(&P) -> Vec<T>,
    on_page: &impl OnPage<T>,
) -> Result<Vec<T>, AwsCallError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<P, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut out = Vec::new();
    let mut seen_tokens = HashSet::new();
    let mut token = None;
    for _ in 0..max_pages {
        let answer = caller.call(operation, || send(token.clone())).await?;
        let next = next_token(&answer).map(str::to_string);
        let new = items(&answer);
        on_page.page(&new).await;
        out.extend(new);
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
        format!("more than {max_pages} pages"),
    ))
}
