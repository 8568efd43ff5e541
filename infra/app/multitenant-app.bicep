// The one multi-tenant app registration the monitor signs in as in every watched tenant
// (GRAPH_AUTH=workload_identity, docs/multitenant.md). Its only credential is a federated
// identity credential backed by the Function app's user-assigned identity: the app asks each
// tenant's authority for a Graph token with the identity's token as client assertion, so no
// secret or certificate exists. A managed identity alone cannot do this: it lives in the home
// tenant only and no other tenant can consent to it. requiredResourceAccess lists exactly the
// Graph application permissions of the features turned on; it is what each customer tenant's
// admin consents to. The grants in the home tenant are made by graph-permissions.bicep and its
// siblings, given this module's service principal (main.bicep).
extension microsoftGraphV1

@description('Graph uniqueName of the app registration: stable and unique in the home tenant, so that a re-deployment updates the same app. Immutable once created.')
param appUniqueName string

@description('Display name of the app registration, shown to the admins who consent to it.')
param displayName string

@description('Principal (object) ID of the user-assigned managed identity that is the app\'s only credential.')
param managedIdentityPrincipalId string

@description('PROVISIONING_LOGS is on: the app also asks for what the provisioning logs need.')
param provisioningLogs bool

@description('ACTIONS_ENABLED: the app also asks for the write permission of the operator actions.')
param actionsEnabled bool

var graphAppId = '00000003-0000-0000-c000-000000000000'

// Microsoft Graph app role (application permission) ids, the same in every tenant; each map is
// the one its grant module uses (tests/infra holds them equal).
var pollAppRoles = {
  'Synchronization.Read.All': '5ba43d2f-fa88-4db2-bd1c-a67c5f0fb1ce'
  'Application.Read.All': '9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30'
}
var logAppRoles = {
  'AuditLog.Read.All': 'b0afded3-3588-46d8-8b3d-9842eff778da'
  'Directory.Read.All': '7ab1d382-f21e-4acd-a863-ba3e13f7da61'
}
var actionAppRoles = {
  'Synchronization.ReadWrite.All': '9b50c33d-700f-43b1-b2eb-87e89b703581'
}
var requiredAppRoles = union(pollAppRoles, provisioningLogs ? logAppRoles : {}, actionsEnabled ? actionAppRoles : {})

// The audience of the managed identity's token, as shared/graph/credentials.py asks for it.
// Microsoft documents other values for US Government and China; Graph Bicep deploys to the
// public cloud (docs/multitenant.md#national-clouds).
var tokenExchangeAudience = 'api://AzureADTokenExchange'

resource app 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: appUniqueName
  displayName: displayName
  signInAudience: 'AzureADMultipleOrgs'
  requiredResourceAccess: [
    {
      resourceAppId: graphAppId
      resourceAccess: [for role in items(requiredAppRoles): {
        id: role.value
        type: 'Role'
      }]
    }
  ]

  // The identity's tokens are issued by the home tenant: issuer and subject name it there.
  resource managedIdentityCredential 'federatedIdentityCredentials@v1.0' = {
    name: '${app.uniqueName}/function-app-identity'
    description: 'The Entra Sync Monitor Function app\'s user-assigned managed identity signs in as this app.'
    audiences: [
      tokenExchangeAudience
    ]
    issuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
    subject: managedIdentityPrincipalId
  }
}

// The app's service principal in the home tenant, which the home tenant's grants go to.
resource appServicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: app.appId
}

output appId string = app.appId
output servicePrincipalId string = appServicePrincipal.id
output requiredAppRoles array = [for role in items(requiredAppRoles): role.key]
// Tenant-wide admin consent (learn.microsoft.com/entra/identity/enterprise-apps/grant-admin-consent):
// replace {customer-tenant-id} with the tenant ID or a verified domain of the customer.
output adminConsentUrlTemplate string = '${environment().authentication.loginEndpoint}{customer-tenant-id}/adminconsent?client_id=${app.appId}'
