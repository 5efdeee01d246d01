//! The organizations one exporter audits, as the running code sees them: each with its name
//! (the `organization` label), the role that reaches it (none: the exporter's own credentials)
//! and its effective configuration (the top-level keys with the entry's overrides; see
//! `config::OrganizationEntry`). Without `[[organizations]]` there is one, named
//! [`DEFAULT_ORGANIZATION`], configured by the top-level keys alone.

use std::sync::Arc;

use crate::config::Config;
pub use crate::config::OrganizationRole;
pub use crate::telemetry::DEFAULT_ORGANIZATION;

/// One organization to audit.
#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    pub name: String,
    pub role: Option<OrganizationRole>,
    pub config: Arc<Config>,
}

/// The organizations `config` names, in its order.
pub fn of(config: &Arc<Config>) -> Vec<Organization> {
    if config.organizations.is_empty() {
        return vec![Organization {
            name: DEFAULT_ORGANIZATION.to_string(),
            role: None,
            config: config.clone(),
        }];
    }
    config
        .organizations
        .iter()
        .map(|entry| Organization {
            name: entry.name.clone(),
            role: entry.role.clone(),
            // Checked when the configuration was loaded.
            config: Arc::new(
                config
                    .for_organization(entry)
                    .expect("a loaded configuration's organizations are valid"),
            ),
        })
        .collect()
}
