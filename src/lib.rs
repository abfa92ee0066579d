//! hashreload: polls mounted config files, hashes their content, and tells the server to reload
//! when the content changed. Data flows one way: scan (`volume`) -> digest (`digest`) -> compare
//! and deliver (`poll`, `target`) -> record (`log`).

pub mod cli;
pub mod digest;
pub mod log;
pub mod poll;
pub mod process;
pub mod target;
pub mod volume;

use std::ffi::OsString;
use std::rc::Rc;

/// Exit codes, as documented in the README.
pub const EXIT_RUNTIME: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// Parses the command line and runs; returns the exit code for anything but a signal.
pub fn run(args: Vec<OsString>) -> i32 {
    let config = match cli::parse(args) {
        Ok(cli::Parsed::Run(c)) => c,
        Ok(cli::Parsed::Help) => {
            print!("{}", cli::help());
            return 0;
        }
        Ok(cli::Parsed::Version) => {
            println!("hashreload {}", cli::VERSION);
            return 0;
        }
        Err(e) => {
            eprintln!("hashreload: {e}\ntry 'hashreload --help'");
            return EXIT_USAGE;
        }
    };
    log::init(config.log_level, config.log_format);
    if let Err(e) = process::install_signal_handlers() {
        log::error("cannot install signal handlers", &[("error", &e)]);
        return EXIT_RUNTIME;
    }
    watch(*config)
}

fn watch(config: cli::Config) -> ! {
    let options = Rc::new(target::HttpOptions {
        method: config.method,
        statuses: config.statuses,
        headers: config.headers,
        bearer_token_file: config.bearer_token_file,
        timeout: config.timeout,
    });
    let mut targets: Vec<target::Target> = config
        .urls
        .into_iter()
        .map(|u| target::Target::Http(target::Http::new(u, options.clone())))
        .collect();
    if let Some((program, args)) = config.command {
        targets.push(target::Target::Command(target::Command::new(
            program,
            args,
            config.timeout,
        )));
    }
    let labels = config
        .paths
        .iter()
        .map(|p| volume::root_label(p).to_vec())
        .collect();
    let roots = config.paths;
    let mut scanner = volume::Scanner::default();
    let scan = move || {
        roots
            .iter()
            .map(|r| scanner.scan(r).map_err(|e| e.to_string()))
            .collect()
    };
    let settings = poll::Settings {
        interval: config.interval,
        retry_interval: config.retry_interval,
        max_backoff: config.max_backoff,
        settle: config.settle,
        reload_on_start: config.reload_on_start,
    };
    poll::Poller::new(poll::SystemClock, scan, labels, targets, settings).run()
}
