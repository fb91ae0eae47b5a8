//! Private, throwaway PostgreSQL and Redis for `pique demo` when nothing answers at
//! `DATABASE_URL` / `REDIS_URL`: started in a temporary directory on free ports, stopped and
//! removed when the demo ends. Nothing in the system's configuration is touched.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow, bail};

/// What the demo started, stopped on drop.
#[derive(Default)]
pub struct PrivateServices {
    postgres: Option<PrivatePostgres>,
    redis: Option<Child>,
    dir: Option<tempfile::TempDir>,
}

struct PrivatePostgres {
    pg_ctl: PathBuf,
    data: PathBuf,
    as_postgres: bool,
}

impl PrivateServices {
    fn dir(&mut self) -> anyhow::Result<PathBuf> {
        if self.dir.is_none() {
            self.dir = Some(tempfile::Builder::new().prefix("pique-demo-").tempdir()?);
        }
        self.dir
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .ok_or_else(|| anyhow!("no temp dir"))
    }

    /// Starts PostgreSQL with `initdb --auth=trust`; returns its server URL (database `postgres`).
    pub fn start_postgres(&mut self) -> anyhow::Result<String> {
        let bin = postgres_bin_dir().ok_or_else(|| {
            anyhow!(
                "PostgreSQL does not answer at DATABASE_URL and initdb/pg_ctl are not installed.\n\
                 Install PostgreSQL (Debian: apt-get install postgresql), point DATABASE_URL at a server, \
                 or run `docker compose up`."
            )
        })?;
        let dir = self.dir()?.join("pg");
        std::fs::create_dir_all(&dir)?;
        // initdb refuses to run as root: run it as the `postgres` system user then.
        let as_postgres = is_root();
        if as_postgres {
            chown_postgres(&dir)?;
        }
        let data = dir.join("data");
        let port = free_port()?;
        run(command(&bin.join("initdb"), as_postgres)
            .args(["--auth=trust", "-U", "postgres", "-D"])
            .arg(&data))
        .context("initdb failed")?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            dir.display()
        );
        run(command(&bin.join("pg_ctl"), as_postgres)
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "-l"])
            .arg(dir.join("log"))
            .args(["-w", "start"]))
        .context("pg_ctl start failed")?;
        self.postgres = Some(PrivatePostgres {
            pg_ctl: bin.join("pg_ctl"),
            data,
            as_postgres,
        });
        Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres"))
    }

    /// Starts `redis-server` with no persistence; returns its URL.
    pub fn start_redis(&mut self) -> anyhow::Result<String> {
        let port = free_port()?;
        let dir = self.dir()?;
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|_| {
                anyhow!(
                    "Redis does not answer at REDIS_URL and redis-server is not installed.\n\
                     Install it (Debian: apt-get install redis-server), point REDIS_URL at a server, \
                     or run `docker compose up`."
                )
            })?;
        self.redis = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("redis-server did not start on port {port}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(format!("redis://127.0.0.1:{port}/0"))
    }
}

impl Drop for PrivateServices {
    fn drop(&mut self) {
        if let Some(pg) = self.postgres.take() {
            let _ = command(&pg.pg_ctl, pg.as_postgres)
                .arg("-D")
                .arg(&pg.data)
                .args(["-m", "fast", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if let Some(mut redis) = self.redis.take() {
            let _ = redis.kill();
            let _ = redis.wait();
        }
    }
}

/// `initdb`'s directory: on `PATH`, else the newest `/usr/lib/postgresql/*/bin`.
fn postgres_bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").is_file() && p.join("pg_ctl").is_file())
    });
    on_path.or_else(|| {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").is_file())
            .collect();
        dirs.sort_by_key(|p| {
            p.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        });
        dirs.pop()
    })
}

fn command(program: &Path, as_postgres: bool) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output()?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn chown_postgres(dir: &Path) -> anyhow::Result<()> {
    // The temp dir's parent is private to root; postgres must be able to reach its own dir.
    if let Some(parent) = dir.parent() {
        run(Command::new("chmod").arg("755").arg(parent))?;
    }
    run(Command::new("chown").arg("postgres").arg(dir))
        .context("cannot hand the data directory to the postgres user")
}

/// A TCP port nothing listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
