// Small helpers shared by the alerts, rules, dashboards and the renderer.
{
  // A text block written over several lines, joined into one line with single spaces (what a
  // YAML folded scalar `>-` does): keeps long annotations readable in the source.
  fold(text):: std.rstripChars(std.strReplace(text, '\n', ' '), ' '),

  // Seconds as a short duration for texts: 86400 -> '24h', 600 -> '10m', 90 -> '90s'.
  duration(seconds)::
    if seconds % 3600 == 0 then '%dh' % (seconds / 3600)
    else if seconds % 60 == 0 then '%dm' % (seconds / 60)
    else '%ds' % seconds,

  // Pretty JSON with two-space indentation, `[]` and `{}` for empty values, keys sorted (the
  // final newline comes from `jsonnet -S`). std.manifestJsonEx would do, but its output for
  // empty arrays and objects differs between jsonnet versions, and the rendered files are
  // checked byte for byte.
  prettyJson(value)::
    local render(v, indent) =
      local inner = indent + '  ';
      if std.isArray(v) then
        if std.length(v) == 0 then '[]'
        else '[\n' + std.join(',\n', [inner + render(x, inner) for x in v]) + '\n' + indent + ']'
      else if std.isObject(v) then
        local keys = std.objectFields(v);
        if std.length(keys) == 0 then '{}'
        else '{\n' + std.join(',\n', [
          inner + std.escapeStringJson(k) + ': ' + render(v[k], inner)
          for k in keys
        ]) + '\n' + indent + '}'
      else if std.isString(v) then std.escapeStringJson(v)
      else std.manifestJson(v);
    render(value, ''),
}
