{{/* Name of the chart, overridable. */}}
{{- define "tradebot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name when it already contains the chart name. */}}
{{- define "tradebot.fullname" -}}
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

{{- define "tradebot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Common labels. Never app.kubernetes.io/managed-by=tradebot-operator: that marks the
objects the operator itself owns. */}}
{{- define "tradebot.labels" -}}
helm.sh/chart: {{ include "tradebot.chart" . }}
{{ include "tradebot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tradebot
{{- end }}

{{- define "tradebot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tradebot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "tradebot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tradebot.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image: repository@digest or repository:tag (tag defaults to appVersion). */}}
{{- define "tradebot.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "tradebot.runtimeImage" -}}
{{- default (include "tradebot.image" .) .Values.runtime.image }}
{{- end }}

{{/* Labels of the bot pods the operator creates (see tradebot_operator.api.names). */}}
{{- define "tradebot.runtimePodSelector" -}}
app.kubernetes.io/name: tradebot
app.kubernetes.io/component: runtime
app.kubernetes.io/managed-by: tradebot-operator
{{- end }}

{{- define "tradebot.crdNames" -}}
tradingbots.tradebot.io strategies.tradebot.io exchangeaccounts.tradebot.io
{{- end }}
