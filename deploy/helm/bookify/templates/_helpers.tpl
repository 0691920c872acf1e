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

{{/* The image, by digest when given, else by the tag you must name: a chart default would run
whatever an old tag points at. */}}
{{- define "bookify.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ required "image.tag is required: the version you built and pushed (or set image.digest); see docs/deployment.md" .Values.image.tag }}
{{- end -}}
{{- end }}

{{/* A digest never changes, so a cached copy is the image; a tag may be pushed again, so it is
pulled every time unless image.pullPolicy says otherwise. */}}
{{- define "bookify.pullPolicy" -}}
{{- if .Values.image.pullPolicy -}}
{{ .Values.image.pullPolicy }}
{{- else if .Values.image.digest -}}
IfNotPresent
{{- else -}}
Always
{{- end -}}
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
{{- /* Keys Bookify does not run without, whatever the values say: the services refuse to start
without the secrets, and payments reach Stripe itself only with its key. A missing key leaves
the pod in CreateContainerConfigError, naming it. secrets.required adds more. */}}
{{- $required := list "JWT_SECRET" "STRIPE_WEBHOOK_SECRET" "STRIPE_API_KEY" "BOOKIFY_ADMIN_PASSWORD" }}
{{- if not .Values.rabbitmq.uri }}{{ $required = append $required "AMQP_URI" }}{{ end }}
{{- if not .Values.mysql.url }}{{ $required = append $required "BOOKIFY_DB_URL" }}{{ end }}
{{- range .Values.secrets.required }}
{{- if not (or (has . $required) (and (eq . "AMQP_URI") $.Values.rabbitmq.uri) (and (eq . "BOOKIFY_DB_URL") $.Values.mysql.url)) }}
{{- $required = append $required . }}
{{- end }}
{{- end }}
{{- $secret := required "secrets.name is required: the Secret holding JWT_SECRET, STRIPE_API_KEY, STRIPE_WEBHOOK_SECRET, … (docs/deployment.md)" .Values.secrets.name }}
{{- range $required }}
- name: {{ . }}
  valueFrom:
    secretKeyRef: {name: {{ $secret | quote }}, key: {{ . }}}
{{- end }}
{{- range .Values.secrets.optional }}
{{- if has . $required }}
{{- fail (printf "secrets.optional lists %s, which Bookify cannot run without: it stays required (docs/deployment.md)" .) }}
{{- end }}
- name: {{ . }}
  valueFrom:
    secretKeyRef: {name: {{ $secret | quote }}, key: {{ . }}, optional: true}
{{- end }}
{{- range $name, $value := .Values.config }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}
