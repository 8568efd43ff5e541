// An Azure Monitor workbook on the Application Insights resource: jobs by health, quarantines,
// failing jobs, escrow and the monitor's own poll health, from the OpenTelemetry metrics the app
// sends (shared/telemetry.py). They land in the classic `customMetrics` table (workspace-based
// resources keep it as a compatibility view of AppMetrics): the name as the app spells it, the
// attributes in customDimensions, and each export interval's aggregate in valueSum (a counter's
// increase, a gauge's value, a histogram's sum), valueCount and valueMax. Histograms arrive as
// sum, count, min and max only, without buckets, so percentiles are over per-export means.
// docs/workbook.md says what each panel shows.

param applicationInsightsName string
param location string = resourceGroup().location
param tags object = {}

@description('Name of the workbook in the portal gallery of the Application Insights resource.')
param displayName string = 'Entra Sync Monitor'

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

var resourceType = 'microsoft.insights/components'

// Every panel's query keeps the tenants picked in the Tenant parameter, whose All value is "*":
// | where "*" in ({Tenant}) or tenant in ({Tenant})

var tenantsQuery = '''
customMetrics
| where name startswith "syncmon."
| extend tenant = tostring(customDimensions.tenant)
| where isnotempty(tenant)
| summarize by tenant
| order by tenant asc
'''

// The gauge reports every health of a tenant at each export; the latest export of each tenant is
// its state now (a health the tenant no longer has is not carried forward from older exports).
var jobsNowQuery = '''
let jobs = customMetrics
| where name == "syncmon.jobs"
| extend tenant = tostring(customDimensions.tenant), health = tostring(customDimensions.health)
| where "*" in ({Tenant}) or tenant in ({Tenant});
jobs
| summarize snapshot = max(timestamp) by tenant
| join kind=inner (jobs) on tenant
| where timestamp >= snapshot - 2m
| summarize arg_max(timestamp, valueSum) by tenant, health
| summarize Total = sum(valueSum),
    Healthy = sumif(valueSum, health == "healthy"),
    Warning = sumif(valueSum, health == "warning"),
    Failing = sumif(valueSum, health == "failing"),
    Stale = sumif(valueSum, health == "stale"),
    Quarantined = sumif(valueSum, health == "quarantined"),
    Paused = sumif(valueSum, health == "paused"),
    NotRun = sumif(valueSum, health == "notRun"),
    Unobserved = sumif(valueSum, health == "unobserved"),
    Reported = max(timestamp)
    by Tenant = tenant
| order by Failing desc, Quarantined desc, Tenant asc
'''

var jobsByHealthQuery = '''
customMetrics
| where name == "syncmon.jobs"
| extend tenant = tostring(customDimensions.tenant), health = tostring(customDimensions.health)
| where "*" in ({Tenant}) or tenant in ({Tenant})
| summarize jobs = avg(valueSum) by bin(timestamp, {TimeRange:grain}), tenant, health
| summarize jobs = sum(jobs) by timestamp, health
| order by timestamp asc
'''

// One health over time, a series per tenant.
var quarantinedQuery = '''
customMetrics
| where name == "syncmon.jobs"
| extend tenant = tostring(customDimensions.tenant), health = tostring(customDimensions.health)
| where health == "quarantined"
| where "*" in ({Tenant}) or tenant in ({Tenant})
| summarize jobs = avg(valueSum) by bin(timestamp, {TimeRange:grain}), tenant
| order by timestamp asc
'''

var failingQuery = '''
customMetrics
| where name == "syncmon.jobs"
| extend tenant = tostring(customDimensions.tenant), health = tostring(customDimensions.health)
| where health == "failing"
| where "*" in ({Tenant}) or tenant in ({Tenant})
| summarize jobs = avg(valueSum) by bin(timestamp, {TimeRange:grain}), tenant
| order by timestamp asc
'''

var escrowQuery = '''
customMetrics
| where name == "syncmon.jobs.escrowed"
| extend tenant = tostring(customDimensions.tenant)
| where "*" in ({Tenant}) or tenant in ({Tenant})
| summarize escrowed = avg(valueSum) by bin(timestamp, {TimeRange:grain}), tenant
| order by timestamp asc
'''

var pollsByStatusQuery = '''
customMetrics
| where name == "syncmon.poll.completed"
| extend tenant = tostring(customDimensions.tenant), status = tostring(customDimensions.status)
| where "*" in ({Tenant}) or tenant in ({Tenant})
| summarize polls = sum(valueSum) by bin(timestamp, {TimeRange:grain}), status
| order by timestamp asc
'''

// A poll runs every few minutes per tenant, so an export interval mostly holds one poll and its
// mean is that poll's duration; the percentiles weight each mean by the polls it stands for.
var pollDurationQuery = '''
customMetrics
| where name == "syncmon.poll.duration" and valueCount > 0
| extend tenant = tostring(customDimensions.tenant)
| where "*" in ({Tenant}) or tenant in ({Tenant})
| extend mean = valueSum / valueCount
| summarize p50 = percentilew(mean, valueCount, 50), p95 = percentilew(mean, valueCount, 95), max = max(valueMax)
    by bin(timestamp, {TimeRange:grain})
| order by timestamp asc
'''

// Over a fixed two days, not the picked range: a tenant that went silent must still be listed.
var lastPollQuery = '''
customMetrics
| where name == "syncmon.poll.completed" and valueSum > 0
| extend tenant = tostring(customDimensions.tenant), status = tostring(customDimensions.status)
| where "*" in ({Tenant}) or tenant in ({Tenant})
| summarize arg_max(timestamp, status) by tenant
| project Tenant = tenant, LastPoll = timestamp, LastStatus = status,
    MinutesSinceLastPoll = datetime_diff("minute", now(), timestamp)
| order by MinutesSinceLastPoll desc
'''

var graphQuery = '''
customMetrics
| where name in ("syncmon.graph.requests", "syncmon.graph.throttled")
| extend tenant = tostring(customDimensions.tenant)
| where "*" in ({Tenant}) or tenant in ({Tenant})
| extend series = iff(name == "syncmon.graph.requests", "requests", "throttled (429)")
| summarize calls = sum(valueSum) by bin(timestamp, {TimeRange:grain}), series
| order by timestamp asc
'''

var workbookContent = {
  version: 'Notebook/1.0'
  isLocked: false
  fallbackResourceIds: [
    applicationInsights.id
  ]
  items: [
    {
      type: 1
      name: 'intro'
      content: {
        json: '## Entra Sync Monitor\nProvisioning jobs by health, quarantines, failing jobs, escrow and the monitor\'s own polls, from the metrics the app sends. Pick a time range and tenants; see docs/workbook.md.'
      }
    }
    {
      type: 9
      name: 'parameters'
      content: {
        version: 'KqlParameterItem/1.0'
        style: 'pills'
        queryType: 0
        resourceType: resourceType
        parameters: [
          {
            id: guid('syncmon-workbook', 'TimeRange')
            version: 'KqlParameterItem/1.0'
            name: 'TimeRange'
            label: 'Time range'
            type: 4
            isRequired: true
            value: {
              durationMs: 86400000
            }
            typeSettings: {
              allowCustom: true
              selectableValues: [
                {
                  durationMs: 3600000
                }
                {
                  durationMs: 14400000
                }
                {
                  durationMs: 43200000
                }
                {
                  durationMs: 86400000
                }
                {
                  durationMs: 259200000
                }
                {
                  durationMs: 604800000
                }
                {
                  durationMs: 2592000000
                }
              ]
            }
          }
          {
            id: guid('syncmon-workbook', 'Tenant')
            version: 'KqlParameterItem/1.0'
            name: 'Tenant'
            label: 'Tenant'
            type: 2
            isRequired: true
            multiSelect: true
            quote: '\''
            delimiter: ','
            query: tenantsQuery
            queryType: 0
            resourceType: resourceType
            timeContext: {
              durationMs: 0
            }
            timeContextFromParameter: 'TimeRange'
            typeSettings: {
              additionalResourceOptions: [
                'value::all'
              ]
              selectAllValue: '*'
              showDefault: false
            }
            defaultValue: 'value::all'
          }
        ]
      }
    }
    {
      type: 1
      name: 'jobs-header'
      content: {
        json: '### Jobs'
      }
    }
    {
      type: 3
      name: 'jobs-now'
      customWidth: '100'
      content: {
        version: 'KqlItem/1.0'
        title: 'Jobs by health now, by tenant (latest report of each tenant)'
        query: jobsNowQuery
        size: 0
        queryType: 0
        resourceType: resourceType
        visualization: 'table'
        timeContext: {
          durationMs: 0
        }
        timeContextFromParameter: 'TimeRange'
      }
    }
    {
      type: 3
      name: 'jobs-by-health'
      customWidth: '100'
      content: {
        version: 'KqlItem/1.0'
        title: 'Jobs by health over time'
        query: jobsByHealthQuery
        size: 0
        queryType: 0
        resourceType: resourceType
        visualization: 'areachart'
        timeContext: {
          durationMs: 0
        }
        timeContextFromParameter: 'TimeRange'
      }
    }
    {
      type: 3
      name: 'quarantined'
      customWidth: '50'
      content: {
        version: 'KqlItem/1.0'
        title: 'Quarantined jobs over time, by tenant'
        query: quarantinedQuery
        size: 0
        queryType: 0
        resourceType: resourceType
        visualization: 'timechart'
        timeContext: {
          durationMs: 0
        }
        timeContextFromParameter: 'TimeRange'
      }
    }
    {
      type: 3
      name: 'failing'
      customWidth: '50'
      content: {
        version: 'KqlItem/1.0'
        title: 'Failing jobs over time, by tenant'
        query: failingQuery
        size: 0
        queryType: 0
        resourceType: resourceType
        visualization: 'timechart'
        timeContext: {
          durationMs: 0
        }
        timeContextFromParameter: 'TimeRange'
      }
    }
    {
      type: 3
      name: 'escrow'
      customWidth: '100'
      content: {
        version: 'KqlItem/1.0'
        title: 'Jobs in escrow over time, by tenant'
        query: escrowQuery
        size: 0
        queryType: 0
        resourceType: resourceType
        visualization: 'timechart'
        timeContext: {
          durationMs: 0
        }
        timeContextFromParameter: 'TimeRange'
      }
    }
    {
      type: 1
      name: 'polls-header'
      content: {
        json: '### The monitor\'s polls'
      }
    }
    {
      type: 3
      name: 'last-poll'
      customWidth: '100'
      content: {
        version: 'KqlItem/1.0'
        title: 'Time since the last completed poll, by tenant (last two days)'
        query: lastPollQuery
        size: 1
        queryType: 0
        resourceType: resourceType
        visualization: 'table'
        timeContext: {
          durationMs: 172800000
        }
      }
    }
    {
      type: 3
      name: 'polls-by-status'
      customWidth: '50'
      content: {
        version: 'KqlItem/1.0'
        title: 'Poll completions by status'
        query: pollsByStatusQuery
        size: 0
        queryType: 0
        resourceType: resourceType
        visualization: 'barchart'
        timeContext: {
          durationMs: 0
        }
        timeContextFromParameter: 'TimeRange'
      }
    }
    {
      type: 3
      name: 'poll-duration'
      customWidth: '50'
      content: {
        version: 'KqlItem/1.0'
        title: 'Poll duration, seconds (p50 and p95 of per-export means, max)'
        query: pollDurationQuery
        size: 0
        queryType: 0
        resourceType: resourceType
        visualization: 'timechart'
        timeContext: {
          durationMs: 0
        }
        timeContextFromParameter: 'TimeRange'
      }
    }
    {
      type: 3
      name: 'graph'
      customWidth: '100'
      content: {
        version: 'KqlItem/1.0'
        title: 'Microsoft Graph requests and throttled responses'
        query: graphQuery
        size: 0
        queryType: 0
        resourceType: resourceType
        visualization: 'timechart'
        timeContext: {
          durationMs: 0
        }
        timeContextFromParameter: 'TimeRange'
      }
    }
  ]
}

// A shared workbook on the Application Insights resource; a stable name keeps redeploys in place.
resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, applicationInsights.id, 'entra-sync-monitor-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: applicationInsights.id
    version: 'Notebook/1.0'
    serializedData: string(workbookContent)
  }
}

output workbookId string = workbook.id
output workbookName string = workbook.name
