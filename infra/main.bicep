// Entra Sync Monitor: a Flex Consumption Function app that polls every Entra provisioning job
// through Microsoft Graph and keeps their history in Table Storage. Keyless throughout: one
// user-assigned identity reaches storage, the deployment container, Application Insights and Graph.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment: names the resource group and seeds the unique token in resource names.')
param environmentName string

@minLength(1)
@description('Region of every resource; it must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object ID of the deploying user or service principal (azd passes it). Gets the app identity\'s data-plane roles only with grantDeployerDataRoles.')
param principalId string = ''

@description('Give principalId the app identity\'s storage and telemetry data roles, for local debugging against the deployed account. Off by default; leave off in production.')
param grantDeployerDataRoles bool = false

@description('Grant the app identity the Microsoft Graph application permissions it needs. The deployer must be allowed to grant app roles (Privileged Role Administrator or Global Administrator); set false to grant them by hand (docs/deploy.md).')
param grantGraphPermissions bool = true

@description('GRAPH_BASE_URL: Microsoft Graph root including the version; national clouds use their own host.')
param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'

@description('POLL_SCHEDULE: NCRONTAB schedule of the poll timer.')
param pollSchedule string = '0 */5 * * * *'

@description('DISCOVERY_SCHEDULE: NCRONTAB schedule of discovery (every service principal read to find new and removed jobs).')
param discoverySchedule string = '0 0 * * * *'

@description('RETENTION_SCHEDULE: NCRONTAB schedule of the retention run.')
param retentionSchedule string = '0 30 3 * * *'

@description('RETENTION_DAYS: runs and poll records older than this are deleted; rollups and events stay.')
param retentionDays string = '400'

@description('SERVICE_PRINCIPAL_IDS: comma-separated object IDs of the service principals to watch; empty watches every one.')
param servicePrincipalIds string = ''

@description('API_REQUIRED_ROLE: with App Service Authentication on, the app role a caller of /api/v1 must hold; empty accepts any signed-in caller.')
param apiRequiredRole string = ''

@description('API_WRITE_ROLE: the app role a signed-in caller must hold to write (mute, unmute); empty: no signed-in caller may write. Needs apiAuthClientId (sign-in).')
param apiWriteRole string = ''

@description('ACTIONS_ENABLED: operator actions (restart, pause, start a job) through the API for callers with the write role; also grants the app identity Synchronization.ReadWrite.All (with grantGraphPermissions). Off by default: least privilege.')
param actionsEnabled bool = false

@description('API_KEY_ONLY_WRITES: without sign-in (apiAuthClientId empty), let anyone holding the function key write. Off by default.')
param apiKeyOnlyWrites bool = false

@description('CORS_ALLOWED_ORIGINS: comma-separated browser origins allowed to call the API (or *); empty sends no CORS headers.')
param corsAllowedOrigins string = ''

@description('Client ID of an Entra app registration that represents the API. When set, App Service Authentication is turned on: /api/v1 then needs an Entra token for it (and the API_REQUIRED_ROLE app role), besides the function key. Empty: key only.')
param apiAuthClientId string = ''

@description('HEALTH_MAX_AGE_SECONDS: /api/health answers 503 when the last successful poll is older; empty derives it from POLL_SCHEDULE.')
param healthMaxAgeSeconds string = ''

@description('ALERT_RULES: alert rules that are on: all, none, or comma-separated rule names (docs/alerts.md).')
param alertRules string = 'all'

@description('ALERT_REMINDER_HOURS: an open alert is sent again after this many hours; 0 sends no reminders.')
param alertReminderHours string = '24'

@description('ALERT_QUARANTINE_REMINDER_DAYS: a quarantined job is also reminded each N days in quarantine, with the days left before Entra disables it; 0: off.')
param alertQuarantineReminderDays string = '7'

@description('ALERT_FAILING_AFTER: the failing alert opens at this many successive complete failures.')
param alertFailingAfter string = '3'

@description('ALERT_OBJECT_DROP_PERCENT: the objectCountDrop alert opens when synchronized objects fall by more than this percentage.')
param alertObjectDropPercent string = '20'

@description('Key Vault secret URI (https://<vault>.vault.azure.net/secrets/<name>) holding the Teams incoming webhook or Workflows URL; empty: no Teams alerts. The app identity needs Key Vault Secrets User on the vault.')
param alertTeamsWebhookUrlSecretUri string = ''

@description('Key Vault secret URI holding the Slack incoming webhook URL; empty: no Slack alerts.')
param alertSlackWebhookUrlSecretUri string = ''

@description('Key Vault secret URI holding the generic webhook URL; empty: no generic webhook.')
param alertWebhookUrlSecretUri string = ''

@description('Key Vault secret URI holding the generic webhook signing secret (16 characters or more).')
param alertWebhookSecretSecretUri string = ''

// The work queue (docs/operations.md): timer runs enqueue work items in the host storage's queue
// service and a queue trigger runs each; the host names the poison queue <name>-poison, and the
// poison queue's own trigger falls back to <name>-poison-poison, hence 49 = 63 - 2 * 7.
@description('WORK_QUEUE_NAME: the work queue in the app\'s storage account; items that fail 5 times go to <name>-poison. Lowercase letters, digits and single hyphens, starting and ending with a letter or digit; at most 49 characters so that <name>-poison-poison is a valid queue name.')
@minLength(3)
@maxLength(49)
param workQueueName string = 'syncmon-work'

@description('WORK_INLINE_MAX_PRINCIPALS: a poll that reads at most this many service principals does its work in the timer run, without the queue.')
@minValue(0)
@maxValue(100000)
param workInlineMaxPrincipals int = 2000

// Provisioning logs (docs/operations.md): per-object errors need AuditLog.Read.All and
// Directory.Read.All, far broader than the jobs' two permissions, so they are the admin's choice.
@description('PROVISIONING_LOGS: off (default), counts or samples. On, and with grantGraphPermissions, the app identity is also granted AuditLog.Read.All and Directory.Read.All.')
@allowed([
  'off'
  'counts'
  'samples'
])
param provisioningLogs string = 'off'

@description('WORK_ITEM_PRINCIPALS: service principals per work item on the queue.')
@minValue(1)
@maxValue(200)
param workItemPrincipals int = 200

@description('Memory of each Flex Consumption instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most Flex Consumption instances the app scales out to: a cap on scale and on cost.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Most HTTP requests one instance serves at once (scaleAndConcurrency.triggers.http.perInstanceConcurrency); Flex Consumption scales the HTTP functions out past it. 1 is what Flex Consumption gives a Python app that sets none.')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 1

@description('Work queue messages one instance takes at once: host.json extensions.queues.batchSize, overridden by the app setting AzureFunctionsJobHost__extensions__queues__batchSize. Flex Consumption scales the queue trigger to (queue length / this) instances. Keep the default equal to host.json.')
@minValue(1)
@maxValue(32)
param queueBatchSize int = 4

// Network exposure (docs/deploy.md#hardening-and-private-networking). Enabled keeps today's public endpoints;
// Disabled needs the VNet integration, private endpoints and DNS zones these templates do not create.
// Microsoft.Storage/storageAccounts properties.publicNetworkAccess
// (learn.microsoft.com/azure/templates/microsoft.storage/storageaccounts).
@description('Public network access to the storage account: Enabled, or Disabled (private endpoints for blob, queue and table plus VNet integration of the app required first).')
@allowed([
  'Enabled'
  'Disabled'
])
param storagePublicNetworkAccess string = 'Enabled'

@description('Public network access to the Function app (its API, /api/health and scm): Enabled, or Disabled (reachable through a private endpoint only).')
@allowed([
  'Enabled'
  'Disabled'
])
param appPublicNetworkAccess string = 'Enabled'

// Many tenants (docs/multitenant.md): one deployment watches every tenant that consents to one
// multi-tenant app registration, whose credential is the app identity (no secret anywhere).
@description('Watch many Entra tenants: create a multi-tenant app registration whose only credential is the app identity (a federated identity credential) and sign in to Graph as it (GRAPH_AUTH=workload_identity); the Graph permissions then go to its service principal instead of the identity. The deployer must be allowed to create app registrations. Off: the identity calls Graph in the home tenant only.')
param multiTenant bool = false

@description('Display name of the multi-tenant app registration (multiTenant), shown to the admins who consent to it.')
param multiTenantAppDisplayName string = 'Entra Sync Monitor'

@description('TENANTS: JSON array of the tenants to watch besides the home tenant (docs/multitenant.md); empty: unset. Tenants can also be added through the API.')
param tenants string = ''

@description('API_TENANT_ROLES: with sign-in on, JSON object mapping app roles to the tenant IDs (or "*") their holders may see; empty: every caller sees every tenant.')
param apiTenantRoles string = ''

@description('Resource ID of the key vault holding the alert webhook secrets. When set, the app identity gets Key Vault Secrets User on it (the vault must use Azure RBAC); empty: grant it by hand (docs/alerts.md).')
param alertKeyVaultResourceId string = ''

// The monitor's own monitoring (docs/deploy.md#workbook-and-monitor-silent-alert): a workbook over
// the metrics the app sends, and an optional alert when it stops polling.
@description('Deploy the Azure Monitor workbook (jobs by health, quarantines, failing jobs, escrow, poll health) on the Application Insights resource.')
param deployWorkbook bool = true

@description('Alert when no poll has completed for this many minutes (a log search alert on syncmon.poll.completed); 0: no alert. Keep it well above the poll interval.')
@allowed([
  0
  15
  30
  45
  60
  120
  180
  360
  720
  1440
])
param monitorSilentAlertMinutes int = 0

@description('Resource ID of an existing action group the monitor-silent alert notifies; empty: the alert only shows in Azure Monitor.')
param monitorSilentAlertActionGroupId string = ''

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = 'func-api-${resourceToken}'
var deploymentStorageContainerName = 'app-package-${take(functionAppName, 32)}-${take(toLower(uniqueString(functionAppName, resourceToken)), 7)}'
// /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.KeyVault/vaults/<name>; the vault may
// live in another resource group. Only split when set: an empty ID must not fail the template.
var grantsAlertKeyVault = !empty(alertKeyVaultResourceId)
var alertKeyVaultSegments = grantsAlertKeyVault ? split(alertKeyVaultResourceId, '/') : []

resource rg 'Microsoft.Resources/resourceGroups@2021-04-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

// The app's only identity; rbac.bicep and graph-permissions.bicep give it what it needs.
module identity 'br/public:avm/res/managed-identity/user-assigned-identity:0.4.1' = {
  name: 'apiUserAssignedIdentity'
  scope: rg
  params: {
    name: 'id-api-${resourceToken}'
    location: location
    tags: tags
  }
}

// Host storage, the deployment package container and the app's history tables (the app creates
// its tables at first run). Shared keys are off: every client signs in with Entra ID.
module storage 'br/public:avm/res/storage/storage-account:0.8.3' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    skuName: 'Standard_LRS'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    minimumTlsVersion: 'TLS1_2'
    dnsEndpointType: 'Standard'
    publicNetworkAccess: storagePublicNetworkAccess
    networkAcls: {
      defaultAction: storagePublicNetworkAccess == 'Disabled' ? 'Deny' : 'Allow'
      bypass: 'AzureServices'
    }
    blobServices: {
      containers: [
        {
          name: deploymentStorageContainerName
        }
      ]
    }
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module workbook 'app/workbook.bicep' = if (deployWorkbook) {
  name: 'workbook'
  scope: rg
  params: {
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    location: location
    tags: tags
  }
}

module monitorSilentAlert 'app/monitor-alert.bicep' = if (monitorSilentAlertMinutes > 0) {
  name: 'monitorSilentAlert'
  scope: rg
  params: {
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    location: location
    tags: tags
    silentMinutes: monitorSilentAlertMinutes
    actionGroupId: monitorSilentAlertActionGroupId
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
    deploymentStorageContainerName: deploymentStorageContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    identityId: identity.outputs.resourceId
    identityClientId: identity.outputs.clientId
    publicNetworkAccess: appPublicNetworkAccess
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
    queueBatchSize: queueBatchSize
    graphBaseUrl: graphBaseUrl
    pollSchedule: pollSchedule
    discoverySchedule: discoverySchedule
    retentionSchedule: retentionSchedule
    retentionDays: retentionDays
    servicePrincipalIds: servicePrincipalIds
    apiRequiredRole: apiRequiredRole
    apiWriteRole: apiWriteRole
    apiKeyOnlyWrites: apiKeyOnlyWrites
    actionsEnabled: actionsEnabled
    corsAllowedOrigins: corsAllowedOrigins
    apiAuthClientId: apiAuthClientId
    healthMaxAgeSeconds: healthMaxAgeSeconds
    alertRules: alertRules
    alertReminderHours: alertReminderHours
    alertQuarantineReminderDays: alertQuarantineReminderDays
    alertFailingAfter: alertFailingAfter
    alertObjectDropPercent: alertObjectDropPercent
    alertTeamsWebhookUrlSecretUri: alertTeamsWebhookUrlSecretUri
    alertSlackWebhookUrlSecretUri: alertSlackWebhookUrlSecretUri
    alertWebhookUrlSecretUri: alertWebhookUrlSecretUri
    alertWebhookSecretSecretUri: alertWebhookSecretSecretUri
    workQueueName: workQueueName
    workInlineMaxPrincipals: workInlineMaxPrincipals
    workItemPrincipals: workItemPrincipals
    provisioningLogs: provisioningLogs
    multiTenantAppClientId: multiTenant ? multiTenantApp!.outputs.appId : ''
    tenants: tenants
    apiTenantRoles: apiTenantRoles
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbacAssignments'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    managedIdentityPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    grantUserRoles: grantDeployerDataRoles
  }
}

// The alert targets are Key Vault references resolved as the app identity (app/api.bicep).
module alertKeyVaultAccess 'app/key-vault-rbac.bicep' = if (grantsAlertKeyVault) {
  name: 'alertKeyVaultAccess'
  scope: resourceGroup(grantsAlertKeyVault ? alertKeyVaultSegments[2] : subscription().subscriptionId, grantsAlertKeyVault ? alertKeyVaultSegments[4] : rg.name)
  params: {
    keyVaultName: grantsAlertKeyVault ? last(alertKeyVaultSegments) : ''
    principalId: identity.outputs.principalId
  }
}

// The multi-tenant app registration, its federated credential and its home service principal.
module multiTenantApp 'app/multitenant-app.bicep' = if (multiTenant) {
  name: 'multiTenantApp'
  scope: rg
  params: {
    appUniqueName: 'entra-sync-monitor-${resourceToken}'
    displayName: multiTenantAppDisplayName
    managedIdentityPrincipalId: identity.outputs.principalId
    provisioningLogs: provisioningLogs != 'off'
    actionsEnabled: actionsEnabled
  }
}

// Graph's app roles go to whoever signs in to Graph: the multi-tenant app's service principal in
// the home tenant, or else the identity itself.
var graphPrincipalId = multiTenant ? multiTenantApp!.outputs.servicePrincipalId : identity.outputs.principalId

module graphPermissions 'app/graph-permissions.bicep' = if (grantGraphPermissions) {
  name: 'graphPermissions'
  scope: rg
  params: {
    principalId: graphPrincipalId
  }
}

module provisioningLogPermissions 'app/provisioning-log-permissions.bicep' = if (grantGraphPermissions && provisioningLogs != 'off') {
  name: 'provisioningLogPermissions'
  scope: rg
  params: {
    principalId: graphPrincipalId
  }
}

module actionPermissions 'app/action-permissions.bicep' = if (grantGraphPermissions && actionsEnabled) {
  name: 'actionPermissions'
  scope: rg
  params: {
    principalId: graphPrincipalId
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.SERVICE_API_NAME
output SERVICE_API_NAME string = api.outputs.SERVICE_API_NAME
output SERVICE_API_URI string = api.outputs.SERVICE_API_URI
output APPLICATIONINSIGHTS_CONNECTION_STRING string = monitoring.outputs.connectionString
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_STORAGE_TABLE_ENDPOINT string = api.outputs.tableServiceUri
output API_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output API_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output GRAPH_PERMISSIONS_GRANTED bool = grantGraphPermissions
output MULTI_TENANT_APP_CLIENT_ID string = multiTenant ? multiTenantApp!.outputs.appId : ''
output MULTI_TENANT_ADMIN_CONSENT_URL string = multiTenant ? multiTenantApp!.outputs.adminConsentUrlTemplate : ''
output MONITOR_WORKBOOK_ID string = deployWorkbook ? workbook!.outputs.workbookId : ''
output MONITOR_WORKBOOK_NAME string = deployWorkbook ? workbook!.outputs.workbookName : ''
output MONITOR_SILENT_ALERT_RULE_ID string = monitorSilentAlertMinutes > 0 ? monitorSilentAlert!.outputs.alertRuleId : ''
