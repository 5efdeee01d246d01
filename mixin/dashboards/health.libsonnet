// Grafana: the exporter itself. Rendered to dashboards/aws-root-exporter-health.json.
local g = import '../lib/dashboard.libsonnet';

{
  grafanaDashboards+:: {
    local c = $._config,

    local failedSuccess = [['0', 'FAILED', 'red'], ['1', 'success', 'green']],

    // A dashed line for the reference series of query B.
    local dashedB(extra) = g.override('B', [['custom.lineStyle', { fill: 'dash', dash: [10, 10] }], extra], matcher='byFrameRefID'),

    local fixedColor(name, color) = g.override(name, [['color', { mode: 'fixed', fixedColor: color }]]),

    'aws-root-exporter-health.json': g.dashboard(
      c,
      c.healthDashboard,
      'aws-root-exporter itself: refreshes, accounts by outcome, AWS API calls and errors.',
      [
        g.stat(
          1,
          'Up',
          'Prometheus can scrape the exporter.',
          { h: 4, w: 4, x: 0, y: 0 },
          [g.target('A', 'up{job=~"$job", instance=~"$instance"}', '{{instance}}', instant=true)],
          steps=[['red', null], ['green', 1]],
          noValue='no target',
          mappings=[g.valueMapping([['0', 'DOWN', 'red'], ['1', 'UP', 'green']])],
        ),
        g.stat(
          2,
          'Last successful refresh',
          'Time since the last successful refresh. AwsRootExporterRefreshStale fires beyond %d refresh intervals (plus %s). Colours assume the default 5m refresh_interval.'
          % [c.refreshStaleFactor, c.refreshStaleFor],
          { h: 4, w: 4, x: 4, y: 0 },
          [g.target('A', 'time() - max by (instance, organization) (aws_root_exporter_last_refresh_success_timestamp_seconds{job=~"$job", instance=~"$instance", organization=~"$organization"})', '{{instance}} {{organization}}', instant=true)],
          steps=[['green', null], ['orange', 600], ['red', 900]],
          unit='s',
          noValue='never',
        ),
        g.stat(
          3,
          'Refresh interval',
          'The configured refresh_interval.',
          { h: 4, w: 4, x: 8, y: 0 },
          [g.target('A', 'max by (instance) (aws_root_exporter_refresh_interval_seconds{job=~"$job", instance=~"$instance"})', '{{instance}}', instant=true)],
          steps=[['blue', null]],
          unit='s',
          colorMode='value',
        ),
        g.stat(
          4,
          'Last refresh duration',
          'Wall time of the last finished refresh.',
          { h: 4, w: 4, x: 12, y: 0 },
          [g.target('A', 'max by (instance) (aws_root_exporter_refresh_duration_seconds{job=~"$job", instance=~"$instance"})', '{{instance}}', instant=true)],
          steps=[['blue', null]],
          unit='s',
          colorMode='value',
        ),
        g.stat(
          5,
          'Last refresh',
          'Whether the last refresh could list the organization.',
          { h: 4, w: 4, x: 16, y: 0 },
          [g.target('A', 'min by (instance, organization) (aws_root_exporter_refresh_success{job=~"$job", instance=~"$instance", organization=~"$organization"})', '{{instance}} {{organization}}', instant=true)],
          steps=[['red', null], ['green', 1]],
          mappings=[g.valueMapping(failedSuccess)],
        ),
        g.stat(
          6,
          'Version',
          'aws_root_exporter_build_info.',
          { h: 4, w: 4, x: 20, y: 0 },
          [g.target('A', 'max by (version) (aws_root_exporter_build_info{job=~"$job", instance=~"$instance"})', '{{version}}', instant=true)],
          steps=[['blue', null]],
          colorMode='none',
          textMode='name',
        ),

        g.timeseries(
          7,
          'Refresh duration',
          'Wall time of the last finished refresh (discovery and every audit), against the refresh interval.',
          { h: 8, w: 12, x: 0, y: 4 },
          [
            g.target('A', 'aws_root_exporter_refresh_duration_seconds{job=~"$job", instance=~"$instance"}', 'duration {{instance}}'),
            g.target('B', 'aws_root_exporter_refresh_interval_seconds{job=~"$job", instance=~"$instance"}', 'interval {{instance}}'),
          ],
          unit='s',
          overrides=[dashedB(['custom.fillOpacity', 0])],
        ),
        g.timeseries(
          8,
          'Accounts by outcome',
          'Accounts of the last snapshot: audited (last audit succeeded), failed, skipped (management account, not ACTIVE, filtered out).',
          { h: 8, w: 12, x: 12, y: 4 },
          [g.target('A', 'sum by (outcome) (aws_root_exporter_accounts{job=~"$job", instance=~"$instance", organization=~"$organization"})', '{{outcome}}')],
          unit='short',
          fillOpacity=30,
          stacking='normal',
          overrides=[fixedColor('audited', 'green'), fixedColor('failed', 'red'), fixedColor('skipped', '#8e8e8e')],
        ),
        g.timeseries(
          9,
          'AWS requests by operation',
          'AWS API calls per second (one per call, however many attempts it took). They come in bursts, once per refresh.',
          { h: 8, w: 12, x: 0, y: 12 },
          [g.target('A', 'sum by (service, operation) (rate(aws_root_exporter_aws_requests_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))', '{{service}} {{operation}}')],
          unit='reqps',
        ),
        g.timeseries(
          10,
          'AWS request errors by operation and reason',
          "AWS API calls that failed after the exporter's retries, per second.",
          { h: 8, w: 12, x: 12, y: 12 },
          [g.target('A', 'sum by (service, operation, reason) (rate(aws_root_exporter_aws_request_errors_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))', '{{service}} {{operation}} {{reason}}')],
          unit='reqps',
        ),
        g.timeseries(
          11,
          'Last successful refresh age',
          'Seconds since the last successful refresh; the dashed line is %d refresh intervals, beyond which AwsRootExporterRefreshStale starts its %s `for:`.'
          % [c.refreshStaleFactor, c.refreshStaleFor],
          { h: 8, w: 8, x: 0, y: 20 },
          [
            g.target('A', 'time() - aws_root_exporter_last_refresh_success_timestamp_seconds{job=~"$job", instance=~"$instance", organization=~"$organization"}', 'age {{instance}} {{organization}}'),
            g.target('B', '%d * aws_root_exporter_refresh_interval_seconds{job=~"$job", instance=~"$instance"}' % c.refreshStaleFactor, 'stale beyond {{instance}}'),
          ],
          unit='s',
          fillOpacity=0,
          overrides=[dashedB(['color', { mode: 'fixed', fixedColor: 'red' }])],
        ),

        g.bargauge(
          12,
          'Refreshes in the time range',
          'Finished refreshes by result.',
          { h: 8, w: 8, x: 8, y: 20 },
          [g.target('A', 'sum by (result) (increase(aws_root_exporter_refreshes_total{job=~"$job", instance=~"$instance", organization=~"$organization"}[$__range]))', '{{result}}', instant=true)],
          'blue',
        ),
        g.bargauge(
          13,
          'Failing audits by reason',
          'Accounts whose last audit failed, by reason (access_denied: often an SCP without the aws:AssumedRoot carve-out).',
          { h: 8, w: 8, x: 16, y: 20 },
          [g.target('A', 'count by (reason) (aws_root_audit_failure_reason{job=~"$job", instance=~"$instance"} == 1)', '{{reason}}', instant=true)],
          'orange',
        ),
        g.bargauge(
          14,
          'AWS requests in the time range',
          'AWS API calls by operation.',
          { h: 8, w: 12, x: 0, y: 28 },
          [g.target('A', 'sum by (service, operation) (increase(aws_root_exporter_aws_requests_total{job=~"$job", instance=~"$instance"}[$__range]))', '{{service}} {{operation}}', instant=true)],
          'blue',
        ),
        g.bargauge(
          15,
          'AWS errors in the time range',
          'Failed AWS API calls by operation and failure reason.',
          { h: 8, w: 12, x: 12, y: 28 },
          [g.target('A', 'sum by (service, operation, reason) (increase(aws_root_exporter_aws_request_errors_total{job=~"$job", instance=~"$instance"}[$__range]))', '{{service}} {{operation}} {{reason}}', instant=true)],
          'red',
        ),
        g.timeseries(
          16,
          'Root credential events',
          'With events_queue_url: messages read from the events queue per second by outcome (relevant: re-audited; irrelevant and malformed: deleted), and the re-audits they triggered by result.',
          { h: 8, w: 12, x: 0, y: 36 },
          [
            g.target('A', 'sum by (outcome) (rate(aws_root_exporter_events_received_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))', 'events {{outcome}}'),
            g.target('B', 'sum by (result) (rate(aws_root_exporter_event_audits_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))', 're-audits {{result}}'),
          ],
          unit='reqps',
        ),
        g.timeseries(
          17,
          'Event to published snapshot',
          "With events_queue_url: time from the event's own time (AWS's delivery included) to the snapshot with the account re-audited, median and 95th percentile.",
          { h: 8, w: 12, x: 12, y: 36 },
          [
            g.target('A', 'histogram_quantile(0.5, sum by (le) (rate(aws_root_exporter_event_to_snapshot_seconds_bucket{job=~"$job", instance=~"$instance"}[$__rate_interval])))', 'p50'),
            g.target('B', 'histogram_quantile(0.95, sum by (le) (rate(aws_root_exporter_event_to_snapshot_seconds_bucket{job=~"$job", instance=~"$instance"}[$__rate_interval])))', 'p95'),
          ],
          unit='s',
        ),
      ],
    ),
  },
}
