//! `OwnPostgres`: a PostgreSQL server of the test's own, made with `initdb` in a temporary
//! directory and started with `pg_ctl` on a free port, so that a test can stop and restart the
//! database under a running server without touching the shared one (`TEST_DATABASE_URL`).

use std::path::PathBuf;
use std::process::Command;

pub struct OwnPostgres {
    bindir: PathBuf,
    dir: PathBuf,
    port: u16,
    /// Run as root, PostgreSQL's tools must run as another user (`initdb` refuses root).
    as_user: Option<&'static str>,
}

/// The directory holding `initdb` and `pg_ctl`: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian keeps them off the PATH).
fn bindir() -> Option<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Some(dir);
        }
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| d.join("initdb").exists())
        .collect();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl OwnPostgres {
    /// A fresh, started server; `None` (with a note on stderr) where PostgreSQL's server tools
    /// are not installed. On CI they must be: there the test fails instead of skipping.
    pub fn start() -> Option<OwnPostgres> {
        let Some(bindir) = bindir() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have PostgreSQL's server tools (initdb, pg_ctl)"
            );
            eprintln!("SKIPPED (own PostgreSQL): initdb not found");
            return None;
        };
        let dir = crate::helpers::temp_dir("own-postgres");
        // /proc/self belongs to the process's effective user.
        let root =
            std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
        let as_user = root.then_some("postgres");
        if let Some(user) = as_user {
            let status = Command::new("chown")
                .args(["-R", user])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(status.success(), "chown the own PostgreSQL's directory");
        }
        let pg = OwnPostgres {
            bindir,
            dir,
            port: free_port(),
            as_user,
        };
        let data = pg.data();
        pg.run("initdb", |c| {
            c.args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data);
        });
        pg.resume();
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs one of PostgreSQL's tools (as the `postgres` user when this test runs as root) and
    /// fails the test with its output when it fails.
    fn run(&self, tool: &str, args: impl FnOnce(&mut Command)) {
        let mut command = self.command(tool);
        args(&mut command);
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bindir.join(tool);
        match self.as_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again) on the same port and data, and waits until it accepts
    /// connections.
    pub fn resume(&self) {
        let (data, dir, port) = (self.data(), self.dir.clone(), self.port);
        self.run("pg_ctl", |c| {
            c.arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("log"))
                .args(["-w", "-t", "30", "-o"])
                .arg(format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                    dir.display()
                ))
                .arg("start");
        });
    }

    /// Freezes the server and every backend (SIGSTOP), as a hung host, a network partition
    /// that drops packets or a lock that never clears would: connections stay open, nothing
    /// answers.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    /// Sends `signal` to the postmaster (first: it starts no process once stopped) and then to
    /// every process it started; one of those may have exited meanwhile.
    fn signal(&self, signal: &str) {
        let Ok(pid_file) = std::fs::read_to_string(self.data().join("postmaster.pid")) else {
            return;
        };
        let postmaster: u32 = pid_file.lines().next().unwrap().trim().parse().unwrap();
        let kill = |pid: &str| {
            Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid)
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap()
                .success()
        };
        assert!(kill(&postmaster.to_string()), "kill -{signal} {postmaster}");
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid ...: the command may hold spaces, so read after its ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(postmaster) {
                kill(&entry.file_name().to_string_lossy());
            }
        }
    }

    /// Stops the server: connections are cut, new ones refused.
    pub fn stop(&self) {
        self.stop_with("fast");
    }

    fn stop_with(&self, mode: &str) {
        let data = self.data();
        self.run("pg_ctl", |c| {
            c.arg("-D").arg(&data).args(["-m", mode, "-w", "stop"]);
        });
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        // A frozen server cannot be stopped.
        self.signal("CONT");
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
