/// Lineage: which model, at which commit, made from what.
///
/// This module turns a revision spec (`name@sha`, `name@main`, `name@v1.2.0`, `name#prod`) into
/// a commit, discovers the models a commit holds, and walks the DVC pipeline upstream of a model
/// to its source datasets, locked parameters and code. It reads through `GitStore` and parses
/// through `DVCKit`, caching by immutable ids (commit and blob shas), so answers are cheap and
/// safe to share between concurrent requests.
///
/// It must not fetch artifacts or load models; it only describes them.
