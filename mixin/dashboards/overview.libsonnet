// Grafana: every account's root credentials. Rendered to dashboards/aws-root-overview.json.
// Reads the recording rules (rules/rules.libsonnet).
local g = import '../lib/dashboard.libsonnet';
local util = import '../lib/util.libsonnet';

{
  grafanaDashboards+:: {
    local c = $._config,

    // Accounts in one state, from an instance:aws_root_accounts_*:sum recording rule: the
    // maximum over the instances of a job (replicas are not counted twice), summed over jobs.
    local accounts(state) =
      'sum(max by (job) (instance:aws_root_accounts_%s:sum{job=~"$job", instance=~"$instance"}))' % state,

    local countStat(id, x, title, description, state, color) = g.stat(
      id,
      title,
      description,
      { h: 4, w: 4, x: x, y: 0 },
      [g.target('A', accounts(state), instant=true)],
      steps=[['green', null], [color, 1]],
    ),

    // The credential columns of the accounts table: 0/1 with a text and a colour each, and
    // "unknown" where the account has no value.
    local stateColumn(field, name, zero, one, noValue='unknown') = g.override(field, [
      ['displayName', name],
      ['custom.cellOptions', { type: 'color-background', mode: 'basic' }],
      ['mappings', [
        g.valueMapping([['0', zero[0], zero[1]], ['1', one[0], one[1]]]),
        g.noValueMapping(noValue, '#8e8e8e', 2),
      ]],
    ]),

    local labelColumn(field, name, mapping) = g.override(field, [
      ['displayName', name],
      ['custom.cellOptions', { type: 'color-text' }],
      ['mappings', [g.valueMapping(mapping)]],
    ]),

    'aws-root-overview.json': g.dashboard(
      c,
      c.overviewDashboard,
      'Root-user credentials of every account of the AWS Organization, from aws-root-exporter. Needs the recording rules of deploy/prometheus/aws-root-exporter.recording.yml.',
      [
        countStat(
          1,
          0,
          'Active root access keys',
          'Accounts whose root user has an active access key (deep audit), or any access key in summary mode. Alert: AwsRootAccessKeyPresent. Needs the recording rules of deploy/prometheus/aws-root-exporter.recording.yml.',
          'with_active_access_key',
          'red',
        ),
        countStat(
          2,
          4,
          'Root password',
          'Accounts whose root user has a console password. With centralized root access the aim is none.',
          'with_password',
          'orange',
        ),
        countStat(
          3,
          8,
          'Without MFA',
          'Accounts whose root user has no MFA device but still has a credential (password, access key or signing certificate); a root user without credentials needs no MFA. Alerts: AwsRootMfaDisabled, AwsRootPasswordWithoutMfa.',
          'credentials_without_mfa',
          'orange',
        ),
        countStat(
          4,
          12,
          'Signing certificates',
          'Accounts whose root user has an active X.509 signing certificate (any, in summary mode). Alert: AwsRootSigningCertificatePresent.',
          'with_signing_certificate',
          'orange',
        ),
        countStat(
          5,
          16,
          'Not audited',
          'Accounts whose last audit failed (their credential state is the last known one, or unknown). Alert: AwsRootAuditFailing.',
          'audit_failing',
          'orange',
        ),
        g.stat(
          6,
          'Audited accounts',
          'Accounts whose last audit succeeded, of the accounts in the organization (the management account, accounts that are not ACTIVE and filtered-out accounts are skipped).',
          { h: 4, w: 4, x: 20, y: 0 },
          [
            g.target('A', 'sum(max by (job) (aws_root_exporter_accounts{job=~"$job", instance=~"$instance", organization=~"$organization", outcome="audited"}))', 'audited', instant=true),
            g.target('B', 'sum(max by (job) (sum by (job, instance) (aws_root_exporter_accounts{job=~"$job", instance=~"$instance", organization=~"$organization"})))', 'in organization', instant=true),
          ],
          steps=[['blue', null]],
          colorMode='value',
          textMode='value_and_name',
        ),

        g.table(
          7,
          'Accounts',
          'Every account of the organization with its root credential state from the exporter\'s last successful audit. "unknown": never audited successfully since the exporter started, or not audited at all (skipped).',
          { h: 14, w: 24, x: 0, y: 4 },
          [
            g.target('A', 'max by (account_id, account_name, status, management, audited) (aws_organizations_account_info{job=~"$job", instance=~"$instance", organization=~"$organization"})', instant=true, format='table'),
            g.target('B', g.inOrganization('max by (account_id, account_name) (account:aws_root_access_key_active:bool{job=~"$job", instance=~"$instance"})'), instant=true, format='table'),
            g.target('C', g.inOrganization('max by (account_id, account_name) (aws_root_password_present{job=~"$job", instance=~"$instance"})'), instant=true, format='table'),
            g.target('D', g.inOrganization('min by (account_id, account_name) (aws_root_mfa_enabled{job=~"$job", instance=~"$instance"})'), instant=true, format='table'),
            g.target('E', g.inOrganization('max by (account_id, account_name) (account:aws_root_signing_certificate_active:bool{job=~"$job", instance=~"$instance"})'), instant=true, format='table'),
            g.target('F', g.inOrganization('min by (account_id, account_name) (aws_root_audit_success{job=~"$job", instance=~"$instance"})'), instant=true, format='table'),
            g.target('G', g.inOrganization('max by (account_id, account_name) (aws_root_audit_last_success_timestamp_seconds{job=~"$job", instance=~"$instance"}) * 1000'), instant=true, format='table'),
            g.target('H', g.inOrganization('max by (account_id, account_name, reason) (aws_root_audit_failure_reason{job=~"$job", instance=~"$instance"} == 1)'), instant=true, format='table'),
          ],
          [
            { id: 'merge', options: {} },
            {
              id: 'organize',
              options: {
                excludeByName: { Time: true, 'Value #A': true, 'Value #H': true },
                indexByName: {
                  [f[1]]: f[0]
                  for f in std.mapWithIndex(function(i, name) [i, name], [
                    'account_id',
                    'account_name',
                    'status',
                    'management',
                    'audited',
                    'Value #B',
                    'Value #C',
                    'Value #D',
                    'Value #E',
                    'Value #F',
                    'Value #G',
                    'reason',
                  ])
                },
                renameByName: {},
              },
            },
          ],
          [
            g.override('account_id', [['displayName', 'Account ID'], ['custom.width', 140]]),
            g.override('account_name', [['displayName', 'Name']]),
            labelColumn('status', 'Status', [
              ['ACTIVE', 'ACTIVE', 'green'],
              ['SUSPENDED', 'SUSPENDED', 'orange'],
              ['PENDING_CLOSURE', 'PENDING_CLOSURE', 'orange'],
              ['CLOSED', 'CLOSED', 'red'],
              ['PENDING_ACTIVATION', 'PENDING_ACTIVATION', 'blue'],
            ]),
            labelColumn('management', 'Management', [
              ['true', 'management', 'blue'],
              ['false', 'member', 'text'],
            ]),
            labelColumn('audited', 'Audited', [
              ['true', 'yes', 'text'],
              ['false', 'skipped', '#8e8e8e'],
            ]),
            stateColumn('Value #B', 'Access key', ['none', 'green'], ['ACTIVE', 'red']),
            stateColumn('Value #C', 'Password', ['no', 'green'], ['YES', 'orange']),
            stateColumn('Value #D', 'MFA', ['off', 'orange'], ['on', 'green']),
            stateColumn('Value #E', 'Signing certificate', ['no', 'green'], ['YES', 'orange']),
            stateColumn('Value #F', 'Last audit', ['FAILED', 'red'], ['ok', 'green'], noValue='not audited'),
            g.override('Value #G', [['displayName', 'Last successful audit'], ['unit', 'dateTimeAsIso']]),
            g.override('reason', [['displayName', 'Failure reason'], ['custom.cellOptions', { type: 'color-text' }]]),
          ],
          [{ displayName: 'Account ID', desc: false }],
        ),

        g.timeseries(
          8,
          'Accounts over time',
          'Number of accounts in each state over time (recording rules).',
          { h: 9, w: 16, x: 0, y: 18 },
          [
            g.target('A', accounts('with_active_access_key'), 'active root access key'),
            g.target('B', accounts('with_password'), 'root password'),
            g.target('C', accounts('password_without_mfa'), 'password without MFA'),
            g.target('D', accounts('credentials_without_mfa'), 'credentials without MFA'),
            g.target('E', accounts('with_signing_certificate'), 'signing certificate'),
            g.target('F', accounts('audit_failing'), 'audit failing'),
          ],
          unit='short',
          fillOpacity=0,
        ),

        g.stat(
          9,
          'Organization features',
          'IAM features of the organization (iam:ListOrganizationsFeatures). RootCredentialsManagement is required for the audit (alert: AwsRootCredentialsManagementDisabled).',
          { h: 9, w: 8, x: 16, y: 18 },
          [g.target('A', 'max by (feature) (aws_organizations_feature_enabled{job=~"$job", instance=~"$instance", organization=~"$organization"})', '{{feature}}', instant=true)],
          steps=[['red', null], ['green', 1]],
          mappings=[g.valueMapping([['0', 'disabled', 'red'], ['1', 'enabled', 'green']])],
          textMode='value_and_name',
        ),

        g.table(
          10,
          'Root access key last use',
          'Last use of each root access key (deep audit). A use within the last %s pages (AwsRootAccessKeyRecentlyUsed).'
          % util.duration(c.recentKeyUseSeconds),
          { h: 7, w: 24, x: 0, y: 27 },
          [g.target('A', g.inOrganization('max by (account_id, account_name, access_key_id) (aws_root_access_key_last_used_timestamp_seconds{job=~"$job", instance=~"$instance"}) * 1000'), instant=true, format='table')],
          [{ id: 'organize', options: { excludeByName: { Time: true }, indexByName: {}, renameByName: {} } }],
          [
            g.override('account_id', [['displayName', 'Account ID'], ['custom.width', 140]]),
            g.override('account_name', [['displayName', 'Name']]),
            g.override('access_key_id', [['displayName', 'Access key']]),
            g.override('Value', [['displayName', 'Last used'], ['unit', 'dateTimeAsIso']]),
          ],
          [{ displayName: 'Last used', desc: true }],
        ),

        g.table(
          11,
          'Credential report age',
          'Accounts audited without a root session (the management account, member roles) read their deep facts from the IAM credential report, which AWS makes at most every 4 hours: how old the report behind each account\'s figures is. Where it contradicts the summary flags, the next panel says so.',
          { h: 7, w: 12, x: 0, y: 34 },
          [g.target('A', g.inOrganization('time() - max by (account_id, account_name) (aws_root_credential_report_generated_timestamp_seconds{job=~"$job", instance=~"$instance"})'), instant=true, format='table')],
          [{ id: 'organize', options: { excludeByName: { Time: true }, indexByName: {}, renameByName: {} } }],
          [
            g.override('account_id', [['displayName', 'Account ID'], ['custom.width', 140]]),
            g.override('account_name', [['displayName', 'Name']]),
            g.override('Value', [['displayName', 'Report age'], ['unit', 's']]),
          ],
          [{ displayName: 'Report age', desc: true }],
        ),

        g.table(
          12,
          'Deep figures contradicting the summary',
          'Credentials whose deep figures (credential report or root session) contradicted GetAccountSummary in the account\'s last audit (aws_root_audit_inconsistency): their deep gauges are withheld and the summary flag speaks, so the alerts page on it. Usually a credential report older than the change; it clears when AWS makes a new report.',
          { h: 7, w: 12, x: 12, y: 34 },
          [g.target('A', g.inOrganization('max by (account_id, account_name, credential) (aws_root_audit_inconsistency{job=~"$job", instance=~"$instance"} == 1)'), instant=true, format='table')],
          [{ id: 'organize', options: { excludeByName: { Time: true, Value: true }, indexByName: {}, renameByName: {} } }],
          [
            g.override('account_id', [['displayName', 'Account ID'], ['custom.width', 140]]),
            g.override('account_name', [['displayName', 'Name']]),
            g.override('credential', [['displayName', 'Credential']]),
          ],
          [{ displayName: 'Account ID', desc: false }],
        ),

        g.timeseries(
          13,
          'Root activity',
          'Uses of the root user per account and kind (CIS 4.3), from the events queue: console sign-ins (and failed ones), API calls with root\'s console session or keys, privileged sessions (sts:AssumeRoot) not opened by the exporter. The exporter\'s own audit never counts. Alerts: AwsRootUserActivity, AwsRootPrivilegedSession, AwsRootSignInFailures.',
          { h: 8, w: 12, x: 0, y: 41 },
          [g.target('A', g.inOrganization('sum by (account_id, account_name, kind) (increase(aws_root_activity_events_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))'), '{{account_id}} {{account_name}} {{kind}}')],
          unit='short',
          fillOpacity=0,
        ),

        g.table(
          14,
          'Newest root activity',
          'The newest use of the root user of each account by kind: from the events queue, or the password\'s and keys\' last use as the audits read them. Next to the credential state above: an account whose root is used and still has a key is the first to look at. Within the last %s it pages (AwsRootUserActivity).'
          % util.duration(c.rootActivityWindowSeconds),
          { h: 8, w: 12, x: 12, y: 41 },
          [g.target('A', g.inOrganization('max by (account_id, account_name, kind) (aws_root_activity_last_timestamp_seconds{job=~"$job", instance=~"$instance"}) * 1000'), instant=true, format='table')],
          [{ id: 'organize', options: { excludeByName: { Time: true }, indexByName: {}, renameByName: {} } }],
          [
            g.override('account_id', [['displayName', 'Account ID'], ['custom.width', 140]]),
            g.override('account_name', [['displayName', 'Name']]),
            g.override('kind', [['displayName', 'Kind']]),
            g.override('Value', [['displayName', 'Newest'], ['unit', 'dateTimeAsIso']]),
          ],
          [{ displayName: 'Newest', desc: true }],
        ),
      ],
    ),
  },
}
