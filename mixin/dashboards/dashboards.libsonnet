// Every dashboard, keyed by the file name it is rendered to under dashboards/.
(import 'overview.libsonnet') + (import 'health.libsonnet')
