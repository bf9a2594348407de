{{/*
Helpers of the imageshark chart. Every name starts with "imageshark." so that a parent chart's
helpers never collide with these.
*/}}

{{/* Chart name, or nameOverride. */}}
{{- define "imageshark.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Full name of the release's resources: fullnameOverride, or "<release>-<name>" (just the release
name when it already contains the chart name). At most 63 characters (DNS label).
*/}}
{{- define "imageshark.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "name-version" for the helm.sh/chart label. */}}
{{- define "imageshark.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels naming the release's objects (the migration Job and test Pod carry them too). */}}
{{- define "imageshark.selectorLabels" -}}
app.kubernetes.io/name: {{ include "imageshark.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Labels that select the app pods (Deployment, Service, PodDisruptionBudget, spread constraints).
The component keeps the migration Job's and the test's pods out of the Service. Never change
them: a Deployment's selector is immutable.
*/}}
{{- define "imageshark.serverSelectorLabels" -}}
{{ include "imageshark.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end -}}

{{/* Standard app.kubernetes.io labels of every resource, plus commonLabels. */}}
{{- define "imageshark.labels" -}}
helm.sh/chart: {{ include "imageshark.chart" . }}
{{ include "imageshark.selectorLabels" . }}
app.kubernetes.io/version: {{ (.Values.image.tag | default .Chart.AppVersion) | toString | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: imageshark
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* commonAnnotations merged with a resource's own annotations (given as "extra"). */}}
{{/* Use as: {{- with (include "imageshark.annotations" (dict "context" $ "extra" ...)) }}{{ . | nindent 2 }}{{- end }} */}}
{{- define "imageshark.annotations" -}}
{{- $merged := merge (deepCopy (.extra | default dict)) (deepCopy (.context.Values.commonAnnotations | default dict)) -}}
{{- with $merged -}}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{/* Name of the ServiceAccount the pods use. */}}
{{- define "imageshark.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "imageshark.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Image reference: registry/repository, then @digest or :tag (default: appVersion). */}}
{{- define "imageshark.image" -}}
{{- $repository := .Values.image.repository -}}
{{- if .Values.image.registry -}}
{{- $repository = printf "%s/%s" .Values.image.registry .Values.image.repository -}}
{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}
{{- end -}}

{{/* "true" when an external PostgreSQL is configured (URL in values or an existing Secret). */}}
{{- define "imageshark.externalDatabase" -}}
{{- if or .Values.database.url .Values.database.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* "true" when a Redis is configured. */}}
{{- define "imageshark.redisConfigured" -}}
{{- if or .Values.redis.url .Values.redis.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* Name of the Secret the chart renders for URLs given in values. */}}
{{- define "imageshark.secretName" -}}
{{- include "imageshark.fullname" . -}}
{{- end -}}

{{/* "true" when the chart must render its own Secret (some URL given in values, not by existingSecret). */}}
{{- define "imageshark.renderSecret" -}}
{{- if or (and .Values.database.url (not .Values.database.existingSecret)) (and .Values.redis.url (not .Values.redis.existingSecret)) (and .Values.mail.smtpUrl (not .Values.mail.existingSecret)) -}}true{{- end -}}
{{- end -}}

{{/* The Secret name and key holding DATABASE_URL. */}}
{{- define "imageshark.databaseSecretName" -}}
{{- default (include "imageshark.secretName" .) .Values.database.existingSecret -}}
{{- end -}}
{{- define "imageshark.databaseSecretKey" -}}
{{- if .Values.database.existingSecret -}}{{ .Values.database.existingSecretKey }}{{- else -}}database-url{{- end -}}
{{- end -}}

{{/* The Secret name and key holding REDIS_URL. */}}
{{- define "imageshark.redisSecretName" -}}
{{- default (include "imageshark.secretName" .) .Values.redis.existingSecret -}}
{{- end -}}
{{- define "imageshark.redisSecretKey" -}}
{{- if .Values.redis.existingSecret -}}{{ .Values.redis.existingSecretKey }}{{- else -}}redis-url{{- end -}}
{{- end -}}

{{/* "true" when an SMTP server is configured. */}}
{{- define "imageshark.mailConfigured" -}}
{{- if or .Values.mail.smtpUrl .Values.mail.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* The Secret name and key holding IMAGESHARK_SMTP_URL. */}}
{{- define "imageshark.mailSecretName" -}}
{{- default (include "imageshark.secretName" .) .Values.mail.existingSecret -}}
{{- end -}}
{{- define "imageshark.mailSecretKey" -}}
{{- if .Values.mail.existingSecret -}}{{ .Values.mail.existingSecretKey }}{{- else -}}smtp-url{{- end -}}
{{- end -}}

{{/* "true" when the migration hook Job is rendered: enabled, and an external database. */}}
{{- define "imageshark.migrationJob" -}}
{{- if and .Values.migrations.job.enabled (include "imageshark.externalDatabase" .) -}}true{{- end -}}
{{- end -}}

{{/* "true" when more than one pod may run at once (replicaCount > 1 or autoscaling). */}}
{{- define "imageshark.multiReplica" -}}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) -}}true{{- end -}}
{{- end -}}

{{/* Name of the PersistentVolumeClaim of the image volume. */}}
{{- define "imageshark.claimName" -}}
{{- default (printf "%s-data" (include "imageshark.fullname" .)) .Values.persistence.existingClaim -}}
{{- end -}}

{{/* "true" when the images live in an object store (storage.url): no image volume at all. */}}
{{- define "imageshark.objectStorage" -}}
{{- if .Values.storage.url -}}true{{- end -}}
{{- end -}}

{{/* "true" when the chart renders the PersistentVolumeClaim of the image volume. */}}
{{- define "imageshark.renderClaim" -}}
{{- if and (not (include "imageshark.objectStorage" .)) .Values.persistence.enabled (not .Values.persistence.existingClaim) -}}true{{- end -}}
{{- end -}}

{{/* "true" when the image volume can be mounted by one node only (a created RWO/RWOP claim). */}}
{{- define "imageshark.singleWriterVolume" -}}
{{- if and (include "imageshark.renderClaim" .) (ne .Values.persistence.accessMode "ReadWriteMany") -}}true{{- end -}}
{{- end -}}

{{/* Selector labels of the rendition worker pods (immutable, like the app's). */}}
{{- define "imageshark.workerSelectorLabels" -}}
{{ include "imageshark.selectorLabels" . }}
app.kubernetes.io/component: worker
{{- end -}}

{{/* Name of the worker Deployment (and its HPA, PDB, metrics Service and ServiceMonitor). */}}
{{- define "imageshark.workerName" -}}
{{- printf "%s-worker" (include "imageshark.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "true" when the worker pods run: worker.enabled (validateValues checks what they need). */}}
{{- define "imageshark.workers" -}}
{{- if .Values.worker.enabled -}}true{{- end -}}
{{- end -}}

{{/* The /data volume of a pod: the image claim, or an emptyDir (object storage, no persistence). */}}
{{- define "imageshark.dataVolume" -}}
- name: data
  {{- if include "imageshark.objectStorage" . }}
  # Object storage: only request-temporary files live here.
  emptyDir:
    sizeLimit: {{ .Values.storage.scratchSizeLimit }}
  {{- else if .Values.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ include "imageshark.claimName" . }}
  {{- else }}
  emptyDir: {}
  {{- end }}
{{- end -}}

{{/* envFrom entries shared by the app and worker containers: the ConfigMap, the store's credentials, extraEnvFrom. */}}
{{- define "imageshark.envFrom" -}}
- configMapRef:
    name: {{ include "imageshark.fullname" . }}
{{- if and (include "imageshark.objectStorage" .) .Values.storage.existingSecret }}
# Every key of the Secret becomes a variable (AWS_*, GOOGLE_*, AZURE_STORAGE_*).
- secretRef:
    name: {{ .Values.storage.existingSecret }}
{{- end }}
{{- with .Values.extraEnvFrom }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
DATABASE_URL, REDIS_URL and IMAGESHARK_SMTP_URL from their Secrets, as container env entries
(nothing for what is not configured: the app then uses SQLite / in-process broadcast / no mail).
*/}}
{{- define "imageshark.secretEnv" -}}
{{- if include "imageshark.externalDatabase" . }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "imageshark.databaseSecretName" . }}
      key: {{ include "imageshark.databaseSecretKey" . }}
{{- end }}
{{- if include "imageshark.redisConfigured" . }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "imageshark.redisSecretName" . }}
      key: {{ include "imageshark.redisSecretKey" . }}
{{- end }}
{{- if include "imageshark.mailConfigured" . }}
- name: IMAGESHARK_SMTP_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "imageshark.mailSecretName" . }}
      key: {{ include "imageshark.mailSecretKey" . }}
{{- end }}
{{- end -}}

{{/*
Organisation sign-on's variables, for the app container only (the workers and the migration Job
never sign anyone in): nothing without oidc.issuer; the client secret from oidc.existingSecret.
*/}}
{{- define "imageshark.oidcEnv" -}}
{{- if .Values.oidc.issuer }}
- name: IMAGESHARK_OIDC_ISSUER
  value: {{ .Values.oidc.issuer | quote }}
- name: IMAGESHARK_OIDC_CLIENT_ID
  value: {{ .Values.oidc.clientId | quote }}
- name: IMAGESHARK_OIDC_SCOPES
  value: {{ .Values.oidc.scopes | quote }}
{{- with .Values.oidc.name }}
- name: IMAGESHARK_OIDC_NAME
  value: {{ . | quote }}
{{- end }}
- name: IMAGESHARK_OIDC_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.oidc.existingSecret }}
      key: {{ .Values.oidc.existingSecretKey }}
{{- end }}
{{- end -}}

{{/* The admin's password for `imageshark create-admin` in an app pod, from an existing Secret. */}}
{{- define "imageshark.adminPasswordEnv" -}}
{{- with .Values.accounts.adminPassword.existingSecret }}
- name: IMAGESHARK_ADMIN_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.accounts.adminPassword.existingSecretKey }}
{{- end }}
{{- end -}}

{{/* Restricted container securityContext, shared by the app, the migration Job and the test Pod. */}}
{{- define "imageshark.containerSecurityContext" -}}
{{- toYaml .Values.containerSecurityContext }}
{{- end -}}

{{/*
Refuse values that would deploy something broken, with a message saying what to change.
Called from every template that matters, so `helm template` and `helm install` both fail early.
*/}}
{{- define "imageshark.validateValues" -}}
{{- $errors := list -}}
{{- $multi := include "imageshark.multiReplica" . -}}
{{- $replicas := ternary (printf "autoscaling up to %d replicas" (int .Values.autoscaling.maxReplicas)) (printf "replicaCount: %d" (int .Values.replicaCount)) (not (not .Values.autoscaling.enabled)) -}}
{{- if $multi -}}
{{- if not (include "imageshark.redisConfigured" .) -}}
{{- $errors = append $errors (printf "%s needs Redis to broadcast photos between replicas: set redis.url or redis.existingSecret (or use replicaCount: 1 without autoscaling)." $replicas) -}}
{{- end -}}
{{- if not (include "imageshark.externalDatabase" .) -}}
{{- $errors = append $errors (printf "%s needs an external PostgreSQL: the embedded SQLite database works for one replica only. Set database.url or database.existingSecret." $replicas) -}}
{{- end -}}
{{- if include "imageshark.objectStorage" . -}}
{{- else if not .Values.persistence.enabled -}}
{{- $errors = append $errors (printf "%s needs shared image storage, but persistence.enabled is false (each pod would keep its own emptyDir). Set storage.url to an object store (s3://, gs://, az://), or enable persistence with accessMode: ReadWriteMany or an RWX existingClaim." $replicas) -}}
{{- else if include "imageshark.singleWriterVolume" . -}}
{{- $errors = append $errors (printf "%s needs image storage every replica can write, but persistence.accessMode is %s. Set storage.url to an object store (s3://, gs://, az://: no volume at all), or use persistence.accessMode: ReadWriteMany with a storageClass that supports it, or an RWX persistence.existingClaim." $replicas .Values.persistence.accessMode) -}}
{{- end -}}
{{- end -}}
{{- if and (include "imageshark.objectStorage" .) (not (include "imageshark.externalDatabase" .)) -}}
{{- $errors = append $errors "storage.url needs an external PostgreSQL (database.url or database.existingSecret): with object storage there is no volume, and the embedded SQLite database would be lost with the pod." -}}
{{- end -}}
{{- if and .Values.storage.mediaBaseUrl (not (include "imageshark.objectStorage" .)) -}}
{{- $errors = append $errors "storage.mediaBaseUrl needs object storage (storage.url s3://, gs:// or az://): with the images volume the service serves the files itself and nothing would serve that URL." -}}
{{- end -}}
{{- if and (or .Values.storage.endpoint .Values.storage.region) (not (hasPrefix "s3://" .Values.storage.url)) -}}
{{- $errors = append $errors "storage.endpoint and storage.region apply to an s3:// storage.url only (GCS and Azure are configured by the variables in storage.existingSecret)." -}}
{{- end -}}
{{- if .Values.worker.enabled -}}
{{- if not (include "imageshark.objectStorage" .) -}}
{{- $errors = append $errors "worker.enabled needs object storage (storage.url s3://, gs:// or az://): workers share no volume with the replicas, so their renditions would be lost." -}}
{{- end -}}
{{- if not (include "imageshark.redisConfigured" .) -}}
{{- $errors = append $errors "worker.enabled needs Redis (redis.url or redis.existingSecret): the rendition queue lives there, and without it completed uploads would never be rendered." -}}
{{- end -}}
{{- if lt (int .Values.worker.terminationGracePeriodSeconds) (add (int .Values.worker.drainSeconds) 10) -}}
{{- $errors = append $errors (printf "worker.terminationGracePeriodSeconds (%d) leaves less than 10 s after worker.drainSeconds (%d): the worker would be SIGKILLed before it hands its unfinished jobs back and closes." (int .Values.worker.terminationGracePeriodSeconds) (int .Values.worker.drainSeconds)) -}}
{{- end -}}
{{- if and .Values.worker.autoscaling.enabled (gt (int .Values.worker.autoscaling.minReplicas) (int .Values.worker.autoscaling.maxReplicas)) -}}
{{- $errors = append $errors (printf "worker.autoscaling.minReplicas (%d) is above worker.autoscaling.maxReplicas (%d)." (int .Values.worker.autoscaling.minReplicas) (int .Values.worker.autoscaling.maxReplicas)) -}}
{{- end -}}
{{- if and .Values.worker.autoscaling.enabled (not .Values.worker.autoscaling.targetCPUUtilizationPercentage) (not .Values.worker.autoscaling.targetMemoryUtilizationPercentage) -}}
{{- $errors = append $errors "worker.autoscaling.enabled needs a target: set worker.autoscaling.targetCPUUtilizationPercentage and/or worker.autoscaling.targetMemoryUtilizationPercentage." -}}
{{- end -}}
{{- end -}}
{{- if hasKey .Values.config.extra "IMAGESHARK_RENDITION_QUEUE" -}}
{{- $errors = append $errors "config.extra.IMAGESHARK_RENDITION_QUEUE is set by the chart: worker.enabled true selects the Redis queue (and runs the workers that empty it), false renders in each replica." -}}
{{- end -}}
{{- if and .Values.oidc.issuer (or (not .Values.oidc.clientId) (not .Values.oidc.existingSecret)) -}}
{{- $errors = append $errors "oidc.issuer needs oidc.clientId and oidc.existingSecret (the Secret holding the client secret): organisation sign-on takes all three." -}}
{{- end -}}
{{- if and (not .Values.oidc.issuer) (or .Values.oidc.clientId .Values.oidc.existingSecret .Values.oidc.name) -}}
{{- $errors = append $errors "oidc.clientId, oidc.existingSecret and oidc.name need oidc.issuer (the OpenID provider's issuer URL)." -}}
{{- end -}}
{{- range $name := list "IMAGESHARK_OIDC_ISSUER" "IMAGESHARK_OIDC_CLIENT_ID" "IMAGESHARK_OIDC_CLIENT_SECRET" -}}
{{- if hasKey $.Values.config.extra $name -}}
{{- $errors = append $errors (printf "config.extra.%s: organisation sign-on is configured by oidc.* (the secret through oidc.existingSecret)." $name) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.database.url .Values.database.existingSecret -}}
{{- $errors = append $errors "database.url and database.existingSecret are both set: keep one (the URL belongs in the Secret)." -}}
{{- end -}}
{{- if and .Values.mail.smtpUrl .Values.mail.existingSecret -}}
{{- $errors = append $errors "mail.smtpUrl and mail.existingSecret are both set: keep one (the URL belongs in the Secret)." -}}
{{- end -}}
{{- if and .Values.redis.url .Values.redis.existingSecret -}}
{{- $errors = append $errors "redis.url and redis.existingSecret are both set: keep one (the URL belongs in the Secret)." -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- $errors = append $errors (printf "autoscaling.minReplicas (%d) is above autoscaling.maxReplicas (%d)." (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (not .Values.autoscaling.targetCPUUtilizationPercentage) (not .Values.autoscaling.targetMemoryUtilizationPercentage) -}}
{{- $errors = append $errors "autoscaling.enabled needs a target: set autoscaling.targetCPUUtilizationPercentage and/or autoscaling.targetMemoryUtilizationPercentage." -}}
{{- end -}}
{{- if and .Values.ingress.enabled (not .Values.ingress.hosts) -}}
{{- $errors = append $errors "ingress.enabled needs at least one entry in ingress.hosts." -}}
{{- end -}}
{{- if hasKey .Values.config "forwardedAllowIps" -}}
{{- $errors = append $errors "config.forwardedAllowIps was replaced by config.trustedProxies: the addresses or CIDR ranges of your ingress controller or proxies (\"*\" is no longer accepted: it let clients choose their own address)." -}}
{{- end -}}
{{- if $errors -}}
{{- fail (printf "\n\nimageshark: invalid values:\n  - %s\n" (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}
