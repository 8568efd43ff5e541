// The Function app on a Flex Consumption (FC1) plan: Python 3.11, the package deployed to a blob
// container the identity reads, and every app setting the code needs (names from shared/settings.py).

param name string
param planName string
param location string = resourceGroup().location
param tags object = {}

@description('azd finds the app by this tag; it matches the service name in azure.yaml.')
param serviceName string = 'api'

param storageAccountName string
param deploymentStorageContainerName string
param applicationInsightsName string

@description('Resource ID of the user-assigned managed identity.')
param identityId string

@description('Client ID of the user-assigned managed identity.')
param identityClientId string

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Most HTTP requests one instance serves at once.')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 1

@description('host.json extensions.queues.batchSize, as an app setting: work queue messages one instance takes at once.')
@minValue(1)
@maxValue(32)
param queueBatchSize int = 4

param graphBaseUrl string
param pollSchedule string
param discoverySchedule string
param retentionSchedule string
param retentionDays string
param servicePrincipalIds string
param apiRequiredRole string
param apiWriteRole string
param apiKeyOnlyWrites bool
param actionsEnabled bool
param corsAllowedOrigins string
param healthMaxAgeSeconds string
param alertRules string
param alertReminderHours string
param alertQuarantineReminderDays string
param alertFailingAfter string
param alertObjectDropPercent string

@description('Key Vault secret URIs of the alert targets (not the secrets themselves); empty: target off.')
param alertTeamsWebhookUrlSecretUri string
param alertSlackWebhookUrlSecretUri string
param alertWebhookUrlSecretUri string
param alertWebhookSecretSecretUri string

@description('The work queue: its name (the poison queue is <name>-poison), when a poll skips it, and the size of its items.')
param workQueueName string
param workInlineMaxPrincipals int
param workItemPrincipals int

@description('PROVISIONING_LOGS: off, counts or samples.')
param provisioningLogs string

@description('Client ID of the multi-tenant app registration (multitenant-app.bicep); set, the app signs in to Graph as it with the identity as federated credential (GRAPH_AUTH=workload_identity). Empty: as the identity.')
param multiTenantAppClientId string = ''

@description('TENANTS: JSON array of the watched tenants besides the home tenant (docs/multitenant.md); empty: unset.')
param tenants string = ''

@description('API_TENANT_ROLES: JSON object of app role to the tenant IDs its holders may see; empty: unset.')
param apiTenantRoles string = ''

var signsInAsApp = !empty(multiTenantAppClientId)

// Microsoft.Web/sites properties.publicNetworkAccess (learn.microsoft.com/azure/templates/microsoft.web/sites):
// Disabled leaves the app, its API and its scm endpoint reachable through a private endpoint only.
@description('Public network access to the app: Enabled, or Disabled (private endpoint only, docs/deploy.md).')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true // Linux
  }
}

@description('Client ID of the Entra app registration of the API; empty leaves App Service Authentication off.')
param apiAuthClientId string = ''

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: publicNetworkAccess
    // Key Vault references (the alert targets) resolve as the user-assigned identity.
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      // No ftpsState: Flex Consumption rejects Site.SiteConfig.FtpsState as invalid for its sites
      // (ARM "site configuration properties ... for Flex Consumption sites is invalid"; see
      // functions-app-settings#flex-consumption-plan-deprecations). FTP is closed below instead.
      appSettings: [
        // Functions host storage, identity-based (no connection string, no key).
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: storage.properties.primaryEndpoints.blob
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: storage.properties.primaryEndpoints.queue
        }
        // Also where the app keeps its history tables.
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: storage.properties.primaryEndpoints.table
        }
        // Application Insights with Entra ID authentication.
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: applicationInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // Microsoft Graph as the same identity, or (multiTenant) as the multi-tenant app whose
        // federated credential that identity is: one token authority per watched tenant.
        {
          name: 'AZURE_TENANT_ID'
          value: tenant().tenantId
        }
        {
          name: 'AZURE_CLIENT_ID'
          value: signsInAsApp ? multiTenantAppClientId : identityClientId
        }
        {
          name: 'GRAPH_AUTH'
          value: signsInAsApp ? 'workload_identity' : 'managed_identity'
        }
        {
          name: 'MANAGED_IDENTITY_CLIENT_ID'
          value: signsInAsApp ? identityClientId : ''
        }
        // The watched tenants and who may see which (docs/multitenant.md).
        {
          name: 'TENANTS'
          value: tenants
        }
        {
          name: 'API_TENANT_ROLES'
          value: apiTenantRoles
        }
        {
          name: 'GRAPH_BASE_URL'
          value: graphBaseUrl
        }
        {
          name: 'POLL_SCHEDULE'
          value: pollSchedule
        }
        {
          name: 'DISCOVERY_SCHEDULE'
          value: discoverySchedule
        }
        {
          name: 'RETENTION_SCHEDULE'
          value: retentionSchedule
        }
        {
          name: 'RETENTION_DAYS'
          value: retentionDays
        }
        {
          name: 'SERVICE_PRINCIPAL_IDS'
          value: servicePrincipalIds
        }
        // The HTTP API: who may call it (with App Service Authentication on), from which
        // browser origins, and when /api/health reports the monitor stale.
        {
          name: 'API_REQUIRED_ROLE'
          value: apiRequiredRole
        }
        {
          name: 'API_WRITE_ROLE'
          value: apiWriteRole
        }
        {
          name: 'API_KEY_ONLY_WRITES'
          value: string(apiKeyOnlyWrites)
        }
        {
          name: 'ACTIONS_ENABLED'
          value: string(actionsEnabled)
        }
        // Sign-in as deployed below (authsettingsV2): the app learns it from its own deployment,
        // since Flex Consumption is not documented to inject WEBSITE_AUTH_ENABLED.
        {
          name: 'API_SIGN_IN_ENABLED'
          value: string(!empty(apiAuthClientId))
        }
        {
          name: 'CORS_ALLOWED_ORIGINS'
          value: corsAllowedOrigins
        }
        {
          name: 'HEALTH_MAX_AGE_SECONDS'
          value: healthMaxAgeSeconds
        }
        // Alerts (docs/alerts.md): the rules' knobs, and the targets as Key Vault references
        // resolved with the app's identity (keyVaultReferenceIdentity). An empty reference
        // (`SecretUri=` and nothing) turns that target off.
        {
          name: 'ALERT_RULES'
          value: alertRules
        }
        {
          name: 'ALERT_REMINDER_HOURS'
          value: alertReminderHours
        }
        {
          name: 'ALERT_QUARANTINE_REMINDER_DAYS'
          value: alertQuarantineReminderDays
        }
        {
          name: 'ALERT_FAILING_AFTER'
          value: alertFailingAfter
        }
        {
          name: 'ALERT_OBJECT_DROP_PERCENT'
          value: alertObjectDropPercent
        }
        {
          name: 'ALERT_TEAMS_WEBHOOK_URL'
          value: '@Microsoft.KeyVault(SecretUri=${alertTeamsWebhookUrlSecretUri})'
        }
        {
          name: 'ALERT_SLACK_WEBHOOK_URL'
          value: '@Microsoft.KeyVault(SecretUri=${alertSlackWebhookUrlSecretUri})'
        }
        {
          name: 'ALERT_WEBHOOK_URL'
          value: '@Microsoft.KeyVault(SecretUri=${alertWebhookUrlSecretUri})'
        }
        {
          name: 'ALERT_WEBHOOK_SECRET'
          value: '@Microsoft.KeyVault(SecretUri=${alertWebhookSecretSecretUri})'
        }
        // The work queue (docs/operations.md): in the host storage's queue service above, read and
        // written with the same identity (Storage Queue Data Contributor, rbac.bicep).
        {
          name: 'WORK_QUEUE_NAME'
          value: workQueueName
        }
        {
          name: 'PROVISIONING_LOGS'
          value: provisioningLogs
        }
        {
          name: 'WORK_INLINE_MAX_PRINCIPALS'
          value: string(workInlineMaxPrincipals)
        }
        {
          name: 'WORK_ITEM_PRINCIPALS'
          value: string(workItemPrincipals)
        }
        // host.json's extensions.queues.batchSize, overridden here so that scaling the queue
        // trigger needs no new package; Flex Consumption takes it as the per-instance concurrency.
        {
          name: 'AzureFunctionsJobHost__extensions__queues__batchSize'
          value: string(queueBatchSize)
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentStorageContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Basic (username/password) publishing off for FTP and for scm: deployments sign in with Entra ID
// (azd, Core Tools). Microsoft.Web/sites/basicPublishingCredentialsPolicies 'ftp' and 'scm'
// (learn.microsoft.com/azure/templates/microsoft.web/sites/basicpublishingcredentialspolicies-ftp, -scm).
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output SERVICE_API_NAME string = functionApp.name
output SERVICE_API_URI string = 'https://${functionApp.properties.defaultHostName}'
output tableServiceUri string = storage.properties.primaryEndpoints.table

// Optional App Service Authentication (Entra ID): the platform validates bearer tokens issued for
// the API's app registration and passes the caller to the app in X-MS-CLIENT-PRINCIPAL, which
// the app trusts only with WEBSITE_AUTH_ENABLED (set by the platform) and checks for API_REQUIRED_ROLE.
// Token validation needs no client secret; /api/health stays open for platform health checks.
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = if (!empty(apiAuthClientId)) {
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: [
        '/api/health'
      ]
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
          clientId: apiAuthClientId
        }
        validation: {
          allowedAudiences: [
            'api://${apiAuthClientId}'
            apiAuthClientId
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}
