//! A real PostgreSQL server for the tests: Debian's binaries (`/usr/lib/postgresql/*/bin`), one
//! throwaway cluster per test run in a temporary directory on a loopback port, a fresh database
//! per test. As root, `initdb` and the server run as the `postgres` user (initdb refuses root).
//!
//! Where PostgreSQL is not installed the PostgreSQL tests say so loudly on stderr and pass
//! without running; with `SECUREMAIL_REQUIRE_POSTGRES=1` (set by `.ci/run`) they fail instead.
//!
//! [`run`] runs a test body with the thread's [`Env`](super::Env)s pointed at a fresh database,
//! so the tests written for SQLite run unchanged against PostgreSQL ([`on_postgres!`]).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use super::Env;

/// The password of both the superuser and the `securemail` role of the test cluster.
pub const PASSWORD: &str = "test-db-password";
/// The environment variable the configs name in `[store] password_env`.
pub const PASSWORD_ENV: &str = "SECUREMAIL_TEST_DB_PASSWORD";

pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
    /// The CA that signed the server's certificate (for localhost), PEM: the server speaks TLS
    /// to a client that asks (`sslmode=require`), plaintext to the others on loopback.
    pub ca_pem: String,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// The tests' server settings: durability traded for speed (a crash loses the throwaway
/// cluster, which nobody minds).
const TEST_SETTINGS: &str = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off";
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

thread_local! {
    /// The database this thread's new `Env`s use, inside [`run`].
    static CURRENT: RefCell<Option<Database>> = const { RefCell::new(None) };
}

/// A fresh database in the cluster.
#[derive(Clone, Debug)]
pub struct Database {
    pub name: String,
    pub port: u16,
}

impl Database {
    /// The `[store]` table of a config using this database (key file beside the config dir).
    pub fn store_toml(&self) -> String {
        format!(
            "url = \"{}\"\npassword_env = \"{PASSWORD_ENV}\"\nkey_file = \"../securemail.key\"\n",
            self.url()
        )
    }

    /// The `[store]` table of a config reaching this database over verified TLS, by the name
    /// on the server's certificate (`localhost`), trusting the CA in `ca_file` (relative to the
    /// config's directory).
    pub fn tls_store_toml(&self, ca_file: &str) -> String {
        format!(
            "url = \"postgres://securemail@localhost:{}/{}?sslmode=require\"\n\
             password_env = \"{PASSWORD_ENV}\"\nkey_file = \"../securemail.key\"\nca_file = \"{ca_file}\"\n",
            self.port, self.name
        )
    }

    pub fn url(&self) -> String {
        format!(
            "postgres://securemail@127.0.0.1:{}/{}",
            self.port, self.name
        )
    }

    /// Ends every throttling wait in this database, as the clock would.
    pub fn let_throttle_pass(&self) {
        self.admin()
            .execute(
                "UPDATE codes SET next_attempt = extract(epoch FROM now())::bigint - 1
                 WHERE next_attempt IS NOT NULL",
                &[],
            )
            .unwrap();
    }

    /// A superuser connection to this database, for looking inside.
    pub fn admin(&self) -> postgres::Client {
        admin_client(self.port, &self.name)
    }

    /// A host of its own (directory, config) on this database, holding the key file `key` as
    /// every host of a shared store does, with `[store] lease` when given. `extra` follows the
    /// config's tables, as in [`Env::new`].
    pub fn host(&self, key: &Path, lease: Option<&str>, extra: &str) -> Env {
        let mut env = Env::new("");
        env.store = self
            .store_toml()
            .replace("\"../securemail.key\"", &format!("\"{}\"", key.display()));
        if let Some(lease) = lease {
            env.store.push_str(&format!("lease = \"{lease}\"\n"));
        }
        if !env.env.iter().any(|(k, _)| k == PASSWORD_ENV) {
            env.env.push((PASSWORD_ENV.into(), PASSWORD.into()));
        }
        env.write_config(extra);
        env
    }
}

/// A sealing key in `dir` for hosts that start at once on a new store (as an operator copies one
/// key file to every host beforehand).
pub fn shared_key(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let key = dir.join("shared.key");
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .unwrap();
    std::fs::write(&key, bytes).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    key
}

/// The database of the test running on this thread, if it runs on PostgreSQL.
pub fn current() -> Option<Database> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Runs `body` against a fresh PostgreSQL database (every `Env` it makes uses it), or reports
/// the skip (see the module docs).
pub fn run(name: &str, body: impl FnOnce()) {
    let Some(db) = fresh_database(name) else {
        return;
    };
    CURRENT.with(|c| *c.borrow_mut() = Some(db));
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            CURRENT.with(|c| *c.borrow_mut() = None);
        }
    }
    let _reset = Reset;
    body();
}

/// A new empty database owned by the `securemail` role; `None` when PostgreSQL is missing
/// and not required.
pub fn fresh_database(test: &str) -> Option<Database> {
    let cluster = match CLUSTER.get_or_init(|| start(TEST_SETTINGS)) {
        Ok(c) => c,
        Err(why) => {
            if std::env::var("SECUREMAIL_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("PostgreSQL is required (SECUREMAIL_REQUIRE_POSTGRES=1) but: {why}");
            }
            eprintln!(
                "\n*** SKIPPED PostgreSQL test {test}: {why}\n*** install it with \
                 `apt-get install postgresql` (the tests use /usr/lib/postgresql/*/bin) and run \
                 cargo test again; set SECUREMAIL_REQUIRE_POSTGRES=1 to make this a failure\n"
            );
            return None;
        }
    };
    let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
    let name = format!("t{}_{n}", std::process::id());
    let mut admin = admin_client(cluster.port, "postgres");
    admin
        .batch_execute(&format!("CREATE DATABASE {name} OWNER securemail"))
        .unwrap();
    Some(Database {
        name,
        port: cluster.port,
    })
}

fn admin_client(port: u16, db: &str) -> postgres::Client {
    postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .password(PASSWORD)
        .dbname(db)
        .connect(postgres::NoTls)
        .unwrap()
}

/// The cluster's directory and port, once it runs.
pub fn cluster() -> Option<&'static Cluster> {
    CLUSTER.get_or_init(|| start(TEST_SETTINGS)).as_ref().ok()
}

/// Starts this process's cluster with `settings` (server `-c` options) instead of the tests'
/// (benchmarks: `""` for PostgreSQL's own defaults, fsync and synchronous commits on). Only
/// the first call in a process chooses; later ones, and [`fresh_database`], get that cluster.
pub fn start_with(settings: &'static str) -> Result<&'static Cluster, String> {
    CLUSTER
        .get_or_init(|| start(settings))
        .as_ref()
        .map_err(Clone::clone)
}

impl Cluster {
    /// Runs a server binary (`initdb`, `pg_ctl`) as the cluster's owner.
    fn command(&self, tool: &str) -> Command {
        as_owner(&self.bin.join(tool))
    }
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn server_options(dir: &Path, port: u16, settings: &str) -> String {
    let parent = dir.parent().unwrap_or(dir).display();
    format!(
        "-k {} -p {port} -c listen_addresses=127.0.0.1 -c max_connections=400 -c ssl=on \
         -c ssl_cert_file={parent}/server.crt -c ssl_key_file={parent}/server.key {settings}",
        dir.display()
    )
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = super::base64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Finds the binaries, makes the cluster, starts it with `settings` and arranges for it to
/// stop when this test process ends.
fn start(settings: &str) -> Result<Cluster, String> {
    let bin = find_bin().ok_or("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")?;
    let parent = tempfile::Builder::new()
        .prefix("securemail-pg-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    let dir = parent.join("data");
    std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
    let pwfile = parent.join("pw");
    std::fs::write(&pwfile, PASSWORD).map_err(|e| e.to_string())?;
    let ca = super::Ca::new("securemail test database CA");
    let leaf = ca.leaf(&["localhost"]);
    let crt: String = leaf.chain.iter().map(|c| pem("CERTIFICATE", c)).collect();
    std::fs::write(parent.join("server.crt"), crt).map_err(|e| e.to_string())?;
    let key_file = parent.join("server.key");
    std::fs::write(&key_file, pem("PRIVATE KEY", leaf.key.secret_der()))
        .map_err(|e| e.to_string())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    if is_root() {
        let owner = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&parent)
            .status()
            .map_err(|e| e.to_string())?;
        if !owner.success() {
            return Err("cannot give the cluster directory to the postgres user".into());
        }
    }
    let initdb = as_owner(&bin.join("initdb"))
        .args(["-D"])
        .arg(&dir)
        .args(["-A", "scram-sha-256", "-U", "postgres", "--pwfile"])
        .arg(&pwfile)
        .stdout(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if !initdb.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let cluster = Cluster {
        dir,
        port,
        bin,
        ca_pem: ca.pem(),
    };
    let started = cluster
        .command("pg_ctl")
        .args(["-D"])
        .arg(&cluster.dir)
        .args(["-w", "-l"])
        .arg(cluster.dir.join("log"))
        .args(["-o", &server_options(&cluster.dir, port, settings)])
        .arg("start")
        .stdout(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if !started.status.success() {
        let log = std::fs::read_to_string(cluster.dir.join("log")).unwrap_or_default();
        return Err(format!("pg_ctl start failed: {log}"));
    }
    stop_when_done(&cluster, &parent);
    let mut admin = admin_client(port, "postgres");
    admin
        .batch_execute(&format!(
            "CREATE ROLE securemail LOGIN PASSWORD '{PASSWORD}'"
        ))
        .map_err(|e| e.to_string())?;
    Ok(cluster)
}

/// A watcher that stops the server and removes its directory once this process is gone.
fn stop_when_done(cluster: &Cluster, parent: &Path) {
    let pg_ctl = cluster.bin.join("pg_ctl");
    let stop = if is_root() {
        format!("runuser -u postgres -- {}", pg_ctl.display())
    } else {
        pg_ctl.display().to_string()
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} -D '{dir}' -m fast stop; rm -rf '{parent}'",
        pid = std::process::id(),
        dir = cluster.dir.display(),
        parent = parent.display(),
    );
    // Never waited for: it outlives this process on purpose, to stop the server after it.
    #[allow(clippy::zombie_processes)]
    Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
}

fn find_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").is_file() && b.join("pg_ctl").is_file())
        .collect();
    found.sort();
    found.pop()
}

/// Runs the named tests of the enclosing module again on PostgreSQL, in a child module
/// `on_postgres`.
#[allow(unused_macros)] // the benchmark includes this module too
macro_rules! on_postgres {
    ($($test:ident),* $(,)?) => {
        mod on_postgres {
            $(
                #[test]
                fn $test() {
                    crate::support::postgres::run(stringify!($test), super::$test);
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_postgres;
