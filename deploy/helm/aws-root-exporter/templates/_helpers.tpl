{{/* The chart name, for app.kubernetes.io/name (and so the scrape's job label). */}}
{{- define "aws-root-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name of the objects. */}}
{{- define "aws-root-exporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "aws-root-exporter.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{- define "aws-root-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "aws-root-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Labels that select the pod. */}}
{{- define "aws-root-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aws-root-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object; pass (dict "ctx" $ "component" "exporter"). */}}
{{- define "aws-root-exporter.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "aws-root-exporter.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end }}

{{/* REPOSITORY:TAG, or REPOSITORY:TAG@DIGEST. */}}
{{- define "aws-root-exporter.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "aws-root-exporter.webConfigSecret" -}}
{{- default (printf "%s-web-config" (include "aws-root-exporter.fullname" .)) .Values.webConfig.existingSecret }}
{{- end }}

{{/* "true" when the exporter serves HTTPS (a web config with a certificate). */}}
{{- define "aws-root-exporter.https" -}}
{{- if and .Values.webConfig.enabled .Values.webConfig.tlsSecret }}true{{ end }}
{{- end }}
