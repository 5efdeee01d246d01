// What mixin/build.sh writes: {path relative to the repository root: file content}.
// Rendered with `jsonnet -S -m DIR mixin/render.jsonnet`.
local util = import 'lib/util.libsonnet';
local mixin = import 'mixin.libsonnet';

local header(what) = |||
  # %s for aws-root-exporter.
  #
  # GENERATED from mixin/ (mixin/mixin.libsonnet): do not edit by hand, mixin/check.sh fails on
  # any difference. To change a selector, a threshold or the runbook base, edit
  # mixin/config.libsonnet, then run mixin/build.sh. Design: docs/alerts.md.
||| % what;

local yaml(value) = std.manifestYamlDoc(value, indent_array_in_object=true, quote_keys=false);

{
  'deploy/prometheus/aws-root-exporter.rules.yml':
    header('Alerting rules') + '\n' + yaml(mixin.prometheusAlerts),
  'deploy/prometheus/aws-root-exporter.recording.yml':
    header('Recording rules (read by the dashboards)') + '\n' + yaml(mixin.prometheusRules),
} + {
  ['dashboards/' + name]: util.prettyJson(mixin.grafanaDashboards[name])
  for name in std.objectFields(mixin.grafanaDashboards)
}
