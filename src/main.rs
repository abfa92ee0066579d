fn main() {
    std::process::exit(hashreload::run(std::env::args_os().skip(1).collect()).code());
}
