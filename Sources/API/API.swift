/// API: Pedigree's edges — GraphQL over HTTP, SSE and WebSocket, the OpenAI-compatible routes,
/// health, metrics, the Git webhook and GraphiQL.
///
/// This module only translates: it parses requests, resolves revision specs into lineage values
/// (`RequestLoader`), calls the services it is handed (`Serving.Services`), and turns answers and
/// errors (`ErrorCode`, with its HTTP status) into GraphQL results and HTTP responses. It holds
/// no domain logic and no orchestration: resolve → fetch → load → generate → record lives in
/// `Serving`.
