// Grants the app identity the Microsoft Graph application permissions the poller needs, and no
// more: Synchronization.Read.All reads provisioning jobs, Application.Read.All enumerates service
// principals. Re-deploying keeps the same grants.
extension microsoftGraphV1

@description('Principal (object) ID of what calls Microsoft Graph: the managed identity, or the multi-tenant app\'s service principal (multitenant-app.bicep).')
param principalId string

var graphAppId = '00000003-0000-0000-c000-000000000000'

// Microsoft Graph app role (application permission) ids, the same in every tenant.
var graphAppRoles = {
  'Synchronization.Read.All': '5ba43d2f-fa88-4db2-bd1c-a67c5f0fb1ce'
  'Application.Read.All': '9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30'
}

resource graph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: graphAppId
}

resource appRoleGrants 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [for role in items(graphAppRoles): {
  appRoleId: role.value
  principalId: principalId
  resourceId: graph.id
}]

output grantedAppRoles array = [for role in items(graphAppRoles): role.key]
