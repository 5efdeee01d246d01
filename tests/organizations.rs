//! Several organizations from one exporter (`[[organizations]]`), against the simulator serving
//! two organizations in one world (tests/fixtures/scenarios/org-a.toml and org-b.toml): its own,
//! a second reached through the access role in that organization's management account, and a
//! third whose role does not exist.

mod common;

use std::time::Duration;

use common::{Sim, config, number, scrape, serve, until, value};

const ORG_A: &str = include_str!("fixtures/scenarios/org-a.toml");
const ORG_B: &str = include_str!("fixtures/scenarios/org-b.toml");

fn entry(pairs: &[(&str, &str)]) -> aws_root_exporter::config::RawOrganization {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect()
}

fn refreshes(m: &str, organization: &str) -> f64 {
    number(
        m,
        "aws_root_exporter_refreshes_total",
        &format!("organization=\"{organization}\",result=\"success\""),
    )
}

#[tokio::test]
async fn three_organizations_one_unreachable_are_audited_each_on_its_own() {
    let sim = Sim::start_many(&[ORG_A, ORG_B]).await;
    let served = serve(
        &sim,
        config(|c| {
            c.refresh_interval = "3s".into();
            c.organizations = vec![
                entry(&[("name", "own")]),
                entry(&[
                    ("name", "acquired"),
                    (
                        "role_arn",
                        "arn:aws:iam::210000000000:role/aws-root-exporter-org-access",
                    ),
                    ("external_id", "org-b-external"),
                ]),
                entry(&[
                    ("name", "ghost"),
                    (
                        "role_arn",
                        "arn:aws:iam::310000000000:role/aws-root-exporter-org-access",
                    ),
                ]),
            ];
        }),
    )
    .await;
    // The first refresh of each reachable organization audits every one of its accounts,
    // management accounts included.
    let m = {
        let mut first = None;
        for _ in 0..300 {
            let m = scrape(&served.base).await;
            if refreshes(&m, "own") >= 1.0 && refreshes(&m, "acquired") >= 1.0 {
                first = Some(m);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        first.expect("both reachable organizations refreshed within 15 s")
    };
    for (organization, audited) in [("own", "4"), ("acquired", "4")] {
        assert_eq!(
            value(
                &m,
                "aws_root_exporter_accounts",
                &format!("organization=\"{organization}\",outcome=\"audited\"")
            )
            .as_deref(),
            Some(audited),
            "{organization}: every account audited in its first refresh:\n{m}"
        );
        assert_eq!(
            value(
                &m,
                "aws_root_exporter_refresh_success",
                &format!("organization=\"{organization}\"")
            )
            .as_deref(),
            Some("1")
        );
    }
    let keys = |id: &str, name: &str| {
        value(
            &m,
            "aws_root_access_keys_present",
            &format!("account_id=\"{id}\",account_name=\"{name}\""),
        )
    };
    let password = |id: &str, name: &str| {
        value(
            &m,
            "aws_root_password_present",
            &format!("account_id=\"{id}\",account_name=\"{name}\""),
        )
    };
    // The scenarios' truth, account by account.
    for (id, name, key, pw) in [
        ("111111111111", "a-management", "0", "1"),
        ("110000000001", "a-prod", "0", "1"),
        ("110000000002", "a-dev", "1", "1"),
        ("110000000003", "a-sandbox", "1", "0"),
        ("210000000000", "b-management", "1", "1"),
        ("210000000001", "b-prod", "1", "0"),
        ("210000000002", "b-dev", "0", "1"),
        ("210000000003", "b-sandbox", "0", "0"),
    ] {
        assert_eq!(keys(id, name).as_deref(), Some(key), "{id} ({name}) access keys:\n{m}");
        assert_eq!(password(id, name).as_deref(), Some(pw), "{id} ({name}) password");
    }
    // Each account names its organization.
    let info = common::samples(&m, "aws_organizations_account_info");
    let of = |id: &str| {
        info.keys()
            .find(|l| l.starts_with(&format!("account_id=\"{id}\",")))
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        of("110000000002").contains("organization=\"own\",organization_id=\"o-exampleorga\""),
        "{}",
        of("110000000002")
    );
    assert!(
        of("210000000000").contains("management=\"true\""),
        "{}",
        of("210000000000")
    );
    assert!(
        of("210000000001").contains("organization=\"acquired\",organization_id=\"o-exampleorgb\""),
        "{}",
        of("210000000001")
    );
    assert_eq!(info.len(), 8, "no account twice, none of the ghost: {info:?}");

    // The third cannot be reached: it says so, and the others keep refreshing.
    let base = served.base.clone();
    until(
        &base,
        Duration::from_secs(20),
        "two more refreshes of the reachable organizations",
        |m| refreshes(m, "own") >= 3.0 && refreshes(m, "acquired") >= 3.0,
    )
    .await;
    let m = scrape(&served.base).await;
    assert_eq!(
        value(&m, "aws_root_exporter_refresh_success", "organization=\"ghost\"").as_deref(),
        Some("0"),
        "{m}"
    );
    assert_eq!(refreshes(&m, "ghost"), 0.0);
    assert!(
        number(
            &m,
            "aws_root_exporter_refreshes_total",
            "organization=\"ghost\",result=\"failure\""
        ) >= 1.0,
        "{m}"
    );
    // Not ready, and why: only the ghost.
    let ready = reqwest::get(format!("{}/readyz", served.base)).await.unwrap();
    assert_eq!(ready.status(), 503);
    let why = ready.text().await.unwrap();
    assert!(
        why.starts_with("not ready: organization ghost: cannot list the organization yet"),
        "{why}"
    );
    assert!(!why.contains("own") && !why.contains("acquired"), "{why}");
}
