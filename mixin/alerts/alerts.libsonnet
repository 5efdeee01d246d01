// Alerting rules, rendered to deploy/prometheus/aws-root-exporter.rules.yml by mixin/build.sh.
//
// Design: docs/alerts.md. What to do when one fires: docs/runbook.md. Unit tests:
// tests/rules/*.yaml (`promtool test rules tests/rules/*.yaml`). Selector, thresholds,
// severities and the runbook base: config.libsonnet.
//
// The rules read only the exporter's own metrics (docs/metrics.md): they do not depend on the
// recording rules, so the rendered file can be loaded alone.
//
// Credential alerts have no `for:` on purpose: the gauges change only when a background refresh
// finishes (every refresh_interval, 5m by default), so a `for:` shorter than that adds nothing
// and a longer one only delays the page.
//
// Deep gauges never silence a summary flag: where the deep figures of an account list no key
// (or certificate) at all while AccountAccessKeysPresent (or AccountSigningCertificatesPresent)
// is 1, the summary pages. The exporter itself withholds deep figures that contradict the
// summary (aws_root_audit_inconsistency); the rules hold the same line for any source.
//
// Annotations follow the monitoring-mixins conventions: `summary` is one static sentence ending
// with a period (it groups well in Alertmanager), `description` names the account or the
// instance and the details, `runbook_url` comes from _config.runbookURLPattern.
//
// Label sets: per-account alerts carry account_id and account_name (and access_key_id) but not
// job/instance, so that a restarted exporter with a new instance address, or two replicas, make
// one alert per account. Exporter-health alerts keep job and instance.
local util = import '../lib/util.libsonnet';

{
  prometheusAlerts+:: {
    local c = $._config,

    // Per-account alerts name the account's organization when the exporter audits several
    // (`[[organizations]]`): credential series carry only account_id and account_name (account
    // ids are unique across organizations), so the description asks
    // aws_organizations_account_info. Nothing is added for the single organization `default`, or
    // when the account's info series is not there.
    local account = '({{ $labels.account_name }})',
    local inOrganization = |||
      {{ with printf `aws_organizations_account_info{%(exporterSelector)s, account_id="%%s", organization!~"|default"}` $labels.account_id | query }} of organization {{ . | first | label "organization" }}{{ end }}
    ||| % c,
    // The same for exporter-health alerts that carry the label themselves.
    local organizationLabel = '{{ with $labels.organization }}{{ if ne . "default" }} (organization {{ . }}){{ end }}{{ end }}',

    local alert(name, expr, summary, description, forDuration=null, keepFiringFor=null) = {
      alert: name,
      expr: expr,
      [if forDuration != null then 'for']: forDuration,
      [if keepFiringFor != null then 'keep_firing_for']: keepFiringFor,
      labels: { severity: c.severities[name] },
      annotations: {
        summary: summary,
        description: std.strReplace(
          std.strReplace(util.fold(description), account, account + std.stripChars(inOrganization, '\n')),
          '{{ $labels.instance }} (job {{ $labels.job }})',
          '{{ $labels.instance }} (job {{ $labels.job }})' + organizationLabel,
        ),
        runbook_url: c.runbookURLPattern % std.asciiLower(name),
      },
    },

    groups+: [
      {
        name: 'aws-root-exporter.credentials',
        // Two halves, same shape in every credential alert:
        //  1. accounts that have credential gauges now (audited successfully since the exporter
        //     started; while later audits fail the exporter keeps the last known values): their
        //     current state, so an alert resolves on the first evaluation that shows it fixed;
        //  2. accounts without credential gauges now (the exporter is down, restarted and cannot
        //     audit them, or has not finished its first refresh): their last known state within
        //     the hold window (credentialHoldWindow), so a firing alert does not go quiet because
        //     the state became unknown. AwsRootAuditFailing fires for such accounts as soon as
        //     the exporter reports them.
        rules: [
          alert(
            'AwsRootAccessKeyPresent',
            |||
              (
                  # deep audit: number of active root keys
                  max by (account_id, account_name) (aws_root_access_keys{%(exporterSelector)s, status="active"}) > 0
                or
                  # summary mode, or deep figures that list no key at all (withheld when they
                  # contradict the summary; a zero contradicting a 1 never silences the page):
                  # AccountAccessKeysPresent
                  (
                      max by (account_id, account_name) (aws_root_access_keys_present{%(exporterSelector)s}) == 1
                    unless on (account_id)
                      (sum by (account_id) (aws_root_access_keys{%(exporterSelector)s}) > 0)
                  )
              )
              or
              (
                  (
                      max by (account_id, account_name) (last_over_time(aws_root_access_keys{%(exporterSelector)s, status="active"}[%(credentialHoldWindow)s])) > 0
                    or
                      (
                          max by (account_id, account_name) (last_over_time(aws_root_access_keys_present{%(exporterSelector)s}[%(credentialHoldWindow)s])) == 1
                        unless on (account_id)
                          (sum by (account_id) (last_over_time(aws_root_access_keys{%(exporterSelector)s}[%(credentialHoldWindow)s])) > 0)
                      )
                  )
                unless on (account_id)
                  aws_root_access_keys_present{%(exporterSelector)s}
              )
            ||| % c,
            'The root user of an AWS account has an access key.',
            |||
              The root user of AWS account {{ $labels.account_id }} ({{ $labels.account_name }})
              has an access key ({{ $value }} active; in summary mode 1 means at least one key,
              possibly deactivated). Root keys cannot be limited by IAM policy: delete it.
              State from the exporter's last successful audit of the account.
            |||,
          ),

          // Deep audit only: one series per root key that has a LastUsedDate. The value is the
          // age of the last use in seconds.
          alert(
            'AwsRootAccessKeyRecentlyUsed',
            |||
              (
                  min by (account_id, account_name, access_key_id) (time() - aws_root_access_key_last_used_timestamp_seconds{%(exporterSelector)s})
                <
                  %(recentKeyUseSeconds)d
              )
              or
              (
                  (
                      min by (account_id, account_name, access_key_id) (time() - last_over_time(aws_root_access_key_last_used_timestamp_seconds{%(exporterSelector)s}[%(credentialHoldWindow)s]))
                    <
                      %(recentKeyUseSeconds)d
                  )
                unless on (account_id)
                  aws_root_access_keys_present{%(exporterSelector)s}
              )
            ||| % c,
            'A root access key was used recently.',
            |||
              Root access key {{ $labels.access_key_id }} of AWS account {{ $labels.account_id }}
              ({{ $labels.account_name }}) was last used {{ $value | humanizeDuration }} ago.
              Find out who used it and why (CloudTrail), then delete the key.
              State from the exporter's last successful audit of the account.
            |||,
          ),

          alert(
            'AwsRootPasswordWithoutMfa',
            |||
              (
                  max by (account_id, account_name) (aws_root_password_present{%(exporterSelector)s}) == 1
                and on (account_id)
                  min by (account_id) (aws_root_mfa_enabled{%(exporterSelector)s}) == 0
              )
              or
              (
                  (
                      max by (account_id, account_name) (last_over_time(aws_root_password_present{%(exporterSelector)s}[%(credentialHoldWindow)s])) == 1
                    and on (account_id)
                      min by (account_id) (last_over_time(aws_root_mfa_enabled{%(exporterSelector)s}[%(credentialHoldWindow)s])) == 0
                  )
                unless on (account_id)
                  aws_root_mfa_enabled{%(exporterSelector)s}
              )
            ||| % c,
            'The root user of an AWS account can sign in with a password and no MFA.',
            |||
              The root user of AWS account {{ $labels.account_id }} ({{ $labels.account_name }})
              can sign in to the console with a password alone: it has no MFA device.
              Delete the root password (centralized root access) or register MFA now.
              State from the exporter's last successful audit of the account.
            |||,
          ),

          // Only while the root user still has a credential (password, access key - deactivated
          // ones included - or signing certificate): a root user without credentials cannot
          // sign in, and with centralized root access that is the goal, MFA or not.
          alert(
            'AwsRootMfaDisabled',
            |||
              (
                  min by (account_id, account_name) (aws_root_mfa_enabled{%(exporterSelector)s}) == 0
                and on (account_id)
                  (
                      max by (account_id) (aws_root_password_present{%(exporterSelector)s}) == 1
                    or
                      max by (account_id) (aws_root_access_keys_present{%(exporterSelector)s}) == 1
                    or
                      max by (account_id) (aws_root_signing_certificates_present{%(exporterSelector)s}) == 1
                  )
              )
              or
              (
                  (
                      min by (account_id, account_name) (last_over_time(aws_root_mfa_enabled{%(exporterSelector)s}[%(credentialHoldWindow)s])) == 0
                    and on (account_id)
                      (
                          max by (account_id) (last_over_time(aws_root_password_present{%(exporterSelector)s}[%(credentialHoldWindow)s])) == 1
                        or
                          max by (account_id) (last_over_time(aws_root_access_keys_present{%(exporterSelector)s}[%(credentialHoldWindow)s])) == 1
                        or
                          max by (account_id) (last_over_time(aws_root_signing_certificates_present{%(exporterSelector)s}[%(credentialHoldWindow)s])) == 1
                      )
                  )
                unless on (account_id)
                  aws_root_mfa_enabled{%(exporterSelector)s}
              )
            ||| % c,
            'The root user of an AWS account has credentials but no MFA.',
            |||
              The root user of AWS account {{ $labels.account_id }} ({{ $labels.account_name }})
              has no MFA device but still has root credentials (a password, an access key or a
              signing certificate). Delete the root credentials or register MFA.
              State from the exporter's last successful audit of the account.
            |||,
          ),

          alert(
            'AwsRootSigningCertificatePresent',
            |||
              (
                  # deep audit: number of active root signing certificates
                  max by (account_id, account_name) (aws_root_signing_certificates{%(exporterSelector)s, status="active"}) > 0
                or
                  # summary mode, or deep figures that list no certificate at all:
                  # AccountSigningCertificatesPresent
                  (
                      max by (account_id, account_name) (aws_root_signing_certificates_present{%(exporterSelector)s}) == 1
                    unless on (account_id)
                      (sum by (account_id) (aws_root_signing_certificates{%(exporterSelector)s}) > 0)
                  )
              )
              or
              (
                  (
                      max by (account_id, account_name) (last_over_time(aws_root_signing_certificates{%(exporterSelector)s, status="active"}[%(credentialHoldWindow)s])) > 0
                    or
                      (
                          max by (account_id, account_name) (last_over_time(aws_root_signing_certificates_present{%(exporterSelector)s}[%(credentialHoldWindow)s])) == 1
                        unless on (account_id)
                          (sum by (account_id) (last_over_time(aws_root_signing_certificates{%(exporterSelector)s}[%(credentialHoldWindow)s])) > 0)
                      )
                  )
                unless on (account_id)
                  aws_root_signing_certificates_present{%(exporterSelector)s}
              )
            ||| % c,
            'The root user of an AWS account has a signing certificate.',
            |||
              The root user of AWS account {{ $labels.account_id }} ({{ $labels.account_name }})
              has an X.509 signing certificate ({{ $value }} active; in summary mode 1 means at
              least one, possibly inactive). Delete it.
              State from the exporter's last successful audit of the account.
            |||,
          ),

          alert(
            'AwsRootCredentialsManagementDisabled',
            |||
              aws_organizations_feature_enabled{%(exporterSelector)s, feature="RootCredentialsManagement"} == 0
            ||| % c,
            'Centralized root credentials management is disabled in the AWS Organization.',
            |||
              The organization{{ with $labels.organization }}{{ if ne . "default" }} {{ . }}{{ end }}{{ end }} watched by {{ $labels.instance }} does not have the IAM feature
              RootCredentialsManagement enabled: sts:AssumeRoot fails, so member accounts cannot be
              audited, nor their root credentials deleted centrally.
            |||,
          ),
        ],
      },

      {
        name: 'aws-root-exporter.audit',
        rules: [
          // Value: seconds since the last successful audit, or -1 when the exporter has not
          // audited the account successfully since it started (state unknown). No `for:`: the
          // first half already waits auditStaleFactor refresh intervals, and the second must
          // fire in the same evaluation in which a credential alert loses its data (see the
          // credentials group and docs/alerts.md).
          alert(
            'AwsRootAuditFailing',
            |||
              max by (account_id, account_name) (
                  (time() - aws_root_audit_last_success_timestamp_seconds{%(exporterSelector)s})
                > on (job, instance) group_left ()
                  (
                      aws_root_exporter_refresh_interval_seconds{%(exporterSelector)s}
                    * %(auditStaleFactor)d
                  )
                and on (job, instance, account_id)
                  (aws_root_audit_success{%(exporterSelector)s} == 0)
              )
              or
              max by (account_id, account_name) (
                  (aws_root_audit_success{%(exporterSelector)s} == 0) - 1
                unless on (job, instance, account_id)
                  aws_root_audit_last_success_timestamp_seconds{%(exporterSelector)s}
              )
            ||| % c,
            'The root credentials of an AWS account are not audited.',
            // %%s: a literal %s for the template's printf.
            |||
              aws-root-exporter has not audited the root user of AWS account
              {{ $labels.account_id }} ({{ $labels.account_name }}) successfully
              {{ if lt $value 0.0 }}since it started: its root credential state is unknown{{ else }}for {{ $value | humanizeDuration }}{{ end }}.
              Last failure reason: {{ with printf `aws_root_audit_failure_reason{%(exporterSelector)s, account_id="%%s"} == 1` $labels.account_id | query }}{{ . | first | label "reason" }}{{ else }}unknown{{ end }}.
              Credential alerts for this account rely on its last known state.
            ||| % c,
            keepFiringFor=c.auditFailingKeepFiringFor,
          ),
        ],
      },

      {
        name: 'aws-root-exporter.activity',
        // Root use (CIS 4.3, Security Hub CloudWatch.1): one rule for every account instead of
        // a CloudTrail metric filter and an alarm per account and trail. The value of the two
        // activity alerts is the time of the newest event (or audited last use), so the
        // description names it; they resolve when it is older than the window.
        rules: [
          alert(
            'AwsRootUserActivity',
            |||
              max by (account_id, account_name, kind) (
                aws_root_activity_last_timestamp_seconds{%(exporterSelector)s, kind=~"console_signin|api_call"}
              )
              > time() - %(rootActivityWindowSeconds)d
            ||| % c,
            'The root user of an AWS account was used.',
            |||
              The root user of AWS account {{ $labels.account_id }} ({{ $labels.account_name }})
              was used: {{ $labels.kind }} at {{ $value | humanizeTimestamp }}
              (CIS 4.3: every use of root must be looked at).
              Find out who used it and why (CloudTrail in that account), and end the use of root
              credentials.
            |||,
          ),
          alert(
            'AwsRootPrivilegedSession',
            |||
              max by (account_id, account_name, kind) (
                aws_root_activity_last_timestamp_seconds{%(exporterSelector)s, kind="privileged_session"}
              )
              > time() - %(rootActivityWindowSeconds)d
            ||| % c,
            'A privileged root session was used in an AWS account.',
            |||
              A privileged root session (sts:AssumeRoot, not the exporter's audit) acted in AWS
              account {{ $labels.account_id }} ({{ $labels.account_name }}) at
              {{ $value | humanizeTimestamp }}. Check that the task was planned and who opened the
              session (inScopeOf.credentialsIssuedTo in the CloudTrail event).
            |||,
          ),
          alert(
            'AwsRootSignInFailures',
            |||
              max by (account_id, account_name) (
                  (
                      (
                          aws_root_activity_events_total{%(exporterSelector)s, kind="console_signin_failure"}
                        -
                          (aws_root_activity_events_total{%(exporterSelector)s, kind="console_signin_failure"} offset %(rootSignInFailureWindow)s)
                      )
                      >= 0
                  )
                or
                  # a series that is new within the window, or was reset by a restart within it:
                  # all it counted is within the window
                  aws_root_activity_events_total{%(exporterSelector)s, kind="console_signin_failure"}
              )
              >= %(rootSignInFailures)d
            ||| % c,
            'Root console sign-ins of an AWS account keep failing.',
            |||
              {{ $value }} root console sign-ins of AWS account {{ $labels.account_id }}
              ({{ $labels.account_name }}) failed within %(rootSignInFailureWindow)s.
              Someone is trying the root password: check the source addresses in CloudTrail, and
              that root has MFA (or no password at all).
            ||| % c,
          ),
        ],
      },
      {
        name: 'aws-root-exporter.exporter',
        rules: [
          // Value: seconds since the last successful refresh, or -1 when none succeeded since
          // the exporter started.
          alert(
            'AwsRootExporterRefreshStale',
            |||
              (
                  time() - aws_root_exporter_last_refresh_success_timestamp_seconds{%(exporterSelector)s}
                > on (job, instance) group_left ()
                  (
                      aws_root_exporter_refresh_interval_seconds{%(exporterSelector)s}
                    * %(refreshStaleFactor)d
                  )
              )
              or
              (
                  (aws_root_exporter_refresh_success{%(exporterSelector)s} == 0) - 1
                unless on (job, instance, organization)
                  aws_root_exporter_last_refresh_success_timestamp_seconds{%(exporterSelector)s}
              )
            ||| % c,
            'aws-root-exporter serves stale data.',
            |||
              aws-root-exporter {{ $labels.instance }} (job {{ $labels.job }}) has not refreshed
              successfully {{ if lt $value 0.0 }}since it started{{ else }}for {{ $value | humanizeDuration }}{{ end }}:
              it cannot list the organization, so root credential alerts are based on old data
              and new accounts are not audited.
            |||,
            forDuration=c.refreshStaleFor,
          ),

          // Value: seconds the running refresh has taken, or seconds since the process started
          // when no refresh has finished yet. Before its first refresh ends the exporter serves
          // no account and no refresh timestamp: without this, a first refresh that never ends
          // (AWS throttling every call, a listing that hangs) is silent. No `for:`: the
          // condition already waits refreshStaleFactor refresh intervals.
          alert(
            'AwsRootExporterRefreshStuck',
            |||
              (
                  aws_root_exporter_refresh_in_progress_seconds{%(exporterSelector)s}
                > on (job, instance)
                  (
                      aws_root_exporter_refresh_interval_seconds{%(exporterSelector)s}
                    * %(refreshStaleFactor)d
                  )
              )
              or
              (
                  (
                      (time() - process_start_time_seconds{%(exporterSelector)s})
                    > on (job, instance)
                      (
                          aws_root_exporter_refresh_interval_seconds{%(exporterSelector)s}
                        * %(refreshStaleFactor)d
                      )
                  )
                unless on (job, instance)
                  aws_root_exporter_refresh_success{%(exporterSelector)s}
              )
            ||| % c,
            'aws-root-exporter does not finish its refresh.',
            |||
              aws-root-exporter {{ $labels.instance }} (job {{ $labels.job }}) has not finished a
              refresh for {{ $value | humanizeDuration }}: the running refresh takes that long, or
              none has finished since the exporter started and it serves no account yet. Root
              credentials are not being checked. aws_root_exporter_refresh_in_progress_accounts
              shows how far it is; aws_root_exporter_aws_throttled_answers_total and the log say
              why it is slow.
            |||,
          ),

          alert(
            'AwsRootExporterDown',
            |||
              up{%(exporterSelector)s} == 0
              or
              absent(up{%(exporterSelector)s})
            ||| % c,
            'aws-root-exporter is down.',
            |||
              {{ with $labels.instance }}Prometheus cannot scrape aws-root-exporter at {{ . }}{{ else }}Prometheus has no aws-root-exporter target{{ end }}
              (job {{ $labels.job }}). Root credential alerts keep firing on the last known state
              for a while, but changes go unseen.
            |||,
            forDuration=c.exporterDownFor,
          ),

          alert(
            'AwsRootExporterEventsQueueDown',
            |||
              aws_root_exporter_events_queue_up{%(exporterSelector)s} == 0
            ||| % c,
            'aws-root-exporter cannot read its events queue.',
            |||
              aws-root-exporter {{ $labels.instance }} (job {{ $labels.job }}) cannot read the SQS queue
              of root credential events (events_queue_url).
              Root credential changes are seen only at the next periodic refresh
              (aws_root_exporter_refresh_interval_seconds), not within a minute.
            |||,
            forDuration=c.eventsQueueDownFor,
          ),
        ],
      },
    ],
  },
}
