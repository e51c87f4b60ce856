{{/* Rules across several values, which values.schema.json cannot explain well. */}}
{{- define "tradebot.validate" -}}
{{- if and (gt (int .Values.operator.replicas) 1) (not .Values.operator.peering.enabled) }}
{{- fail (printf "operator.replicas=%d needs operator.peering.enabled=true: without kopf peering every replica would reconcile every bot at the same time" (int .Values.operator.replicas)) }}
{{- end }}
{{- if and .Values.networkPolicy.enabled .Values.runtime.journalDsn (not .Values.networkPolicy.postgres.cidrs) }}
{{- fail "networkPolicy.postgres.cidrs is empty but runtime.journalDsn is set: the bots' NetworkPolicy would block the journal; list PostgreSQL's addresses (or networkPolicy.enabled=false)" }}
{{- end }}
{{- if and .Values.networkPolicy.enabled .Values.runtime.redisUrl (not .Values.networkPolicy.redis.cidrs) }}
{{- fail "networkPolicy.redis.cidrs is empty but runtime.redisUrl is set: the bots' NetworkPolicy would block Redis; list Redis's addresses (or networkPolicy.enabled=false)" }}
{{- end }}
{{- if and .Values.networkPolicy.enabled (eq .Values.vault.credentialsDelivery "vault") .Values.vault.address (not .Values.networkPolicy.vault.cidrs) }}
{{- fail "networkPolicy.vault.cidrs is empty but vault.address is set: bot pods could not log in to Vault; list Vault's addresses" }}
{{- end }}
{{- end }}
