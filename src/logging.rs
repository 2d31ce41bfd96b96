//! Where the daemon's log goes: stderr in the foreground, syslog (which journald reads) in
//! the background, where stderr is /dev/null. `RUST_LOG` filters both the same way.

use log::{Log, Metadata, Record};
use parking_lot::Mutex;
use syslog::{Facility, Formatter3164, LoggerBackend};

/// The filter `RUST_LOG` gives, or `default` (`info`, `debug` with `-d`). fuser warns of the
/// EINVAL of its second unmount after an external umount on every clean unmount; below
/// debug its session module logs errors only, or that warning would only mislead.
fn filter(debug: bool) -> env_logger::Logger {
    let default = if debug {
        "debug"
    } else {
        "info,fuser::session=error"
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default)).build()
}

/// Logs to stderr.
pub fn init_stderr(debug: bool) {
    let logger = filter(debug);
    log::set_max_level(logger.filter());
    // Only fails when a logger is already set, which then keeps logging.
    let _ = log::set_boxed_logger(Box::new(logger));
}

/// Whether a syslog socket (`/dev/log` and the like) takes messages: asked before the daemon
/// detaches, so the terminal can be told when its log would be lost.
pub fn syslog_available() -> bool {
    syslog::unix(formatter()).is_ok()
}

/// Logs to syslog, as the daemon (facility `daemon`, tag `uringfs[PID]`); falls back to
/// stderr when no syslog socket takes messages.
pub fn init_syslog(debug: bool) {
    match syslog::unix(formatter()) {
        Ok(backend) => {
            let logger = SyslogLogger {
                filter: filter(debug),
                backend: Mutex::new(backend),
            };
            log::set_max_level(logger.filter.filter());
            let _ = log::set_boxed_logger(Box::new(logger));
        }
        Err(_) => init_stderr(debug),
    }
}

fn formatter() -> Formatter3164 {
    Formatter3164 {
        facility: Facility::LOG_DAEMON,
        hostname: None,
        process: "uringfs".into(),
        pid: std::process::id(),
    }
}

/// syslog's backend behind `RUST_LOG`'s filter.
struct SyslogLogger {
    filter: env_logger::Logger,
    /// The socket; one message at a time.
    backend: Mutex<syslog::Logger<LoggerBackend, Formatter3164>>,
}

impl Log for SyslogLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.filter.matches(record) {
            return;
        }
        let message = format!("{}: {}", record.target(), record.args());
        let mut backend = self.backend.lock();
        // A lost log line has nowhere else to go: stderr is /dev/null by now.
        let _ = match record.level() {
            log::Level::Error => backend.err(message),
            log::Level::Warn => backend.warning(message),
            log::Level::Info => backend.info(message),
            log::Level::Debug | log::Level::Trace => backend.debug(message),
        };
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::LevelFilter;

    #[test]
    fn default_filter_quiets_fusers_session_below_debug() {
        let quiet = filter(false);
        let record = |target: &'static str, level| {
            Record::builder()
                .target(target)
                .level(level)
                .args(format_args!("x"))
                .build()
        };
        if std::env::var_os("RUST_LOG").is_none() {
            assert!(quiet.matches(&record("uringfs", log::Level::Info)));
            assert!(!quiet.matches(&record("fuser::session", log::Level::Warn)));
            assert!(filter(true).matches(&record("fuser::session", log::Level::Debug)));
            assert_eq!(filter(true).filter(), LevelFilter::Debug);
        }
    }
}
