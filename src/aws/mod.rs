//! Everything that talks to AWS: building SDK clients ([`clients`]), classifying their errors
//! ([`errors`]), and the one seam through which a session into a member account is opened
//! ([`session`]).

pub mod clients;
pub mod errors;
pub mod session;

pub use errors::AwsCallError;
