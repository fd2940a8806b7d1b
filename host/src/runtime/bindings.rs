//! Host-side bindings of the `sous:reconciler` worlds, generated from `wit/`:
//! the current version, and every older one whose components still load.

/// `sous:reconciler@0.2.0`, the current contract (`wit/reconciler.wit`).
pub mod current {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "reconciler",
    });
}

/// `sous:reconciler@0.1.0`, frozen (`wit/0.1.0/reconciler.wit`): its
/// components keep working, seeing none of what 0.2.0 added.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/0.1.0",
        world: "reconciler",
    });
}
