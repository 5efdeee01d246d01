// Grafana JSON built directly (no grafonnet): the few shapes the aws-root-exporter dashboards
// repeat. Every query goes to the `datasource` variable; every panel query filters on the `job`
// and `instance` variables (tests/e2e/lint_dashboards.py checks both).
{
  datasource:: { type: 'prometheus', uid: '${datasource}' },

  // One Prometheus query. Instant queries feed stats, bar gauges and tables; range queries feed
  // time series. format: 'table' for table panels.
  target(refId, expr, legendFormat='__auto', instant=false, format=null):: {
    datasource: $.datasource,
    editorMode: 'code',
    expr: expr,
    legendFormat: legendFormat,
    refId: refId,
    range: !instant,
    instant: instant,
    [if format != null then 'format']: format,
  },

  // Threshold steps from [[colour, from value], ...]; the first step starts at null.
  thresholds(steps):: {
    mode: 'absolute',
    steps: [{ color: s[0], value: s[1] } for s in steps],
  },

  // A value mapping from [[value, text, colour], ...], indexed in that order.
  valueMapping(values):: {
    type: 'value',
    options: {
      [values[i][0]]: { text: values[i][1], color: values[i][2], index: i }
      for i in std.range(0, std.length(values) - 1)
    },
  },

  // A mapping for no value (null or NaN), indexed after `index` value entries.
  noValueMapping(text, color, index):: {
    type: 'special',
    options: { match: 'null+nan', result: { text: text, color: color, index: index } },
  },

  // Field override: the field named `name` gets these [[property id, value], ...].
  override(name, properties, matcher='byName'):: {
    matcher: { id: matcher, options: name },
    properties: [{ id: p[0], value: p[1] } for p in properties],
  },

  local reduceLast = { calcs: ['lastNotNull'], fields: '', values: false },

  panel(id, type, title, description, gridPos, targets):: {
    id: id,
    type: type,
    title: title,
    description: description,
    datasource: $.datasource,
    gridPos: gridPos,
    targets: targets,
  },

  stat(id,
       title,
       description,
       gridPos,
       targets,
       steps,
       unit='none',
       noValue='unknown',
       mappings=[],
       colorMode='background',
       textMode='auto')::
    $.panel(id, 'stat', title, description, gridPos, targets) + {
      fieldConfig: {
        defaults: {
          color: { mode: 'thresholds' },
          mappings: mappings,
          thresholds: $.thresholds(steps),
          unit: unit,
          noValue: noValue,
        },
        overrides: [],
      },
      options: {
        colorMode: colorMode,
        graphMode: 'none',
        justifyMode: 'auto',
        orientation: 'auto',
        textMode: textMode,
        wideLayout: true,
        showPercentChange: false,
        reduceOptions: reduceLast,
      },
    },

  timeseries(id,
             title,
             description,
             gridPos,
             targets,
             unit,
             fillOpacity=10,
             stacking='none',
             overrides=[])::
    $.panel(id, 'timeseries', title, description, gridPos, targets) + {
      fieldConfig: {
        defaults: {
          color: { mode: 'palette-classic' },
          custom: {
            drawStyle: 'line',
            lineWidth: 1,
            fillOpacity: fillOpacity,
            showPoints: 'never',
            spanNulls: false,
            axisSoftMin: 0,
            lineInterpolation: 'linear',
            stacking: { mode: stacking, group: 'A' },
          },
          unit: unit,
          min: 0,
        },
        overrides: overrides,
      },
      options: {
        legend: { displayMode: 'table', placement: 'right', showLegend: true, calcs: ['lastNotNull', 'max'] },
        tooltip: { mode: 'multi', sort: 'desc' },
      },
    },

  bargauge(id, title, description, gridPos, targets, color)::
    $.panel(id, 'bargauge', title, description, gridPos, targets) + {
      fieldConfig: {
        defaults: {
          color: { mode: 'thresholds' },
          unit: 'short',
          min: 0,
          decimals: 0,
          mappings: [],
          thresholds: $.thresholds([[color, null]]),
        },
        overrides: [],
      },
      options: {
        displayMode: 'basic',
        orientation: 'horizontal',
        showUnfilled: true,
        valueMode: 'color',
        namePlacement: 'auto',
        sizing: 'auto',
        minVizHeight: 16,
        minVizWidth: 8,
        maxVizHeight: 300,
        reduceOptions: reduceLast,
      },
    },

  table(id, title, description, gridPos, targets, transformations, overrides, sortBy)::
    $.panel(id, 'table', title, description, gridPos, targets) + {
      transformations: transformations,
      fieldConfig: {
        defaults: {
          custom: { align: 'auto', cellOptions: { type: 'auto' }, inspect: false, filterable: true },
          mappings: [],
          color: { mode: 'thresholds' },
          thresholds: $.thresholds([['green', null]]),
        },
        overrides: overrides,
      },
      options: {
        showHeader: true,
        cellHeight: 'sm',
        footer: { show: false, reducer: ['sum'], countRows: false, fields: '' },
        sortBy: sortBy,
      },
    },

  // The template variables of every dashboard: the data source, then the job (the jobs that
  // match the configured exporter selector) and its instances.
  // `selector` (PromQL matchers) with the cluster matcher added when showMultiCluster is on.
  clustered(config, selector)::
    if config.showMultiCluster then '%s, %s=~"$cluster"' % [selector, config.clusterLabel] else selector,

  // The cluster variable, when showMultiCluster is on (as kubernetes-mixin does).
  clusterVariable(config):: if !config.showMultiCluster then [] else [{
    local query = 'label_values(aws_root_exporter_build_info{%s}, %s)' % [config.exporterSelector, config.clusterLabel],
    name: 'cluster',
    label: 'Cluster',
    type: 'query',
    datasource: $.datasource,
    definition: query,
    query: { query: query, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
    current: { selected: true, text: ['All'], value: ['$__all'] },
    hide: 0,
    includeAll: true,
    allValue: '.+',
    multi: true,
    options: [],
    refresh: 2,
    regex: '',
    skipUrlSync: false,
    sort: 1,
  }],

  variables(config):: [
    {
      name: 'datasource',
      label: 'Data source',
      type: 'datasource',
      query: 'prometheus',
      current: {},
      hide: 0,
      includeAll: false,
      multi: false,
      options: [],
      refresh: 1,
      regex: '',
      skipUrlSync: false,
    },
  ] + $.clusterVariable(config) + [
    {
      local query = 'label_values(aws_root_exporter_build_info{%s}, job)' % $.clustered(config, config.exporterSelector),
      name: 'job',
      label: 'Job',
      type: 'query',
      datasource: $.datasource,
      definition: query,
      query: { query: query, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
      // Every job the selector matches, by default (one exporter per job usually).
      current: { selected: true, text: ['All'], value: ['$__all'] },
      hide: 0,
      includeAll: true,
      allValue: '.+',
      multi: true,
      options: [],
      refresh: 2,
      regex: '',
      skipUrlSync: false,
      sort: 1,
    },
    {
      local query = 'label_values(aws_root_exporter_build_info{%s}, instance)' % $.clustered(config, 'job=~"$job"'),
      name: 'instance',
      label: 'Instance',
      type: 'query',
      datasource: $.datasource,
      definition: query,
      query: { query: query, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
      current: { selected: true, text: ['All'], value: ['$__all'] },
      hide: 0,
      includeAll: true,
      allValue: '.+',
      multi: true,
      options: [],
      refresh: 2,
      regex: '',
      skipUrlSync: false,
      sort: 1,
    },
    // The organizations of those instances (`[[organizations]]`; `default` for an exporter that
    // audits one).
    {
      local query = 'label_values(aws_organizations_account_info{%s}, organization)' % $.clustered(config, 'job=~"$job", instance=~"$instance"'),
      name: 'organization',
      label: 'Organization',
      type: 'query',
      datasource: $.datasource,
      definition: query,
      query: { query: query, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
      current: { selected: true, text: ['All'], value: ['$__all'] },
      hide: 0,
      includeAll: true,
      allValue: '.*',
      multi: true,
      options: [],
      refresh: 2,
      regex: '',
      skipUrlSync: false,
      sort: 1,
    },
  ],

  // `expr` (one sample per account_id, or several) kept only for accounts of the organizations
  // the `organization` variable selects; values unchanged. Per-account series carry no
  // organization: aws_organizations_account_info has it.
  inOrganization(expr)::
    '(%s) * on (account_id) group_left () max by (account_id) (0 * aws_organizations_account_info{job=~"$job", instance=~"$instance", organization=~"$organization"} + 1)' % expr,

  // A whole dashboard. settings: one of the *Dashboard objects of config.libsonnet.
  dashboard(config, settings, description, panels):: {
    id: null,
    uid: settings.uid,
    title: settings.title,
    description: description,
    tags: config.dashboardTags,
    timezone: config.dashboardTimezone,
    editable: false,
    graphTooltip: 1,
    fiscalYearStartMonth: 0,
    liveNow: false,
    weekStart: '',
    refresh: config.dashboardRefresh,
    schemaVersion: 39,
    version: 1,
    time: { from: settings.from, to: 'now' },
    timepicker: {},
    annotations: { list: [] },
    // Links to every dashboard that carries the first tag, i.e. the other aws-root-exporter one.
    links: [{
      title: 'aws-root-exporter',
      type: 'dashboards',
      tags: [config.dashboardTags[0]],
      asDropdown: false,
      icon: 'external link',
      includeVars: true,
      keepTime: true,
      targetBlank: false,
      tooltip: '',
    }],
    templating: { list: $.variables(config) },
    // With showMultiCluster every query also selects the cluster.
    panels: [
      p + (if std.objectHas(p, 'targets') then {
             targets: [
               t + { expr: std.strReplace(t.expr, 'instance=~"$instance"', $.clustered(config, 'instance=~"$instance"')) }
               for t in p.targets
             ],
           } else {})
      for p in panels
    ],
  },
}
