//! Host-side bindings of the `sous:reconciler` world, generated from `wit/`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "reconciler",
});
