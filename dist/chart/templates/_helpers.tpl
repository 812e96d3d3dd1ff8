{{/* Prefix of every namespaced and per-release object name. */}}
{{- define "entitlement-operator.fullname" -}}
{{- default "entitlement-operator" .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "entitlement-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "entitlement-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "entitlement-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: entitlement-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selects the manager's pods. */}}
{{- define "entitlement-operator.selectorLabels" -}}
control-plane: controller-manager
app.kubernetes.io/name: {{ include "entitlement-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The metrics Service, the name the serving certificate is for. */}}
{{- define "entitlement-operator.metricsServiceName" -}}
{{ include "entitlement-operator.fullname" . }}-controller-manager-metrics-service
{{- end -}}

{{/* The Secret cert-manager writes the metrics certificate to. */}}
{{- define "entitlement-operator.metricsCertSecret" -}}
{{ include "entitlement-operator.fullname" . }}-metrics-cert
{{- end -}}

{{- define "entitlement-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.name -}}
{{ .Values.serviceAccount.name }}
{{- else -}}
{{ include "entitlement-operator.fullname" . }}-controller-manager
{{- end -}}
{{- end -}}
