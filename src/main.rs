fn main() {
    let mut argv = std::env::args_os();
    let argv0 = argv.next().unwrap_or_default();
    std::process::exit(hashreload::main_with(&argv0, argv.collect()));
}
