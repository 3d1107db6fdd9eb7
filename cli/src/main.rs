//! The `stint` command. Subcommands arrive with the CLI issue.

fn main() {
    eprintln!("stint: not built yet");
    std::process::exit(2);
}
