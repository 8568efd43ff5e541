"""Microsoft Graph: the reader that fetches jobs and service principals, and its credentials.

Importing this package imports nothing heavy; `shared.graph.reader` pulls in msgraph."""
