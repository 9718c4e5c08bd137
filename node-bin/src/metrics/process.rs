//! `process_*` metrics, read from `/proc/self` at scrape time (Linux; elsewhere none are
//! reported). The names and meanings are those of the Prometheus client libraries' process
//! collectors, so the usual dashboards work unchanged.

/// The kernel's `USER_HZ`: the unit of the CPU times in `/proc/self/stat`, 100 on every Linux
/// architecture this runs on (it is part of the kernel's user-space ABI).
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// One reading of the process's figures; a figure that could not be read is `None`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessFigures {
    pub cpu_seconds: Option<f64>,
    pub resident_memory_bytes: Option<u64>,
    pub virtual_memory_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub start_time_seconds: Option<f64>,
    pub threads: Option<u64>,
}

impl ProcessFigures {
    pub fn read() -> ProcessFigures {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let stat_fields = stat.as_deref().and_then(stat_fields_after_command);
        let field =
            |index: usize| -> Option<u64> { stat_fields.as_ref()?.get(index)?.parse().ok() };
        // Field numbers of proc(5), less 3: the slice starts at field 3 (`state`).
        let utime = field(14 - 3);
        let stime = field(15 - 3);
        let threads = field(20 - 3);
        let start_ticks = field(22 - 3);
        let vsize = field(23 - 3);
        let status = std::fs::read_to_string("/proc/self/status").ok();
        let boot_time = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|text| boot_time_seconds(&text));
        ProcessFigures {
            cpu_seconds: utime
                .zip(stime)
                .map(|(user, system)| (user + system) as f64 / CLOCK_TICKS_PER_SECOND),
            resident_memory_bytes: status
                .as_deref()
                .and_then(|text| status_kilobytes(text, "VmRSS:"))
                .map(|kilobytes| kilobytes * 1024),
            virtual_memory_bytes: vsize,
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|entries| entries.count() as u64),
            max_fds: std::fs::read_to_string("/proc/self/limits")
                .ok()
                .and_then(|text| max_open_files(&text)),
            start_time_seconds: boot_time
                .zip(start_ticks)
                .map(|(boot, ticks)| boot as f64 + ticks as f64 / CLOCK_TICKS_PER_SECOND),
            threads,
        }
    }
}

/// The fields of `/proc/self/stat` after the command name, which is in parentheses and may
/// itself hold spaces and parentheses (so the last `)` ends it).
fn stat_fields_after_command(stat: &str) -> Option<Vec<String>> {
    let after = &stat[stat.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

fn status_kilobytes(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

fn boot_time_seconds(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|line| line.starts_with("btime "))?;
    line["btime ".len()..].trim().parse().ok()
}

/// The soft limit of "Max open files" (`unlimited` is reported as none).
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_command_name_with_spaces_and_parentheses() {
        let stat = "42 (raft (node) x) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 12345 1000000 300";
        let fields = stat_fields_after_command(stat).unwrap();
        assert_eq!(fields[0], "S");
        assert_eq!(fields[14 - 3], "250");
        assert_eq!(fields[15 - 3], "50");
        assert_eq!(fields[20 - 3], "7");
        assert_eq!(fields[22 - 3], "12345");
        assert_eq!(fields[23 - 3], "1000000");
    }

    #[test]
    fn parses_limits_status_and_boot_time() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
        assert_eq!(
            status_kilobytes("Name:\tx\nVmRSS:\t  2048 kB\n", "VmRSS:"),
            Some(2048)
        );
        assert_eq!(
            boot_time_seconds("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let figures = ProcessFigures::read();
        assert!(figures.resident_memory_bytes.unwrap() > 0);
        assert!(figures.open_fds.unwrap() > 0);
        assert!(figures.start_time_seconds.unwrap() > 1_000_000_000.0);
        assert!(figures.cpu_seconds.is_some());
        assert!(figures.threads.unwrap() >= 1);
    }
}
