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
(import 'dashboards/dashboards.libsonnet')
