// Pages someone when the monitor itself goes quiet: no poll of any tenant completed for N minutes.
//
// A log search alert (scheduledQueryRules), not a metric alert (metricAlerts), though the issue
// says "metric alert": Application Insights forwards custom metrics to the metric store without
// their dimensions unless "alerting on custom metric dimensions" is turned on (extra cost, portal
// only), and a metric alert has nothing to evaluate when no data arrives at all, which is exactly
// the case to catch. The rule counts the rows of `syncmon.poll.completed` in the window: no rows,
// whether the app stopped, crashed, lost its telemetry or polls nothing, is a count of 0 < 1.
// docs/deploy.md#the-monitor-silent-alert has the design, the routing and the cost.

param applicationInsightsName string
param location string = resourceGroup().location
param tags object = {}

@description('Minutes without a completed poll after which the alert fires: the query window.')
@allowed([
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
param silentMinutes int

@description('Resource ID of an action group the alert notifies (e-mail, SMS, Teams, a paging service); empty: the alert is only listed in Azure Monitor.')
param actionGroupId string = ''

// Monitoring Reader: the rule's identity reads the Application Insights resource's logs, and no more.
var monitoringReaderRoleId = '43d0d8ad-25c7-4714-9337-8ba259a9fe05'

// ISO 8601 durations; whole hours as hours. Evaluating every 5 minutes (15 for windows past an
// hour) keeps the delay to the page near the window while a rule's price grows with its frequency.
var windowSize = silentMinutes % 60 == 0 ? 'PT${silentMinutes / 60}H' : 'PT${silentMinutes}M'
var evaluationFrequency = silentMinutes <= 60 ? 'PT5M' : 'PT15M'

// Only points that counted a poll are evidence of one (an exporter may report a counter that has
// not moved as 0). Any status counts: a poll that ended failed still ran, and the workbook and the
// app's own alerts show why it failed.
var pollsCompletedQuery = '''
customMetrics
| where name == "syncmon.poll.completed"
| where valueSum > 0
'''

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource monitorSilent 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-monitor-silent-${applicationInsightsName}'
  location: location
  tags: tags
  kind: 'LogAlert'
  // Keyless: the rule queries as its own identity (granted below), not as whoever deployed it last.
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    displayName: 'Entra Sync Monitor: no poll completed for ${silentMinutes} minutes'
    description: 'No syncmon.poll.completed metric reached Application Insights in the window: the monitor is not polling, or its telemetry is not arriving. See docs/deploy.md (the monitor-silent alert).'
    severity: 1
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    evaluationFrequency: evaluationFrequency
    windowSize: windowSize
    criteria: {
      allOf: [
        {
          query: pollsCompletedQuery
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    // Stateful: the alert resolves itself once polls are seen again.
    autoMitigate: true
    // The identity has no role until the rule exists, and a new workspace may hold no metric yet:
    // validating the query at deployment could fail for either reason. tests/infra checks the query.
    skipQueryValidation: true
    actions: {
      actionGroups: empty(actionGroupId) ? [] : [
        actionGroupId
      ]
    }
  }
}

resource monitorSilentReadsTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, monitorSilent.id, monitoringReaderRoleId)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringReaderRoleId)
    principalId: monitorSilent.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

output alertRuleId string = monitorSilent.id
output alertRuleName string = monitorSilent.name
