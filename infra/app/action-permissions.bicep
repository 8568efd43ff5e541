// Grants the app identity what the operator actions need (ACTIONS_ENABLED: restart, pause and
// start a job): Synchronization.ReadWrite.All, the application permission Microsoft documents
// for POST .../synchronization/jobs/{id}/restart, /pause and /start (Application.ReadWrite.OwnedBy
// would need the app to own every service principal). Deployed only when the admin turns the
// actions on; the poller itself needs only the read permissions of graph-permissions.bicep.
extension microsoftGraphV1

@description('Principal (object) ID of what calls Microsoft Graph: the managed identity, or the multi-tenant app\'s service principal (multitenant-app.bicep).')
param principalId string

var graphAppId = '00000003-0000-0000-c000-000000000000'

// Microsoft Graph app role (application permission) ids, the same in every tenant.
var actionAppRoles = {
  'Synchronization.ReadWrite.All': '9b50c33d-700f-43b1-b2eb-87e89b703581'
}

resource graph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: graphAppId
}

resource appRoleGrants 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [for role in items(actionAppRoles): {
  appRoleId: role.value
  principalId: principalId
  resourceId: graph.id
}]

output grantedAppRoles array = [for role in items(actionAppRoles): role.key]
