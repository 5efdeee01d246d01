// Recording rules, rendered to deploy/prometheus/aws-root-exporter.recording.yml by
// mixin/build.sh. The dashboards read these series: load the rendered file wherever the
// dashboards are used. The alerting rules do not use them (rules of different groups are
// evaluated independently, so an alert reading a recorded series would lag it by one
// evaluation). Unit tests: tests/rules/recording.yaml.
//
// Naming follows level:metric:operation. Every series keeps job and instance, so dashboards can
// filter on them.
//   account:...:bool   one series per account (account_id, account_name), 0 or 1, from the
//                      exporter's current snapshot. Accounts without credential gauges (never
//                      audited successfully since the exporter started) have no series: unknown
//                      is not clean.
//   instance:...:sum   number of accounts in that state, per exporter.
{
  prometheusRules+:: {
    local c = $._config,

    groups+: [
      {
        name: 'aws-root-exporter.accounts',
        rules: [
          // 1 if the root user has an active access key. Deep audit (aws_root_access_keys by
          // status) where the account has it, else the summary flag, which is also 1 for a
          // deactivated key.
          {
            record: 'account:aws_root_access_key_active:bool',
            expr: |||
              (
                  (
                      max by (job, instance, account_id, account_name) (aws_root_access_keys{%(exporterSelector)s, status="active"}) > bool 0
                    or
                      # only inactive or expired ones listed: none active
                      max by (job, instance, account_id, account_name) (aws_root_access_keys{%(exporterSelector)s}) * 0
                  )
                unless on (job, instance, account_id)
                  # deep figures that list none while the summary flag says present: the flag
                  # speaks (the exporter withholds such figures itself; this holds for any source)
                  (
                      (sum by (job, instance, account_id) (aws_root_access_keys{%(exporterSelector)s}) == 0)
                    and on (job, instance, account_id)
                      (aws_root_access_keys_present{%(exporterSelector)s} == 1)
                  )
              )
              or
              max by (job, instance, account_id, account_name) (aws_root_access_keys_present{%(exporterSelector)s})
            ||| % c,
          },

          // 1 if the root user has an active signing certificate; same fallback as above.
          {
            record: 'account:aws_root_signing_certificate_active:bool',
            expr: |||
              (
                  (
                      max by (job, instance, account_id, account_name) (aws_root_signing_certificates{%(exporterSelector)s, status="active"}) > bool 0
                    or
                      # only inactive or expired ones listed: none active
                      max by (job, instance, account_id, account_name) (aws_root_signing_certificates{%(exporterSelector)s}) * 0
                  )
                unless on (job, instance, account_id)
                  # deep figures that list none while the summary flag says present: the flag
                  # speaks (the exporter withholds such figures itself; this holds for any source)
                  (
                      (sum by (job, instance, account_id) (aws_root_signing_certificates{%(exporterSelector)s}) == 0)
                    and on (job, instance, account_id)
                      (aws_root_signing_certificates_present{%(exporterSelector)s} == 1)
                  )
              )
              or
              max by (job, instance, account_id, account_name) (aws_root_signing_certificates_present{%(exporterSelector)s})
            ||| % c,
          },

          // 1 if the root user has a console password and no MFA (AwsRootPasswordWithoutMfa).
          {
            record: 'account:aws_root_password_without_mfa:bool',
            expr: |||
              (
                  max by (job, instance, account_id, account_name) (aws_root_password_present{%(exporterSelector)s})
                * on (job, instance, account_id) group_left ()
                  (1 - min by (job, instance, account_id) (aws_root_mfa_enabled{%(exporterSelector)s}))
              )
            ||| % c,
          },

          // 1 if the root user has no MFA but still has a credential: a password, an access key
          // (deactivated ones included) or a signing certificate (AwsRootMfaDisabled).
          {
            record: 'account:aws_root_credentials_without_mfa:bool',
            expr: |||
              (
                  (1 - min by (job, instance, account_id, account_name) (aws_root_mfa_enabled{%(exporterSelector)s}))
                * on (job, instance, account_id) group_left ()
                  max by (job, instance, account_id) ({__name__=~"aws_root_password_present|aws_root_access_keys_present|aws_root_signing_certificates_present", %(exporterSelector)s})
              )
            ||| % c,
          },

          // Counts of the account:...:bool series above read them without the selector: they
          // exist only for the exporter's series (the selector applied when they were recorded),
          // and they keep only job and instance of its labels, so a selector on another label
          // (cluster="prod") would match none of them.
          {
            record: 'instance:aws_root_accounts_with_active_access_key:sum',
            expr: 'sum by (job, instance) (account:aws_root_access_key_active:bool)',
          },
          {
            record: 'instance:aws_root_accounts_with_password:sum',
            expr: 'sum by (job, instance) (aws_root_password_present{%(exporterSelector)s})' % c,
          },
          {
            record: 'instance:aws_root_accounts_password_without_mfa:sum',
            expr: 'sum by (job, instance) (account:aws_root_password_without_mfa:bool)',
          },
          {
            record: 'instance:aws_root_accounts_credentials_without_mfa:sum',
            expr: 'sum by (job, instance) (account:aws_root_credentials_without_mfa:bool)',
          },
          {
            record: 'instance:aws_root_accounts_with_signing_certificate:sum',
            expr: 'sum by (job, instance) (account:aws_root_signing_certificate_active:bool)',
          },
          // Accounts whose last audit attempt failed (AwsRootAuditFailing fires once it lasts).
          {
            record: 'instance:aws_root_accounts_audit_failing:sum',
            expr: 'sum by (job, instance) (1 - aws_root_audit_success{%(exporterSelector)s})' % c,
          },
        ],
      },

      {
        name: 'aws-root-exporter.self',
        rules: [
          {
            record: 'instance:aws_root_exporter_last_refresh_age:seconds',
            expr: 'time() - aws_root_exporter_last_refresh_success_timestamp_seconds{%(exporterSelector)s}' % c,
          },

          // Share of AWS calls that failed after the SDK's retries, per operation, 0 when none
          // did. Over 1h because calls come in bursts once per refresh_interval.
          {
            record: 'operation:aws_root_exporter_aws_request_errors:ratio_rate1h',
            expr: |||
              (
                  sum by (job, instance, service, operation) (rate(aws_root_exporter_aws_request_errors_total{%(exporterSelector)s}[1h]))
                or
                  0 * sum by (job, instance, service, operation) (rate(aws_root_exporter_aws_requests_total{%(exporterSelector)s}[1h]))
              )
              /
              sum by (job, instance, service, operation) (rate(aws_root_exporter_aws_requests_total{%(exporterSelector)s}[1h]))
            ||| % c,
          },
        ],
      },
    ],
  },
}
