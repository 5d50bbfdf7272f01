/// API: Pedigree's HTTP surface.
///
/// This module owns the GraphQL schema (SDL-first: `PedigreeSchema.sdl`, kept identical to the
/// repository's `schema.graphql` by a test), its resolvers, the mapping from module errors to
/// `extensions.code`, and the Hummingbird application built by `buildApplication`.
///
/// It holds no domain logic: every answer comes from the services passed in.
