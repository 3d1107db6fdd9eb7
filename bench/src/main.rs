//! `stint-bench`: placeholder entry point until the benchmark issue lands.

fn main() {
    eprintln!(
        "stint-bench: the benchmark suite is not built yet; see the per-crate criterion benches"
    );
    std::process::exit(2);
}
