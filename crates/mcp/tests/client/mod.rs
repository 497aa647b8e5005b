//! Talking to the server through rmcp's own client: shared by this crate's tests and
//! `crates/cli/tests/mcp.rs`, which includes this file by path.

#![allow(dead_code)]

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
};
use rmcp::service::{RoleClient, RunningService};
use serde_json::Value;

/// A connected client.
pub type Client = RunningService<RoleClient, ClientConfig>;

/// A client that introduces itself as `name` in `initialize`.
pub fn named(name: &str) -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new(name, "1.0"),
    )
}

/// Calls `tool` with `args` (a JSON object); a protocol error fails the test.
pub async fn call(c: &Client, tool: &str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    c.call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

/// The structured result, which must be an object, asserting whether the call was
/// refused.
pub fn result(r: &CallToolResult, is_error: bool) -> Value {
    assert_eq!(r.is_error, Some(is_error), "{r:?}");
    let v = r.structured_content.clone().expect("structured content");
    assert!(v.is_object(), "{v}");
    v
}

/// Every text block of the result.
pub fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}
