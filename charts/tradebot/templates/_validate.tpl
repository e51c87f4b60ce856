{{/* Rules across several values, which values.schema.json cannot explain well. */}}
{{- define "tradebot.validate" -}}
{{- if and (gt (int .Values.operator.replicas) 1) (not .Values.operator.peering.enabled) }}
{{- fail (printf "operator.replicas=%d needs operator.peering.enabled=true: without kopf peering every replica would reconcile every bot at the same time" (int .Values.operator.replicas)) }}
{{- end }}
{{- if and .Values.networkPolicy.enabled (eq .Values.vault.credentialsDelivery "vault") .Values.vault.address (not .Values.networkPolicy.vault.cidrs) }}
{{- fail "networkPolicy.vault.cidrs is empty but vault.address is set: bot pods could not log in to Vault; list Vault's addresses" }}
{{- end }}
{{- end }}
