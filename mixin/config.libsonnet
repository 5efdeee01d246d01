// Every knob of the aws-root-exporter alerts, recording rules and dashboards.
//
// Change a value here and run mixin/build.sh to rewrite the committed files
// (deploy/prometheus/*.yml, dashboards/*.json); mixin/check.sh fails while they differ. When you
// vendor the mixin into your own jsonnet, override these from outside instead:
//   (import 'aws-root-exporter-mixin/mixin.libsonnet') + { _config+:: { exporterSelector: '...' } }
{
  _config+:: {
    // PromQL matchers that select the exporter's series, without braces: every selector of the
    // alerts and recording rules, the annotation query of AwsRootAuditFailing, and the
    // dashboards' `job` variable (which lists the jobs it matches). Any set of matchers works,
    // e.g. 'job="aws-root", cluster="prod"' or 'job=~"aws-root-.*"'. The Prometheus Operator
    // ServiceMonitor of deploy/kubernetes/ yields job="aws-root-exporter" (the Service's name).
    exporterSelector: 'job="aws-root-exporter"',

    // Hold window: how long the credential alerts of an account keep firing on its last known
    // state once its gauges are gone (exporter down, or restarted and unable to audit the
    // account). Keep it well above the time a restarted exporter needs for its first refresh.
    // A PromQL duration.
    credentialHoldWindow: '3h',

    // AwsRootAccessKeyRecentlyUsed: a root key used less than this many seconds ago pages.
    recentKeyUseSeconds: 86400,

    // AwsRootAuditFailing: refresh intervals (aws_root_exporter_refresh_interval_seconds)
    // without a successful audit of an account before it is reported.
    auditStaleFactor: 2,
    // ... and it keeps firing this long after its condition stops holding, so that a restart of
    // the exporter (a missed scrape, then an account of unknown state) does not resolve and
    // re-open the ticket. keep_firing_for needs Prometheus 2.42 or later, and, through a
    // PrometheusRule, prometheus-operator 0.66 or later (older ones refuse the field).
    auditFailingKeepFiringFor: '2m',

    // AwsRootExporterRefreshStale: refresh intervals without a successful refresh, then this
    // `for:` before it fires. AwsRootExporterRefreshStuck: refresh intervals a refresh may run
    // (or, before the first one ends, the process may live) before it fires.
    refreshStaleFactor: 2,
    refreshStaleFor: '5m',

    // AwsRootExporterDown `for:`.
    exporterDownFor: '5m',

    // AwsRootUserActivity and AwsRootPrivilegedSession: they fire while the newest root
    // activity of an account (aws_root_activity_last_timestamp_seconds) is less than this many
    // seconds old, and resolve after. CIS 4.3 wants every use of root to alarm; with the events
    // queue the alert comes within a minute of the use, without it at the next audit (from the
    // password's or a key's last use).
    rootActivityWindowSeconds: 3600,
    // AwsRootSignInFailures: this many failed root console sign-ins of one account within
    // rootSignInFailureWindow (a PromQL duration) fire it.
    rootSignInFailures: 3,
    rootSignInFailureWindow: '1h',

    // AwsRootExporterEventsQueueDown `for:` (the consumer retries after 1s, doubling to 60s).
    eventsQueueDownFor: '10m',

    // The `severity` label of each alert; deploy/alertmanager/alertmanager.yml pages on
    // critical and files tickets for warning.
    severities: {
      AwsRootAccessKeyPresent: 'critical',
      AwsRootAccessKeyRecentlyUsed: 'critical',
      AwsRootPasswordWithoutMfa: 'critical',
      AwsRootMfaDisabled: 'warning',
      AwsRootSigningCertificatePresent: 'warning',
      AwsRootCredentialsManagementDisabled: 'warning',
      AwsRootAuditFailing: 'warning',
      AwsRootExporterRefreshStale: 'critical',
      AwsRootExporterRefreshStuck: 'critical',
      AwsRootExporterDown: 'critical',
      AwsRootExporterEventsQueueDown: 'warning',
      AwsRootUserActivity: 'critical',
      AwsRootPrivilegedSession: 'warning',
      AwsRootSignInFailures: 'warning',
    },

    // Where docs/runbook.md is published: each alert's runbook_url is this pattern with `%s`
    // replaced by the alert's name in lower case (the heading anchor of its section in
    // docs/runbook.md). The shipped value is a placeholder (example.com is reserved and serves no
    // runbook): set it to your copy, e.g.
    // 'https://github.com/ORG/aws-root-exporter/blob/main/docs/runbook.md#%s'.
    runbookURLPattern: 'https://example.com/aws-root-exporter/docs/runbook.md#%s',

    // Grafana dashboards. The first tag also links the dashboards to each other.
    // With showMultiCluster, the dashboards get a variable for clusterLabel and every query
    // selects on it (as kubernetes-mixin does), for a Prometheus that watches several clusters.
    showMultiCluster: false,
    clusterLabel: 'cluster',
    dashboardTags: ['aws-root-exporter', 'aws', 'security'],
    dashboardRefresh: '1m',
    dashboardTimezone: 'browser',
    overviewDashboard: {
      uid: 'aws-root-overview',
      title: 'AWS root credentials / Overview',
      from: 'now-24h',
    },
    healthDashboard: {
      uid: 'aws-root-exporter-health',
      title: 'AWS root credentials / Exporter health',
      from: 'now-6h',
    },
  },
}
