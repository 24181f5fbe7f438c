//! The public API's shape is reviewed like code: `api/schema.graphql` is written from the schema,
//! and the snapshot fails CI when they drift.

#[test]
fn schema_snapshot() {
    let sdl = api::graphql::sdl();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    if on_disk != sdl {
        std::fs::write(&path, &sdl).expect("write api/schema.graphql");
    }
    insta::assert_snapshot!("schema.graphql", sdl);
}
