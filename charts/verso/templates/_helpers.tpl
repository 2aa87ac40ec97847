{{/*
Labels on every object: the same as deploy/kustomization.yaml adds, and nothing helm-specific,
so `helm template` and `kubectl kustomize deploy/` render the same objects (helm adds its own
managed-by label and release annotations when it applies them).
*/}}
{{- define "verso.labels" -}}
app.kubernetes.io/part-of: verso
{{- end }}

{{/* The webhook's Service DNS name in the release namespace. */}}
{{- define "verso.serviceHost" -}}
verso-webhook.{{ .Release.Namespace }}.svc
{{- end }}

{{/* repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "verso.image" -}}
{{ .image.repository }}:{{ .image.tag | default .appVersion }}
{{- end }}
