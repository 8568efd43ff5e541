// Key Vault Secrets User for the app identity on the vault that holds the alert webhook secrets,
// so the app's Key Vault references (ALERT_*_WEBHOOK_URL, ALERT_WEBHOOK_SECRET) resolve.
// Deployed in the vault's resource group, which may differ from the app's. The vault must use
// the Azure RBAC permission model (enableRbacAuthorization); access policies ignore this role.

@description('Name of the existing key vault, in this deployment\'s resource group.')
param keyVaultName string

@description('Principal (object) ID of the app\'s user-assigned managed identity.')
param principalId string

// Built-in role "Key Vault Secrets User": read secret contents
// (learn.microsoft.com/azure/role-based-access-control/built-in-roles/security#key-vault-secrets-user).
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultSecretsUserRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
