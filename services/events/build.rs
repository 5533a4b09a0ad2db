//! Compiles proto/ with protox (pure Rust): no system `protoc` needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files: Vec<_> = [
        "catalog/v1/catalog.proto",
        "store/v1/store.proto",
        "warehouse/v1/warehouse.proto",
        "inventory/v1/inventory.proto",
        "stockout/v1/stockout.proto",
        "floor/v1/floor.proto",
        "state/v1/state.proto",
    ]
    .iter()
    .map(|f| root.join("shelfguard").join(f))
    .collect();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [&root])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
