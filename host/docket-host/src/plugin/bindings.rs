//! The host's one `bindgen!` of the step contract in `wit/`.
//!
//! Every capability import is trappable so that a host function can stop a
//! plugin that goes over a limit (the notification cap).

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "plugin",
    imports: { default: trappable },
});
