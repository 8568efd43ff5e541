// Log Analytics and a workspace-based Application Insights that accepts Entra ID-authenticated
// telemetry only (the app identity holds Monitoring Metrics Publisher, see rbac.bicep).

param logAnalyticsName string
param applicationInsightsName string
param location string = resourceGroup().location
param tags object = {}

@description('Days Log Analytics keeps data; the first 31 days come with the ingestion price.')
@minValue(30)
@maxValue(730)
param retentionInDays int = 30

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    // Resource or workspace permissions: reading the Application Insights resource is enough to
    // query its logs (the workbook's readers, the monitor-silent alert's identity). An ARM-created
    // workspace without the flag requires workspace permissions, which workspace-based Application
    // Insights does not expect (convert-classic-resource, "Access mode"; logs/manage-access).
    features: {
      enableLogAccessUsingOnlyResourcePermissions: true
    }
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    // The instrumentation key alone can no longer send telemetry.
    DisableLocalAuth: true
  }
}

output applicationInsightsName string = applicationInsights.name
output connectionString string = applicationInsights.properties.ConnectionString
output logAnalyticsWorkspaceId string = logAnalytics.id
