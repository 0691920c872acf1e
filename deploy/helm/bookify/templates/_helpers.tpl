{{- define "bookify.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{ else }}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{ end }}
{{- end }}

{{- define "bookify.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "bookify.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The environment of every Bookify container: endpoints, Secret keys and plain settings. */}}
{{- define "bookify.env" -}}
{{- if .Values.rabbitmq.uri }}
- name: AMQP_URI
  value: {{ .Values.rabbitmq.uri | quote }}
{{- end }}
{{- if .Values.mysql.url }}
- name: BOOKIFY_DB_URL
  value: {{ .Values.mysql.url | quote }}
{{- end }}
{{- range .Values.secrets.required }}
{{- if not (or (and (eq . "AMQP_URI") $.Values.rabbitmq.uri) (and (eq . "BOOKIFY_DB_URL") $.Values.mysql.url)) }}
- name: {{ . }}
  valueFrom:
    secretKeyRef: {name: {{ $.Values.secrets.name | quote }}, key: {{ . }}}
{{- end }}
{{- end }}
{{- range .Values.secrets.optional }}
- name: {{ . }}
  valueFrom:
    secretKeyRef: {name: {{ $.Values.secrets.name | quote }}, key: {{ . }}, optional: true}
{{- end }}
{{- range $name, $value := .Values.config }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}
