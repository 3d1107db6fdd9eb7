//! The crate's structure (issue 14): no module imports a module that imports it back, and no
//! catch-all state (no `shared` module, no struct holding many shared handles and locks).

use std::path::PathBuf;

fn src() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `src/*.rs` file: its module name and text.
fn modules() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            out.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
    assert!(out.len() > 5, "the sources were not found in {:?}", src());
    out
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let cycles = stint_testkit::modules_in_cycles(&src()).unwrap();
    assert!(cycles.is_empty(), "modules in an import cycle: {cycles:?}");
}

/// What a field holding shared state has in its type: a shared handle, a lock or cell, a
/// notification or channel end.
const SHARED_STATE: [&str; 10] = [
    "Arc<",
    "Weak<",
    "Mutex<",
    "RwLock<",
    "OnceLock<",
    "OnceCell<",
    "Notify",
    "Atomic",
    "mpsc::",
    "watch::",
];

/// The most shared-state fields a struct may have: a handle owns one concern and holds the few
/// others it needs (the old `Shared` had 8, next to its store, genesis, config and metrics).
const MAX_SHARED_FIELDS: usize = 6;

/// `(struct, fields whose type holds shared state)` for each struct with named fields in `text`.
fn shared_state_fields(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let Some(at) = code.find("struct ") else {
            continue;
        };
        let before = &code[..at];
        if !(before.is_empty() || before.ends_with("pub ") || before.ends_with("pub(crate) ")) {
            continue;
        }
        let rest = &code[at + "struct ".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !code.trim_end().ends_with('{') {
            // A unit or tuple struct, or a `where` clause on the next lines (none here).
            continue;
        }
        let mut depth = 1usize;
        let mut count = 0usize;
        for line in lines.by_ref() {
            let field = line.trim();
            if depth == 1 && !field.starts_with("//") && !field.starts_with('#') {
                if let Some((_, ty)) = field.split_once(": ") {
                    if SHARED_STATE.iter().any(|m| ty.contains(m)) {
                        count += 1;
                    }
                }
            }
            depth += line.matches('{').count();
            depth = depth.saturating_sub(line.matches('}').count());
            if depth == 0 {
                break;
            }
        }
        out.push((name, count));
    }
    out
}

/// The structs of `text` with more than [`MAX_SHARED_FIELDS`] fields of shared state.
fn too_much_shared_state(text: &str) -> Vec<String> {
    shared_state_fields(text)
        .into_iter()
        .filter(|(_, count)| *count > MAX_SHARED_FIELDS)
        .map(|(name, _)| name)
        .collect()
}

#[test]
fn the_check_counts_the_old_catch_all_state() {
    // The fields of the sequencer's `Shared` before issue 14 split it.
    let old = "
/// Everything the tasks and RPC handlers share.
pub(crate) struct Shared {
    pub(crate) genesis: Genesis,
    pub(crate) genesis_root: Hash,
    pub(crate) config: SequencerConfig,
    pub(crate) store: Store,
    pub(crate) pool: Mutex<Mempool>,
    pub(crate) head: RwLock<Head>,
    pub(crate) chain: RwLock<ChainStatus>,
    pub(crate) metrics: Metrics,
    pub(crate) publishers: OnceLock<Publishers>,
    pub(crate) seal_now: Notify,
    /// Held while a batch is being sealed (one at a time).
    pub(crate) seal_lock: Mutex<()>,
    pub(crate) fault_done: std::sync::atomic::AtomicBool,
    pub(crate) log_tx: mpsc::UnboundedSender<LogRequest>,
}

struct Small {
    a: Arc<A>,
    b: u64,
}
";
    assert_eq!(
        shared_state_fields(old),
        vec![("Shared".to_owned(), 8), ("Small".to_owned(), 1)]
    );
    assert_eq!(too_much_shared_state(old), vec!["Shared".to_owned()]);
}

#[test]
fn no_catch_all_state() {
    let modules = modules();
    let names: Vec<&str> = modules.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        !names.contains(&"shared"),
        "a `shared` module is back: {names:?}"
    );
    let mut structs = 0;
    for (module, text) in &modules {
        assert!(
            !text.contains("struct Shared"),
            "{module}.rs defines a `Shared`"
        );
        structs += shared_state_fields(text).len();
        let big = too_much_shared_state(text);
        assert!(
            big.is_empty(),
            "{module}.rs: {big:?} hold more than {MAX_SHARED_FIELDS} fields of shared state; split them into handles that each own one concern"
        );
    }
    assert!(
        structs > 10,
        "only {structs} structs found: the parser is broken"
    );
}
