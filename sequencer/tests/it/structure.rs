//! The crate's structure: no module imports a module that imports it back (issue 14).

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let cycles = stint_testkit::modules_in_cycles(&src).unwrap();
    assert!(cycles.is_empty(), "modules in an import cycle: {cycles:?}");
}
