//! Capability: read the deployment's settings for this step.
//!
//! Settings are plain values an operator sets per deployment, such as a
//! sender address; they are not part of the case.

/// The value of setting `key`, if the deployment sets it.
pub fn get(key: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    return crate::guest::setting(key);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::setting(key);
}
