//! Parsing `strace -f -qq -y -ttt -T -o FILE` output into whole syscalls.
//!
//! With `-f` strace writes one line per event, prefixed by the thread id. A call that blocks
//! while another thread runs is split in two lines, `name(args <unfinished ...>` and
//! `<... name resumed>rest) = ret <dur>`; [`Parser`] joins them per thread, keeping the
//! timestamp of the first half (when the call was entered). Signal (`--- SIG... ---`) and exit
//! (`+++ ... +++`) lines are not syscalls and are skipped.
//!
//! `-y` prints every fd argument and every fd returned as `N</path>`; an argument list is split
//! on top-level commas only, so a comma inside a string, a `{...}` struct, a `[...]` array or a
//! `<...>` fd path does not split it.

use std::collections::HashMap;

/// One complete syscall as strace printed it.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// Thread id that made the call.
    pub tid: u32,
    /// Wall-clock time the call was entered (`-ttt`, seconds since the epoch).
    pub ts: f64,
    /// Syscall name; raw `syscall_0x...` names of syscalls strace does not know are replaced by
    /// their names (see [`syscall_name`]).
    pub name: String,
    /// Top-level arguments, trimmed, as printed (`3</srv/data>`, `"name"`, `O_RDONLY|O_PATH`).
    pub args: Vec<String>,
    /// The return value as printed, without the errno (`0`, `-1`, `12</srv/data/f>`, `?`).
    pub ret: String,
    /// The errno name of a failed call (`ENOENT`).
    pub errno: Option<String>,
    /// Time spent in the call (`-T`); `None` when strace printed none (calls that never return).
    pub duration: Option<f64>,
}

impl Call {
    /// The argument at `index`, or "" if the call has fewer arguments.
    pub fn arg(&self, index: usize) -> &str {
        self.args.get(index).map_or("", String::as_str)
    }

    /// The call as one line, `name(arg, arg) = ret`, shortened to `max` characters.
    pub fn display(&self, max: usize) -> String {
        let mut text = format!("{}({}) = {}", self.name, self.args.join(", "), self.ret);
        if let Some(errno) = &self.errno {
            text.push(' ');
            text.push_str(errno);
        }
        shorten(&text, max)
    }
}

/// `text` cut to at most `max` characters (on a char boundary), with "..." when cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(3)).collect();
    out.push_str("...");
    out
}

/// Joins the lines of one trace into calls.
#[derive(Debug, Default)]
pub struct Parser {
    /// Per thread: the `<unfinished ...>` first half waiting for its `resumed>` line:
    /// (timestamp, name, argument text so far).
    pending: HashMap<u32, (f64, String, String)>,
    /// Lines that looked like neither a call, a signal nor an exit (reported, never fatal).
    pub unparsed: u64,
}

impl Parser {
    /// Feeds one line; returns the call it completes, if any.
    pub fn line(&mut self, line: &str) -> Option<Call> {
        let line = line.trim_end();
        if line.is_empty() {
            return None;
        }
        let Some((tid, ts, body)) = split_prefix(line) else {
            self.unparsed += 1;
            return None;
        };
        if body.starts_with("---") || body.starts_with("+++") {
            return None;
        }
        if let Some(rest) = body.strip_prefix("<... ") {
            // "<... name resumed>rest"
            let Some((name, rest)) = rest.split_once(" resumed>") else {
                self.unparsed += 1;
                return None;
            };
            let Some((start_ts, pending_name, head)) = self.pending.remove(&tid) else {
                // The first half came before strace attached (or was on another line we
                // could not read): keep what we have, timed at the resume.
                return self.finish(tid, ts, name, rest);
            };
            if pending_name != name {
                self.unparsed += 1;
            }
            // A call resumed only to be interrupted again: "<... x resumed> <unfinished ...>) = ?"
            let rest = rest.trim_start_matches(" <unfinished ...>");
            return self.finish(tid, start_ts, name, &format!("{head}{rest}"));
        }
        let Some(open) = body.find('(') else {
            self.unparsed += 1;
            return None;
        };
        let name = &body[..open];
        let after = &body[open + 1..];
        if let Some(head) = after.strip_suffix("<unfinished ...>") {
            self.pending
                .insert(tid, (ts, name.to_string(), head.trim_end().to_string()));
            return None;
        }
        self.finish(tid, ts, name, after)
    }

    /// Builds a call from `name` and the text after its opening parenthesis.
    fn finish(&mut self, tid: u32, ts: f64, name: &str, text: &str) -> Option<Call> {
        let Some(close) = closing_paren(text) else {
            self.unparsed += 1;
            return None;
        };
        let args = split_args(&text[..close]);
        let (ret, errno, duration) = parse_result(&text[close + 1..]);
        Some(Call {
            tid,
            ts,
            name: syscall_name(name),
            args,
            ret,
            errno,
            duration,
        })
    }
}

/// Parses a whole trace.
pub fn parse(text: &str) -> (Vec<Call>, u64) {
    let mut parser = Parser::default();
    let calls = text.lines().filter_map(|l| parser.line(l)).collect();
    (calls, parser.unparsed)
}

/// "TID TS body" -> (tid, ts, body).
fn split_prefix(line: &str) -> Option<(u32, f64, &str)> {
    let (tid, rest) = line.split_once(' ')?;
    let rest = rest.trim_start();
    let (ts, body) = rest.split_once(' ')?;
    Some((tid.parse().ok()?, ts.parse().ok()?, body))
}

/// Byte index of the `)` that closes an argument list starting at `text[0]`, skipping
/// strings, brackets and `-y` fd paths.
fn closing_paren(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut scan = Scanner::default();
    for (i, c) in text.char_indices() {
        if scan.skip(c) {
            continue;
        }
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' if depth == 0 => return Some(i),
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Splits an argument list on top-level commas.
fn split_args(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut depth = 0usize;
    let mut scan = Scanner::default();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if scan.skip(c) {
            continue;
        }
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                args.push(text[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = text[start..].trim();
    if !last.is_empty() || !args.is_empty() {
        args.push(last.to_string());
    }
    args
}

/// Tracks whether a character is inside a quoted string or a `-y` `N<...>` fd path.
#[derive(Default)]
struct Scanner {
    /// Inside `"..."`.
    in_string: bool,
    /// The previous character was a backslash inside a string.
    escaped: bool,
    /// Inside an fd path `<...>` (opened by `<` right after a digit).
    in_fd_path: bool,
    /// The previous character was an ASCII digit.
    after_digit: bool,
}

impl Scanner {
    /// True if `c` is quoted (part of a string or fd path) and must not be interpreted.
    fn skip(&mut self, c: char) -> bool {
        let after_digit = std::mem::replace(&mut self.after_digit, c.is_ascii_digit());
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if c == '\\' {
                self.escaped = true;
            } else if c == '"' {
                self.in_string = false;
            }
            return true;
        }
        if self.in_fd_path {
            if c == '>' {
                self.in_fd_path = false;
            }
            return true;
        }
        match c {
            '"' => {
                self.in_string = true;
                true
            }
            '<' if after_digit => {
                self.in_fd_path = true;
                true
            }
            _ => false,
        }
    }
}

/// " = ret [ERRNO (text)] [<dur>]" -> (ret, errno, duration).
fn parse_result(text: &str) -> (String, Option<String>, Option<f64>) {
    let text = text.trim();
    let Some(text) = text.strip_prefix('=') else {
        return (String::new(), None, None);
    };
    let mut text = text.trim();
    let mut duration = None;
    if let Some(open) = text.rfind(" <")
        && text.ends_with('>')
        && let Ok(d) = text[open + 2..text.len() - 1].parse::<f64>()
    {
        duration = Some(d);
        text = text[..open].trim_end();
    }
    let mut words = text.splitn(3, ' ');
    let ret = words.next().unwrap_or("").to_string();
    let errno = words
        .next()
        .filter(|w| w.len() > 1 && w.starts_with('E') && w.chars().all(|c| c.is_ascii_uppercase()))
        .map(str::to_string);
    (ret, errno, duration)
}

/// The name of a syscall; strace 6.1 prints syscalls newer than it as `syscall_0xNNN`. Numbers
/// from 424 on are the same on every architecture, so these can be named here.
pub fn syscall_name(name: &str) -> String {
    let Some(hex) = name.strip_prefix("syscall_0x") else {
        return name.to_string();
    };
    let known = match u32::from_str_radix(hex, 16) {
        Ok(435) => "clone3",
        Ok(436) => "close_range",
        Ok(437) => "openat2",
        Ok(439) => "faccessat2",
        Ok(452) => "fchmodat2",
        Ok(454) => "futex_wake",
        Ok(455) => "futex_wait",
        Ok(456) => "futex_requeue",
        Ok(457) => "statmount",
        Ok(458) => "listmount",
        Ok(462) => "mseal",
        Ok(463) => "setxattrat",
        Ok(464) => "getxattrat",
        Ok(465) => "listxattrat",
        Ok(466) => "removexattrat",
        Ok(467) => "open_tree_attr",
        _ => return name.to_string(),
    };
    known.to_string()
}

/// An fd argument as printed with `-y`: `3</srv/data>` -> (3, Some("/srv/data")); a raw
/// number or hex value (arguments of syscalls strace cannot decode) -> (n, None);
/// `AT_FDCWD` -> (-100, None).
pub fn parse_fd(arg: &str) -> Option<(i64, Option<&str>)> {
    let arg = arg.trim();
    if arg == "AT_FDCWD" {
        return Some((i64::from(libc::AT_FDCWD), None));
    }
    let (num, path) = match arg.find('<') {
        Some(open) if arg.ends_with('>') => (&arg[..open], Some(&arg[open + 1..arg.len() - 1])),
        _ => (arg, None),
    };
    let value = if let Some(hex) = num.strip_prefix("0x") {
        // A raw register: AT_FDCWD is 0xffffff9c (int) or sign-extended to 64 bits.
        let raw = u64::from_str_radix(hex, 16).ok()?;
        i64::from(raw as u32 as i32)
    } else {
        num.parse::<i64>().ok()?
    };
    Some((value, path))
}

/// A string argument as printed (`"name"`) without its quotes; `None` for `NULL`, pointers
/// and anything not a string.
pub fn parse_string(arg: &str) -> Option<&str> {
    let arg = arg.trim();
    let inner = arg.strip_prefix('"')?;
    // A string cut by -s ends in `"...`.
    Some(
        inner
            .strip_suffix("\"...")
            .or_else(|| inner.strip_suffix('"'))
            .unwrap_or(inner),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Call {
        let mut p = Parser::default();
        let call = p.line(line).expect("a call");
        assert_eq!(p.unparsed, 0);
        call
    }

    #[test]
    fn parses_a_complete_call_with_fd_paths() {
        let c = one(
            "10607 1796114936.221547 openat(4</proc/10603/fd>, \"11\", O_RDONLY|O_CLOEXEC|O_PATH) = 12</var/tmp/exp/b/d1/f1> <0.000015>",
        );
        assert_eq!(c.tid, 10607);
        assert!((c.ts - 1796114936.221547).abs() < 1e-6);
        assert_eq!(c.name, "openat");
        assert_eq!(
            c.args,
            ["4</proc/10603/fd>", "\"11\"", "O_RDONLY|O_CLOEXEC|O_PATH"]
        );
        assert_eq!(c.ret, "12</var/tmp/exp/b/d1/f1>");
        assert_eq!(c.errno, None);
        assert_eq!(c.duration, Some(0.000015));
    }

    #[test]
    fn parses_an_error_return() {
        let c = one(
            "10606 1796114936.217316 openat(3</var/tmp/exp/b>, \"d1\", O_RDONLY|O_NOFOLLOW|O_CLOEXEC|O_PATH) = -1 ENOENT (No such file or directory) <0.000031>",
        );
        assert_eq!(c.ret, "-1");
        assert_eq!(c.errno.as_deref(), Some("ENOENT"));
        assert_eq!(c.duration, Some(0.000031));
        assert_eq!(c.arg(1), "\"d1\"");
    }

    #[test]
    fn keeps_structs_and_strings_whole() {
        let c = one(
            "7 1.5 statx(9</b/a, (x)>, \"\", AT_EMPTY_PATH, STATX_BASIC_STATS, {stx_mask=STATX_BASIC_STATS, stx_mode=S_IFDIR|0700, ...}) = 0 <0.000045>",
        );
        assert_eq!(c.args.len(), 5);
        assert_eq!(c.arg(0), "9</b/a, (x)>");
        assert_eq!(c.arg(1), "\"\"");
        let c = one("7 1.5 write(2</var/log/x>, \"a) = 0, \\\"q\\\" (b\"..., 66) = 66 <0.000015>");
        assert_eq!(c.args.len(), 3);
        assert_eq!(c.ret, "66");
    }

    #[test]
    fn joins_unfinished_and_resumed_per_thread() {
        let mut p = Parser::default();
        assert_eq!(
            p.line("10 100.000001 read(7</dev/fuse>,  <unfinished ...>"),
            None
        );
        assert_eq!(
            p.line("11 100.000002 mkdirat(3</b>, \"d1\", 0700 <unfinished ...>"),
            None
        );
        let mk = p
            .line("11 100.000500 <... mkdirat resumed>) = 0 <0.000444>")
            .expect("mkdirat");
        assert_eq!(mk.name, "mkdirat");
        assert_eq!(mk.args, ["3</b>", "\"d1\"", "0700"]);
        assert!((mk.ts - 100.000002).abs() < 1e-9);
        assert_eq!(mk.duration, Some(0.000444));
        let rd = p
            .line("10 101.0 <... read resumed>\"8\\0\\0\\0\"..., 16781312) = 56 <0.999111>")
            .expect("read");
        assert_eq!(rd.name, "read");
        assert_eq!(rd.args.len(), 3);
        assert_eq!(rd.arg(0), "7</dev/fuse>");
        assert_eq!(rd.ret, "56");
        assert_eq!(p.unparsed, 0);
    }

    #[test]
    fn handles_exits_signals_and_double_interruption() {
        let mut p = Parser::default();
        assert!(
            p.line("5 1.0 --- SIGUSR1 {si_signo=SIGUSR1, si_code=SI_USER} ---")
                .is_none()
        );
        assert!(p.line("5 1.0 +++ exited with 0 +++").is_none());
        let c = p.line("5 1.0 exit_group(0)   = ?").expect("exit_group");
        assert_eq!(c.ret, "?");
        assert_eq!(c.duration, None);
        assert!(
            p.line("6 1.0 rt_sigtimedwait([INT USR1 TERM],  <unfinished ...>")
                .is_none()
        );
        let c = p
            .line("6 2.0 <... rt_sigtimedwait resumed> <unfinished ...>) = ?")
            .expect("resumed");
        assert_eq!(c.name, "rt_sigtimedwait");
        assert_eq!(c.ret, "?");
        assert_eq!(p.unparsed, 0);
    }

    #[test]
    fn names_syscalls_strace_does_not_know() {
        let c = one(
            "10606 1.0 syscall_0x1d0(0x4, 0x7ff911001cd0, 0, 0x7ff911001cb0, 0x7ff91da2a8a8, 0x10) = -1 ENODATA (No data available) <0.000021>",
        );
        assert_eq!(c.name, "getxattrat");
        assert_eq!(c.errno.as_deref(), Some("ENODATA"));
        assert_eq!(parse_fd(c.arg(0)), Some((4, None)));
        assert_eq!(syscall_name("syscall_0x1c4"), "fchmodat2");
        assert_eq!(syscall_name("syscall_0xfff"), "syscall_0xfff");
    }

    #[test]
    fn parses_fds_and_strings() {
        assert_eq!(parse_fd("3</srv/data>"), Some((3, Some("/srv/data"))));
        assert_eq!(parse_fd("AT_FDCWD"), Some((-100, None)));
        assert_eq!(parse_fd("0xffffff9c"), Some((-100, None)));
        assert_eq!(parse_fd("0xffffffffffffff9c"), Some((-100, None)));
        assert_eq!(parse_fd("NULL"), None);
        assert_eq!(parse_string("\"d1\""), Some("d1"));
        assert_eq!(parse_string("\"\""), Some(""));
        assert_eq!(parse_string("\"abc\"..."), Some("abc"));
        assert_eq!(parse_string("NULL"), None);
    }

    #[test]
    fn counts_garbage_without_failing() {
        let (calls, unparsed) = parse("not a trace line\n12 1.0 getpid() = 12 <0.000001>\n");
        assert_eq!(calls.len(), 1);
        assert_eq!(unparsed, 1);
    }
}
