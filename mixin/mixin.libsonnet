// aws-root-exporter monitoring mixin: alerts, recording rules and Grafana dashboards for the
// root-user credentials of every account of an AWS Organization.
//
//   prometheusAlerts   groups of alerting rules   -> deploy/prometheus/aws-root-exporter.rules.yml
//   prometheusRules    groups of recording rules  -> deploy/prometheus/aws-root-exporter.recording.yml
//   grafanaDashboards  {file name: dashboard}     -> dashboards/*.json
//
// Tune in config.libsonnet (or override _config+:: from outside); render with build.sh.
(import 'config.libsonnet') +
(import 'alerts/alerts.libsonnet') +
(import 'rules/rules.libsonnet') +
(import 'dashboards/dashboards.libsonnet') +
{
  // With showMultiCluster, the recording rules keep the cluster label (the dashboards select on
  // it): every `by (job, instance` and `on (job, instance` of theirs gains clusterLabel.
  local c = $._config,
  local keepCluster(expr) =
    if c.showMultiCluster then
      std.strReplace(std.strReplace(expr, 'by (job, instance', 'by (%s, job, instance' % c.clusterLabel),
                     'on (job, instance', 'on (%s, job, instance' % c.clusterLabel)
    else expr,
  prometheusRules+:: {
    groups: [
      g { rules: [r { expr: keepCluster(r.expr) } for r in g.rules] }
      for g in super.groups
    ],
  },
}
