//! Everything that talks to AWS: building SDK clients ([`clients`]), making and classifying calls
//! ([`call`]), and the ways into member accounts ([`access`]).

pub mod access;
pub mod call;
pub mod clients;
pub mod limit;
pub mod paging;

pub use call::{AwsCallError, Caller, Operation};
