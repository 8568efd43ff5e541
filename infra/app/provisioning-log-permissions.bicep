// Grants the app identity what reading the provisioning logs needs (PROVISIONING_LOGS on):
// AuditLog.Read.All and Directory.Read.All, the least-privileged pair Microsoft documents for
// GET /auditLogs/provisioning. Deployed only when the admin turns the feature on.
extension microsoftGraphV1

@description('Principal (object) ID of what calls Microsoft Graph: the managed identity, or the multi-tenant app\'s service principal (multitenant-app.bicep).')
param principalId string

var graphAppId = '00000003-0000-0000-c000-000000000000'

// Microsoft Graph app role (application permission) ids, the same in every tenant.
var logAppRoles = {
  'AuditLog.Read.All': 'b0afded3-3588-46d8-8b3d-9842eff778da'
  'Directory.Read.All': '7ab1d382-f21e-4acd-a863-ba3e13f7da61'
}

resource graph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: graphAppId
}

resource appRoleGrants 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [for role in items(logAppRoles): {
  appRoleId: role.value
  principalId: principalId
  resourceId: graph.id
}]

output grantedAppRoles array = [for role in items(logAppRoles): role.key]
