//! Capability: read secrets the deployment hands to this step.
//!
//! A capability of its own, apart from [`crate::settings`], so that a
//! plugin's import list shows plainly whether it asks for credentials.

/// The secret named `name`, if the deployment grants it.
pub fn get(name: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    return crate::guest::secret(name);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::secret(name);
}
